//! Outlier ejection, as Envoy's: an instance that fails `consecutive_failures` calls in a row
//! is skipped by picks for a back-off that doubles on each repeat ejection (capped), then
//! tried again; never more than `max_ejected_percent` of a service's instances are ejected.
//!
//! State lives in one [`Health`] per instance, shared by every snapshot that holds the
//! instance, and is made of atomics: reporting a result takes no lock except at the moment an
//! ejection is decided (to keep the cap exact), and picking takes none.
//!
//! Choices where the issue is silent (Envoy's defaults where it has one):
//! - Only consecutive failures count: one success resets the count. Failures reported while
//!   the instance is ejected (calls that were already in flight) are ignored.
//! - On re-admission the count starts from zero: another `consecutive_failures` failures are
//!   needed to eject it again, this time for twice as long.
//! - The doubling decays: each `base` period spent admitted since the last ejection ended
//!   takes one step off, so a host that failed once last week starts again at `base`.
//! - Past the cap (ejecting one more would exceed it) the instance is not ejected; if removals
//!   leave more than the cap ejected, picks ignore ejection for that service.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Ejection settings of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ejection {
    /// Consecutive failures that eject an instance (0 disables ejection).
    pub consecutive_failures: u32,
    /// First ejection time; each repeat ejection doubles it.
    pub base: Duration,
    /// Cap on the ejection time.
    pub max: Duration,
    /// At most this share (percent) of a service's instances is ejected at once.
    pub max_ejected_percent: u32,
}

impl Default for Ejection {
    /// 5 failures, 30 s doubling up to 300 s, at most 50 % ejected.
    fn default() -> Self {
        Ejection {
            consecutive_failures: 5,
            base: Duration::from_secs(30),
            max: Duration::from_secs(300),
            max_ejected_percent: 50,
        }
    }
}

impl Ejection {
    /// Whether `ejected` instances out of `total` is within the cap.
    pub(crate) fn within_cap(&self, ejected: usize, total: usize) -> bool {
        ejected as u64 * 100 <= total as u64 * u64::from(self.max_ejected_percent)
    }

    /// The ejection time after `level` earlier (undecayed) ejections.
    fn duration(&self, level: u32) -> Duration {
        let factor = 1u32.checked_shl(level.min(31)).unwrap_or(u32::MAX);
        self.base
            .saturating_mul(factor)
            .min(self.max.max(self.base))
    }
}

/// One instance's call record. Times are nanoseconds on the table's clock (never 0).
#[derive(Debug, Default)]
pub struct Health {
    failures: AtomicU32,
    /// End of the current or last ejection; 0 = never ejected.
    ejected_until: AtomicU64,
    /// Ejections that count towards the doubling (before decay).
    level: AtomicU32,
}

/// What a reported failure did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing changed state (a success, or a failure below the threshold).
    Counted,
    /// The instance is now ejected for this long.
    Ejected(Duration),
    /// The threshold was reached but ejecting would exceed the cap.
    Capped,
}

impl Health {
    pub fn is_ejected(&self, now: u64) -> bool {
        self.ejected_until.load(Ordering::Acquire) > now
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Records a success.
    pub fn succeeded(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// Records a failure; true when the threshold is reached and the caller should decide an
    /// ejection (with [`Health::eject`], under the service's ejection lock).
    pub fn failed(&self, cfg: &Ejection, now: u64) -> bool {
        if cfg.consecutive_failures == 0 || self.is_ejected(now) {
            return false;
        }
        let n = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        n >= cfg.consecutive_failures
    }

    /// Ejects the instance from `now`; returns for how long. Call with the service's
    /// ejection lock held, after checking the cap.
    pub fn eject(&self, cfg: &Ejection, now: u64) -> Duration {
        let last_end = self.ejected_until.load(Ordering::Acquire);
        let mut level = self.level.load(Ordering::Relaxed);
        if last_end != 0 && now > last_end {
            let healthy = now - last_end;
            let base = cfg.base.as_nanos().max(1) as u64;
            let decay = (healthy / base).min(u64::from(u32::MAX)) as u32;
            level = level.saturating_sub(decay);
        }
        let d = cfg.duration(level);
        self.level.store(level.saturating_add(1), Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
        let until = now.saturating_add(d.as_nanos().min(u64::MAX as u128) as u64);
        self.ejected_until.store(until, Ordering::Release);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn cfg() -> Ejection {
        Ejection::default()
    }

    fn fail_n(h: &Health, n: u32, now: u64) -> bool {
        (0..n).map(|_| h.failed(&cfg(), now)).last().unwrap()
    }

    #[test]
    fn five_consecutive_failures_eject_and_a_success_resets() {
        let h = Health::default();
        assert!(!fail_n(&h, 4, S));
        h.succeeded();
        assert!(!fail_n(&h, 4, S));
        assert!(h.failed(&cfg(), S));
        assert_eq!(h.eject(&cfg(), S), Duration::from_secs(30));
        assert!(h.is_ejected(S + 29 * S));
        assert!(!h.is_ejected(S + 30 * S));
        // Failures while ejected do not count.
        assert!(!fail_n(&h, 10, 2 * S));
        assert_eq!(h.failures(), 0);
    }

    #[test]
    fn back_off_doubles_then_caps_then_decays() {
        let h = Health::default();
        let mut now = S;
        let mut seen = vec![];
        for _ in 0..6 {
            assert!(fail_n(&h, 5, now));
            let d = h.eject(&cfg(), now);
            seen.push(d.as_secs());
            now += d.as_nanos() as u64; // re-admitted exactly when it ends
        }
        assert_eq!(seen, [30, 60, 120, 240, 300, 300]);
        // Healthy for 4 base periods after the last ejection: 4 steps off the level (6 -> 2).
        now += 4 * 30 * S;
        assert!(fail_n(&h, 5, now));
        assert_eq!(h.eject(&cfg(), now), Duration::from_secs(120));
    }

    #[test]
    fn cap() {
        let c = cfg();
        assert!(!c.within_cap(1, 1));
        assert!(c.within_cap(1, 2));
        assert!(!c.within_cap(2, 3));
        assert!(c.within_cap(5, 10));
        assert!(!c.within_cap(6, 10));
    }
}
