//! Introspection for operators: what a registry, a discovery and the process's connections are
//! doing, as plain snapshots (the C ABI copies them into versioned structs).

use once_cell::sync::Lazy;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A registry's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryStats {
    /// The lease holding the keys (0 while none is held).
    pub lease_id: i64,
    /// The lease's TTL as granted, in seconds.
    pub lease_ttl: i64,
    /// Time left before the lease expires, as etcd said at the last renewal minus the time
    /// since (`None` before the first renewal answer or while no lease is held).
    pub lease_ttl_left: Option<Duration>,
    /// Keys this registry keeps registered.
    pub keys: u64,
    /// Times the lease was lost, and restored (with every key put back).
    pub lease_losses: u64,
    pub lease_restores: u64,
    /// Whether the lease is shared with the process's other registries of the same settings.
    pub shared_lease: bool,
    /// The etcd endpoint requests currently go to.
    pub member: String,
}

/// A discovery's (or a watch's) state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    /// The store revision the discovery has reached (every change up to it was reported).
    pub revision: i64,
    /// Keys it has announced and not withdrawn (its table).
    pub keys: u64,
    /// Events delivered (puts and deletes, the initial listing included).
    pub events: u64,
    /// Times a broken watch stream was resumed from the last revision.
    pub resumes: u64,
    /// Times it had to read the prefix again (compaction, cancelled watch, replaced etcd).
    pub relists: u64,
    /// Time since the last event was delivered (`None` if none yet).
    pub since_last_event: Option<Duration>,
    /// The etcd endpoint the watch currently uses.
    pub member: String,
}

/// The process's connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessStats {
    /// Distinct connection settings in use (one set of member connections each).
    pub connections: u64,
    /// Member connections established (dialled and answering).
    pub members_connected: u64,
    /// Leases kept alive, over all connections.
    pub leases_kept: u64,
    /// Requests sent again after a failure, since the process started.
    pub requests_retried: u64,
}

static EPOCH: Lazy<Instant> = Lazy::new(Instant::now);

/// Process-wide count of retried requests.
pub(crate) static RETRIED: AtomicU64 = AtomicU64::new(0);

/// The watch counters shared between a watch task and its owner.
#[derive(Default)]
pub(crate) struct WatchCounters {
    pub(crate) revision: AtomicI64,
    pub(crate) keys: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) resumes: AtomicU64,
    pub(crate) relists: AtomicU64,
    /// Milliseconds after `EPOCH` (plus one, so 0 means never) of the last event.
    last_event: AtomicU64,
}

impl WatchCounters {
    pub(crate) fn delivered(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.events.fetch_add(n as u64, Ordering::Relaxed);
        let ms = EPOCH.elapsed().as_millis() as u64 + 1;
        self.last_event.store(ms, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, member: String) -> DiscoveryStats {
        let last = self.last_event.load(Ordering::Relaxed);
        DiscoveryStats {
            revision: self.revision.load(Ordering::Relaxed),
            keys: self.keys.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            resumes: self.resumes.load(Ordering::Relaxed),
            relists: self.relists.load(Ordering::Relaxed),
            since_last_event: (last != 0).then(|| {
                EPOCH
                    .elapsed()
                    .saturating_sub(Duration::from_millis(last - 1))
            }),
            member,
        }
    }
}
