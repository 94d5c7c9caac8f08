//! Slow start, in the shape of Envoy's `slow_start_window`: an instance the table sees
//! after its first listing gets a share that ramps linearly from a floor to full over a
//! window, measured from the moment the table saw it:
//! `factor = max(floor, time since seen / window)`, full once the window has passed.
//!
//! How: the policy picks a candidate as it always does; a candidate within its window is
//! accepted for a `factor` share of the times it comes up, else the pick moves on to the next
//! candidate in the policy's order (next index, next weighted slot). The share is counted,
//! not drawn at random: each instance keeps a credit that each consideration raises by
//! `factor`, and it is accepted when the credit reaches one whole (which is then taken off).
//! So over k considerations it is accepted exactly ⌊k·factor⌋ times, give or take one, and
//! tests can assert exact distributions. Its effective weight is `weight × factor`.
//!
//! Rules and defaults (where the issue leaves the choice):
//! - Instances present at the table's first listing are never ramped (a client that starts
//!   must not throttle a whole fleet); every instance added later is, including one that
//!   re-registers after a restart (a DELETE then a PUT) or moves to a new address. A PUT
//!   that changes only the weight or metadata keeps the instance's start time.
//! - On by default (window 30 s, floor 10 %) for weighted round robin, where weights say how
//!   much load an instance takes; off by default for round robin, random and consistent
//!   hashing, where the policy promises an even (or key-stable) spread and a table without
//!   weights has no notion of an instance's share to ramp. Any policy can turn it on.
//! - Picks by hash key are never ramped: moving a key away from its instance would break
//!   the affinity the key asks for.
//! - Only the pick consults the clock, and only while some instance of the snapshot is
//!   within its window; once every window has passed, the snapshot remembers it and picks
//!   no longer read the clock for it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::pick::Policy;

/// Slow-start settings of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowStart {
    /// Ramp duration; zero turns slow start off.
    pub window: Duration,
    /// Share a new instance starts at, in percent (0-100).
    pub floor_percent: u32,
}

/// Fixed-point one (parts per million).
pub(crate) const ONE: u32 = 1_000_000;

/// The default window where slow start is on.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);
/// The default floor, in percent.
pub const DEFAULT_FLOOR_PERCENT: u32 = 10;

impl SlowStart {
    /// Off.
    pub const OFF: SlowStart = SlowStart {
        window: Duration::ZERO,
        floor_percent: DEFAULT_FLOOR_PERCENT,
    };

    /// The default for a policy: 30 s from 10 % for weighted round robin, off otherwise.
    pub fn default_for(policy: Policy) -> SlowStart {
        match policy {
            Policy::WeightedRoundRobin => SlowStart {
                window: DEFAULT_WINDOW,
                floor_percent: DEFAULT_FLOOR_PERCENT,
            },
            _ => SlowStart::OFF,
        }
    }

    pub(crate) fn window_ns(&self) -> u64 {
        self.window.as_nanos().min(u128::from(u64::MAX)) as u64
    }

    pub(crate) fn floor_ppm(&self) -> u32 {
        self.floor_percent.min(100) * (ONE / 100)
    }
}

/// The share (ppm) of an instance seen at `added` (0: at the first listing) at `now`.
pub(crate) fn factor(added: u64, now: u64, window_ns: u64, floor_ppm: u32) -> u32 {
    if added == 0 || window_ns == 0 {
        return ONE;
    }
    let elapsed = now.saturating_sub(added);
    if elapsed >= window_ns {
        return ONE;
    }
    let linear = (u128::from(elapsed) * u128::from(ONE) / u128::from(window_ns)) as u32;
    linear.max(floor_ppm).min(ONE)
}

/// One consideration of a candidate with share `f` (ppm): true for a `f` share of calls.
pub(crate) fn accept(credit: &AtomicU32, f: u32) -> bool {
    if f >= ONE {
        return true;
    }
    let prev = credit
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
            let n = c.saturating_add(f);
            Some(if n >= ONE { n - ONE } else { n })
        })
        .unwrap_or(0);
    prev.saturating_add(f) >= ONE
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn linear_ramp_from_the_floor() {
        let w = 10 * S;
        let floor = 100_000; // 10 %
        assert_eq!(
            factor(0, 5 * S, w, floor),
            ONE,
            "first listing: never ramped"
        );
        assert_eq!(factor(S, S, w, floor), floor);
        assert_eq!(factor(S, 2 * S, w, floor), floor); // 10 % linear = floor
        assert_eq!(factor(S, S + 5 * S, w, floor), ONE / 2);
        assert_eq!(factor(S, S + 9 * S, w, floor), 900_000);
        assert_eq!(factor(S, S + 10 * S, w, floor), ONE);
        assert_eq!(factor(S, S + 5 * S, 0, floor), ONE, "window 0: off");
        assert_eq!(
            SlowStart::default_for(Policy::RoundRobin).window,
            Duration::ZERO
        );
        assert_eq!(
            SlowStart::default_for(Policy::WeightedRoundRobin),
            SlowStart {
                window: Duration::from_secs(30),
                floor_percent: 10
            }
        );
    }

    #[test]
    fn accepts_exactly_its_share() {
        let c = AtomicU32::new(0);
        let n = (0..1000).filter(|_| accept(&c, 250_000)).count();
        assert_eq!(n, 250);
        let c = AtomicU32::new(0);
        let pattern: Vec<bool> = (0..4).map(|_| accept(&c, ONE / 2)).collect();
        assert_eq!(pattern, [false, true, false, true]);
        assert!(accept(&AtomicU32::new(0), ONE));
    }
}
