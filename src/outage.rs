//! One log line per outage instead of one per retry.
//!
//! A loop that retries against etcd every few hundred milliseconds would log every failure; an
//! outage of 13 s with three objects made 85 WARN lines and nothing when etcd came back.
//! [`OutageLog`] keeps the state of one such loop (or one connection) and decides what is worth
//! a line:
//!
//! - the first failure of an outage: one line at the level chosen (WARN for an object, INFO for
//!   the connection layer underneath), e.g.
//!   `registry 7f3a: etcd unavailable: ...: connection refused; retrying`;
//! - further failures of the same kind (refused, timed out, no leader, TLS, ...): counted, not
//!   logged (DEBUG only);
//! - a failure of another kind: one line at the same level, with the count so far
//!   (`registry 7f3a: now timed out after ...: ... (3 failed attempts so far)`);
//! - the first success after an outage: one INFO line with the outage's duration and the number
//!   of failures not logged (`registry 7f3a: etcd answers again after 13.2 s (41 failed
//!   attempts not logged)`);
//! - successes outside an outage: nothing.
//!
//! Usage in a retry loop (the type is plain data: keep it where the loop keeps its state, or
//! behind a `Mutex` when several tasks share it):
//!
//! ```ignore
//! let mut outage = OutageLog::new(format!("discovery {prefix}"), log::Level::Warn);
//! loop {
//!     match watch_once().await {
//!         Ok(()) => outage.recovered(),
//!         Err(e) => outage.failed(&e),
//!     }
//!     sleep(backoff.next_delay()).await;
//! }
//! ```

use crate::error::{Error, FailureKind};
use crate::human::human;
use log::Level;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The log state of one retrying loop or connection; see the module documentation.
#[derive(Debug)]
pub(crate) struct OutageLog {
    subject: String,
    level: Level,
    current: Option<Outage>,
}

#[derive(Debug)]
struct Outage {
    since: Instant,
    kind: FailureKind,
    /// Failures since the outage began, the logged ones included.
    failures: u64,
    /// Failures that were not logged.
    suppressed: u64,
}

impl OutageLog {
    /// `subject` starts every line ("registry 7f3a", "etcd connection to 10.0.0.1:2379");
    /// `level` is the level of the lines that report failures (recovery is always INFO).
    pub(crate) fn new(subject: impl Into<String>, level: Level) -> Self {
        OutageLog {
            subject: subject.into(),
            level,
            current: None,
        }
    }

    /// True between a failure and the next success.
    pub(crate) fn in_outage(&self) -> bool {
        self.current.is_some()
    }

    /// Records a failed attempt; logs it if it begins an outage or changes its kind.
    pub(crate) fn failed(&mut self, err: &Error) {
        let (level, line) = self.failed_at(err, Instant::now());
        log::log!(target: "etcd_sd", level, "{line}");
    }

    /// [`failed`](Self::failed) for a failure someone else already logged at its level (a
    /// shared watch stream that broke under many watches: the stream says it once): the line
    /// goes to DEBUG; the outage is counted and its end logged as usual.
    pub(crate) fn failed_quietly(&mut self, err: &Error) {
        let (_, line) = self.failed_at(err, Instant::now());
        log::debug!(target: "etcd_sd", "{line}");
    }

    /// Records a successful attempt; logs the end of the outage if there was one.
    pub(crate) fn recovered(&mut self) {
        if let Some(line) = self.recovered_at(Instant::now()) {
            log::info!(target: "etcd_sd", "{line}");
        }
    }

    /// [`failed`](Self::failed) without the logging: the level and the line to log.
    fn failed_at(&mut self, err: &Error, now: Instant) -> (Level, String) {
        let kind = FailureKind::of(err);
        match &mut self.current {
            None => {
                crate::stats::OUTAGES.fetch_add(1, Ordering::Relaxed);
                crate::stats::OUTAGES_ONGOING.fetch_add(1, Ordering::Relaxed);
                self.current = Some(Outage {
                    since: now,
                    kind,
                    failures: 1,
                    suppressed: 0,
                });
                (self.level, format!("{}: {err}; retrying", self.subject))
            }
            Some(o) if o.kind == kind => {
                o.failures += 1;
                o.suppressed += 1;
                (
                    Level::Debug,
                    format!("{}: {err}; retrying (failure {})", self.subject, o.failures),
                )
            }
            Some(o) => {
                o.kind = kind;
                o.failures += 1;
                let line = format!(
                    "{}: now {err}; retrying ({} failed attempts in {} so far)",
                    self.subject,
                    o.failures,
                    human(now.saturating_duration_since(o.since))
                );
                (self.level, line)
            }
        }
    }

    /// [`recovered`](Self::recovered) without the logging: the INFO line, if any.
    fn recovered_at(&mut self, now: Instant) -> Option<String> {
        let o = self.current.take()?;
        crate::stats::OUTAGES_ONGOING.fetch_sub(1, Ordering::Relaxed);
        let not_logged = match o.suppressed {
            0 => String::new(),
            1 => " (1 failed attempt not logged)".to_owned(),
            n => format!(" ({n} failed attempts not logged)"),
        };
        Some(format!(
            "{}: etcd answers again after {}{not_logged}",
            self.subject,
            human(now.saturating_duration_since(o.since))
        ))
    }
}

impl Drop for OutageLog {
    fn drop(&mut self) {
        if self.current.is_some() {
            crate::stats::OUTAGES_ONGOING.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::error::tests::refused;

    #[test]
    fn one_line_per_outage_and_per_change_of_kind() {
        let t0 = Instant::now();
        let mut log = OutageLog::new("registry r1", Level::Warn);
        assert!(!log.in_outage());
        assert_eq!(log.recovered_at(t0), None, "no outage, nothing to say");

        let (level, line) = log.failed_at(&refused(), t0);
        assert_eq!(level, Level::Warn);
        assert!(
            line.starts_with("registry r1: etcd unavailable: "),
            "{line}"
        );
        assert!(log.in_outage());

        for i in 1..=40 {
            let (level, _) = log.failed_at(&refused(), t0 + Duration::from_millis(300 * i));
            assert_eq!(level, Level::Debug, "same kind: not logged");
        }

        let timeout = Error::Timeout(Duration::from_secs(1), "keep-alive".into());
        let (level, line) = log.failed_at(&timeout, t0 + Duration::from_secs(13));
        assert_eq!(level, Level::Warn, "a new kind of failure is news");
        assert!(line.contains("now timed out"), "{line}");
        assert!(line.contains("42 failed attempts in 13.0 s"), "{line}");

        let line = log
            .recovered_at(t0 + Duration::from_millis(13_240))
            .unwrap();
        assert_eq!(
            line,
            "registry r1: etcd answers again after 13.2 s (40 failed attempts not logged)"
        );
        assert!(!log.in_outage());
        assert_eq!(log.recovered_at(t0 + Duration::from_secs(14)), None);

        // The next outage starts afresh.
        let (level, _) = log.failed_at(&timeout, t0 + Duration::from_secs(20));
        assert_eq!(level, Level::Warn);
        let line = log
            .recovered_at(t0 + Duration::from_millis(20_100))
            .unwrap();
        assert!(line.ends_with("after 100 ms"), "{line}");
    }

    #[test]
    fn the_failure_level_is_the_callers() {
        let mut log = OutageLog::new("etcd connection", Level::Info);
        assert_eq!(log.failed_at(&refused(), Instant::now()).0, Level::Info);
    }
}
