//! Shared etcd connections. Registries and discoveries with the same connection settings share
//! one `etcd_client::Client` (one HTTP/2 connection per endpoint): a process with a thousand
//! registries dials etcd once. The cache holds weak references, so the connection closes when
//! its last user is freed.

use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::options::{Credentials, Options};
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
            log::info!(target: "etcd_sd", "switching to etcd member {}", self.endpoints[next]);
        }
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
    });
    cache.insert(key, Arc::downgrade(&shared));
    Ok(shared)
}

/// The error `_new` reports when its first request fails: `Unavailable` naming the endpoints,
/// whether nothing answered in time or the connection was refused.
pub(crate) fn first_contact_error(e: Error, opts: &Options) -> Error {
    let endpoints = opts.endpoints.join(",");
    match e {
        Error::Timeout(d, _) => Error::Unavailable(format!(
            "no etcd endpoint answered within {d:?} ({endpoints})"
        )),
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

/// Runs `attempt` until it succeeds, fails for good, or `limit` has passed, retrying errors
/// that may go away (no connection yet, a member just died: the channel picks another one;
/// a stale auth token: authenticate again) with backoff. Only for idempotent requests. When
/// time runs out the last error is returned.
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
    let deadline = tokio::time::Instant::now() + limit;
    let per_attempt = (limit / 3).max(Duration::from_secs(1));
    let mut backoff = Backoff::new();
    let mut last = None;
    loop {
        let until = deadline.min(tokio::time::Instant::now() + per_attempt);
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
        let err = match outcome {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err((e, member))) => {
                let again = match &member {
                    Some(m) => m.failed(&e).await,
                    None => e.is_transient(),
                };
                if !again {
                    return Err(e);
                }
                e
            }
            Err(_) => {
                // No answer in time: leave this member for the next one.
                conn.advance(used.load(Ordering::Relaxed));
                Error::Timeout(per_attempt, what.to_owned())
            }
        };
        let delay = backoff.next_delay();
        if tokio::time::Instant::now() + delay >= deadline {
            return Err(match (&err, last) {
                (Error::Timeout(..), Some(prev)) => prev,
                _ => err,
            });
        }
        log::debug!(target: "etcd_sd", "{what}: {err}; retrying");
        last = Some(err);
        tokio::time::sleep(delay).await;
    }
}
