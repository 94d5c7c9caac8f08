//! Lease requests: one attempt each, on one member's client.

use crate::error::{Error, Result};
use crate::types::LeaseInfo;

fn revision_of(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map(|h| h.revision()).unwrap_or(0)
}

/// A new lease: its id, the TTL etcd granted (it raises a TTL under its minimum) and the
/// revision.
pub(crate) async fn grant(mut client: etcd_client::Client, ttl: i64) -> Result<LeaseInfo> {
    let resp = client
        .lease_grant(ttl, None)
        .await
        .map_err(|e| Error::from_etcd("lease grant", e))?;
    if !resp.error().is_empty() {
        return Err(Error::Etcd(format!("lease grant: {}", resp.error())));
    }
    Ok(LeaseInfo {
        id: resp.id(),
        ttl: resp.ttl(),
        granted_ttl: resp.ttl(),
        revision: revision_of(resp.header()),
    })
}

/// Revokes `id`: the id and the revision (TTLs 0).
pub(crate) async fn revoke(mut client: etcd_client::Client, id: i64) -> Result<LeaseInfo> {
    match client.lease_revoke(id).await {
        Ok(resp) => Ok(LeaseInfo {
            id,
            revision: revision_of(resp.header()),
            ..LeaseInfo::default()
        }),
        Err(e) => Err(match Error::from_etcd("lease revoke", e) {
            e if e.is_lease_not_found() => Error::NotFound(format!("lease {id:x}: {}", e.detail())),
            other => other,
        }),
    }
}

/// The TTL left (`ttl`, -1 when the lease does not exist) and granted, and the revision.
pub(crate) async fn time_to_live(mut client: etcd_client::Client, id: i64) -> Result<LeaseInfo> {
    let resp = client
        .lease_time_to_live(id, None)
        .await
        .map_err(|e| Error::from_etcd("lease time-to-live", e))?;
    Ok(LeaseInfo {
        id,
        ttl: resp.ttl(),
        granted_ttl: resp.granted_ttl(),
        revision: revision_of(resp.header()),
    })
}

/// The ids of every lease etcd holds, and the revision.
pub(crate) async fn leases(mut client: etcd_client::Client) -> Result<(Vec<i64>, i64)> {
    let resp = client
        .leases()
        .await
        .map_err(|e| Error::from_etcd("lease leases", e))?;
    let ids = resp.leases().iter().map(|l| l.id()).collect();
    Ok((ids, revision_of(resp.header())))
}
