//! Introspection for operators: what a registry, a discovery and the process's connections are
//! doing, as plain snapshots (the C ABI copies them into versioned structs).

use once_cell::sync::Lazy;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
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

/// Registries alive, and of those the ones draining (gauges for the metrics text).
pub(crate) static REGISTRIES: AtomicI64 = AtomicI64::new(0);
pub(crate) static REGISTRIES_DRAINING: AtomicI64 = AtomicI64::new(0);
/// Keys registered by the registries alive.
pub(crate) static REGISTERED_KEYS: AtomicI64 = AtomicI64::new(0);
/// Kept leases lost, and restored with their keys, since the process started.
pub(crate) static LEASE_LOSSES: AtomicU64 = AtomicU64::new(0);
pub(crate) static LEASE_RESTORES: AtomicU64 = AtomicU64::new(0);
/// Outages begun since the process started, and outages going on now (a connection, a
/// lease or a watch failing until it succeeds again; see `outage.rs`).
pub(crate) static OUTAGES: AtomicU64 = AtomicU64::new(0);
pub(crate) static OUTAGES_ONGOING: AtomicI64 = AtomicI64::new(0);

/// Every live watch's counters, for the metrics text.
static WATCHES: Lazy<Mutex<Vec<Weak<WatchCounters>>>> = Lazy::new(Mutex::default);
static NEXT_WATCH: AtomicU64 = AtomicU64::new(1);

/// New counters for a watch of `subject` (its key or prefix), enrolled for the metrics text
/// until dropped.
pub(crate) fn watch_counters(subject: String) -> Arc<WatchCounters> {
    let c = Arc::new(WatchCounters {
        id: NEXT_WATCH.fetch_add(1, Ordering::Relaxed),
        subject,
        ..WatchCounters::default()
    });
    let mut all = WATCHES.lock().unwrap_or_else(|e| e.into_inner());
    if all.len() >= 16 && all.len().is_power_of_two() {
        all.retain(|w| w.strong_count() > 0);
    }
    all.push(Arc::downgrade(&c));
    c
}

/// The counters of every live watch, oldest first.
pub(crate) fn live_watches() -> Vec<Arc<WatchCounters>> {
    let mut all = WATCHES.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|w| w.strong_count() > 0);
    all.iter().filter_map(Weak::upgrade).collect()
}

/// The watch counters shared between a watch task and its owner.
#[derive(Default)]
pub(crate) struct WatchCounters {
    /// Process-unique number (the metrics' `watch` label).
    pub(crate) id: u64,
    /// The key or prefix watched.
    pub(crate) subject: String,
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
