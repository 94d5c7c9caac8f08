//! What etcd answers to lease calls, in full.

/// A lease call's answer: the lease, its TTLs and the store revision when etcd answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The lease (for a lease kept by this process, its current id).
    pub id: i64,
    /// Seconds: the TTL etcd granted (a grant, which etcd may raise to its minimum), or the
    /// seconds left (time-to-live; -1 when the lease does not exist or expired).
    pub ttl: i64,
    /// Seconds the lease was granted with (0 when unknown, e.g. for a revoke).
    pub granted_ttl: i64,
    /// The store revision when etcd answered.
    pub revision: i64,
}
