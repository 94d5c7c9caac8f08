//! Shared etcd connections. Registries and discoveries with the same connection settings share
//! one `etcd_client::Client` (one HTTP/2 connection per endpoint): a process with a thousand
//! registries dials etcd once. The cache holds weak references, so the connection closes when
//! its last user is freed.

use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::options::{Credentials, Options};
use crate::runtime;
use crate::tls::TlsMaterial;
use etcd_client::{Client, ConnectOptions};
use once_cell::sync::Lazy;
use std::collections::HashMap;
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

/// A connection shared by every object created with the same settings.
pub(crate) struct Shared {
    client: Client,
}

impl Shared {
    /// A cheap handle for one call (clients are `Clone` and share the channel).
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// After `err`, authenticates again when the token went stale (expired, or issued before
    /// the auth store changed); returns whether it did, i.e. whether retrying makes sense.
    pub(crate) async fn refresh_token_after(&self, err: &Error) -> bool {
        if !err.is_stale_token() {
            return false;
        }
        match self.client.refresh_token().await {
            Ok(()) => true,
            Err(e) => {
                log::warn!(target: "etcd_sd", "{}", Error::from_etcd("re-authenticating", e));
                false
            }
        }
    }
}

static CACHE: Lazy<Mutex<HashMap<Key, Weak<Shared>>>> = Lazy::new(Mutex::default);

/// Returns the shared connection for `opts`, creating it when needed. Without auth, creation
/// does not touch the network (the channel dials lazily; the first request tells whether etcd
/// answers); with auth it authenticates, bounded by the connect timeout.
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
    let mut connect_opts = ConnectOptions::default()
        .with_connect_timeout(opts.connect_timeout)
        .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
        .with_keep_alive_while_idle(false)
        // A member cut off from the quorum answers "no leader" instead of stale data.
        .with_require_leader(true);
    if key.endpoints.iter().any(|e| e.starts_with("https://")) {
        connect_opts = connect_opts.with_tls(key.tls.config());
    }
    if let Some(c) = &key.user {
        connect_opts = connect_opts
            .with_user(c.user.clone(), c.password.clone())
            .with_auto_token_refresh(true);
    }
    let endpoints = key.endpoints.clone();
    let client = runtime::block_on_timeout(opts.connect_timeout, "connect", async move {
        Client::connect(endpoints, Some(connect_opts))
            .await
            .map_err(|e| Error::from_etcd("connect", e))
    })
    .map_err(|e| first_contact_error(e, opts))?;
    let shared = Arc::new(Shared { client });
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
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    let per_attempt = (limit / 3).max(Duration::from_secs(1));
    let mut backoff = Backoff::new();
    let mut last = None;
    loop {
        let until = deadline.min(tokio::time::Instant::now() + per_attempt);
        match tokio::time::timeout_at(until, attempt()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if e.is_transient() || e.is_stale_token() => {
                let delay = backoff.next_delay();
                if tokio::time::Instant::now() + delay >= deadline {
                    return Err(e);
                }
                log::debug!(target: "etcd_sd", "{what}: {e}; retrying");
                conn.refresh_token_after(&e).await;
                last = Some(e);
                tokio::time::sleep(delay).await;
            }
            Ok(Err(e)) => return Err(e),
            Err(_) if tokio::time::Instant::now() < deadline => {
                log::debug!(target: "etcd_sd", "{what}: no answer in {per_attempt:?}; retrying");
                last = Some(Error::Timeout(per_attempt, what.to_owned()));
            }
            Err(_) => return Err(last.unwrap_or_else(|| Error::Timeout(limit, what.to_owned()))),
        }
    }
}
