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

/// Asked for the keys last known under a prefix (key order) when the first listing fails.
pub type Fallback = Box<dyn FnOnce() -> Option<Vec<(Vec<u8>, Vec<u8>)>> + Send>;

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
    /// starts watching. Later events are delivered on the callback pool (on the I/O thread
    /// with `Options::set_inline_callbacks`), in revision order, never two at once for this
    /// discovery.
    pub fn new(opts: &Options, prefix: &str, sink: impl EventSink) -> Result<Self> {
        Self::with_fallback(opts, prefix, None, sink)
    }

    /// [`Self::new`], and when the first listing fails for a reason that may pass (etcd down
    /// or unreachable), `fallback` is asked for the keys last known: if it has them, they
    /// are delivered as puts (in key order, on the calling thread) instead of the failure,
    /// and the watch lists the prefix as soon as etcd answers, delivering the difference
    /// (deletes for keys gone, puts for new or changed ones). [`Self::listed`] says when.
    pub fn with_fallback(
        opts: &Options,
        prefix: &str,
        fallback: Option<Fallback>,
        sink: impl EventSink,
    ) -> Result<Self> {
        if prefix.is_empty() {
            return Err(Error::invalid(
                "prefix is empty (it would watch the whole key space)",
            ));
        }
        let conn = transport::connect(opts)?;
        let key = prefix.as_bytes().to_vec();
        crate::runtime::may_block()?;
        let mailbox = Mailbox::with_delivery(
            Box::new(move |e: &Event| sink.on_event(e)),
            opts.inline_callbacks,
        );
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
                    let last_known = match fallback {
                        Some(f) if e.is_transient() => f(),
                        _ => None,
                    };
                    let Some(last_known) = last_known else {
                        mailbox.close();
                        return Err(e);
                    };
                    log::warn!(target: "etcd_sd",
                        "discovery: {e}; starting from the {} key(s) last known, will list when etcd answers",
                        last_known.len());
                    for (k, v) in last_known {
                        let ev = Event::put(k, v);
                        mailbox.deliver_now(&ev);
                        rows.push((ev.key, ev.value));
                    }
                    break;
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
    /// True once etcd has answered the prefix's listing: always after a plain `new`; after a
    /// start from the keys last known ([`Self::with_fallback`]) or with `wait_for_etcd`, once
    /// the watch has listed the prefix.
    pub fn listed(&self) -> bool {
        self.watch.stats().revision > 0
    }

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
