//! The book of kept leases of one connection: every id a kept lease ever had, old ones
//! included, so that a request naming an old id reaches the lease under its current id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Lease id -> the object keeping it (generic, so that this file names no other of ours).
pub(crate) struct Book<T> {
    by_id: Mutex<HashMap<i64, Weak<T>>>,
}

impl<T> Default for Book<T> {
    fn default() -> Self {
        Book {
            by_id: Mutex::default(),
        }
    }
}

impl<T> Book<T> {
    fn lock(&self) -> MutexGuard<'_, HashMap<i64, Weak<T>>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `owner` keeps (or kept) lease `id`.
    pub(crate) fn remember(&self, id: i64, owner: &Arc<T>) {
        let mut book = self.lock();
        if book.len() > 256 {
            book.retain(|_, w| w.strong_count() > 0);
        }
        book.insert(id, Arc::downgrade(owner));
    }

    /// The owner that has or had `id`, if it is still alive.
    pub(crate) fn lookup(&self, id: i64) -> Option<Arc<T>> {
        self.lock().get(&id).and_then(Weak::upgrade)
    }

    /// Every live owner, once each.
    pub(crate) fn owners(&self) -> Vec<Arc<T>> {
        let mut out: Vec<Arc<T>> = Vec::new();
        for owner in self.lock().values().filter_map(Weak::upgrade) {
            if !out.iter().any(|o| Arc::ptr_eq(o, &owner)) {
                out.push(owner);
            }
        }
        out
    }
}
