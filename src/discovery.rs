//! A discovery: lists a prefix once, then follows it with the resumable watch
//! ([`crate::watch`]) from the listing's revision + 1, reporting every put and delete through a
//! [`Mailbox`]. After a compaction or a replaced etcd the watch lists again and the difference
//! arrives as ordinary puts and deletes.

use crate::client::{self, retry};
use crate::dispatch::Mailbox;
use crate::error::{Error, Result};
use crate::event::{Event, EventKind, EventSink};
use crate::listing;
use crate::options::Options;
use crate::runtime;
use crate::watch::{self, Batch, RawEvent, Spec, Table};
use std::sync::Arc;

/// Watches a prefix and reports puts and deletes under it until dropped.
pub struct Discovery {
    mailbox: Arc<Mailbox<Event>>,
    watch: watch::Handle,
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
        let key = prefix.as_bytes().to_vec();
        let listed =
            runtime::block_on(retry(&conn, opts.connect_timeout, "initial listing", |c| {
                listing::list(c, &key, 0, 0)
            }))?
            .map_err(|e| client::first_contact_error(e, opts));
        let mailbox = Mailbox::new(Box::new(move |e: &Event| sink.on_event(e)));
        let mut table = Table::new();
        let next_revision = match listed {
            Ok((kvs, revision)) => {
                for kv in kvs {
                    // Moved into the event and on into the table: no copy per key.
                    let ev = Event::put(kv.key, kv.value);
                    mailbox.deliver_now(&ev);
                    table.insert(ev.key, ev.value);
                }
                revision + 1
            }
            Err(e) if opts.wait_for_etcd && e.is_transient() => {
                log::warn!(target: "etcd_sd", "discovery: {e}; will list when etcd answers");
                0
            }
            Err(e) => return Err(e),
        };
        let target = mailbox.clone();
        let deliver = Box::new(move |batch: Batch| {
            target.post(batch.events.into_iter().map(to_event));
        });
        let spec = Spec { key, prefix: true };
        let watch = watch::start(conn, spec, next_revision, table, true, deliver);
        Ok(Discovery { mailbox, watch })
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
