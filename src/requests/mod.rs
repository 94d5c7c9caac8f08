//! Layer 2, requests: typed etcd calls on top of the transport -- key-value, range, lease,
//! transaction, lock, election and cluster membership. Each function is one attempt on one
//! member's client; callers retry them through [`crate::transport::retry`] where that is safe.

pub(crate) mod cluster;
pub(crate) mod election;
pub(crate) mod kv;
pub(crate) mod lease;
pub(crate) mod lock;
pub(crate) mod range;
pub(crate) mod txn;
