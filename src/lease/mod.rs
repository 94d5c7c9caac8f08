//! Leases the library keeps alive: the connection's one keep-alive stream ([`keeper`]) and the
//! kept lease that recovers itself and the keys put under it ([`kept`]). Registries (shared or
//! own lease), and the general client's keep-alives (the compat `KeepAlive`) stand on these.

pub(crate) mod keeper;
pub(crate) mod kept;

pub use kept::{GaveUp, KeptLease};

use keeper::Keeper;
use kept::KeptInner;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// What a registry's status callback is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The lease is gone: etcd no longer holds this registry's keys. Recovery has started.
    Lost,
    /// A new lease was granted and every registered key is in etcd again (also reported once
    /// when a registry created with `wait_for_etcd` first reaches etcd).
    Restored,
}

/// The lease state of one connection (one per `client::Shared`).
#[derive(Default)]
pub(crate) struct Leases {
    pub(crate) keeper: Keeper,
    /// Every id a kept lease of this connection ever had, old ones included, so that a put
    /// naming an old id goes under the current one.
    book: Mutex<HashMap<i64, Weak<KeptInner>>>,
    /// The registries' shared lease, per TTL.
    pub(crate) shared: Mutex<HashMap<i64, Weak<KeptInner>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Leases {
    pub(crate) fn remember(&self, id: i64, kept: &Arc<KeptInner>) {
        let mut book = lock(&self.book);
        if book.len() > 256 {
            book.retain(|_, w| w.strong_count() > 0);
        }
        book.insert(id, Arc::downgrade(kept));
    }

    /// The kept lease that has or had `id`, if it is still kept.
    pub(crate) fn lookup(&self, id: i64) -> Option<Arc<KeptInner>> {
        lock(&self.book)
            .get(&id)
            .and_then(Weak::upgrade)
            .filter(|k| !k.is_retired())
    }

    /// A key (or prefix) was deleted through the client: no kept lease puts it back.
    pub(crate) fn forget(&self, key: &[u8], prefix: bool) {
        let kept: Vec<Arc<KeptInner>> = lock(&self.book)
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        let mut seen: Vec<*const KeptInner> = Vec::new();
        for k in kept {
            let p = Arc::as_ptr(&k);
            if !seen.contains(&p) {
                seen.push(p);
                k.forget(key, prefix);
            }
        }
    }
}
