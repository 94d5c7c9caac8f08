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
