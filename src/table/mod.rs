//! The service table: a discovery's keys grouped by service, with a pick per call.
//!
//! A key `/service/user/instance-1` belongs to service `/service/user` (the key up to its last
//! `/`); its value is the instance's address (formats in [`address`]). The table keeps, per
//! service, an immutable [`Instances`] snapshot in key order, in a directory of all services
//! that is replaced as a whole (RCU: one `ArcSwap`, so a pick is one atomic load, a hash
//! lookup and a counter increment) each time the watch changes a service. Readers — [`Table::pick_with`],
//! [`Table::instances`], [`Table::report`] — take no lock a writer holds and allocate nothing;
//! the writer (the discovery's callback, in revision order) builds the next snapshot and swaps
//! it in. A pick that starts after the swap of a DELETE can no longer return that instance.
//!
//! [`Table`] is the core without etcd (fed with [`Table::apply`]); [`ServiceTable`] is a
//! `Table` fed by a [`Discovery`] on a prefix.
//!
//! Which instance a pick returns (issue 19; the details in [`select`] and [`slow_start`]):
//! draining instances (metadata `draining=true`/`1`) never; with a [`Selector`], those whose
//! metadata matches every pair, else its [`Failover`]; with a caller zone
//! ([`Locality`], default `$ETCD_SD_ZONE`), those of that zone unless fewer than 50 % of
//! the zone's instances are healthy (then every zone); then the policy, skipping ejected
//! instances, with slow start for instances seen after the first listing (default on, 30 s
//! from 10 %, for weighted round robin only). A pick without selector, zone preference,
//! draining instance, ejection or ramp takes the same fast path as before; the others go
//! through a per-snapshot, per-selector view of candidate indices, built once.
//!
//! Choices where the issue is silent:
//! - A PUT with the same address, weight and metadata changes nothing (no snapshot, no
//!   notification). A PUT that changes only the weight or metadata keeps the instance's
//!   ejection record; one that changes the address makes a new instance.
//! - A value that is not a valid instance (see [`address`]) removes the key's instance, with a
//!   warning in the log.
//! - With no service declared, every service under the prefix is kept. Once one is declared,
//!   only declared services are kept (undeclared keys are still tracked, so declaring a
//!   service later makes its instances available at once). A service name is matched
//!   exactly, ignoring one trailing `/`.
//! - A service whose last instance left stays known while declared (with no instance); an
//!   undeclared one is forgotten. Either way its changed-notification fires.

pub mod address;
pub mod eject;
mod nul_str;
pub mod pick;
pub mod select;
pub mod slow_start;
pub mod snapshot;

pub use address::Endpoint;
pub use eject::Ejection;
pub use pick::Policy;
pub use select::{Failover, Locality, Selector};
pub use slow_start::SlowStart;

use crate::discovery::{Discovery, Fallback};
use crate::dispatch::{Mailbox, Sink};
use crate::error::Result;
use crate::event::{Event, EventKind};
use crate::options::Options;
use arc_swap::ArcSwap;
use eject::{Health, Outcome};
use nul_str::NulStr;
use select::{View, VIEW_SLOTS};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

/// How a table picks and ejects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub policy: Policy,
    pub ejection: Ejection,
    /// The caller's zone and the spill-over threshold (see [`select`]).
    pub locality: Locality,
    /// `None`: the policy's default ([`SlowStart::default_for`]).
    pub slow_start: Option<SlowStart>,
}

/// The service a key belongs to: the key up to its last `/` (without it).
pub fn service_of(key: &str) -> &str {
    key.rfind('/').map_or("", |i| &key[..i])
}

fn normalize(service: &str) -> &str {
    service.strip_suffix('/').unwrap_or(service)
}

/// One instance of a service. Strings are stored NUL-terminated for the C layer.
#[derive(Debug)]
pub struct Instance {
    key: NulStr,
    addr: NulStr,
    weight: u32,
    metadata: Option<NulStr>,
    /// Metadata pairs, sorted by key, each key once.
    meta: Box<[(NulStr, NulStr)]>,
    draining: bool,
    /// When the table saw it, on its clock; 0 for the first listing (never ramped).
    added: u64,
    /// Slow-start credit (see [`slow_start::accept`]).
    ramp_credit: AtomicU32,
    health: Arc<Health>,
}

impl Instance {
    /// The etcd key.
    pub fn key(&self) -> &str {
        self.key.as_str()
    }
    /// The address from the value.
    pub fn address(&self) -> &str {
        self.addr.as_str()
    }
    pub fn weight(&self) -> u32 {
        self.weight
    }
    /// The JSON text of `Metadata`, for JSON values that have one.
    pub fn metadata(&self) -> Option<&str> {
        self.metadata.as_ref().map(NulStr::as_str)
    }
    /// Consecutive failures reported since the last success or ejection.
    pub fn consecutive_failures(&self) -> u32 {
        self.health.failures()
    }
    /// The metadata value of `key` (plain `key=value` tokens, or a JSON `Metadata` member).
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta_index(key).map(|j| self.meta[j].1.as_str())
    }
    /// Every metadata pair, sorted by key.
    pub fn meta_pairs(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.meta.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    /// Metadata `zone`.
    pub fn zone(&self) -> Option<&str> {
        self.meta("zone")
    }
    /// Metadata `draining` is `true` or `1`: never picked for a new call.
    pub fn is_draining(&self) -> bool {
        self.draining
    }
    /// When the table saw the instance (its clock, ns); 0 for the first listing.
    #[doc(hidden)]
    pub fn added_at(&self) -> u64 {
        self.added
    }
    fn meta_index(&self, key: &str) -> Option<usize> {
        self.meta
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
    }
    /// Pair `j` with NULs, for C.
    pub(crate) fn meta_c(&self, j: usize) -> Option<(&str, &str)> {
        self.meta.get(j).map(|(k, v)| (k.with_nul(), v.with_nul()))
    }
    /// The pair of `key` with NULs, for C.
    pub(crate) fn meta_get_c(&self, key: &str) -> Option<(&str, &str)> {
        self.meta_index(key).and_then(|j| self.meta_c(j))
    }
    pub(crate) fn key_c(&self) -> &str {
        self.key.with_nul()
    }
    pub(crate) fn address_c(&self) -> &str {
        self.addr.with_nul()
    }
    pub(crate) fn metadata_c(&self) -> Option<&str> {
        self.metadata.as_ref().map(NulStr::with_nul)
    }
    fn same_endpoint(&self, e: &Endpoint) -> bool {
        self.address() == e.addr
            && self.weight == e.weight
            && self.metadata() == e.metadata.as_deref()
            && self.meta.len() == e.meta.len()
            && self
                .meta_pairs()
                .zip(&e.meta)
                .all(|((k, v), (ek, ev))| k == ek && v == ev)
    }
}

impl select::Candidate for Instance {
    fn meta(&self, key: &str) -> Option<&str> {
        Instance::meta(self, key)
    }
    fn is_draining(&self) -> bool {
        self.draining
    }
    fn weight(&self) -> u32 {
        self.weight
    }
    fn address(&self) -> &str {
        Instance::address(self)
    }
}

/// One immutable version of a service's instance list.
#[derive(Default)]
struct ServiceSet {
    /// In key order.
    instances: Box<[Arc<Instance>]>,
    /// Instance indices sorted by address, for `report`.
    by_address: Box<[u32]>,
    /// One cycle of the smooth weighted sequence (built by the writer for that policy).
    sequence: OnceLock<Box<[u32]>>,
    /// The hash ring (built by the writer once the service has seen a keyed pick).
    ring: OnceLock<Box<[(u64, u32)]>>,
    /// The caller's zone when the snapshot was built (`None`: no preference).
    zone: Option<Box<str>>,
    min_healthy_percent: u32,
    /// No instance drains and no local-zone preference applies: a pick without selector
    /// chooses from the whole list (the fast path).
    plain: bool,
    /// The latest `added` of the instances (0: all from the first listing).
    newest_added: u64,
    /// Every slow-start window of the snapshot has passed: picks stop reading the clock.
    ramp_over: AtomicBool,
    /// Round-robin start of the views (the service's counter when built).
    view_start: u64,
    /// The view without selector (used when not `plain`).
    default_view: OnceLock<View>,
    /// Views of selectors, by selector id, filled first come first served.
    views: [OnceLock<Box<View>>; VIEW_SLOTS],
}

impl ServiceSet {
    fn new(instances: Vec<Arc<Instance>>, locality: &Locality, view_start: u64) -> Self {
        let zone: Option<Box<str>> = locality
            .zone
            .as_deref()
            .filter(|z| !z.is_empty())
            .map(Box::from);
        let plain = !instances.iter().any(|i| i.draining)
            && zone
                .as_deref()
                .map_or(true, |z| !instances.iter().any(|i| i.zone() == Some(z)));
        let newest_added = instances.iter().map(|i| i.added).max().unwrap_or(0);
        let mut by_address: Vec<u32> = (0..instances.len() as u32).collect();
        by_address.sort_by(|a, b| {
            instances[*a as usize]
                .address()
                .cmp(instances[*b as usize].address())
        });
        ServiceSet {
            instances: instances.into_boxed_slice(),
            by_address: by_address.into_boxed_slice(),
            zone,
            min_healthy_percent: locality.min_healthy_percent,
            plain,
            newest_added,
            ramp_over: AtomicBool::new(newest_added == 0),
            view_start,
            ..ServiceSet::default()
        }
    }

    fn default_view(&self) -> &View {
        self.default_view.get_or_init(|| {
            View::build(&self.instances, None, self.zone.as_deref(), self.view_start)
        })
    }

    /// The cached view of `sel`, building it in a free slot; `None` when every slot holds
    /// another selector's view.
    fn cached_view(&self, sel: &Selector) -> Option<&View> {
        for slot in &self.views {
            let v = match slot.get() {
                Some(v) => v,
                None => slot.get_or_init(|| Box::new(self.build_view(sel))),
            };
            if v.id == sel.id() {
                return Some(v);
            }
        }
        None
    }

    fn build_view(&self, sel: &Selector) -> View {
        View::build(
            &self.instances,
            Some(sel),
            self.zone.as_deref(),
            self.view_start,
        )
    }

    fn sequence(&self) -> &[u32] {
        self.sequence.get_or_init(|| {
            let w: Vec<u32> = self.instances.iter().map(|i| i.weight).collect();
            pick::build_sequence(&w)
        })
    }

    fn ring(&self) -> &[(u64, u32)] {
        self.ring
            .get_or_init(|| pick::build_ring(self.instances.iter().map(|i| i.address())))
    }

    /// Indices of the instances with this address.
    fn with_address<'a>(&'a self, addr: &'a str) -> impl Iterator<Item = &'a Arc<Instance>> + 'a {
        let start = self
            .by_address
            .partition_point(|i| self.instances[*i as usize].address() < addr);
        self.by_address[start..]
            .iter()
            .map(|i| &self.instances[*i as usize])
            .take_while(move |inst| inst.address() == addr)
    }

    fn ejected_count(&self, now: u64) -> usize {
        self.instances
            .iter()
            .filter(|i| i.health.is_ejected(now))
            .count()
    }
}

/// A service's mutable state: lives as long as the service is known, across snapshots.
struct Service {
    /// Round-robin / weighted position (64 bits: never wraps in practice).
    counter: AtomicU64,
    /// Picks that returned an instance, and failures reported (for the metrics text). Next
    /// to `counter`: a pick that moves the counter already owns this cache line.
    picks: AtomicU64,
    failures_reported: AtomicU64,
    /// An ejection may be in force: picks consult health only then.
    ejecting: AtomicBool,
    /// Held while deciding an ejection, so the cap is exact.
    eject_lock: Mutex<()>,
    /// A keyed pick was seen: the writer builds rings for this service's next snapshots.
    wants_ring: AtomicBool,
}

/// One service in the directory: its current snapshot and its state.
#[derive(Clone)]
struct Entry {
    set: Arc<ServiceSet>,
    svc: Arc<Service>,
}

/// Every kept service, replaced as a whole on each change (one atomic load per pick).
/// Keyed by the Fx hash (rustc's): service names are short and come from our own etcd, so a
/// fast non-keyed hash beats SipHash on the pick path.
type Directory = HashMap<Arc<str>, Entry, rustc_hash::FxBuildHasher>;

/// A snapshot of one service's instances, in key order. Holding it pins that version only.
pub struct Instances {
    set: Arc<ServiceSet>,
    now: u64,
}

impl Instances {
    pub fn len(&self) -> usize {
        self.set.instances.len()
    }
    pub fn is_empty(&self) -> bool {
        self.set.instances.is_empty()
    }
    pub fn get(&self, i: usize) -> Option<&Instance> {
        self.set.instances.get(i).map(|a| &**a)
    }
    pub fn iter(&self) -> impl Iterator<Item = &Instance> {
        self.set.instances.iter().map(|a| &**a)
    }
    /// Whether instance `i` was ejected when the snapshot was taken.
    pub fn is_ejected(&self, i: usize) -> bool {
        self.set
            .instances
            .get(i)
            .is_some_and(|inst| inst.health.is_ejected(self.now))
    }
}

/// What the writer knows: every instance under the prefix, declared or not.
struct Writer {
    services: HashMap<String, BTreeMap<String, Arc<Instance>>>,
    declared: Option<BTreeSet<String>>,
    /// True during a [`ServiceTable`]'s initial listing: keys are recorded, snapshots are
    /// built once at the end.
    initializing: bool,
    /// Which URL of a Kratos value gives the address (from the options).
    kratos: crate::options::KratosEndpoint,
    /// The first listing is over: instances seen from now on are slow-started.
    listed: bool,
    locality: Locality,
}

/// The service table core: fed with events, read by any number of threads.
pub struct Table {
    policy: Policy,
    ejection: ArcSwap<Ejection>,
    /// Slow-start window (ns, 0: off) and floor (ppm).
    slow_window: AtomicU64,
    slow_floor: AtomicU32,
    directory: ArcSwap<Directory>,
    writer: Mutex<Writer>,
    changed: Mutex<Option<Arc<Mailbox<Arc<str>>>>>,
    epoch: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Table {
    /// A table fed with [`Table::apply`]. Instances applied before [`Table::end_listing`]
    /// count as the first listing (never slow-started); a [`ServiceTable`] ends it after
    /// its initial listing.
    pub fn new(config: Config) -> Self {
        let slow = config
            .slow_start
            .unwrap_or_else(|| SlowStart::default_for(config.policy));
        Table {
            policy: config.policy,
            ejection: ArcSwap::from_pointee(config.ejection),
            slow_window: AtomicU64::new(slow.window_ns()),
            slow_floor: AtomicU32::new(slow.floor_ppm()),
            directory: ArcSwap::from_pointee(Directory::default()),
            writer: Mutex::new(Writer {
                services: HashMap::new(),
                declared: None,
                initializing: false,
                kratos: Default::default(),
                listed: false,
                locality: config.locality,
            }),
            changed: Mutex::new(None),
            epoch: Instant::now(),
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    pub fn ejection(&self) -> Ejection {
        **self.ejection.load()
    }

    /// Replaces the ejection settings (ejections in force keep their end time).
    pub fn set_ejection(&self, ejection: Ejection) {
        self.ejection.store(Arc::new(ejection));
    }

    /// The slow-start settings in force.
    pub fn slow_start(&self) -> SlowStart {
        SlowStart {
            window: std::time::Duration::from_nanos(self.slow_window.load(Ordering::Relaxed)),
            floor_percent: self.slow_floor.load(Ordering::Relaxed) / (slow_start::ONE / 100),
        }
    }

    /// Replaces the slow-start settings; they apply at once to instances still within the
    /// new window (each keeps the time the table saw it).
    pub fn set_slow_start(&self, slow: SlowStart) {
        self.slow_window.store(slow.window_ns(), Ordering::Relaxed);
        self.slow_floor.store(slow.floor_ppm(), Ordering::Relaxed);
        for e in self.directory.load().values() {
            e.set
                .ramp_over
                .store(e.set.newest_added == 0, Ordering::Relaxed);
        }
    }

    /// The caller's zone and spill-over threshold in force.
    pub fn locality(&self) -> Locality {
        lock(&self.writer).locality.clone()
    }

    /// Replaces the caller's zone and spill-over threshold (see [`select`]); every
    /// service's snapshot is rebuilt (without a changed-notification: the instances are
    /// the same).
    pub fn set_locality(&self, locality: Locality) {
        let mut w = lock(&self.writer);
        w.locality = locality;
        if w.initializing {
            return;
        }
        let dir = self.directory.load();
        let mut next: Directory = (**dir).clone();
        for e in next.values_mut() {
            let list: Vec<Arc<Instance>> = e.set.instances.to_vec();
            e.set = Arc::new(self.build_set(&w, &e.svc, list));
        }
        self.directory.store(Arc::new(next));
    }

    /// Ends the first listing of a table fed by hand (see [`Table::new`]).
    pub fn end_listing(&self) {
        lock(&self.writer).listed = true;
    }

    /// Nanoseconds on the table's clock (never 0).
    #[doc(hidden)]
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64 + 1
    }

    /// Applies one discovery event.
    pub fn apply(&self, event: &Event) {
        self.apply_at(event, self.now())
    }

    /// `apply` at a given time on the table's clock (when the table saw a new instance,
    /// for slow start). For tests.
    #[doc(hidden)]
    pub fn apply_at(&self, event: &Event, now: u64) {
        let Ok(key) = std::str::from_utf8(&event.key) else {
            log::warn!(target: "etcd_sd", "service table: key {:?} is not UTF-8; ignored",
                String::from_utf8_lossy(&event.key));
            return;
        };
        let mut w = lock(&self.writer);
        let service = service_of(key);
        let endpoint = match event.kind {
            EventKind::Delete => None,
            EventKind::Put => match address::parse_with(key, &event.value, &w.kratos) {
                Ok(e) => Some(e),
                Err(why) => {
                    log::warn!(target: "etcd_sd",
                        "service table: {key}: not an instance ({why}); value {:?}",
                        String::from_utf8_lossy(&event.value));
                    None
                }
            },
        };
        let ramp_new = w.listed && !w.initializing;
        let instances = w.services.entry(service.to_string()).or_default();
        let changed = match endpoint {
            None => instances.remove(key).is_some(),
            Some(e) => match instances.get(key) {
                Some(old) if old.same_endpoint(&e) => false,
                old => {
                    // Same address: the same instance (its record and start time stay).
                    let same = old.filter(|o| o.address() == e.addr);
                    let health = same.map_or_else(Arc::default, |o| o.health.clone());
                    let added = match same {
                        Some(o) => o.added,
                        None if ramp_new => now.max(1),
                        None => 0,
                    };
                    let draining = e.meta.iter().any(|(k, v)| {
                        k == "draining" && (v.eq_ignore_ascii_case("true") || v == "1")
                    });
                    let inst = Instance {
                        key: NulStr::new(key),
                        addr: NulStr::new(&e.addr),
                        weight: e.weight,
                        metadata: e.metadata.as_deref().map(NulStr::new),
                        meta: e
                            .meta
                            .iter()
                            .map(|(k, v)| (NulStr::new(k), NulStr::new(v)))
                            .collect(),
                        draining,
                        added,
                        ramp_credit: AtomicU32::new(0),
                        health,
                    };
                    instances.insert(key.to_string(), Arc::new(inst));
                    true
                }
            },
        };
        if instances.is_empty() {
            w.services.remove(service);
        }
        if changed && !w.initializing && kept(&w, service) {
            self.publish(&w, service);
        }
    }

    /// Builds and swaps in `service`'s snapshot, then notifies. Writer lock held.
    fn publish(&self, w: &Writer, service: &str) {
        let list: Vec<Arc<Instance>> = w
            .services
            .get(service)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        let dir = self.directory.load();
        let mut next: Directory = (**dir).clone();
        match next.get_mut(service) {
            Some(e) if !list.is_empty() || is_declared(w, service) => {
                e.set = Arc::new(self.build_set(w, &e.svc, list));
            }
            Some(_) => {
                // An undeclared service lost its last instance: forget it.
                next.remove(service);
            }
            None => {
                if list.is_empty() && !is_declared(w, service) {
                    return;
                }
                let svc = Arc::new(Service {
                    counter: AtomicU64::new(0),
                    picks: AtomicU64::new(0),
                    failures_reported: AtomicU64::new(0),
                    ejecting: AtomicBool::new(false),
                    eject_lock: Mutex::new(()),
                    wants_ring: AtomicBool::new(false),
                });
                let set = Arc::new(self.build_set(w, &svc, list));
                next.insert(service.into(), Entry { set, svc });
            }
        }
        self.directory.store(Arc::new(next));
        self.notify(service);
    }

    fn build_set(&self, w: &Writer, svc: &Service, list: Vec<Arc<Instance>>) -> ServiceSet {
        let start = svc.counter.load(Ordering::Relaxed);
        let set = ServiceSet::new(list, &w.locality, start);
        if !set.plain {
            set.default_view();
        }
        if self.policy == Policy::WeightedRoundRobin {
            set.sequence();
        }
        if self.policy == Policy::ConsistentHash || svc.wants_ring.load(Ordering::Relaxed) {
            set.ring();
        }
        if set
            .instances
            .iter()
            .any(|i| i.health.is_ejected(self.now()))
        {
            svc.ejecting.store(true, Ordering::SeqCst);
        }
        set
    }

    fn notify(&self, service: &str) {
        if let Some(m) = lock(&self.changed).as_ref() {
            m.post([Arc::from(service)]);
        }
    }

    /// Keeps only declared services (once any is declared) and makes `service` known now,
    /// with whatever instances it already has.
    pub fn declare(&self, service: &str) {
        let service = normalize(service);
        let mut w = lock(&self.writer);
        let first = w.declared.is_none();
        if !w
            .declared
            .get_or_insert_with(BTreeSet::new)
            .insert(service.to_string())
        {
            return;
        }
        if w.initializing {
            return;
        }
        if first {
            let dir = self.directory.load();
            let mut next: Directory = (**dir).clone();
            let dropped: Vec<Arc<str>> =
                next.keys().filter(|s| &***s != service).cloned().collect();
            for s in &dropped {
                next.remove(s);
            }
            self.directory.store(Arc::new(next));
            for s in &dropped {
                self.notify(s);
            }
        }
        if !self.directory.load().contains_key(service) || first {
            self.publish(&w, service);
        }
    }

    /// The declared services, if any was declared.
    pub fn declared(&self) -> Option<Vec<String>> {
        lock(&self.writer)
            .declared
            .as_ref()
            .map(|d| d.iter().cloned().collect())
    }

    /// Services with at least one instance, plus declared ones, sorted.
    pub fn services(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .directory
            .load()
            .iter()
            .filter(|(_, e)| !e.set.instances.is_empty())
            .map(|(k, _)| k.to_string())
            .collect();
        v.sort();
        v
    }

    /// Picks an instance of `service` and passes it to `f`: by consistent hashing on `key`
    /// when given, else by the table's policy. `None` when the service has no instance. Takes
    /// no lock and allocates nothing (except the very first keyed pick of a snapshot, which
    /// builds its ring when the writer has not). Draining instances are never picked; the
    /// caller's zone is preferred (see [`select`]).
    #[inline]
    pub fn pick_with<R>(
        &self,
        service: &str,
        key: Option<&[u8]>,
        f: impl FnOnce(&Instance) -> R,
    ) -> Option<R> {
        self.pick_inner(service, None, key, None, f)
    }

    /// [`Table::pick_with`] among the instances `selector` chooses (see [`select`]): `None`
    /// also when nothing matches and the failover gives nothing. Lock-free; allocation-free
    /// once the snapshot has the selector's view (built at its first pick).
    #[inline]
    pub fn pick_select_with<R>(
        &self,
        service: &str,
        selector: Option<&Selector>,
        key: Option<&[u8]>,
        f: impl FnOnce(&Instance) -> R,
    ) -> Option<R> {
        self.pick_inner(service, selector, key, None, f)
    }

    /// `pick` at a given time on the table's clock. For tests.
    #[doc(hidden)]
    pub fn pick_at(&self, service: &str, key: Option<&[u8]>, now: u64) -> Option<String> {
        self.pick_inner(service, None, key, Some(now), |i| i.address().to_string())
    }

    /// `pick_select` at a given time on the table's clock. For tests.
    #[doc(hidden)]
    pub fn pick_select_at(
        &self,
        service: &str,
        selector: Option<&Selector>,
        key: Option<&[u8]>,
        now: u64,
    ) -> Option<String> {
        self.pick_inner(service, selector, key, Some(now), |i| {
            i.address().to_string()
        })
    }

    #[inline]
    fn pick_inner<R>(
        &self,
        service: &str,
        selector: Option<&Selector>,
        key: Option<&[u8]>,
        now: Option<u64>,
        f: impl FnOnce(&Instance) -> R,
    ) -> Option<R> {
        let dir = self.directory.load();
        let name = normalize(service);
        let Entry { set, svc } = dir.get(name)?;
        if set.instances.is_empty() {
            return None;
        }
        let ejecting = now.is_some() || svc.ejecting.load(Ordering::Acquire);
        let may_ramp = key.is_none()
            && !set.ramp_over.load(Ordering::Relaxed)
            && self.slow_window.load(Ordering::Relaxed) != 0;
        let i = if selector.is_none() && set.plain && !ejecting && !may_ramp {
            self.choose(svc, set, key, None)
        } else {
            self.pick_general(name, svc, set, selector, key, now, ejecting, may_ramp)?
        };
        svc.picks.fetch_add(1, Ordering::Relaxed);
        Some(f(&set.instances[i]))
    }

    /// A pick with a selector, a zone, draining instances, an ejection or a ramp to honour.
    #[allow(clippy::too_many_arguments)]
    fn pick_general(
        &self,
        name: &str,
        svc: &Service,
        set: &ServiceSet,
        selector: Option<&Selector>,
        key: Option<&[u8]>,
        given_now: Option<u64>,
        ejecting: bool,
        may_ramp: bool,
    ) -> Option<usize> {
        let now = match given_now {
            Some(n) => n,
            None if ejecting || may_ramp => self.now(),
            None => 0,
        };
        let eject = ejecting && self.ejection_in_force(name, svc, set, now);
        let window = self.slow_window.load(Ordering::Relaxed);
        let ramp = may_ramp && {
            let over = now >= set.newest_added.saturating_add(window);
            if over && given_now.is_none() {
                set.ramp_over.store(true, Ordering::Relaxed);
            }
            !over
        };
        let floor = self.slow_floor.load(Ordering::Relaxed);
        let skip_fn = |i: usize| {
            let inst = &set.instances[i];
            (eject && inst.health.is_ejected(now))
                || (ramp
                    && !slow_start::accept(
                        &inst.ramp_credit,
                        slow_start::factor(inst.added, now, window, floor),
                    ))
        };
        let skip: Option<&dyn Fn(usize) -> bool> =
            if eject || ramp { Some(&skip_fn) } else { None };
        if selector.is_none() && set.plain {
            return Some(self.choose(svc, set, key, skip));
        }
        let uncached;
        let view: &View = match selector {
            None => set.default_view(),
            Some(s) => match set.cached_view(s) {
                Some(v) => v,
                None => {
                    uncached = set.build_view(s);
                    &uncached
                }
            },
        };
        let sub = view.zone_subset(set.min_healthy_percent, |local| {
            if eject {
                local
                    .iter()
                    .filter(|i| !set.instances[**i as usize].health.is_ejected(now))
                    .count()
            } else {
                local.len()
            }
        });
        let n = sub.idx.len();
        if n == 0 {
            return None;
        }
        let on_sub = |p: usize| skip.is_some_and(|s| s(sub.idx[p] as usize));
        let sub_skip: Option<&dyn Fn(usize) -> bool> = skip.map(|_| &on_sub as _);
        Some(match (key, self.policy) {
            (Some(k), _) => pick::consistent(sub.ring(&set.instances), k, skip),
            (None, Policy::RoundRobin | Policy::ConsistentHash) => {
                sub.idx[pick::round_robin(&sub.counter, n, sub_skip)] as usize
            }
            (None, Policy::Random) => sub.idx[pick::random(n, sub_skip)] as usize,
            (None, Policy::WeightedRoundRobin) => {
                pick::weighted(&sub.counter, sub.sequence(&set.instances), skip)
            }
        })
    }

    /// The address of a picked instance (allocates the string).
    pub fn pick(&self, service: &str, key: Option<&[u8]>) -> Option<String> {
        self.pick_with(service, key, |i| i.address().to_string())
    }

    /// The address of an instance picked with `selector` (allocates the string).
    pub fn pick_select(
        &self,
        service: &str,
        selector: Option<&Selector>,
        key: Option<&[u8]>,
    ) -> Option<String> {
        self.pick_select_with(service, selector, key, |i| i.address().to_string())
    }

    #[inline]
    fn choose(
        &self,
        svc: &Service,
        set: &ServiceSet,
        key: Option<&[u8]>,
        skip: Option<&dyn Fn(usize) -> bool>,
    ) -> usize {
        let n = set.instances.len();
        match (key, self.policy) {
            (Some(k), _) => {
                if !svc.wants_ring.load(Ordering::Relaxed) {
                    svc.wants_ring.store(true, Ordering::Relaxed);
                }
                pick::consistent(set.ring(), k, skip)
            }
            (None, Policy::RoundRobin | Policy::ConsistentHash) => {
                pick::round_robin(&svc.counter, n, skip)
            }
            (None, Policy::Random) => pick::random(n, skip),
            (None, Policy::WeightedRoundRobin) => {
                pick::weighted(&svc.counter, set.sequence(), skip)
            }
        }
    }

    /// Whether picks must skip ejected instances now: some are ejected, within the cap.
    #[cold]
    fn ejection_in_force(&self, name: &str, svc: &Service, set: &ServiceSet, now: u64) -> bool {
        let ejected = set.ejected_count(now);
        if ejected == 0 {
            // Every ejection ended: back to the fast path, unless one started meanwhile.
            svc.ejecting.store(false, Ordering::SeqCst);
            let newest = self.directory.load();
            if newest
                .get(name)
                .is_some_and(|e| e.set.ejected_count(now) != 0)
            {
                svc.ejecting.store(true, Ordering::SeqCst);
            }
            return false;
        }
        self.ejection
            .load()
            .within_cap(ejected, set.instances.len())
    }

    /// A snapshot of `service`'s instances (empty when unknown).
    pub fn instances(&self, service: &str) -> Instances {
        let set = self
            .directory
            .load()
            .get(normalize(service))
            .map(|e| e.set.clone())
            .unwrap_or_default();
        Instances {
            set,
            now: self.now(),
        }
    }

    /// Reports the result of a call to `address` of `service`; false when no instance has
    /// that address (it may have just left: not an error for a caller).
    pub fn report(&self, service: &str, address: &str, ok: bool) -> bool {
        self.report_at(service, address, ok, self.now()).is_some()
    }

    /// `report` at a given time on the table's clock; what the last matching instance's
    /// record did. For tests.
    #[doc(hidden)]
    pub fn report_at(&self, service: &str, address: &str, ok: bool, now: u64) -> Option<Outcome> {
        let dir = self.directory.load();
        let name = normalize(service);
        let Entry { set, svc } = dir.get(name)?;
        if !ok {
            svc.failures_reported.fetch_add(1, Ordering::Relaxed);
        }
        let mut outcome = None;
        for inst in set.with_address(address) {
            outcome = Some(Outcome::Counted);
            if ok {
                inst.health.succeeded();
                continue;
            }
            let cfg = self.ejection.load();
            if !inst.health.failed(&cfg, now) {
                continue;
            }
            let _g = lock(&svc.eject_lock);
            if inst.health.is_ejected(now) {
                continue;
            }
            // Count against the newest snapshot: it is what picks will see.
            let newest = self.directory.load();
            let current = newest.get(name).map_or(&**set, |e| &*e.set);
            if !cfg.within_cap(current.ejected_count(now) + 1, current.instances.len()) {
                log::info!(target: "etcd_sd",
                    "service table: {address} ({}) not ejected: at most {} % of {service} may be",
                    inst.key(), cfg.max_ejected_percent);
                outcome = Some(Outcome::Capped);
                continue;
            }
            let d = inst.health.eject(&cfg, now);
            svc.ejecting.store(true, Ordering::SeqCst);
            log::warn!(target: "etcd_sd",
                "service table: ejected {address} ({}) of {service} for {d:?} after {} consecutive failures",
                inst.key(), cfg.consecutive_failures);
            outcome = Some(Outcome::Ejected(d));
        }
        outcome
    }

    /// Sets (or with `None` removes) the callback told, with the service name, each time a
    /// service's instance set changed. It runs on the callback pool, after the new snapshot
    /// is in place, never two at once for one table. When this returns, the previous callback
    /// is not running and will not run (unless called from inside it).
    pub fn set_changed(&self, sink: Option<Sink<Arc<str>>>) {
        let next = sink.map(Mailbox::new);
        let old = std::mem::replace(&mut *lock(&self.changed), next);
        if let Some(old) = old {
            old.close();
        }
    }

    /// Ends the initial listing: builds every kept service's snapshot at once.
    fn finish_initial(&self) {
        let mut w = lock(&self.writer);
        w.initializing = false;
        w.listed = true;
        let mut names: BTreeSet<String> = w.services.keys().cloned().collect();
        if let Some(d) = &w.declared {
            names.extend(d.iter().cloned());
        }
        for s in names.iter().filter(|s| kept(&w, s)) {
            self.publish(&w, s);
        }
    }
}

fn kept(w: &Writer, service: &str) -> bool {
    w.declared.as_ref().map_or(true, |d| d.contains(service))
}

fn is_declared(w: &Writer, service: &str) -> bool {
    w.declared.as_ref().is_some_and(|d| d.contains(service))
}

/// The environment variable that gives a [`ServiceTable`] its caller's zone.
pub const ZONE_ENV: &str = "ETCD_SD_ZONE";

/// A [`Table`] kept up to date by a [`Discovery`] of a prefix.
pub struct ServiceTable {
    // Field order is drop order: the discovery (the only writer) stops first.
    discovery: Option<Discovery>,
    table: Arc<Table>,
    /// Keeps the last-known snapshot file, when the options name one (written last on drop).
    snapshot: Option<Arc<snapshot::Writer>>,
}

impl ServiceTable {
    /// Lists `prefix` (blocking, like [`Discovery::new`]), builds the table, then follows the
    /// watch. `declared` services, if any, are declared before the listing is applied.
    ///
    /// A `config.locality.zone` of `None` takes the caller's zone from `ETCD_SD_ZONE` (unset
    /// or empty: no zone).
    pub fn new(
        opts: &Options,
        prefix: &str,
        mut config: Config,
        declared: &[&str],
    ) -> Result<Self> {
        if config.locality.zone.is_none() {
            config.locality.zone = std::env::var(ZONE_ENV).ok().filter(|z| !z.is_empty());
        }
        let table = Arc::new(Table::new(config));
        for d in declared {
            table.declare(d);
        }
        lock(&table.writer).initializing = true;
        lock(&table.writer).kratos = opts.kratos_endpoint().clone();
        let snapshot = (opts.snapshot_file.clone()).map(|p| snapshot::Writer::start(p, prefix));
        let (t, s) = (table.clone(), snapshot.clone());
        let sink = move |e: &Event| {
            t.apply(e);
            if let Some(s) = &s {
                s.note(e);
            }
        };
        let fallback = opts.snapshot_file.clone().map(|path| {
            let prefix = prefix.to_string();
            let writer = snapshot.clone();
            Box::new(move || match snapshot::load(&path, &prefix) {
                Ok(rows) => {
                    if let Some(w) = &writer {
                        w.preload(&rows);
                    }
                    Some(rows)
                }
                Err(e) => {
                    log::warn!(target: "etcd_sd", "service table: {e}; not used");
                    None
                }
            }) as Fallback
        });
        let discovery = Discovery::with_fallback(opts, prefix, fallback, sink)?;
        table.finish_initial();
        enroll(prefix, &table);
        Ok(ServiceTable {
            discovery: Some(discovery),
            table,
            snapshot,
        })
    }

    /// True until etcd has answered this table's listing: after a start from the last-known
    /// snapshot (etcd was down) or with `wait_for_etcd`. The snapshot's instances are picked
    /// meanwhile.
    pub fn is_stale(&self) -> bool {
        !self.discovery.as_ref().is_some_and(Discovery::listed)
    }

    /// The table (shared: it outlives this object while the `Arc` lives, frozen).
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }
}

impl std::ops::Deref for ServiceTable {
    type Target = Table;
    fn deref(&self) -> &Table {
        &self.table
    }
}

impl Table {
    /// (picks, failures reported) of `service` since the table first knew it; for the
    /// metrics text.
    pub(crate) fn service_counts(&self, service: &str) -> (u64, u64) {
        let dir = self.directory.load();
        dir.get(normalize(service)).map_or((0, 0), |e| {
            (
                e.svc.picks.load(Ordering::Relaxed),
                e.svc.failures_reported.load(Ordering::Relaxed),
            )
        })
    }
}

/// Every live service table: its number (process-unique), prefix and table, for the metrics
/// text ([`crate::metrics`]).
type Enrolled = (u64, String, std::sync::Weak<Table>);
static LIVE: Mutex<Vec<Enrolled>> = Mutex::new(Vec::new());
static NEXT_TABLE: AtomicU64 = AtomicU64::new(1);

fn enroll(prefix: &str, table: &Arc<Table>) {
    let mut live = lock(&LIVE);
    live.retain(|(_, _, t)| t.strong_count() > 0);
    let id = NEXT_TABLE.fetch_add(1, Ordering::Relaxed);
    live.push((id, prefix.to_string(), Arc::downgrade(table)));
}

/// The live service tables, oldest first: (number, prefix, table).
pub(crate) fn live_tables() -> Vec<(u64, String, Arc<Table>)> {
    let mut live = lock(&LIVE);
    live.retain(|(_, _, t)| t.strong_count() > 0);
    live.iter()
        .filter_map(|(id, p, t)| Some((*id, p.clone(), t.upgrade()?)))
        .collect()
}

impl Drop for ServiceTable {
    /// Stops the watch, then the changed-callback: on return neither runs (unless called from
    /// inside one of them).
    fn drop(&mut self) {
        drop(self.discovery.take());
        self.table.set_changed(None);
        if let Some(s) = self.snapshot.take() {
            s.flush(); // the last change is written now
        }
    }
}

#[cfg(test)]
mod tests;
