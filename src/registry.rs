//! A registry: one lease, kept alive by the library, under which any number of keys are put.
//!
//! The keep-alive task renews at no later than a third of the TTL (and half of the time the
//! last answer said was left), and when the lease is lost for any reason (etcd answered TTL 0,
//! it was revoked from outside, it expired while etcd was unreachable) it grants a new one and
//! puts every registered key again, retrying with capped, jittered backoff until it works.

use crate::backoff::Backoff;
use crate::client::{self, retry, Member, Shared};
use crate::dispatch::{Mailbox, Sink};
use crate::error::{Error, Result};
use crate::options::Options;
use crate::runtime;
use etcd_client::PutOptions;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// What a registry's status callback is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The lease is gone: etcd no longer holds this registry's keys. Recovery has started.
    Lost,
    /// A new lease was granted and every registered key is in etcd again (also reported once
    /// when a registry created with `wait_for_etcd` first reaches etcd).
    Restored,
}

/// Keeps a set of keys registered under one lease for the life of the object.
pub struct Registry {
    inner: Arc<Inner>,
    keeper: JoinHandle<()>,
    closed: bool,
}

struct Inner {
    conn: Arc<Shared>,
    ttl_seconds: i64,
    request_timeout: Duration,
    /// Lease and keys change together: a recovery and a register never interleave.
    state: Mutex<State>,
    /// The current lease (0 while none is held), readable without the async lock.
    lease: AtomicI64,
    status: std::sync::Mutex<Option<Arc<Mailbox<Status>>>>,
}

struct State {
    /// 0 while no lease is held (before the first grant of a `wait_for_etcd` registry).
    lease: i64,
    keys: BTreeMap<String, String>,
}

impl Registry {
    /// Connects, grants a lease of `opts.ttl_seconds` and starts keeping it alive. Fails with
    /// `Unavailable` when no endpoint answers within the connect timeout, unless
    /// `opts.wait_for_etcd` is set: then it succeeds and connects in the background.
    pub fn new(opts: &Options) -> Result<Self> {
        let conn = client::connect(opts)?;
        let ttl = opts.ttl_seconds;
        let granted = runtime::block_on(retry(&conn, opts.connect_timeout, "lease grant", |c| {
            grant(c, ttl)
        }))?
        .map_err(|e| client::first_contact_error(e, opts));
        let lease = match granted {
            Ok(lease) => lease,
            Err(e) if opts.wait_for_etcd && e.is_transient() => {
                log::warn!(target: "etcd_sd", "registry: {e}; will register when etcd answers");
                0
            }
            Err(e) => return Err(e),
        };
        let inner = Arc::new(Inner {
            conn,
            ttl_seconds: ttl,
            request_timeout: opts.request_timeout,
            state: Mutex::new(State {
                lease,
                keys: BTreeMap::new(),
            }),
            lease: AtomicI64::new(lease),
            status: std::sync::Mutex::new(None),
        });
        let keeper = runtime::spawn(keep_alive_loop(inner.clone()));
        log::debug!(target: "etcd_sd", "registry: lease {lease:x} granted, ttl {ttl}s");
        Ok(Registry {
            inner,
            keeper,
            closed: false,
        })
    }

    /// Puts `key -> value` under the lease (again, if already registered: the value is
    /// updated). The key stays registered, across lease losses, until `unregister` or drop.
    /// While a `wait_for_etcd` registry has not reached etcd yet, the key is only recorded and
    /// put when the lease is granted.
    pub fn register(&self, key: &str, value: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid("key is empty"));
        }
        let inner = &self.inner;
        runtime::block_on(async {
            let mut st = inner.state.lock().await;
            if st.lease != 0 {
                let lease = st.lease;
                retry(&inner.conn, inner.request_timeout, "register", |mut c| {
                    let opts = PutOptions::new().with_lease(lease);
                    async move {
                        c.put(key, value, Some(opts))
                            .await
                            .map_err(|e| Error::from_etcd("put", e))
                    }
                })
                .await?;
            }
            st.keys.insert(key.to_owned(), value.to_owned());
            Ok(())
        })?
    }

    /// Deletes `key` and stops keeping it registered. Unknown keys are not an error.
    pub fn unregister(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid("key is empty"));
        }
        let inner = &self.inner;
        runtime::block_on(async {
            let mut st = inner.state.lock().await;
            if st.keys.remove(key).is_none() || st.lease == 0 {
                return Ok(());
            }
            retry(
                &inner.conn,
                inner.request_timeout,
                "unregister",
                |mut c| async move {
                    c.delete(key, None)
                        .await
                        .map_err(|e| Error::from_etcd("delete", e))
                },
            )
            .await
            .map(|_| ())
        })?
    }

    /// The lease currently holding the keys (it changes after a recovery; 0 before the first
    /// grant of a `wait_for_etcd` registry).
    pub fn lease_id(&self) -> i64 {
        self.inner.lease.load(Ordering::Acquire)
    }

    /// Calls `sink` (on the callback pool, never two at once) when the registration is lost
    /// and when it is restored. Replaces any earlier sink; after drop none runs.
    pub fn set_status_sink(&self, sink: Option<Sink<Status>>) {
        let new = sink.map(Mailbox::new);
        let old = {
            let mut s = self.inner.status.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *s, new)
        };
        if let Some(old) = old {
            old.close();
        }
    }

    /// Stops the keep-alive and revokes the lease, so every key disappears at once. Bounded by
    /// the request timeout when etcd is gone (the keys then expire after the TTL).
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        self.keeper.abort();
        self.set_status_sink(None);
        let lease = self.inner.lease.load(Ordering::Acquire);
        if lease == 0 {
            return Ok(());
        }
        let inner = self.inner.clone();
        let limit = self.inner.request_timeout;
        // Retried like any idempotent request, so a dead member in the endpoint list does not
        // turn a graceful exit into a wait for the TTL; "not found" means already gone.
        let revoke = async move {
            let revoked = retry(&inner.conn, limit, "lease revoke", |mut c| async move {
                c.lease_revoke(lease)
                    .await
                    .map_err(|e| Error::from_etcd("lease revoke", e))
            })
            .await;
            match revoked {
                Err(Error::Etcd(m)) if m.contains("lease not found") => Ok(()),
                other => other.map(|_| ()),
            }
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Dropped inside async code: cannot block here, so revoke in the background.
            runtime::spawn(revoke);
            return Ok(());
        }
        let r = runtime::block_on(revoke).and_then(|r| r);
        if let Err(e) = &r {
            log::warn!(target: "etcd_sd", "registry: {e}; keys expire after the TTL instead");
        }
        r
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl Inner {
    fn report(&self, status: Status) {
        let mailbox = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(m) = mailbox {
            m.post([status]);
        }
    }
}

async fn grant(mut client: etcd_client::Client, ttl: i64) -> Result<i64> {
    let resp = client
        .lease_grant(ttl, None)
        .await
        .map_err(|e| Error::from_etcd("lease grant", e))?;
    if !resp.error().is_empty() {
        return Err(Error::Etcd(format!("lease grant: {}", resp.error())));
    }
    Ok(resp.id())
}

/// How a keep-alive session ended.
enum Ended {
    /// etcd says the lease is gone: grant a new one and put the keys again.
    Lost,
    /// The stream failed; the lease may still be alive: reopen it.
    Broken(String),
}

async fn keep_alive_loop(inner: Arc<Inner>) {
    let mut backoff = Backoff::new();
    loop {
        let lease = inner.lease.load(Ordering::Acquire);
        if lease == 0 {
            recover(&inner, &mut backoff).await;
            continue;
        }
        match keep_lease(&inner, lease, &mut backoff).await {
            Ended::Lost => {
                log::warn!(target: "etcd_sd", "registry: lease {lease:x} lost; re-registering");
                inner.report(Status::Lost);
                recover(&inner, &mut backoff).await;
            }
            Ended::Broken(why) => {
                log::warn!(target: "etcd_sd", "registry: keep-alive of lease {lease:x} interrupted: {why}");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// Renews `lease` until it is lost or the stream breaks.
async fn keep_lease(inner: &Inner, lease: i64, backoff: &mut Backoff) -> Ended {
    let ttl = inner.ttl_seconds;
    // An answer slower than half the TTL is as bad as none: treat the stream as broken and
    // reopen it (on another member, if the channel has one).
    let answer_within = inner
        .request_timeout
        .min(Duration::from_millis((ttl as u64) * 500).max(Duration::from_millis(500)));
    let member = match inner.conn.pick().await {
        Ok(m) => m,
        Err(e) => return Ended::Broken(e.to_string()),
    };
    let mut client = member.client.clone();
    let opened = tokio::time::timeout(answer_within, client.lease_keep_alive(lease)).await;
    let (mut keeper, mut stream) = match opened {
        Ok(Err(etcd_client::Error::LeaseKeepAliveError(msg))) if msg.contains("not found") => {
            return Ended::Lost
        }
        Err(_) => return broken(&member, Error::Timeout(answer_within, "keep-alive".into())).await,
        Ok(Err(e)) => return broken(&member, Error::from_etcd("keep-alive", e)).await,
        Ok(Ok(pair)) => pair,
    };
    backoff.reset();
    // Opening the stream renewed the lease once already.
    let mut wait = renew_interval(ttl, ttl);
    loop {
        tokio::time::sleep(wait).await;
        if let Err(e) = keeper.keep_alive().await {
            return broken(&member, Error::from_etcd("keep-alive", e)).await;
        }
        match tokio::time::timeout(answer_within, stream.message()).await {
            Err(_) => {
                return broken(&member, Error::Timeout(answer_within, "keep-alive".into())).await
            }
            Ok(Err(e)) => return broken(&member, Error::from_etcd("keep-alive", e)).await,
            Ok(Ok(None)) => {
                let closed = Error::Unavailable("keep-alive stream closed by the server".into());
                return broken(&member, closed).await;
            }
            Ok(Ok(Some(resp))) if resp.ttl() <= 0 => return Ended::Lost,
            Ok(Ok(Some(resp))) => wait = renew_interval(ttl, resp.ttl()),
        }
    }
}

/// Hands the failure to the member (switching members, refreshing the token) and says why.
async fn broken(member: &Member<'_>, err: Error) -> Ended {
    member.failed(&err).await;
    Ended::Broken(err.to_string())
}

/// Renew no later than a third of the TTL and no later than half of the time left.
fn renew_interval(ttl: i64, left: i64) -> Duration {
    let ms = (ttl.max(1) as u64 * 1000 / 3).min(left.max(1) as u64 * 1000 / 2);
    Duration::from_millis(ms.max(100))
}

/// Grants a new lease and puts every key under it, retrying until it works.
async fn recover(inner: &Inner, backoff: &mut Backoff) {
    loop {
        let attempt = tokio::time::timeout(inner.request_timeout * 2, try_recover(inner)).await;
        match attempt {
            Ok(Ok((lease, n))) => {
                log::warn!(target: "etcd_sd", "registry: restored {n} key(s) under lease {lease:x}");
                inner.report(Status::Restored);
                backoff.reset();
                return;
            }
            Ok(Err(e)) => log::debug!(target: "etcd_sd", "registry: re-registering failed: {e}"),
            Err(_) => log::debug!(target: "etcd_sd", "registry: re-registering timed out"),
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

async fn try_recover(inner: &Inner) -> Result<(i64, usize)> {
    let mut st = inner.state.lock().await;
    let member = inner.conn.pick().await?;
    let lease = match fill_new_lease(member.client.clone(), inner.ttl_seconds, &st.keys).await {
        Ok(lease) => lease,
        Err(e) => {
            member.failed(&e).await;
            return Err(e);
        }
    };
    st.lease = lease;
    inner.lease.store(lease, Ordering::Release);
    Ok((lease, st.keys.len()))
}

/// Grants a lease and puts `keys` under it; revokes it again if a put fails, so that no
/// half-filled lease is left behind and the next attempt starts afresh.
async fn fill_new_lease(
    mut client: etcd_client::Client,
    ttl: i64,
    keys: &BTreeMap<String, String>,
) -> Result<i64> {
    let lease = grant(client.clone(), ttl).await?;
    for (k, v) in keys {
        let opts = PutOptions::new().with_lease(lease);
        if let Err(e) = client.put(k.as_str(), v.as_str(), Some(opts)).await {
            let _ = client.lease_revoke(lease).await;
            return Err(Error::from_etcd("put", e));
        }
    }
    Ok(lease)
}

#[cfg(test)]
mod tests {
    use super::renew_interval;
    use std::time::Duration;

    #[test]
    fn renews_at_a_third_of_ttl_or_half_the_time_left() {
        assert_eq!(renew_interval(3, 3), Duration::from_millis(1000));
        assert_eq!(renew_interval(3, 1), Duration::from_millis(500));
        assert_eq!(renew_interval(1, 1), Duration::from_millis(333));
        assert_eq!(renew_interval(30, 30), Duration::from_millis(10_000));
    }
}
