//! Plain data types shared by every layer: what etcd stores and answers, and what the library
//! reports. Nothing here imports another module of the crate (the children import only each
//! other), so every layer may use them.

mod cluster;
mod kv;
mod lease;
mod txn;

pub use cluster::{LeaderKey, Member, MemberStatus};
pub use kv::{KeyValue, Kvs, PutMode, PutReply, Status};
pub use lease::LeaseInfo;
pub use txn::{Compare, CompareOp, CompareTarget, Txn, TxnOp, TxnOpResponse, TxnResponse};
