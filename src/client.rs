//! Shared etcd connections. Registries and discoveries with the same connection settings share
//! one `etcd_client::Client` (one HTTP/2 connection per endpoint): a process with a thousand
//! registries dials etcd once. The cache holds weak references, so the connection closes when
//! its last user is freed.

use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::options::{Credentials, Options};
use crate::outage::{human, FailureKind, OutageLog};
use crate::tls::TlsMaterial;
use etcd_client::{Client, ConnectOptions};
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// HTTP/2 ping interval and the wait for its answer: how fast a dead or black-holed
/// connection is noticed. etcd refuses pings more often than every 5 s (`too_many_pings`).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What makes two connections interchangeable.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    endpoints: Vec<String>,
    connect_timeout: Duration,
    tls: TlsMaterial,
    user: Option<Credentials>,
}

/// The connections shared by every object created with the same settings: one client per
/// endpoint, of which one (the current member) is used at a time. When a request through the
/// current member fails for want of an answer, the next member becomes current, so failover
/// is immediate and deterministic rather than left to a load balancer that cannot tell a
/// black-holed member from a busy one.
pub(crate) struct Shared {
    endpoints: Vec<String>,
    options: ConnectOptions,
    /// The same without credentials: used when etcd says auth is not enabled, as the Go
    /// client does, so credentials can be configured before auth is turned on.
    options_without_user: Option<ConnectOptions>,
    connect_timeout: Duration,
    members: Vec<tokio::sync::OnceCell<Client>>,
    current: AtomicUsize,
    /// The leases kept through this connection and its one keep-alive stream.
    pub(crate) leases: crate::lease::Leases,
    /// Recent listings, for watches that continue from them.
    pub(crate) listings: crate::listing::RecentListings,
    /// The connection's own log: one INFO line when requests start failing, one when etcd
    /// answers again (the objects above log their own view at WARN).
    outage: Mutex<OutageLog>,
}

/// One member's client, as picked for a request.
pub(crate) struct Member<'a> {
    shared: &'a Shared,
    idx: usize,
    pub(crate) client: Client,
}

impl Shared {
    /// The current member's client, connecting first if needed (which, with auth,
    /// authenticates). A member that cannot be reached is left for the next one.
    pub(crate) async fn pick(&self) -> Result<Member<'_>> {
        let idx = self.current.load(Ordering::Acquire);
        let connected = self.members[idx]
            .get_or_try_init(|| async {
                let endpoint = self.endpoints[idx].as_str();
                let connected = self.connect_one(endpoint, &self.options).await;
                match (&connected, &self.options_without_user) {
                    (Err(e), Some(plain)) if e.to_string().contains("authentication is not enabled") => {
                        log::warn!(target: "etcd_sd", "{endpoint}: auth is not enabled; connecting without credentials");
                        self.connect_one(endpoint, plain).await
                    }
                    _ => connected,
                }
            })
            .await;
        match connected {
            Ok(client) => Ok(Member {
                shared: self,
                idx,
                client: client.clone(),
            }),
            Err(e) => {
                if e.is_transient() {
                    self.advance(idx);
                    self.note_failure(&e);
                }
                Err(e)
            }
        }
    }

    async fn connect_one(&self, endpoint: &str, options: &ConnectOptions) -> Result<Client> {
        let connect = Client::connect([endpoint], Some(options.clone()));
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(r) => r.map_err(|e| Error::from_etcd("connect", e)),
            Err(_) => Err(Error::Timeout(self.connect_timeout, "connect".into())),
        }
    }

    /// Makes the member after `idx` current, unless another request already moved on.
    fn advance(&self, idx: usize) {
        let next = (idx + 1) % self.members.len();
        if self
            .current
            .compare_exchange(idx, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            && next != idx
        {
            // The first switch of an outage is news; the rounds that follow while every
            // member is down are not.
            let level = match self.outage.lock() {
                Ok(o) if !o.in_outage() => log::Level::Info,
                _ => log::Level::Debug,
            };
            log::log!(target: "etcd_sd", level, "switching to etcd member {}", self.endpoints[next]);
        }
    }

    /// Records a request that failed for want of an answer (see [`OutageLog`]).
    pub(crate) fn note_failure(&self, err: &Error) {
        if let Ok(mut o) = self.outage.lock() {
            o.failed(err);
        }
    }

    /// Records that etcd answered a request: ends an outage of this connection (one INFO line).
    /// Cheap when there was none (an uncontended lock).
    pub(crate) fn answered(&self) {
        if let Ok(mut o) = self.outage.lock() {
            o.recovered();
        }
    }
}

impl Shared {
    /// The endpoint requests currently go to.
    pub(crate) fn current_endpoint(&self) -> String {
        self.endpoints[self.current.load(Ordering::Acquire) % self.endpoints.len()].clone()
    }

    fn members_connected(&self) -> usize {
        self.members.iter().filter(|m| m.initialized()).count()
    }
}

/// Connections, members and kept leases of the whole process.
pub(crate) fn process_stats() -> crate::stats::ProcessStats {
    let live: Vec<Arc<Shared>> = CACHE
        .lock()
        .map(|c| c.values().filter_map(Weak::upgrade).collect())
        .unwrap_or_default();
    crate::stats::ProcessStats {
        connections: live.len() as u64,
        members_connected: live.iter().map(|s| s.members_connected() as u64).sum(),
        leases_kept: live.iter().map(|s| s.leases.keeper.len() as u64).sum(),
        requests_retried: crate::stats::RETRIED.load(Ordering::Relaxed),
    }
}

impl Member<'_> {
    /// Reports that a request through this member failed with `err`: a member that did not
    /// answer is left for the next one; a stale auth token (expired, or issued before the
    /// auth store changed) is refreshed. Returns whether retrying makes sense.
    pub(crate) async fn failed(&self, err: &Error) -> bool {
        if err.is_stale_token() {
            return match self.client.refresh_token().await {
                Ok(()) => true,
                Err(e) => {
                    log::warn!(target: "etcd_sd", "{}", Error::from_etcd("re-authenticating", e));
                    false
                }
            };
        }
        if err.is_transient() {
            self.shared.advance(self.idx);
            self.shared.note_failure(err);
            return true;
        }
        false
    }
}

static CACHE: Lazy<Mutex<HashMap<Key, Weak<Shared>>>> = Lazy::new(Mutex::default);

/// Returns the shared connections for `opts`, creating them when needed. Nothing touches the
/// network here: each member is dialled (and authenticated) on its first request.
pub(crate) fn connect(opts: &Options) -> Result<Arc<Shared>> {
    opts.validate()?;
    let key = Key {
        endpoints: opts.endpoints.clone(),
        connect_timeout: opts.connect_timeout,
        tls: TlsMaterial::load(&opts.tls)?,
        user: opts.user.clone(),
    };
    let mut cache = CACHE
        .lock()
        .map_err(|_| Error::Internal("client cache poisoned".into()))?;
    if let Some(shared) = cache.get(&key).and_then(Weak::upgrade) {
        return Ok(shared);
    }
    cache.retain(|_, w| w.strong_count() > 0);
    let mut options = ConnectOptions::default()
        .with_connect_timeout(opts.connect_timeout)
        .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
        .with_keep_alive_while_idle(false)
        // A member cut off from the quorum answers "no leader" instead of stale data.
        .with_require_leader(true);
    if key.endpoints.iter().any(|e| e.starts_with("https://")) {
        options = options.with_tls(key.tls.config());
    }
    let options_without_user = key.user.as_ref().map(|_| options.clone());
    if let Some(c) = &key.user {
        options = options
            .with_user(c.user.clone(), c.password.clone())
            .with_auto_token_refresh(true);
    }
    let shared = Arc::new(Shared {
        members: key.endpoints.iter().map(|_| Default::default()).collect(),
        endpoints: key.endpoints.clone(),
        options,
        options_without_user,
        connect_timeout: opts.connect_timeout,
        current: AtomicUsize::new(0),
        leases: Default::default(),
        listings: Default::default(),
        outage: Mutex::new(OutageLog::new(
            format!("etcd connection to {}", short_list(&key.endpoints)),
            log::Level::Info,
        )),
    });
    cache.insert(key, Arc::downgrade(&shared));
    Ok(shared)
}

/// The error `_new` reports when its first request fails: `Unavailable` naming the endpoints,
/// whether nothing answered in time or the connection was refused.
pub(crate) fn first_contact_error(e: Error, opts: &Options) -> Error {
    let endpoints = opts.endpoints.join(",");
    match e {
        // `retry`'s message already says how long and what each endpoint did.
        Error::Timeout(_, msg) => Error::Unavailable(format!("{msg} ({endpoints})")),
        // With TLS 1.3 a server that rejects the client certificate does so after the
        // handshake, so the client may only see the connection dropped.
        Error::Unavailable(msg)
            if opts.endpoints.iter().any(|e| e.starts_with("https://"))
                && ["broken pipe", "reset", "closed"].iter().any(|p| msg.contains(p)) =>
        {
            Error::Tls(format!(
                "{msg} ({endpoints}): the server dropped the TLS connection; \
                 does it require a client certificate, and is ours valid and signed by a CA it trusts?"
            ))
        }
        Error::Unavailable(msg)
            if ["broken pipe", "reset", "closed"].iter().any(|p| msg.contains(p)) =>
        {
            Error::Unavailable(format!(
                "{msg} ({endpoints}): the server accepted the connection and dropped it; \
                 if it serves TLS, use https:// endpoints"
            ))
        }
        Error::Unavailable(msg) => Error::Unavailable(format!("{msg} ({endpoints})")),
        other => other,
    }
}

/// "10.0.0.1:2379,10.0.0.2:2379": endpoints without their scheme, for log lines and errors.
fn short_list(endpoints: &[String]) -> String {
    endpoints
        .iter()
        .map(|e| short(e))
        .collect::<Vec<_>>()
        .join(",")
}

fn short(endpoint: &str) -> &str {
    endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
}

/// What each endpoint last answered during one [`retry`]: the text of its give-up error.
struct Tried<'a> {
    endpoints: &'a [String],
    last: Vec<Option<Error>>,
    /// Per endpoint, how many times in a row an https connection was dropped (see `definite`).
    drops: Vec<u32>,
}

/// What a connection dropped by the server looks like (reset, broken pipe, closed).
fn is_drop(e: &Error) -> bool {
    matches!(e, Error::Unavailable(m)
        if ["broken pipe", "reset", "closed"].iter().any(|p| m.contains(p)))
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
            *drops = if https && is_drop(err) { *drops + 1 } else { 0 };
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
        let until = deadline.min(attempt_start + per_attempt);
        let used = AtomicUsize::new(0);
        let outcome = tokio::time::timeout_at(until, async {
            // Recorded before `pick`, so that a member too slow even to connect is left too.
            used.store(conn.current.load(Ordering::Acquire), Ordering::Relaxed);
            let member = conn.pick().await.map_err(|e| (e, None))?;
            used.store(member.idx, Ordering::Relaxed);
            match attempt(member.client.clone()).await {
                Ok(v) => Ok(v),
                Err(e) => Err((e, Some(member))),
            }
        })
        .await;
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
            Err(_) => {
                // No answer in time: leave this member for the next one.
                conn.advance(idx);
                let e = Error::Timeout(until - attempt_start, what.to_owned());
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
