//! The list-then-watch cache: which keys and prefixes were read recently, at which revision.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a listing stays "recent" for a watch started without a revision.
pub(crate) const RECENT: Duration = Duration::from_secs(60);

/// The listings made through a connection in the last [`RECENT`] seconds, by key or prefix:
/// a watch started without a revision on something just listed continues from that listing's
/// revision, so the list-then-watch pattern (an `ls` followed by a watcher, as every chat
/// system writes it) loses no change made in between.
/// A key, or a prefix when the flag is set.
type Listed = (Vec<u8>, bool);

#[derive(Default)]
pub(crate) struct RecentListings {
    by_key: Mutex<HashMap<Listed, (i64, Instant)>>,
}

impl RecentListings {
    /// Records that `key` (a prefix when `prefix`) was read at `revision`.
    pub(crate) fn record(&self, key: &[u8], prefix: bool, revision: i64) {
        if revision <= 0 {
            return;
        }
        let mut m = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if m.len() > 1024 {
            m.retain(|_, (_, at)| now.duration_since(*at) < RECENT);
        }
        m.insert((key.to_vec(), prefix), (revision, now));
    }

    /// The revision `key` was last listed at, if that was less than [`RECENT`] ago.
    pub(crate) fn recent(&self, key: &[u8], prefix: bool) -> Option<i64> {
        let m = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&(key.to_vec(), prefix))
            .filter(|(_, at)| at.elapsed() < RECENT)
            .map(|(rev, _)| *rev)
    }
}
