//! etcd's lock service: one attempt on one member's client. Not retried: a lock request that
//! timed out may still have queued its key (etcd deletes it when the request is cancelled).

use crate::error::{Error, Result};

/// Waits until the lock `name` is held under `lease`; returns the owner key (the lock's name, a
/// slash, the lease id in hex) and the revision it was created at.
pub(crate) async fn lock(
    mut client: etcd_client::Client,
    name: &[u8],
    lease: i64,
) -> Result<(Vec<u8>, i64)> {
    let opts = etcd_client::LockOptions::new().with_lease(lease);
    let resp = client
        .lock(name, Some(opts))
        .await
        .map_err(|e| Error::from_etcd("lock", e))?;
    let key = resp.key().to_vec();
    // The revision the owner key was created at is the fencing token; the response's header
    // carries the store's revision when the lock was granted, which is the same or later.
    let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
    Ok((key, rev))
}

/// Releases the lock held by owner key `key` (deletes it).
pub(crate) async fn unlock(mut client: etcd_client::Client, key: &[u8]) -> Result<i64> {
    let resp = client
        .unlock(key)
        .await
        .map_err(|e| Error::from_etcd("unlock", e))?;
    Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
}
