//! etcd's election service: one attempt on one member's client.

use crate::error::{Error, Result};
use crate::types::{KeyValue, LeaderKey};
use etcd_client as ec;

fn leader_key(l: &LeaderKey) -> ec::LeaderKey {
    ec::LeaderKey::new()
        .with_name(l.name.clone())
        .with_key(l.key.clone())
        .with_rev(l.rev)
        .with_lease(l.lease)
}

/// Waits until `value` is the leader of election `name` under `lease`; returns the leader key.
pub(crate) async fn campaign(
    mut client: ec::Client,
    name: &[u8],
    value: &[u8],
    lease: i64,
) -> Result<(LeaderKey, i64)> {
    let resp = client
        .campaign(name, value, lease)
        .await
        .map_err(|e| Error::from_etcd("campaign", e))?;
    let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
    let l = resp
        .leader()
        .ok_or_else(|| Error::Etcd("campaign: etcd answered without a leader key".into()))?;
    Ok((
        LeaderKey {
            name: l.name().to_vec(),
            key: l.key().to_vec(),
            rev: l.rev(),
            lease: l.lease(),
        },
        revision,
    ))
}

/// Sets the leader's value; fails when `leader` no longer leads.
pub(crate) async fn proclaim(
    mut client: ec::Client,
    leader: &LeaderKey,
    value: &[u8],
) -> Result<i64> {
    let opts = ec::ProclaimOptions::new().with_leader(leader_key(leader));
    let resp = client
        .proclaim(value, Some(opts))
        .await
        .map_err(|e| Error::from_etcd("proclaim", e))?;
    Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
}

/// The current leader's key and value of election `name` (`NotFound` when there is none).
pub(crate) async fn leader(mut client: ec::Client, name: &[u8]) -> Result<(KeyValue, i64)> {
    let mut resp = client
        .leader(name)
        .await
        .map_err(|e| Error::from_etcd("leader", e))?;
    let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
    match resp.take_kv() {
        Some(kv) => Ok((KeyValue::from(kv), revision)),
        None => Err(Error::NotFound(format!(
            "election {:?} has no leader",
            String::from_utf8_lossy(name)
        ))),
    }
}

/// Gives up leadership (deletes the leader key).
pub(crate) async fn resign(mut client: ec::Client, leader: &LeaderKey) -> Result<i64> {
    let opts = ec::ResignOptions::new().with_leader(leader_key(leader));
    let resp = client
        .resign(Some(opts))
        .await
        .map_err(|e| Error::from_etcd("resign", e))?;
    Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
}
