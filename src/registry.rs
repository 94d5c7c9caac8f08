//! A registry: one lease, kept alive by the library, under which any number of keys are put.
//!
//! The keep-alive task renews at no later than a third of the TTL (and half of the time the
//! last answer said was left), and when the lease is lost for any reason it grants a new one
//! and puts every registered key again, retrying with backoff until etcd answers.

use crate::backoff::Backoff;
use crate::client::{self, Shared};
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
    /// The current lease, readable without the async lock.
    lease: AtomicI64,
}

struct State {
    lease: i64,
    keys: BTreeMap<String, String>,
}

impl Registry {
    /// Connects, grants a lease of `opts.ttl_seconds` and starts keeping it alive. Fails with
    /// `Unavailable` when no endpoint answers within the connect timeout.
    pub fn new(opts: &Options) -> Result<Self> {
        let conn = client::connect(opts)?;
        let ttl = opts.ttl_seconds;
        let mut c = conn.client();
        let lease = runtime::block_on_timeout(opts.connect_timeout, "lease grant", async move {
            grant(&mut c, ttl).await
        })
        .map_err(|e| client::first_contact_error(e, opts))?;
        let inner = Arc::new(Inner {
            conn,
            ttl_seconds: ttl,
            request_timeout: opts.request_timeout,
            state: Mutex::new(State {
                lease,
                keys: BTreeMap::new(),
            }),
            lease: AtomicI64::new(lease),
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
    pub fn register(&self, key: &str, value: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid("key is empty"));
        }
        let inner = &self.inner;
        let (key, value) = (key.to_owned(), value.to_owned());
        runtime::block_on_timeout(inner.request_timeout, "register", async {
            let mut st = inner.state.lock().await;
            let opts = PutOptions::new().with_lease(st.lease);
            inner
                .conn
                .client()
                .put(key.as_str(), value.as_str(), Some(opts))
                .await
                .map_err(|e| Error::from_etcd("put", e))?;
            st.keys.insert(key, value);
            Ok(())
        })
    }

    /// Deletes `key` and stops keeping it registered. Unknown keys are not an error.
    pub fn unregister(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid("key is empty"));
        }
        let inner = &self.inner;
        runtime::block_on_timeout(inner.request_timeout, "unregister", async {
            let mut st = inner.state.lock().await;
            st.keys.remove(key);
            inner
                .conn
                .client()
                .delete(key, None)
                .await
                .map_err(|e| Error::from_etcd("delete", e))?;
            Ok(())
        })
    }

    /// The lease currently holding the keys (it changes after a recovery).
    pub fn lease_id(&self) -> i64 {
        self.inner.lease.load(Ordering::Acquire)
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
        let inner = self.inner.clone();
        let revoke = async move {
            let lease = inner.lease.load(Ordering::Acquire);
            inner
                .conn
                .client()
                .lease_revoke(lease)
                .await
                .map(|_| ())
                .map_err(|e| Error::from_etcd("lease revoke", e))
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Dropped inside async code: cannot block here, so revoke in the background.
            runtime::spawn(revoke);
            return Ok(());
        }
        let r = runtime::block_on_timeout(self.inner.request_timeout, "lease revoke", revoke);
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

async fn grant(client: &mut etcd_client::Client, ttl: i64) -> Result<i64> {
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
        match keep_lease(&inner, lease, &mut backoff).await {
            Ended::Lost => {
                log::warn!(target: "etcd_sd", "registry: lease {lease:x} lost; re-registering");
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
    // An answer slower than half the TTL is as bad as none: treat the stream as broken.
    let answer_within = inner
        .request_timeout
        .min(Duration::from_millis((ttl as u64) * 500).max(Duration::from_millis(500)));
    let mut client = inner.conn.client();
    let opened = tokio::time::timeout(answer_within, client.lease_keep_alive(lease)).await;
    let (mut keeper, mut stream) = match opened {
        Err(_) => return Ended::Broken("no answer to the keep-alive".into()),
        Ok(Err(etcd_client::Error::LeaseKeepAliveError(msg))) if msg.contains("not found") => {
            return Ended::Lost
        }
        Ok(Err(e)) => return Ended::Broken(Error::from_etcd("keep-alive", e).to_string()),
        Ok(Ok(pair)) => pair,
    };
    backoff.reset();
    // Opening the stream renewed the lease once already.
    let mut wait = renew_interval(ttl, ttl);
    loop {
        tokio::time::sleep(wait).await;
        if let Err(e) = keeper.keep_alive().await {
            return Ended::Broken(e.to_string());
        }
        match tokio::time::timeout(answer_within, stream.message()).await {
            Err(_) => return Ended::Broken("no answer to the keep-alive".into()),
            Ok(Err(e)) => return Ended::Broken(Error::from_etcd("keep-alive", e).to_string()),
            Ok(Ok(None)) => return Ended::Broken("stream closed by the server".into()),
            Ok(Ok(Some(resp))) if resp.ttl() <= 0 => return Ended::Lost,
            Ok(Ok(Some(resp))) => wait = renew_interval(ttl, resp.ttl()),
        }
    }
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
                backoff.reset();
                return;
            }
            Ok(Err(e)) => log::warn!(target: "etcd_sd", "registry: re-registering failed: {e}"),
            Err(_) => log::warn!(target: "etcd_sd", "registry: re-registering timed out"),
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

async fn try_recover(inner: &Inner) -> Result<(i64, usize)> {
    let mut st = inner.state.lock().await;
    let mut client = inner.conn.client();
    let lease = grant(&mut client, inner.ttl_seconds).await?;
    for (k, v) in &st.keys {
        let put = client
            .put(
                k.as_str(),
                v.as_str(),
                Some(PutOptions::new().with_lease(lease)),
            )
            .await;
        if let Err(e) = put {
            // Do not leave a half-filled lease behind; the next attempt starts afresh.
            let _ = client.lease_revoke(lease).await;
            return Err(Error::from_etcd("put", e));
        }
    }
    st.lease = lease;
    inner.lease.store(lease, Ordering::Release);
    Ok((lease, st.keys.len()))
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
