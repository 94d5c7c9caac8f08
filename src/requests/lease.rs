//! Lease requests: one attempt each, on one member's client.

use crate::error::{Error, Result};

pub(crate) async fn grant(mut client: etcd_client::Client, ttl: i64) -> Result<i64> {
    let resp = client
        .lease_grant(ttl, None)
        .await
        .map_err(|e| Error::from_etcd("lease grant", e))?;
    if !resp.error().is_empty() {
        return Err(Error::Etcd(format!("lease grant: {}", resp.error())));
    }
    Ok(resp.id())
}

pub(crate) async fn revoke(mut client: etcd_client::Client, id: i64) -> Result<()> {
    match client.lease_revoke(id).await {
        Ok(_) => Ok(()),
        Err(e) => Err(match Error::from_etcd("lease revoke", e) {
            e if e.is_lease_not_found() => Error::NotFound(format!("lease {id:x}: {}", e.detail())),
            other => other,
        }),
    }
}

/// (TTL left, granted TTL) of a lease in seconds; TTL left is -1 when it does not exist.
pub(crate) async fn time_to_live(mut client: etcd_client::Client, id: i64) -> Result<(i64, i64)> {
    let resp = client
        .lease_time_to_live(id, None)
        .await
        .map_err(|e| Error::from_etcd("lease time-to-live", e))?;
    Ok((resp.ttl(), resp.granted_ttl()))
}

/// The ids of every lease etcd holds.
pub(crate) async fn leases(mut client: etcd_client::Client) -> Result<Vec<i64>> {
    let resp = client
        .leases()
        .await
        .map_err(|e| Error::from_etcd("lease leases", e))?;
    Ok(resp.leases().iter().map(|l| l.id()).collect())
}
