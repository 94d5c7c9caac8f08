//! Which instances a pick may choose from: metadata selectors with failover, the caller's
//! zone, and draining instances.
//!
//! The rule, for one pick of one service (each step on the current snapshot):
//! 1. **Match.** Without a selector every instance matches. With one (`version=v2,canary=false`:
//!    one or more `key=value`, all of which must equal the instance's metadata), the
//!    instances whose metadata has every pair match.
//! 2. **Drain.** Instances whose metadata says `draining=true` (or `draining=1`) are never
//!    candidates for a new call. If no matching instance is left, the selector's failover
//!    decides: [`Failover::None`] gives no instance; [`Failover::All`] takes every instance;
//!    [`Failover::MissingKey`] takes the instances that have none of the selector's keys (the
//!    "unlabelled" pool). Draining instances stay excluded in every case.
//! 3. **Zone.** When the caller has a zone ([`Locality::zone`]), the candidates whose
//!    metadata `zone` equals it are preferred. The pick spills over to the candidates of every
//!    zone when the local zone has no candidate, when none of its instances is healthy, or
//!    when its healthy share falls under [`Locality::min_healthy_percent`] (default 50 %):
//!    healthy = neither ejected nor draining, share = healthy / every instance of the local
//!    zone in the matched set (draining and ejected included).
//! 4. The table's policy picks among what is left, skipping ejected instances, with slow
//!    start (see [`super::slow_start`]).
//!
//! Steps 1 to 3 are computed once per snapshot and selector into a [`View`] (index lists),
//! kept in a small cache of the snapshot ([`VIEW_SLOTS`] selectors, each a `OnceLock`), so
//! a pick with a selector costs a few compares more than a plain pick, takes no lock and
//! allocates nothing once the view exists. Each [`Selector`] has a process-unique id that
//! keys the cache. A snapshot that sees more than [`VIEW_SLOTS`] distinct selectors builds
//! the view of the extra ones at each pick (correct, but it allocates).

use super::pick;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// What the selection reads of an instance (the table's `Instance` implements it).
pub trait Candidate {
    /// The metadata value of `key`.
    fn meta(&self, key: &str) -> Option<&str>;
    /// Never a candidate for a new call.
    fn is_draining(&self) -> bool;
    fn weight(&self) -> u32;
    fn address(&self) -> &str;
}

/// Selector views cached per snapshot.
pub const VIEW_SLOTS: usize = 16;

/// What a selector's pick does when no (non-draining) instance matches.
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Failover {
    /// No instance (the pick fails with "no instance").
    #[default]
    None = 0,
    /// Pick among all instances, as without a selector.
    All = 1,
    /// Pick among the instances that have none of the selector's keys.
    MissingKey = 2,
}

impl Failover {
    pub fn from_u32(v: u32) -> Option<Failover> {
        Some(match v {
            0 => Failover::None,
            1 => Failover::All,
            2 => Failover::MissingKey,
            _ => return None,
        })
    }
}

/// A compiled metadata selector: `key=value` pairs that must all match, and a failover.
/// Immutable; share it between threads freely.
#[derive(Debug)]
pub struct Selector {
    id: u64,
    /// Sorted by key, each key once.
    pairs: Box<[(Box<str>, Box<str>)]>,
    failover: Failover,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Selector {
    /// Parses `key=value[,key=value...]` (whitespace around keys and values is ignored; a
    /// value may be empty and may contain `=`). Errors say what is wrong: an empty selector
    /// or term, a term without `=`, an empty key, a key given twice.
    pub fn parse(text: &str, failover: Failover) -> Result<Selector, String> {
        if text.trim().is_empty() {
            return Err("selector is empty (expected key=value[,key=value...])".into());
        }
        let mut pairs: Vec<(Box<str>, Box<str>)> = Vec::new();
        for (n, term) in text.split(',').enumerate() {
            let term = term.trim();
            if term.is_empty() {
                return Err(format!("selector {text:?}: term {} is empty", n + 1));
            }
            let Some((k, v)) = term.split_once('=') else {
                return Err(format!("selector {text:?}: {term:?} is not key=value"));
            };
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() {
                return Err(format!("selector {text:?}: {term:?} has an empty key"));
            }
            if pairs.iter().any(|(pk, _)| &**pk == k) {
                return Err(format!("selector {text:?}: key {k:?} is given twice"));
            }
            pairs.push((k.into(), v.into()));
        }
        pairs.sort();
        Ok(Selector {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            pairs: pairs.into_boxed_slice(),
            failover,
        })
    }

    /// The process-unique id (never 0).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn failover(&self) -> Failover {
        self.failover
    }

    /// The pairs, sorted by key.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Whether every pair is in `inst`'s metadata.
    pub fn matches(&self, inst: &(impl Candidate + ?Sized)) -> bool {
        self.pairs.iter().all(|(k, v)| inst.meta(k) == Some(&**v))
    }

    /// Whether `inst` has none of the selector's keys.
    pub fn lacks_keys(&self, inst: &(impl Candidate + ?Sized)) -> bool {
        self.pairs.iter().all(|(k, _)| inst.meta(k).is_none())
    }
}

/// The caller's zone and when to leave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locality {
    /// The caller's zone, compared with each instance's metadata `zone`. `None` (or empty):
    /// no zone preference. A [`super::ServiceTable`] made with `None` takes `ETCD_SD_ZONE`.
    pub zone: Option<String>,
    /// Spill over to every zone when fewer than this percent (0-100) of the local zone's
    /// instances are healthy. Default 50 (Envoy's panic threshold).
    pub min_healthy_percent: u32,
}

impl Default for Locality {
    fn default() -> Self {
        Locality {
            zone: None,
            min_healthy_percent: DEFAULT_MIN_HEALTHY_PERCENT,
        }
    }
}

/// The default spill-over threshold, in percent.
pub const DEFAULT_MIN_HEALTHY_PERCENT: u32 = 50;

/// A list of candidate instances (indices into the snapshot) with its pick state.
#[derive(Debug, Default)]
pub(crate) struct Subset {
    pub(crate) idx: Box<[u32]>,
    /// Round-robin / weighted position within this subset.
    pub(crate) counter: AtomicU64,
    /// Smooth weighted sequence over the subset, as instance indices (built on first use).
    sequence: OnceLock<Box<[u32]>>,
    /// Hash ring over the subset, instance indices as values (built on first use).
    ring: OnceLock<Box<[(u64, u32)]>>,
}

impl Subset {
    fn new(idx: Vec<u32>, start: u64) -> Subset {
        Subset {
            idx: idx.into_boxed_slice(),
            counter: AtomicU64::new(start),
            ..Subset::default()
        }
    }

    pub(crate) fn sequence<C: Candidate>(&self, instances: &[Arc<C>]) -> &[u32] {
        self.sequence.get_or_init(|| {
            let w: Vec<u32> = self
                .idx
                .iter()
                .map(|i| instances[*i as usize].weight())
                .collect();
            let mut seq = pick::build_sequence(&w);
            for s in seq.iter_mut() {
                *s = self.idx[*s as usize];
            }
            seq
        })
    }

    pub(crate) fn ring<C: Candidate>(&self, instances: &[Arc<C>]) -> &[(u64, u32)] {
        self.ring.get_or_init(|| {
            let mut ring =
                pick::build_ring(self.idx.iter().map(|i| instances[*i as usize].address()));
            for p in ring.iter_mut() {
                p.1 = self.idx[p.1 as usize];
            }
            ring
        })
    }
}

/// Steps 1-3 of the rule for one snapshot and one selector (or none).
#[derive(Debug)]
pub(crate) struct View {
    /// The selector's id; 0 for "no selector".
    pub(crate) id: u64,
    /// Candidates of every zone.
    pub(crate) all: Subset,
    /// Candidates of the caller's zone (empty without a zone).
    pub(crate) local: Subset,
    /// Instances of the caller's zone in the matched set, draining included.
    pub(crate) local_total: u32,
}

impl View {
    /// Builds the view of `sel` over `instances` for a caller in `zone`. `start` seeds the
    /// round-robin counters (so that a new snapshot does not restart every view at 0).
    pub(crate) fn build<C: Candidate>(
        instances: &[Arc<C>],
        sel: Option<&Selector>,
        zone: Option<&str>,
        start: u64,
    ) -> View {
        let n = instances.len() as u32;
        let all_idx = || 0..n;
        let mut group: Vec<u32> = match sel {
            None => all_idx().collect(),
            Some(s) => all_idx()
                .filter(|i| s.matches(&*instances[*i as usize]))
                .collect(),
        };
        if let Some(s) = sel {
            if !group.iter().any(|i| !instances[*i as usize].is_draining()) {
                group = match s.failover {
                    Failover::None => Vec::new(),
                    Failover::All => all_idx().collect(),
                    Failover::MissingKey => all_idx()
                        .filter(|i| s.lacks_keys(&*instances[*i as usize]))
                        .collect(),
                };
            }
        }
        let in_zone = |i: &u32| zone.is_some() && instances[*i as usize].meta("zone") == zone;
        let candidates: Vec<u32> = group
            .iter()
            .copied()
            .filter(|i| !instances[*i as usize].is_draining())
            .collect();
        let local: Vec<u32> = candidates.iter().copied().filter(in_zone).collect();
        let local_total = group.iter().filter(|i| in_zone(i)).count() as u32;
        View {
            id: sel.map_or(0, |s| s.id),
            all: Subset::new(candidates, start),
            local: Subset::new(local, start),
            local_total,
        }
    }

    /// Step 3: the local candidates, or every zone's. `healthy_local` counts the local
    /// candidates not ejected (with no ejection in force: all of them).
    pub(crate) fn zone_subset(
        &self,
        min_healthy_percent: u32,
        healthy_local: impl FnOnce(&[u32]) -> usize,
    ) -> &Subset {
        if self.local.idx.is_empty() {
            return &self.all;
        }
        let healthy = healthy_local(&self.local.idx) as u64;
        if healthy == 0
            || healthy * 100 < u64::from(min_healthy_percent) * u64::from(self.local_total)
        {
            &self.all
        } else {
            &self.local
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_selectors() {
        let s = Selector::parse(" version = v2 ,canary=false", Failover::All).unwrap();
        let pairs: Vec<(&str, &str)> = s.pairs().collect();
        assert_eq!(pairs, [("canary", "false"), ("version", "v2")]);
        assert_eq!(s.failover(), Failover::All);
        let t = Selector::parse("x=a=b,empty=", Failover::None).unwrap();
        assert_eq!(t.pairs().collect::<Vec<_>>(), [("empty", ""), ("x", "a=b")]);
        assert_ne!(s.id(), t.id());
        let err = |text: &str| Selector::parse(text, Failover::None).unwrap_err();
        assert!(err("").contains("empty"));
        assert!(err("  ").contains("empty"));
        assert!(err("a=1,,b=2").contains("term 2 is empty"));
        assert!(err("a=1,").contains("term 2 is empty"));
        assert!(err("version").contains("not key=value"));
        assert!(err("=v2").contains("empty key"));
        assert!(err("a=1,a=2").contains("twice"));
        assert_eq!(Failover::from_u32(2), Some(Failover::MissingKey));
        assert_eq!(Failover::from_u32(3), None);
    }
}
