//! The resumable watch engine: the one watch mechanism under discoveries and the general
//! client's watches (the public [`crate::watch::Watcher`], the compat `Watcher`).
//!
//! It keeps a table (key -> value) of what it has reported. A broken stream resumes from the
//! last seen revision + 1 (nothing lost, nothing twice). When resuming is impossible -- the
//! revision was compacted, the server cancelled the watch, or etcd was replaced (its cluster id
//! changed, or its revision went backwards: a cluster restored from a snapshot or recreated on
//! the same addresses) -- it reads the key or prefix again and reports the difference against
//! its table as ordinary PUT and DELETE events (with the previous value), flagged with the
//! compact revision when that was the cause.
//!
//! Events are handed, one batch per etcd response, to a `deliver` function on the I/O thread,
//! which posts them to the owner's callback mailbox.

use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::event::EventKind;
use crate::outage::OutageLog;
use crate::requests::range;
use crate::runtime;
use crate::session::mux::{Msg, Mux};
use crate::stats::{DiscoveryStats, WatchCounters};
use crate::transport::{retry, Shared};
use crate::types::KeyValue;
use etcd_client::{EventType, WatchOptions};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the watch has reported: key -> value.
pub(crate) type Table = BTreeMap<Vec<u8>, Vec<u8>>;

/// One change. For a delete, `kv` holds the key and the delete's revision (`mod_revision`),
/// and `prev` the value it had. `prev` comes from the watch's table (what it reported last):
/// key and value only, the other fields 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev: Option<KeyValue>,
}

/// The events of one etcd response, or the difference found by a relisting.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub events: Vec<RawEvent>,
    /// The store revision the batch brings the watcher to.
    pub revision: i64,
    /// Not 0 when the watch's revision was compacted and this batch is the relisted difference.
    pub compact_revision: i64,
}

/// What is watched: one key, or every key under a prefix.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub key: Vec<u8>,
    pub prefix: bool,
}

impl Spec {
    fn range_end(&self) -> Vec<u8> {
        if self.prefix {
            range::prefix_end(&self.key)
        } else {
            let mut end = self.key.clone();
            end.push(0);
            end
        }
    }

    /// Reads what the spec covers (at `at`, or now when 0), with the revision.
    pub(crate) async fn read(
        &self,
        client: etcd_client::Client,
        at: i64,
    ) -> Result<(Vec<KeyValue>, i64)> {
        range::list_range(client, &self.key, self.range_end(), 0, at).await
    }
}

/// Receives each batch, on the I/O thread; must not block (post to a mailbox).
pub(crate) type Deliver = Box<dyn FnMut(Batch) + Send>;

/// A running watch; dropping it stops the watch (no batch is delivered afterwards).
pub(crate) struct Handle {
    task: JoinHandle<()>,
    pause: watch::Sender<bool>,
    counters: Arc<WatchCounters>,
    conn: Arc<Shared>,
}

impl Handle {
    /// What the watch is doing.
    pub(crate) fn stats(&self) -> DiscoveryStats {
        self.counters.snapshot(self.conn.current_endpoint())
    }

    /// Test hook: while paused the stream is closed and not reopened.
    pub(crate) fn pause(&self, paused: bool) {
        let _ = self.pause.send(paused);
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `spec` from `next_revision`, with `table` holding what the owner already
/// knows (the listing it started from). `next_revision` 0: etcd was not reachable yet; the
/// watch reads the spec first and, if `announce_initial`, reports every key as a PUT.
pub(crate) fn start(
    conn: Arc<Shared>,
    spec: Spec,
    next_revision: i64,
    table: Table,
    announce_initial: bool,
    deliver: Deliver,
) -> Handle {
    let (pause, paused) = watch::channel(false);
    let table_known = !table.is_empty();
    let counters = crate::stats::watch_counters(String::from_utf8_lossy(&spec.key).into_owned());
    counters.keys.store(table.len() as u64, Ordering::Relaxed);
    counters
        .revision
        .store(next_revision - 1, Ordering::Relaxed);
    let subject = format!(
        "watch {}{}",
        String::from_utf8_lossy(&spec.key),
        if spec.prefix { "*" } else { "" }
    );
    let w = Watch {
        outage: OutageLog::new(subject, log::Level::Warn),
        mux: Mux::of(&conn),
        conn: conn.clone(),
        counters: counters.clone(),
        spec,
        next_revision,
        table,
        deliver,
        paused,
        announce_initial,
        cluster_id: 0,
        // A watch that starts from a listing has seen that listing's revision.
        seen_revision: if table_known { next_revision - 1 } else { 0 },
    };
    Handle {
        task: runtime::spawn(w.run()),
        pause,
        counters,
        conn,
    }
}

/// Resolves when the test hook pauses the watch; never once the owner is gone.
async fn paused(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|p| *p).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// How long one relisting attempt may take (retrying across members) before starting over.
const RELIST_LIMIT: Duration = Duration::from_secs(10);

/// How one watch stream ended.
enum End {
    /// Resuming is impossible: list again. The compact revision, when that was the cause.
    Relist(String, i64),
    /// The stream failed: resume from `next_revision`.
    Broken(Error),
    /// The same, told by the shared stream, which logged it once for all its watches.
    StreamBroken(Error),
    /// The member showed a revision below one already seen: it lags (just restarted), or etcd
    /// was wiped and recreated with the same cluster id. A linearizable read tells which.
    Behind(String),
}

struct Watch {
    conn: Arc<Shared>,
    /// The connection's one watch stream, shared with the process's other watches on it.
    mux: Arc<Mux>,
    /// One log line per outage, one when the watch is back.
    outage: OutageLog,
    counters: Arc<WatchCounters>,
    spec: Spec,
    next_revision: i64,
    table: Table,
    deliver: Deliver,
    paused: watch::Receiver<bool>,
    announce_initial: bool,
    /// The cluster id of the etcd this watch has followed (0 until the first answer).
    cluster_id: u64,
    /// The highest store revision etcd has shown this watch.
    seen_revision: i64,
}

impl Watch {
    async fn run(mut self) {
        let mut backoff = Backoff::new();
        if self.next_revision == 0 {
            // Started while etcd was down: the initial listing comes now.
            let announce = self.announce_initial;
            self.relist(&mut backoff, 0, announce).await;
        }
        loop {
            let _ = self.paused.wait_for(|p| !*p).await;
            match self.watch_once(&mut backoff).await {
                End::Relist(why, compacted) => {
                    self.counters.relists.fetch_add(1, Ordering::Relaxed);
                    log::warn!(target: "etcd_sd", "watch: {why}; reading the keys again");
                    self.relist(&mut backoff, compacted, true).await;
                }
                End::Broken(err) => {
                    self.counters.resumes.fetch_add(1, Ordering::Relaxed);
                    self.outage.failed(&err);
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                End::StreamBroken(err) => {
                    // The shared stream logged it once (`mux.rs`), for all its watches.
                    self.counters.resumes.fetch_add(1, Ordering::Relaxed);
                    self.outage.failed_quietly(&err);
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                End::Behind(why) => {
                    match store_revision(self.conn.clone(), self.spec.key.clone()).await {
                        Ok(rev) if rev < self.seen_revision => {
                            self.counters.relists.fetch_add(1, Ordering::Relaxed);
                            log::warn!(target: "etcd_sd",
                            "watch: {why} and the cluster agrees ({rev}): etcd was replaced; reading the keys again");
                            self.cluster_id = 0;
                            self.seen_revision = 0;
                            self.relist(&mut backoff, 0, true).await;
                        }
                        other => {
                            // A lagging member: resume on another one (it was left already).
                            self.counters.resumes.fetch_add(1, Ordering::Relaxed);
                            if let Err(e) = other {
                                self.outage.failed(&e);
                            }
                            log::debug!(target: "etcd_sd", "watch: {why}; the member lags, resuming elsewhere");
                            tokio::time::sleep(backoff.next_delay()).await;
                        }
                    }
                }
            }
        }
    }
}

/// The store's revision by a linearizable read (the leader's view).
async fn store_revision(conn: Arc<Shared>, key: Vec<u8>) -> Result<i64> {
    retry(&conn, RELIST_LIMIT, "revision check", |mut c| {
        let key = key.clone();
        async move {
            let opts = etcd_client::GetOptions::new().with_count_only();
            let resp = c
                .get(key, Some(opts))
                .await
                .map_err(|e| Error::from_etcd("get", e))?;
            Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
        }
    })
    .await
}

impl Watch {
    /// Why a response header says this may not be the etcd we followed: its cluster id changed
    /// (`Relist`), or its revision is behind one it already showed us (`Behind`). Headers
    /// without a revision (a cancellation) say nothing.
    fn replaced(&mut self, header: Option<&etcd_client::ResponseHeader>) -> Option<End> {
        let h = header?;
        if h.revision() <= 0 || h.cluster_id() == 0 {
            return None;
        }
        if self.cluster_id == 0 {
            self.cluster_id = h.cluster_id();
        } else if h.cluster_id() != self.cluster_id {
            let why = format!(
                "etcd was replaced (cluster id {:x}, was {:x})",
                h.cluster_id(),
                self.cluster_id
            );
            self.cluster_id = 0;
            self.seen_revision = 0;
            return Some(End::Relist(why, 0));
        }
        if h.revision() < self.seen_revision {
            return Some(End::Behind(format!(
                "a member showed revision {} (we had seen {})",
                h.revision(),
                self.seen_revision
            )));
        }
        self.seen_revision = h.revision();
        None
    }

    async fn watch_once(&mut self, backoff: &mut Backoff) -> End {
        // No `prev_kv`: etcd would read each event's previous version from its backend, once
        // per event and watcher (a discovery catching up 20,000 events after a restart storm
        // kept the members busy for seconds). The table knows the previous value.
        let mut opts = WatchOptions::new()
            .with_progress_notify()
            .with_start_revision(self.next_revision);
        opts = if self.spec.prefix {
            opts.with_prefix()
        } else {
            opts
        };
        // On the connection's shared stream (`mux.rs`), which also watches for silence.
        let mut sub = self.mux.open(self.spec.key.clone(), opts);
        loop {
            let message = tokio::select! {
                m = sub.rx.recv() => m,
                _ = paused(&mut self.paused) => return End::Broken(Error::Closed("paused".into())),
            };
            let mut resp = match message {
                Some(Msg::Response(r)) => r,
                Some(Msg::Broken(e)) => return End::StreamBroken(e),
                None => {
                    let e = Error::Unavailable("dropped from the shared watch stream".into());
                    return End::Broken(e);
                }
            };
            if resp.watch_id() == -1 {
                // etcd's answer to a probe of the stream, sent to every watch on it: it proves
                // the member alive, but says nothing of this watch's progress (etcd 3.4 sends it
                // even to a watch still catching up), so only the header is checked.
                if let Some(end) = self.replaced(resp.header()) {
                    if matches!(end, End::Behind(_)) {
                        self.mux.leave(Error::Unavailable("member behind".into()));
                    }
                    return end;
                }
                continue;
            }
            if resp.created() {
                backoff.reset();
                self.outage.recovered();
            }
            if resp.canceled() {
                if resp.compact_revision() > 0 {
                    let why = format!(
                        "revision {} was compacted (oldest kept: {})",
                        self.next_revision,
                        resp.compact_revision()
                    );
                    return End::Relist(why, resp.compact_revision());
                }
                let why = format!("watch cancelled by the server: {}", resp.cancel_reason());
                return End::Relist(why, 0);
            }
            if let Some(end) = self.replaced(resp.header()) {
                if matches!(end, End::Behind(_)) {
                    // Leave this member whatever the verdict (every watch of the stream moves).
                    self.mux.leave(Error::Unavailable("member behind".into()));
                }
                return end;
            }
            let header_rev = resp.header().map(|h| h.revision()).unwrap_or(0);
            let mut events = Vec::with_capacity(resp.0.events.len());
            for ev in std::mem::take(&mut resp.0.events) {
                let kind = if ev.r#type == EventType::Delete as i32 {
                    EventKind::Delete
                } else {
                    EventKind::Put
                };
                let Some(kv) = ev.kv.map(KeyValue::from) else {
                    continue;
                };
                self.next_revision = self.next_revision.max(kv.mod_revision + 1);
                let known = match kind {
                    EventKind::Put => self.table.insert(kv.key.clone(), kv.value.clone()),
                    EventKind::Delete => self.table.remove(&kv.key),
                };
                let prev = known.map(|value| KeyValue {
                    key: kv.key.clone(),
                    value,
                    ..Default::default()
                });
                events.push(RawEvent { kind, kv, prev });
            }
            if events.is_empty() {
                // A progress notification: everything up to the header's revision was seen.
                self.next_revision = self.next_revision.max(header_rev + 1);
            }
            // The counters first: a callback that reads the stats must find them at least as
            // far as the batch it is running for.
            self.counters
                .revision
                .store(self.next_revision - 1, Ordering::Relaxed);
            if !events.is_empty() {
                self.counters.delivered(events.len());
                self.counters
                    .keys
                    .store(self.table.len() as u64, Ordering::Relaxed);
                (self.deliver)(Batch {
                    events,
                    revision: self.next_revision - 1,
                    compact_revision: 0,
                });
            }
        }
    }

    /// Reads the spec again and reports the difference against the table (when `announce`).
    async fn relist(&mut self, backoff: &mut Backoff, compacted: i64, announce: bool) {
        loop {
            let spec = &self.spec;
            let listed = retry(&self.conn, RELIST_LIMIT, "listing", |c| spec.read(c, 0)).await;
            match listed {
                Ok((kvs, revision)) => {
                    let old = std::mem::take(&mut self.table);
                    let (table, events) = diff(old, kvs, revision);
                    self.table = table;
                    self.next_revision = revision + 1;
                    self.seen_revision = self.seen_revision.max(revision);
                    self.counters.revision.store(revision, Ordering::Relaxed);
                    self.counters
                        .keys
                        .store(self.table.len() as u64, Ordering::Relaxed);
                    if announce {
                        self.counters.delivered(events.len());
                    }
                    if announce && (!events.is_empty() || compacted != 0) {
                        (self.deliver)(Batch {
                            events,
                            revision,
                            compact_revision: compacted,
                        });
                    }
                    return;
                }
                Err(e) => self.outage.failed(&e),
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}

/// The new table, and the events that turn `old` into it: deletes (with the last known value)
/// first, then puts for new or changed keys; unchanged keys produce nothing.
pub(crate) fn diff(mut old: Table, listed: Vec<KeyValue>, revision: i64) -> (Table, Vec<RawEvent>) {
    let mut table = Table::new();
    let mut puts = Vec::new();
    for kv in listed {
        let prev = old.remove(&kv.key);
        table.insert(kv.key.clone(), kv.value.clone());
        if prev.as_ref() != Some(&kv.value) {
            let prev = prev.map(|value| KeyValue {
                key: kv.key.clone(),
                value,
                ..Default::default()
            });
            puts.push(RawEvent {
                kind: EventKind::Put,
                kv,
                prev,
            });
        }
    }
    let mut events: Vec<RawEvent> = old
        .into_iter()
        .map(|(key, value)| RawEvent {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: key.clone(),
                mod_revision: revision,
                ..Default::default()
            },
            prev: Some(KeyValue {
                key,
                value,
                ..Default::default()
            }),
        })
        .collect();
    events.extend(puts);
    (table, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: v.into(),
            ..Default::default()
        }
    }

    #[test]
    fn diff_reports_only_changes() {
        let old: Table = [("a", "1"), ("b", "2"), ("c", "3")]
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        let (table, events) = diff(old, vec![kv("b", "2"), kv("c", "33"), kv("d", "4")], 9);
        let summary: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e.kind,
                    String::from_utf8_lossy(&e.kv.key).into_owned(),
                    e.prev
                        .as_ref()
                        .map(|p| String::from_utf8_lossy(&p.value).into_owned()),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (EventKind::Delete, "a".into(), Some("1".into())),
                (EventKind::Put, "c".into(), Some("3".into())),
                (EventKind::Put, "d".into(), None),
            ]
        );
        assert_eq!(table.len(), 3);
        let (_, none) = diff(table, vec![kv("b", "2"), kv("c", "33"), kv("d", "4")], 10);
        assert!(none.is_empty());
    }
}
