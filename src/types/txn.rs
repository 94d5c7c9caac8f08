//! A transaction as plain data: compares, and the operations run when they all hold (success)
//! or not (failure); and what etcd answers. Built by the general client's callers (the C ABI's
//! `etcd_sd_txn`, the compat `etcdv3::Transaction`) and sent by `requests::txn`.

use super::kv::KeyValue;

/// How a compare relates the key's field to the given one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Greater,
    Less,
}

/// Which field of the key a compare looks at, and the value it is compared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompareTarget {
    Value(Vec<u8>),
    Version(i64),
    CreateRevision(i64),
    ModRevision(i64),
    Lease(i64),
}

/// One compare: `key` (every key in `[key, range_end)` when `range_end` is not empty) against
/// `target` by `op`. A key that does not exist has version, revisions and lease 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    pub op: CompareOp,
    pub target: CompareTarget,
}

/// One operation of a transaction branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOp {
    /// Put `key -> value` (under `lease` when not 0); `prev_kv` asks for the value replaced.
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: i64,
        prev_kv: bool,
    },
    /// Read `key` (or `[key, range_end)`), at most `limit` keys when > 0, at `revision` when > 0.
    Range {
        key: Vec<u8>,
        range_end: Vec<u8>,
        limit: i64,
        revision: i64,
        keys_only: bool,
    },
    /// Delete `key` (or `[key, range_end)`); `prev_kv` asks for the deleted entries.
    Delete {
        key: Vec<u8>,
        range_end: Vec<u8>,
        prev_kv: bool,
    },
    /// A nested transaction.
    Txn(Txn),
}

/// A transaction: if every compare holds, `success` runs, else `failure`, atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    pub compare: Vec<Compare>,
    pub success: Vec<TxnOp>,
    pub failure: Vec<TxnOp>,
}

/// What one operation of the branch that ran answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOpResponse {
    /// A put: the previous entry, when asked for and there was one.
    Put { prev: Option<KeyValue> },
    /// A range: the entries, how many match in all, and whether more follow the limit.
    Range {
        kvs: Vec<KeyValue>,
        count: i64,
        more: bool,
    },
    /// A delete: how many keys, and the deleted entries when asked for.
    Delete {
        deleted: i64,
        prev_kvs: Vec<KeyValue>,
    },
    /// A nested transaction.
    Txn(TxnResponse),
}

/// What etcd answered to a transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether every compare held (the success branch ran).
    pub succeeded: bool,
    /// The store's revision after the transaction.
    pub revision: i64,
    /// One per operation of the branch that ran, in order.
    pub responses: Vec<TxnOpResponse>,
}
