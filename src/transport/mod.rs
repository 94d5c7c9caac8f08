//! Layer 1, the transport: connections to the members of an etcd cluster, shared by every
//! object with the same settings ([`conn`]), and requests retried across members ([`retry`]).
//! It knows nothing of leases, listings or watches.

pub(crate) mod conn;
pub(crate) mod retry;

pub(crate) use conn::{connect, connection_stats, first_contact_error, Member, Shared};
pub(crate) use retry::{once, retry, retry_leaderless};
