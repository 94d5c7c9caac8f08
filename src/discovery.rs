//! A discovery: lists a prefix once, then watches it from the listing's revision + 1 and
//! reports every change through a [`Mailbox`], keeping a table of what it announced.
//!
//! A broken watch resumes from the last seen revision + 1 (nothing lost, nothing twice). When
//! resuming is impossible (the revision was compacted, or the server cancelled the watch) it
//! lists again and reports the difference against its table.

use crate::backoff::Backoff;
use crate::client::{self, retry, Member, Shared};
use crate::dispatch::Mailbox;
use crate::error::{Error, Result};
use crate::event::{Event, EventSink};
use crate::options::Options;
use crate::runtime;
use etcd_client::{EventType, GetOptions, WatchOptions};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

type Table = BTreeMap<Vec<u8>, Vec<u8>>;

/// Watches a prefix and reports puts and deletes under it until dropped.
pub struct Discovery {
    mailbox: Arc<Mailbox<Event>>,
    watcher: JoinHandle<()>,
    pause: watch::Sender<bool>,
}

impl Discovery {
    /// Lists `prefix`, delivers one put per key (in key order) on the calling thread, then
    /// starts watching. Later events are delivered on the callback pool, in revision order,
    /// never two at once for this discovery.
    pub fn new(opts: &Options, prefix: &str, sink: impl EventSink) -> Result<Self> {
        if prefix.is_empty() {
            return Err(Error::invalid(
                "prefix is empty (it would watch the whole key space)",
            ));
        }
        let conn = client::connect(opts)?;
        let prefix = prefix.as_bytes().to_vec();
        let listed =
            runtime::block_on(retry(&conn, opts.connect_timeout, "initial listing", |c| {
                list(c, &prefix)
            }))?
            .map_err(|e| client::first_contact_error(e, opts));
        let mailbox = Mailbox::new(Box::new(move |e: &Event| sink.on_event(e)));
        let (table, next_revision) = match listed {
            Ok((table, revision)) => {
                for (k, v) in &table {
                    mailbox.deliver_now(&Event::put(k.clone(), v.clone()));
                }
                (table, revision + 1)
            }
            Err(e) if opts.wait_for_etcd && e.is_transient() => {
                log::warn!(target: "etcd_sd", "discovery: {e}; will list when etcd answers");
                (Table::new(), 0)
            }
            Err(e) => return Err(e),
        };
        let (pause, paused) = watch::channel(false);
        let watch = Watch {
            conn,
            prefix,
            next_revision,
            table,
            mailbox: mailbox.clone(),
            paused,
        };
        let watcher = runtime::spawn(watch.run());
        Ok(Discovery {
            mailbox,
            watcher,
            pause,
        })
    }

    /// Test hook: while paused the watch stream is closed and not reopened, so tests can make
    /// etcd compact past this discovery's revision. Not for production use.
    #[doc(hidden)]
    pub fn pause_watch_for_test(&self, paused: bool) {
        let _ = self.pause.send(paused);
    }
}

impl Drop for Discovery {
    /// Stops the watch; on return no callback runs or will run (unless called from inside one
    /// of this discovery's own callbacks: see [`Mailbox::close`]).
    fn drop(&mut self) {
        self.watcher.abort();
        self.mailbox.close();
    }
}

/// Resolves when the test hook pauses the watch; never once the `Discovery` is gone (its drop
/// closes the sender while it aborts this task).
async fn paused(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|p| *p).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Keys per page of the listing: bounds the size of each reply (and of the memory it needs
/// on both sides) whatever the size of the prefix.
const PAGE: i64 = 5_000;
/// Reply size the listing and the watch accept (etcd-client's default is 4 MiB), for pages
/// of large values and for catch-up batches of events.
const MAX_REPLY: usize = 64 << 20;

/// Reads every key under `prefix`, page by page at one revision, with that revision.
async fn list(client: etcd_client::Client, prefix: &[u8]) -> Result<(Table, i64)> {
    let mut kv = client.kv_client().max_decoding_message_size(MAX_REPLY);
    let end = prefix_end(prefix);
    let mut table = Table::new();
    let mut start = prefix.to_vec();
    let mut revision = 0;
    loop {
        let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        if revision != 0 {
            opts = opts.with_revision(revision);
        }
        let mut resp = kv
            .get(start.clone(), Some(opts))
            .await
            .map_err(|e| Error::from_etcd("get", e))?;
        if revision == 0 {
            revision = resp.header().map(|h| h.revision()).unwrap_or(0);
        }
        let more = resp.more();
        let kvs = resp.take_kvs();
        if let Some(last) = kvs.last() {
            start = last.key().to_vec();
            start.push(0); // the next key after `last`
        }
        table.extend(kvs.into_iter().map(|kv| kv.into_key_value()));
        if !more {
            return Ok((table, revision));
        }
    }
}

/// The end of the key range holding every key that starts with `prefix` (etcd's rule: the
/// prefix with its last byte below 0xff incremented; "\0" means "to the end").
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The differences that turn `old` into `new`: deletes (with the last known value) first, then
/// puts for new or changed keys; unchanged keys produce nothing.
pub(crate) fn diff(old: &Table, new: &Table) -> Vec<Event> {
    let mut events: Vec<Event> = old
        .iter()
        .filter(|(k, _)| !new.contains_key(*k))
        .map(|(k, v)| Event::delete(k.clone(), v.clone()))
        .collect();
    events.extend(
        new.iter()
            .filter(|(k, v)| old.get(*k) != Some(*v))
            .map(|(k, v)| Event::put(k.clone(), v.clone())),
    );
    events
}

/// Silence on a watch stream after which the member is asked for a progress notification,
/// and how long it then has to answer before the watch moves to another member. The HTTP/2
/// pings (10 s + 5 s) catch the same failure for the connection as a whole.
const PROBE_IDLE: Duration = Duration::from_secs(5);
const PROBE_ANSWER: Duration = Duration::from_secs(3);

/// How long one relisting attempt may take (retrying across members) before starting over.
const RELIST_LIMIT: Duration = Duration::from_secs(10);

/// Hands the failure to the member (switching members, refreshing the token) and says why.
async fn broken(member: &Member<'_>, err: Error) -> WatchEnd {
    member.failed(&err).await;
    WatchEnd::Broken(err.to_string())
}

/// How one watch stream ended.
enum WatchEnd {
    /// The start revision was compacted or the server cancelled the watch: list again.
    Relist(String),
    /// The stream failed: resume from `next_revision`.
    Broken(String),
}

struct Watch {
    conn: Arc<Shared>,
    prefix: Vec<u8>,
    next_revision: i64,
    table: Table,
    mailbox: Arc<Mailbox<Event>>,
    paused: watch::Receiver<bool>,
}

impl Watch {
    async fn run(mut self) {
        let mut backoff = Backoff::new();
        if self.next_revision == 0 {
            // Started while etcd was down: the initial listing comes through the pool.
            self.relist(&mut backoff).await;
        }
        loop {
            let _ = self.paused.wait_for(|p| !*p).await;
            let end = self.watch_once(&mut backoff).await;
            match end {
                WatchEnd::Relist(why) => {
                    log::warn!(target: "etcd_sd", "discovery: {why}; listing the prefix again");
                    self.relist(&mut backoff).await;
                }
                WatchEnd::Broken(why) => {
                    log::warn!(target: "etcd_sd",
                        "discovery: watch interrupted ({why}); resuming at revision {}",
                        self.next_revision);
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    async fn watch_once(&mut self, backoff: &mut Backoff) -> WatchEnd {
        let opts = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_progress_notify()
            .with_start_revision(self.next_revision);
        let conn = self.conn.clone();
        let member = match conn.pick().await {
            Ok(m) => m,
            Err(e) => return WatchEnd::Broken(e.to_string()),
        };
        // A catching-up watcher may get many events in one response: allow large ones.
        let mut client = member
            .client
            .watch_client()
            .max_decoding_message_size(MAX_REPLY);
        let (mut requests, mut stream) = match client.watch(self.prefix.clone(), Some(opts)).await {
            Ok(s) => s.split(),
            Err(e) => return broken(&member, Error::from_etcd("watch", e)).await,
        };
        // A member that stops answering but keeps the connection open would leave the stream
        // silent; after PROBE_IDLE of silence ask for a progress notification, and give up on
        // the member if none comes within PROBE_ANSWER.
        let mut probed = false;
        loop {
            let silence = if probed { PROBE_ANSWER } else { PROBE_IDLE };
            let message = tokio::select! {
                m = stream.message() => m,
                _ = paused(&mut self.paused) => return WatchEnd::Broken("paused".into()),
                _ = tokio::time::sleep(silence) => {
                    if probed {
                        let e = Error::Timeout(PROBE_ANSWER, "watch progress".into());
                        return broken(&member, e).await;
                    }
                    if let Err(e) = requests.request_progress().await {
                        return broken(&member, Error::from_etcd("watch", e)).await;
                    }
                    probed = true;
                    continue;
                }
            };
            probed = false;
            let resp = match message {
                Ok(Some(r)) => r,
                Ok(None) => {
                    let closed = Error::Unavailable("watch stream closed by the server".into());
                    return broken(&member, closed).await;
                }
                Err(e) => return broken(&member, Error::from_etcd("watch", e)).await,
            };
            if resp.created() {
                backoff.reset();
            }
            if resp.canceled() {
                let why = if resp.compact_revision() > 0 {
                    format!(
                        "revision {} was compacted (oldest kept: {})",
                        self.next_revision,
                        resp.compact_revision()
                    )
                } else {
                    format!("watch cancelled by the server: {}", resp.cancel_reason())
                };
                return WatchEnd::Relist(why);
            }
            let mut events = Vec::with_capacity(resp.events().len());
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let key = kv.key().to_vec();
                self.next_revision = self.next_revision.max(kv.mod_revision() + 1);
                match ev.event_type() {
                    EventType::Put => {
                        self.table.insert(key.clone(), kv.value().to_vec());
                        events.push(Event::put(key, kv.value()));
                    }
                    EventType::Delete => {
                        let known = self.table.remove(&key);
                        let value = ev
                            .prev_kv()
                            .map(|p| p.value().to_vec())
                            .or(known)
                            .unwrap_or_default();
                        events.push(Event::delete(key, value));
                    }
                }
            }
            if events.is_empty() {
                // A progress notification: everything up to the header's revision was seen.
                if let Some(h) = resp.header() {
                    self.next_revision = self.next_revision.max(h.revision() + 1);
                }
            } else {
                self.mailbox.post(events);
            }
        }
    }

    async fn relist(&mut self, backoff: &mut Backoff) {
        loop {
            let prefix = &self.prefix;
            let listed = retry(&self.conn, RELIST_LIMIT, "listing", |c| list(c, prefix)).await;
            match listed {
                Ok((table, revision)) => {
                    let events = diff(&self.table, &table);
                    self.table = table;
                    self.next_revision = revision + 1;
                    self.mailbox.post(events);
                    return;
                }
                Err(e) => log::warn!(target: "etcd_sd", "discovery: listing failed: {e}"),
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(items: &[(&str, &str)]) -> Table {
        items
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn prefix_end_follows_etcd() {
        assert_eq!(prefix_end(b"/svc"), b"/svd");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
    }

    #[test]
    fn diff_reports_only_changes() {
        let old = table(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let new = table(&[("b", "2"), ("c", "33"), ("d", "4")]);
        assert_eq!(
            diff(&old, &new),
            vec![
                Event::delete("a", "1"),
                Event::put("c", "33"),
                Event::put("d", "4")
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }
}
