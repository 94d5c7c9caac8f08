//! Layer 2, requests: typed etcd calls (key-value, range, lease) on top of the transport.
//! Each function is one attempt on one member's client; callers retry them through
//! [`crate::transport::retry`] where that is safe.

pub(crate) mod kv;
pub(crate) mod lease;
pub(crate) mod range;
