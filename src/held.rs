//! Something held under a lease whose loss is reported, never repaired: the common part of a
//! [`crate::lock::Lock`] and an [`crate::election::Election`]. It is lost when its lease ends
//! (it expired while etcd was unreachable, or was revoked, by anyone) or when its key is
//! deleted; either way the owner's sink is told once, `check` fails with `Lost` from then on,
//! and the library takes nothing again by itself.
//!
//! The key is followed by the resumable watch engine (one watch on one key, from the revision
//! it was acquired at), and the lease, when the library granted it, by the connection's one
//! keep-alive stream with [`Heal::Never`].

use crate::dispatch::{Mailbox, Sink};
use crate::error::{Error, Result};
use crate::event::EventKind;
use crate::runtime;
use crate::session::kept::{GaveUp, KeptLease};
use crate::session::watch::{self, Batch, Handle, Spec, Table};
use crate::transport::{retry, Shared};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The loss state shared with the watch and the keep-alive.
struct State {
    lost: Mutex<Option<Error>>,
    sink: Mutex<Option<Arc<Mailbox<Error>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    /// Records the loss (the first one only) and tells the sink.
    fn lose(&self, why: Error) {
        {
            let mut lost = lock(&self.lost);
            if lost.is_some() {
                return;
            }
            log::warn!(target: "etcd_sd", "{why}");
            *lost = Some(why.clone());
        }
        if let Some(m) = lock(&self.sink).clone() {
            m.post([why]);
        }
    }
}

/// A key held under a lease, watched for its loss.
pub(crate) struct Held {
    state: Arc<State>,
    conn: Arc<Shared>,
    /// The lease, when the library granted it (it is revoked on release).
    kept: Option<KeptLease>,
    /// Given back by its owner (once).
    released: std::sync::atomic::AtomicBool,
    _watch: Handle,
}

impl Held {
    /// Starts watching `key` (with `value`, as etcd holds it at `revision`) and `kept`.
    /// `what` names the thing in messages ("lock /jobs/a/694d...").
    pub(crate) fn new(
        conn: Arc<Shared>,
        what: String,
        key: Vec<u8>,
        value: Vec<u8>,
        revision: i64,
        kept: Option<KeptLease>,
        sink: Option<Sink<Error>>,
    ) -> Held {
        let state = Arc::new(State {
            lost: Mutex::default(),
            sink: Mutex::new(sink.map(Mailbox::new)),
        });
        let mut table = Table::new();
        table.insert(key.clone(), value);
        let target = state.clone();
        let gone = what.clone();
        let deliver = Box::new(move |batch: Batch| {
            if batch.events.iter().any(|e| e.kind == EventKind::Delete) {
                target.lose(Error::Lost(format!(
                    "{gone}: its key was deleted (its lease expired or was revoked, or someone deleted it)"
                )));
            }
        });
        let spec = Spec { key, prefix: false };
        let watch = watch::start(conn.clone(), spec, revision + 1, table, false, deliver);
        if let Some(k) = &kept {
            let target = state.clone();
            k.set_give_up_sink(Some(Box::new(move |g: &GaveUp| {
                target.lose(Error::Lost(format!("{what}: {}", g.error.detail())));
            })));
        }
        Held {
            state,
            conn,
            kept,
            released: std::sync::atomic::AtomicBool::new(false),
            _watch: watch,
        }
    }

    /// `Err(Lost)` once it is lost.
    pub(crate) fn check(&self) -> Result<()> {
        match lock(&self.state.lost).clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Gives it back (once; later calls do nothing): unless it was lost, sends `request` (the
    /// unlock or the resign, retried within `limit`); then revokes the lease the library
    /// granted for it. `Err(Lost)` when it was lost before (nothing was held any more).
    /// Blocks; refuses inside an async runtime or an inline callback, before anything changes
    /// (the caller may give it back from another thread).
    pub(crate) fn give_back<T, F, Fut>(&self, limit: Duration, what: &str, request: F) -> Result<()>
    where
        F: FnMut(etcd_client::Client) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        runtime::may_block()?;
        if self
            .released
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return Ok(());
        }
        let lost = self.check();
        self.stop_reporting();
        let sent = match lost {
            Ok(()) => runtime::block_on(retry(&self.conn, limit, what, request))
                .and_then(|r| r)
                .map(|_| ()),
            Err(_) => Ok(()),
        };
        if let Some(k) = &self.kept {
            let _ = k.revoke();
        }
        lost.and(sent)
    }

    /// From now on no loss is reported, and `check` says it was released.
    fn stop_reporting(&self) {
        if let Some(m) = lock(&self.state.sink).take() {
            m.close();
        }
        let mut lost = lock(&self.state.lost);
        if lost.is_none() {
            *lost = Some(Error::Closed("released".into()));
        }
        drop(lost);
        if let Some(k) = &self.kept {
            k.set_give_up_sink(None);
        }
    }
}

/// After a lock or a campaign under the caller's lease gave up waiting: etcd removes the
/// waiter's key (`name/<lease in hex>`) only after the cancelled request has ended, and
/// asynchronously. An attempt under the same lease made before that would reuse the key and
/// lose it at once to that removal. So wait (at most 2 s, polling every 20 ms) until the key is
/// gone, before the caller is told it may try again. A lease of our own is revoked instead.
pub(crate) fn await_waiter_gone(conn: &Shared, name: &[u8], lease: i64) {
    let mut key = name.to_vec();
    key.extend_from_slice(format!("/{lease:x}").as_bytes());
    let _ = runtime::block_on(async {
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while tokio::time::Instant::now() < until {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match retry(conn, left, "lock", |c| crate::requests::kv::get(c, &key, 0)).await {
                Ok(kvs) if kvs.kvs.is_empty() => return,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(_) => return,
            }
        }
    });
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop_reporting();
    }
}
