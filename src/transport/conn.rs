//! The transport: shared etcd connections, their members and failover. Registries and discoveries with the same connection settings share
//! one `etcd_client::Client` (one HTTP/2 connection per endpoint): a process with a thousand
//! registries dials etcd once. The cache holds weak references, so the connection closes when
//! its last user is freed.

use crate::error::{Error, Result};
use crate::options::{Credentials, Options};
use crate::outage::OutageLog;
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
    prefer_first: bool,
}

/// The connections shared by every object created with the same settings: one client per
/// endpoint, of which one (the current member) is used at a time, trying them in a random
/// order per connection (the list's order with `prefer_first_member`). When a request through the
/// current member fails for want of an answer, the next member becomes current, so failover
/// is immediate and deterministic rather than left to a load balancer that cannot tell a
/// black-holed member from a busy one.
pub(crate) struct Shared {
    pub(super) endpoints: Vec<String>,
    options: ConnectOptions,
    /// The same without credentials: used when etcd says auth is not enabled, as the Go
    /// client does, so credentials can be configured before auth is turned on.
    options_without_user: Option<ConnectOptions>,
    connect_timeout: Duration,
    members: Vec<tokio::sync::OnceCell<Client>>,
    /// The same connections without require-leader, dialled only for the few requests a
    /// member must answer even when it has no leader (the member list: the cluster with a
    /// member added that never started has lost its quorum, and is still listed).
    leaderless: Vec<tokio::sync::OnceCell<Client>>,
    leaderless_options: ConnectOptions,
    leaderless_without_user: Option<ConnectOptions>,
    pub(super) current: AtomicUsize,
    /// The order members are tried in, from the first current one: a random permutation per
    /// connection (the endpoint list's order with `prefer_first_member`), so that processes
    /// given the same list spread over the members at start and after a member fails.
    order: Vec<usize>,
    /// The connection's own log: one INFO line when requests start failing, one when etcd
    /// answers again (the objects above log their own view at WARN).
    outage: Mutex<OutageLog>,
}

/// One member's client, as picked for a request.
pub(crate) struct Member<'a> {
    shared: &'a Shared,
    pub(super) idx: usize,
    pub(crate) client: Client,
}

impl Shared {
    /// The current member's client, connecting first if needed (which, with auth,
    /// authenticates). A member that cannot be reached is left for the next one.
    pub(crate) async fn pick(&self) -> Result<Member<'_>> {
        self.pick_in(&self.members, &self.options, &self.options_without_user)
            .await
    }

    /// As [`Self::pick`], on a connection whose requests do not require a leader.
    pub(crate) async fn pick_leaderless(&self) -> Result<Member<'_>> {
        self.pick_in(
            &self.leaderless,
            &self.leaderless_options,
            &self.leaderless_without_user,
        )
        .await
    }

    async fn pick_in(
        &self,
        cells: &[tokio::sync::OnceCell<Client>],
        options: &ConnectOptions,
        without_user: &Option<ConnectOptions>,
    ) -> Result<Member<'_>> {
        let idx = self.current.load(Ordering::Acquire);
        let connected = cells[idx]
            .get_or_try_init(|| async {
                let endpoint = self.endpoints[idx].as_str();
                let connected = self.connect_one(endpoint, options).await;
                match (&connected, without_user) {
                    (Err(e), Some(plain)) if e.is_auth_not_enabled() => {
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

    /// Makes the member after `idx` (in this connection's order) current, unless another
    /// request already moved on.
    pub(super) fn advance(&self, idx: usize) {
        let pos = self.order.iter().position(|m| *m == idx).unwrap_or(0);
        let next = self.order[(pos + 1) % self.order.len()];
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

/// The connections of the whole process, and how many of their members are dialled.
pub(crate) fn connection_stats() -> (u64, u64) {
    let live: Vec<Arc<Shared>> = CACHE
        .lock()
        .map(|c| c.values().filter_map(Weak::upgrade).collect())
        .unwrap_or_default();
    let members = live.iter().map(|s| s.members_connected() as u64).sum();
    (live.len() as u64, members)
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
        prefer_first: opts.prefer_first_member,
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
    let no_leader = |o: &ConnectOptions| o.clone().with_require_leader(false);
    let order = if key.prefer_first {
        (0..key.endpoints.len()).collect()
    } else {
        member_order(key.endpoints.len())
    };
    let shared = Arc::new(Shared {
        members: key.endpoints.iter().map(|_| Default::default()).collect(),
        leaderless: key.endpoints.iter().map(|_| Default::default()).collect(),
        leaderless_options: no_leader(&options),
        leaderless_without_user: options_without_user.as_ref().map(no_leader),
        endpoints: key.endpoints.clone(),
        options,
        options_without_user,
        connect_timeout: opts.connect_timeout,
        current: AtomicUsize::new(order[0]),
        order,
        outage: Mutex::new(OutageLog::new(
            format!("etcd connection to {}", short_list(&key.endpoints)),
            log::Level::Info,
        )),
    });
    cache.insert(key, Arc::downgrade(&shared));
    Ok(shared)
}

/// The order a new connection tries the `n` members in, unless `prefer_first_member` is set:
/// a random permutation, so that a fleet of processes given the same endpoint list spreads its
/// streams and keep-alives over the members, at start and when one fails, instead of loading
/// the first and then the next (Go clientv3's balancer spreads them too). Each connection
/// still tries every member in turn.
fn member_order(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mut x = (u64::from(std::process::id()) << 32 ^ nanos) | 1;
    for i in (1..n).rev() {
        // xorshift64: plenty for shuffling a handful of members.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

/// The error `_new` reports when its first request fails: `Unavailable` naming the endpoints,
/// whether nothing answered in time or the connection was refused.
pub(crate) fn first_contact_error(e: Error, opts: &Options) -> Error {
    let endpoints = opts.endpoints.join(",");
    let dropped = e.is_dropped();
    let https = opts.endpoints.iter().any(|e| e.starts_with("https://"));
    match e {
        // `retry`'s message already says how long and what each endpoint did.
        Error::Timeout(_, msg) => Error::Unavailable(format!("{msg} ({endpoints})")),
        // With TLS 1.3 a server that rejects the client certificate does so after the
        // handshake, so the client may only see the connection dropped.
        Error::Unavailable(msg) if dropped && https => {
            Error::Tls(format!(
                "{msg} ({endpoints}): the server dropped the TLS connection; \
                 does it require a client certificate, and is ours valid and signed by a CA it trusts?"
            ))
        }
        Error::Unavailable(msg) if dropped => {
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

pub(super) fn short(endpoint: &str) -> &str {
    endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
}

#[cfg(test)]
mod order_tests {
    use crate::transport::conn::member_order;

    #[test]
    fn member_order_is_a_permutation() {
        for n in 1..8 {
            let mut o = member_order(n);
            assert_eq!(o.len(), n);
            o.sort_unstable();
            assert_eq!(o, (0..n).collect::<Vec<_>>());
        }
    }
}
