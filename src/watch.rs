//! Watches made from the general client ([`Watcher`]): raw events with their previous values,
//! on the resumable watch engine ([`crate::session::watch`]).

use crate::dispatch::{Mailbox, Sink};
use crate::error::{Error, Result};
use crate::kv::Client;
use crate::runtime;
use crate::session::watch::{start, Handle, Spec, Table};
use crate::stats::DiscoveryStats;
use crate::transport::{first_contact_error, retry};
use std::sync::Arc;

pub use crate::session::watch::{Batch, RawEvent};

/// A watch made from the general client: raw events (with previous values) in batches,
/// delivered on the callback pool in revision order, never two at once for one watcher.
pub struct Watcher {
    mailbox: Arc<Mailbox<Batch>>,
    watch: Handle,
}

impl Watcher {
    /// What the watch is doing (revision reached, keys known, resumes, relistings...).
    pub fn stats(&self) -> DiscoveryStats {
        self.watch.stats()
    }

    /// Watches `key` (every key under it when `prefix`) from `start_revision`. With
    /// `start_revision` 0 it starts "now", except that when the same key or prefix was listed
    /// through a client with the same settings less than a minute ago
    /// ([`crate::kv::Client::range`], [`crate::kv::Client::get`]) it continues right after that
    /// listing, so an `ls` followed by a watcher loses nothing in between. Blocks for one read
    /// of the key or prefix as it was just before the first revision watched (bounded by the
    /// connect timeout): it seeds the table that gives each event its previous value and makes
    /// a relisting after compaction report exact differences.
    pub fn new(
        client: &Client,
        key: &[u8],
        prefix: bool,
        start_revision: i64,
        sink: Sink<Batch>,
    ) -> Result<Self> {
        if key.is_empty() {
            return Err(Error::invalid("key is empty"));
        }
        if start_revision < 0 {
            return Err(Error::invalid(format!(
                "start revision must be >= 0, got {start_revision}"
            )));
        }
        let session = client.session.clone();
        let conn = session.conn().clone();
        let opts = client.options();
        let spec = Spec {
            key: key.to_vec(),
            prefix,
        };
        // The table seeds the previous values of the events (and the difference after a
        // relisting): read the key or prefix as it was just before the first event delivered.
        let (read_at, next_revision) = match start_revision {
            0 => (session.listings.recent(key, prefix).unwrap_or(0), 0),
            1 => (-1, 1), // nothing existed before revision 1
            r => (r - 1, r),
        };
        let table = if opts.wait_for_etcd || read_at < 0 {
            // Never blocks with `wait_for_etcd`: a watch from now reads the key or prefix when
            // etcd answers. From revision 1 the table starts empty.
            None
        } else {
            let (kvs, revision) = runtime::block_on(async {
                let read = retry(&conn, opts.connect_timeout, "watch start", |c| {
                    spec.read(c, read_at)
                })
                .await;
                match read {
                    Err(e) if read_at != 0 && e.is_compacted() => {
                        if start_revision > 0 {
                            // The watch itself will find the revision compacted and report
                            // the difference against what etcd holds then.
                            return Ok((Vec::new(), 0));
                        }
                        // The recent listing's revision was compacted: start from now.
                        retry(&conn, opts.connect_timeout, "watch start", |c| {
                            spec.read(c, 0)
                        })
                        .await
                    }
                    other => other,
                }
            })?
            .map_err(|e| first_contact_error(e, opts))?;
            Some((
                kvs.into_iter().map(|kv| (kv.key, kv.value)).collect(),
                revision,
            ))
        };
        let (table, next_revision) = match table {
            Some((table, revision)) if next_revision == 0 => (table, revision + 1),
            Some((table, _)) => (table, next_revision),
            None => (Table::new(), next_revision),
        };
        let mailbox = Mailbox::with_delivery(sink, opts.inline_callbacks);
        let target = mailbox.clone();
        let deliver = Box::new(move |batch: Batch| target.post([batch]));
        let watch = start(conn, spec, next_revision, table, false, deliver);
        Ok(Watcher { mailbox, watch })
    }
}

impl Drop for Watcher {
    /// Stops the watch; on return no callback runs or will run (unless called from inside one
    /// of this watcher's own callbacks: see [`Mailbox::close`]).
    fn drop(&mut self) {
        self.mailbox.close();
    }
}
