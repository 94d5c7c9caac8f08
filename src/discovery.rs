//! A discovery: lists a prefix once, then follows it with the resumable watch
//! ([`crate::session::watch`]) from the listing's revision + 1, reporting every put and delete through a
//! [`Mailbox`]. After a compaction or a replaced etcd the watch lists again and the difference
//! arrives as ordinary puts and deletes.

use crate::dispatch::Mailbox;
use crate::error::{Error, Result};
use crate::event::{Event, EventKind, EventSink};
use crate::options::Options;
use crate::requests::range;
use crate::session::watch::{self, Batch, RawEvent, Spec, Table};
use crate::stats::DiscoveryStats;
use crate::transport;
use std::sync::Arc;

/// Watches a prefix and reports puts and deletes under it until dropped.
pub struct Discovery {
    mailbox: Arc<Mailbox<Event>>,
    watch: watch::Handle,
    /// Keys announced by the initial listing, and when.
    initial: u64,
    created: std::time::Instant,
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
        let conn = transport::connect(opts)?;
        let key = prefix.as_bytes().to_vec();
        crate::runtime::may_block()?;
        let mailbox = Mailbox::new(Box::new(move |e: &Event| sink.on_event(e)));
        // The pages arrive while the next one is fetched; each key is moved into its event and
        // on into the table (no copy), and the table is built in one pass at the end.
        // With `wait_for_etcd` nothing blocks: the listing arrives through the callback pool.
        let mut pages = (!opts.wait_for_etcd)
            .then(|| range::pages(conn.clone(), key.clone(), opts.connect_timeout));
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut next_revision = 0;
        while let Some(page) = pages.as_mut().and_then(|p| p.blocking_recv()) {
            match page {
                Ok(page) => {
                    rows.reserve(page.kvs.len());
                    for kv in page.kvs {
                        let ev = Event::put(kv.key, kv.value);
                        mailbox.deliver_now(&ev);
                        rows.push((ev.key, ev.value));
                    }
                    next_revision = page.revision + 1;
                }
                Err(e) if next_revision != 0 => {
                    // Part of the listing was delivered: the watch reads the prefix again and
                    // reports the difference.
                    log::warn!(target: "etcd_sd", "discovery: listing interrupted: {e}; reading it again");
                    next_revision = 0;
                    break;
                }
                Err(e) => {
                    let e = transport::first_contact_error(e, opts);
                    if opts.wait_for_etcd && e.is_transient() {
                        log::warn!(target: "etcd_sd", "discovery: {e}; will list when etcd answers");
                        break;
                    }
                    mailbox.close();
                    return Err(e);
                }
            }
        }
        let table: Table = rows.into_iter().collect();
        let target = mailbox.clone();
        let deliver = Box::new(move |batch: Batch| {
            target.post(batch.events.into_iter().map(to_event));
        });
        let spec = Spec { key, prefix: true };
        let initial = table.len() as u64;
        let watch = watch::start(conn, spec, next_revision, table, true, deliver);
        Ok(Discovery {
            mailbox,
            watch,
            initial,
            created: std::time::Instant::now(),
        })
    }

    /// What the discovery is doing: revision reached, keys announced, resumes and relistings,
    /// member in use, time since the last event.
    pub fn stats(&self) -> DiscoveryStats {
        let mut s = self.watch.stats();
        s.events += self.initial;
        if s.since_last_event.is_none() && self.initial > 0 {
            s.since_last_event = Some(self.created.elapsed());
        }
        s
    }

    /// Test hook: while paused the watch stream is closed and not reopened, so tests can make
    /// etcd compact past this discovery's revision. Not for production use.
    #[doc(hidden)]
    pub fn pause_watch_for_test(&self, paused: bool) {
        self.watch.pause(paused);
    }
}

/// A discovery reports the key and, for a delete, the value the key had.
fn to_event(e: RawEvent) -> Event {
    match e.kind {
        EventKind::Put => Event::put(e.kv.key, e.kv.value),
        EventKind::Delete => Event::delete(e.kv.key, e.prev.map(|p| p.value).unwrap_or_default()),
    }
}

impl Drop for Discovery {
    /// Stops the watch; on return no callback runs or will run (unless called from inside one
    /// of this discovery's own callbacks: see [`Mailbox::close`]).
    fn drop(&mut self) {
        self.mailbox.close();
    }
}
