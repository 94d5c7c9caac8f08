//! Cluster membership requests: one attempt on one member's client.

use crate::error::{Error, Result};
use crate::types::{Member, MemberStatus};

fn member(m: &etcd_client::Member) -> Member {
    Member {
        id: m.id(),
        name: m.name().to_owned(),
        peer_urls: m.peer_urls().to_vec(),
        client_urls: m.client_urls().to_vec(),
        is_learner: m.is_learner(),
    }
}

/// Every member of the cluster.
pub(crate) async fn list(mut client: etcd_client::Client) -> Result<Vec<Member>> {
    let resp = client
        .member_list()
        .await
        .map_err(|e| Error::from_etcd("member list", e))?;
    Ok(resp.members().iter().map(member).collect())
}

/// Adds a member that will listen on `peer_urls`; returns it (without name or client URLs
/// until it starts).
pub(crate) async fn add(
    mut client: etcd_client::Client,
    peer_urls: &[String],
    is_learner: bool,
) -> Result<Member> {
    let opts = is_learner.then(|| etcd_client::MemberAddOptions::new().with_is_learner());
    let resp = client
        .member_add(peer_urls, opts)
        .await
        .map_err(|e| Error::from_etcd("member add", e))?;
    resp.member()
        .map(member)
        .ok_or_else(|| Error::Etcd("member add: etcd answered without the member".into()))
}

/// Removes member `id`.
pub(crate) async fn remove(mut client: etcd_client::Client, id: u64) -> Result<()> {
    client
        .member_remove(id)
        .await
        .map_err(|e| Error::from_etcd("member remove", e))?;
    Ok(())
}

/// The status of the member that answers.
pub(crate) async fn status(mut client: etcd_client::Client) -> Result<MemberStatus> {
    let s = client
        .status()
        .await
        .map_err(|e| Error::from_etcd("status", e))?;
    Ok(MemberStatus {
        version: s.version().to_string(),
        member_id: s.header().map_or(0, |h| h.member_id()),
        leader: s.leader(),
        db_size: s.db_size(),
        raft_index: s.raft_index(),
        raft_term: s.raft_term(),
    })
}
