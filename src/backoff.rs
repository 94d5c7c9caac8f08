//! Capped, jittered exponential backoff for the reconnect loops. The cap is short (500 ms) so
//! that registrations and watches are back within a second of etcd answering again.

use std::time::Duration;

pub(crate) struct Backoff {
    next: Duration,
}

const MIN: Duration = Duration::from_millis(50);
const MAX: Duration = Duration::from_millis(500);

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff { next: MIN }
    }

    /// The next delay: doubles up to the cap, each draw jittered to 50–100 % of it so that many
    /// clients do not retry in lockstep.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(MAX);
        d.mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    pub(crate) fn reset(&mut self) {
        self.next = MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new();
        let delays: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        assert!(delays.iter().all(|d| *d <= MAX && *d >= MIN / 2));
        assert!(delays[9] >= MAX / 2);
        b.reset();
        assert!(b.next_delay() <= MIN);
    }
}
