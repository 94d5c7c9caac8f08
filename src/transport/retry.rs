//! Retrying a request across the members of a connection until it succeeds, fails for good,
//! or its time limit passes; what each endpoint did, for the error given up with.

use super::conn::{short, Shared};
use crate::backoff::Backoff;
use crate::error::{Error, FailureKind, Result};
use crate::human::human;
use etcd_client::Client;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What each endpoint last answered during one [`retry`]: the text of its give-up error.
struct Tried<'a> {
    endpoints: &'a [String],
    last: Vec<Option<Error>>,
    /// Per endpoint, how many times in a row an https connection was dropped (see `definite`).
    drops: Vec<u32>,
}

impl<'a> Tried<'a> {
    fn new(endpoints: &'a [String]) -> Self {
        Tried {
            endpoints,
            last: vec![None; endpoints.len()],
            drops: vec![0; endpoints.len()],
        }
    }

    fn record(&mut self, idx: usize, err: &Error) {
        let https = self
            .endpoints
            .get(idx)
            .is_some_and(|e| e.starts_with("https://"));
        if let (Some(slot), Some(drops)) = (self.last.get_mut(idx), self.drops.get_mut(idx)) {
            *slot = Some(err.clone());
            *drops = if https && err.is_dropped() {
                *drops + 1
            } else {
                0
            };
        }
    }

    /// The endpoint's last answer is definite: it refused the connection, or (https) it
    /// dropped the connection twice in a row. With TLS 1.3 a server that rejects our client
    /// certificate does so after the handshake, and depending on timing the client reads
    /// the alert (a TLS error, never retried) or only sees the connection dropped.
    fn definite(&self, idx: usize) -> bool {
        let refused =
            matches!(&self.last[idx], Some(e) if FailureKind::of(e) == FailureKind::Refused);
        refused || self.drops[idx] >= 2
    }

    /// Every endpoint gave a definite answer the last time it was tried: fail at once.
    fn all_definite(&self) -> bool {
        (0..self.last.len()).all(|i| self.definite(i))
    }

    fn untried(&self) -> bool {
        self.last.iter().any(Option::is_none)
    }

    /// "127.0.0.1:1 refused the connection; 10.0.0.9:2379 timed out"
    fn details(&self) -> String {
        let mut parts = Vec::with_capacity(self.endpoints.len());
        for (ep, last) in self.endpoints.iter().zip(&self.last) {
            let ep = short(ep);
            parts.push(match last {
                None => format!("{ep} not tried"),
                Some(e) => match FailureKind::of(e) {
                    FailureKind::Refused => format!("{ep} refused the connection"),
                    FailureKind::TimedOut => format!("{ep} timed out"),
                    _ => format!("{ep}: {e}"),
                },
            });
        }
        parts.join("; ")
    }

    /// The error a [`retry`] gives up with: the variant of the last failure (so a request
    /// that timed out is still `Timeout`), the message naming every endpoint and what it did.
    fn give_up(&self, what: &str, elapsed: Duration, last: Error) -> Error {
        let details = self.details();
        if self.all_definite() {
            return Error::Unavailable(format!(
                "{what}: no etcd endpoint answered (after {}): {details}",
                human(elapsed)
            ));
        }
        let msg = format!(
            "{what}: no etcd endpoint answered within {}: {details}",
            human(elapsed)
        );
        match last {
            Error::Timeout(..) => Error::Timeout(elapsed, msg),
            Error::Unavailable(_) => Error::Unavailable(msg),
            other => other,
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or `limit` has passed, retrying errors
/// that may go away (no connection yet, a member just died: the channel picks another one;
/// a stale auth token: authenticate again) with backoff. Only for idempotent requests.
///
/// A refused connection is a definite answer, a timeout is not: when every endpoint refused
/// the connection the last time it was tried (with one endpoint: as soon as it refuses), the
/// call fails at once with `Unavailable` instead of waiting out `limit` (an https endpoint
/// that dropped the connection twice in a row counts as refusing: see `Tried::definite`); a refusing endpoint
/// is followed by the next untried one without a backoff pause. Timeouts, "no leader" and
/// dropped connections are retried until `limit`. The error given up with names each
/// endpoint and what it last did, and the time really spent.
///
/// Each attempt gets a third of `limit` (at least a second): a request forwarded to a leader
/// that just died hangs on the follower until etcd's own timeout (7 s), while the same request
/// sent again reaches the new leader as soon as it is elected.
pub(crate) async fn retry<T, F, Fut>(
    conn: &Shared,
    limit: Duration,
    what: &str,
    attempt: F,
) -> Result<T>
where
    F: FnMut(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    retry_on(conn, limit, what, false, attempt).await
}

/// As [`retry`], on connections whose requests do not require a leader: for what a member
/// answers from its own state even without a leader (the member list).
pub(crate) async fn retry_leaderless<T, F, Fut>(
    conn: &Shared,
    limit: Duration,
    what: &str,
    attempt: F,
) -> Result<T>
where
    F: FnMut(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    retry_on(conn, limit, what, true, attempt).await
}

async fn retry_on<T, F, Fut>(
    conn: &Shared,
    limit: Duration,
    what: &str,
    leaderless: bool,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let start = tokio::time::Instant::now();
    let deadline = start + limit;
    let per_attempt = (limit / 3).max(Duration::from_secs(1));
    let mut backoff = Backoff::new();
    let mut tried = Tried::new(&conn.endpoints);
    loop {
        let attempt_start = tokio::time::Instant::now();
        let used = AtomicUsize::new(0);
        // With one endpoint, connecting (TLS, authenticating) is bounded by the connect timeout
        // and the limit only: cutting it at the per-attempt share would fail a slow first
        // connection that the connect timeout allows, with no other member to try instead.
        // With several, a member too slow to connect is left for the next after its share.
        let connect_until = if conn.endpoints.len() == 1 {
            deadline
        } else {
            deadline.min(attempt_start + per_attempt)
        };
        let outcome = tokio::time::timeout_at(deadline, async {
            // Recorded before `pick`, so that a member too slow even to connect is left too.
            used.store(conn.current.load(Ordering::Acquire), Ordering::Relaxed);
            let pick = async {
                if leaderless {
                    conn.pick_leaderless().await
                } else {
                    conn.pick().await
                }
            };
            let member = match tokio::time::timeout_at(connect_until, pick).await {
                Ok(picked) => picked.map_err(|e| (e, None))?,
                Err(_) => return Ok(None),
            };
            used.store(member.idx, Ordering::Relaxed);
            let until = deadline.min(tokio::time::Instant::now() + per_attempt);
            match tokio::time::timeout_at(until, attempt(member.client.clone())).await {
                Ok(Ok(v)) => Ok(Some(v)),
                Ok(Err(e)) => Err((e, Some(member))),
                Err(_) => Ok(None),
            }
        })
        .await;
        // `Err(())`: no answer in time, while connecting or from the request.
        let outcome = match outcome {
            Ok(Ok(Some(v))) => Ok(Ok(v)),
            Ok(Err(failed)) => Ok(Err(failed)),
            Ok(Ok(None)) | Err(_) => Err(()),
        };
        let idx = used.load(Ordering::Relaxed);
        let err = match outcome {
            Ok(Ok(v)) => {
                conn.answered();
                return Ok(v);
            }
            Ok(Err((e, member))) => {
                let again = match &member {
                    Some(m) => m.failed(&e).await,
                    // `pick` already left the member and noted the failure.
                    None => e.is_transient(),
                };
                if !again {
                    return Err(e);
                }
                e
            }
            Err(()) => {
                // No answer in time: leave this member for the next one.
                conn.advance(idx);
                let e = Error::Timeout(attempt_start.elapsed(), what.to_owned());
                conn.note_failure(&e);
                e
            }
        };
        tried.record(idx, &err);
        let now = tokio::time::Instant::now();
        if tried.all_definite() {
            return Err(tried.give_up(what, now - start, err));
        }
        let refused = FailureKind::of(&err) == FailureKind::Refused;
        let delay = if refused && tried.untried() {
            Duration::ZERO
        } else {
            backoff.next_delay()
        };
        if now + delay >= deadline {
            return Err(tried.give_up(what, now - start, err));
        }
        log::debug!(target: "etcd_sd", "{what}: {err}; retrying");
        crate::stats::RETRIED.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(delay).await;
    }
}

/// Runs `attempt` once, for requests that must not run twice (a transaction that writes, a
/// lock, a campaign): connecting to a member is retried across members as [`retry`] does,
/// within `limit`; the request itself is sent once and given what is left of `limit`. A
/// member that did not answer is left for the next request.
pub(crate) async fn once<T, F, Fut>(
    conn: &Shared,
    limit: Duration,
    what: &str,
    attempt: F,
) -> Result<T>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    let client = retry(conn, limit, what, |c| async move { Ok(c) }).await?;
    let idx = conn.current.load(Ordering::Acquire);
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    match tokio::time::timeout(left, attempt(client)).await {
        Ok(Ok(v)) => {
            conn.answered();
            Ok(v)
        }
        Ok(Err(e)) => {
            if e.is_transient() {
                conn.advance(idx);
                conn.note_failure(&e);
            }
            Err(e)
        }
        Err(_) => {
            let e = Error::Timeout(limit, format!("{what}: no answer in time"));
            conn.advance(idx);
            conn.note_failure(&e);
            Err(e)
        }
    }
}
