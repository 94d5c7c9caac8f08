//! Keys and values as etcd stores them, and what a KV call returns.

/// One key as etcd stores it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

impl From<etcd_client::proto::PbKeyValue> for KeyValue {
    fn from(kv: etcd_client::proto::PbKeyValue) -> Self {
        // Moves the buffers etcd-client decoded: no copy of keys or values.
        KeyValue {
            key: kv.key,
            value: kv.value,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }
}

impl From<etcd_client::KeyValue> for KeyValue {
    fn from(kv: etcd_client::KeyValue) -> Self {
        KeyValue::from(kv.0)
    }
}

/// What a KV call returns: the keys it read, replaced or deleted, and the revision of the
/// store when etcd answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kvs {
    pub revision: i64,
    pub kvs: Vec<KeyValue>,
}

/// When a put applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Always (create or replace).
    Always,
    /// Only if the key does not exist (else `Error::Exists`).
    IfAbsent,
    /// Only if the key exists (else `Error::NotFound`).
    IfPresent,
}

/// What a put did, in full.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutReply {
    /// False when the put's mode refused it: `IfAbsent` on a key that exists (`kvs` then
    /// holds the value that is there) or `IfPresent` on one that does not (`kvs` is empty).
    pub applied: bool,
    /// The lease the key is under: for a lease kept by this process, its current id (which
    /// changes when the lease is lost and re-granted); 0 for none.
    pub lease: i64,
    /// The previous value (0 or 1 entries) when applied; see `applied` otherwise.
    pub kvs: Kvs,
}

/// What a registry's status callback is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The lease is gone: etcd no longer holds this registry's keys. Recovery has started.
    Lost,
    /// A new lease was granted and every registered key is in etcd again (also reported once
    /// when a registry created with `wait_for_etcd` first reaches etcd).
    Restored,
}
