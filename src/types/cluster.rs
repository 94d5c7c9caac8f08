//! Cluster members and election leaders, as plain data.

/// One member of the etcd cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    /// Empty for a member added but not started yet.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

/// Who holds a leadership: the election's name, the leader's own key under it, the revision
/// that key was created at (a fencing token: it only grows from one leader to the next), and
/// the lease the key lives under.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderKey {
    pub name: Vec<u8>,
    pub key: Vec<u8>,
    pub rev: i64,
    pub lease: i64,
}

/// What the general client's `status` returns: one member's view of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberStatus {
    /// etcd's version, e.g. "3.5.16".
    pub version: String,
    /// The id of the member that answered.
    pub member_id: u64,
    /// The id of the leader it knows (0: none).
    pub leader: u64,
    /// Size of its database file, in bytes.
    pub db_size: i64,
    pub raft_index: u64,
    pub raft_term: u64,
}
