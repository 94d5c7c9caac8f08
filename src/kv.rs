//! The general etcd client: plain key-value and lease calls over the same shared connections,
//! retry and failover as registries and discoveries. The C ABI's `etcd_sd_client` and the
//! etcd-cpp-apiv3 compatibility headers stand on it.
//!
//! Every call blocks the calling thread for at most the request timeout (the first call on a
//! connection may also spend up to the connect timeout dialling). Keep-alives and watches made
//! from a client ([`Client::keep_alive`], [`crate::watch`]) share the connection's one
//! keep-alive stream and the resumable watch of the discovery.

use crate::client::{self, retry, Shared};
use crate::error::{Error, Result};
use crate::lease::KeptLease;
use crate::listing;
use crate::options::Options;
use crate::runtime;
use etcd_client::{Compare, CompareOp, DeleteOptions, PutOptions, Txn, TxnOp, TxnOpResponse};
use std::sync::Arc;

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

/// A general etcd client. Cheap to create (no I/O until the first call) and to share.
#[derive(Clone)]
pub struct Client {
    pub(crate) conn: Arc<Shared>,
    pub(crate) opts: Options,
}

impl Client {
    /// A client for `opts`; connections are shared with every object of the same settings.
    pub fn new(opts: &Options) -> Result<Self> {
        Ok(Client {
            conn: client::connect(opts)?,
            opts: opts.clone(),
        })
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    fn run<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T>
    where
        F: FnMut(etcd_client::Client) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        runtime::block_on(retry(&self.conn, self.opts.request_timeout, what, attempt))?
            .map_err(|e| client::first_contact_error(e, &self.opts))
    }

    /// Puts `key -> value`, under `lease` when it is not 0, if `mode` allows; returns the
    /// previous value (0 or 1 entries). A lease kept by a [`KeptLease`] of this process is
    /// translated to its current id (it changes when the lease is lost and re-granted) and
    /// the key is put back under every later lease of it.
    pub fn put(&self, key: &[u8], value: &[u8], lease: i64, mode: PutMode) -> Result<Kvs> {
        check_key(key)?;
        if lease != 0 {
            if let Some(kept) = self.conn.leases.lookup(lease) {
                return kept.put(key, value, mode, self.opts.request_timeout);
            }
        }
        self.run("put", |c| put_once(c, key, value, lease, mode))
    }

    /// The value of one key (0 or 1 entries).
    pub fn get(&self, key: &[u8]) -> Result<Kvs> {
        check_key(key)?;
        let kvs = self.run("get", |mut c| async move {
            let mut resp = c
                .get(key, None)
                .await
                .map_err(|e| Error::from_etcd("get", e))?;
            let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
            let kvs = resp.take_kvs().into_iter().map(KeyValue::from).collect();
            Ok(Kvs { revision, kvs })
        })?;
        self.conn.listings.record(key, false, kvs.revision);
        Ok(kvs)
    }

    /// Every key under `prefix` (at most `limit` when `limit > 0`), in key order, read at one
    /// revision. Recorded as "listed at that revision", so that a watch on the same prefix
    /// started right after (without a revision) continues from there: see [`crate::watch`].
    pub fn range(&self, prefix: &[u8], limit: i64) -> Result<Kvs> {
        check_key(prefix)?;
        let (kvs, revision) = self.run("range", |c| listing::list(c, prefix, limit, 0))?;
        if limit <= 0 {
            self.conn.listings.record(prefix, true, revision);
        }
        Ok(Kvs { revision, kvs })
    }

    /// Deletes `key`, or every key under it when `prefix`; returns what was deleted.
    pub fn delete(&self, key: &[u8], prefix: bool) -> Result<Kvs> {
        check_key(key)?;
        self.conn.leases.forget(key, prefix);
        self.run("delete", |mut c| async move {
            let mut opts = DeleteOptions::new().with_prev_key();
            if prefix {
                opts = opts.with_range(listing::prefix_end(key));
            }
            let mut resp = c
                .delete(key, Some(opts))
                .await
                .map_err(|e| Error::from_etcd("delete", e))?;
            let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
            let kvs = resp
                .take_prev_kvs()
                .into_iter()
                .map(KeyValue::from)
                .collect();
            Ok(Kvs { revision, kvs })
        })
    }

    /// Grants a lease of `ttl_seconds`; returns its id. Not kept alive (see [`Self::keep_alive`]).
    pub fn lease_grant(&self, ttl_seconds: i64) -> Result<i64> {
        if ttl_seconds <= 0 {
            return Err(Error::invalid(format!(
                "ttl must be > 0 seconds, got {ttl_seconds}"
            )));
        }
        self.run("lease grant", |c| grant(c, ttl_seconds))
    }

    /// Revokes a lease (its keys are deleted). An unknown or expired lease is `NotFound`.
    /// A lease kept by a [`KeptLease`] of this process is revoked under its current id, and
    /// its keep-alive stops recovering it.
    pub fn lease_revoke(&self, id: i64) -> Result<()> {
        let id = match self.conn.leases.lookup(id) {
            Some(kept) => kept.retire(),
            None => id,
        };
        self.run("lease revoke", |c| revoke(c, id))
    }

    /// (TTL left, granted TTL) of a lease in seconds; TTL left is -1 when it does not exist.
    pub fn lease_ttl(&self, id: i64) -> Result<(i64, i64)> {
        let id = self.conn.leases.lookup(id).map(|k| k.id()).unwrap_or(id);
        self.run("lease time-to-live", |mut c| async move {
            let resp = c
                .lease_time_to_live(id, None)
                .await
                .map_err(|e| Error::from_etcd("lease time-to-live", e))?;
            Ok((resp.ttl(), resp.granted_ttl()))
        })
    }

    /// Keeps a lease alive: `lease` when not 0, else a new one of `ttl_seconds`. See
    /// [`KeptLease`] for what happens when the lease is lost.
    pub fn keep_alive(&self, ttl_seconds: i64, lease: i64) -> Result<KeptLease> {
        KeptLease::new(&self.conn, &self.opts, ttl_seconds, lease)
    }

    /// The status of the member that answers (with several endpoints, the current one: give
    /// a client one endpoint to ask that member). Retried like a read.
    pub fn status(&self) -> Result<MemberStatus> {
        self.run("status", |mut c| async move {
            let s = c
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
        })
    }
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("key is empty"));
    }
    Ok(())
}

/// One put request (a transaction when `mode` sets a condition).
pub(crate) async fn put_once(
    mut c: etcd_client::Client,
    key: &[u8],
    value: &[u8],
    lease: i64,
    mode: PutMode,
) -> Result<Kvs> {
    let mut opts = PutOptions::new().with_prev_key();
    if lease != 0 {
        opts = opts.with_lease(lease);
    }
    if mode == PutMode::Always {
        let mut resp = c
            .put(key, value, Some(opts))
            .await
            .map_err(|e| put_error(e, lease))?;
        let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
        let kvs = resp
            .take_prev_key()
            .map(KeyValue::from)
            .into_iter()
            .collect();
        return Ok(Kvs { revision, kvs });
    }
    // create_revision == 0 means "the key does not exist".
    let (cmp, what) = match mode {
        PutMode::IfAbsent => (CompareOp::Equal, "exists"),
        _ => (CompareOp::Greater, "not found"),
    };
    let txn = Txn::new()
        .when([Compare::create_revision(key, cmp, 0)])
        .and_then([TxnOp::put(key, value, Some(opts))])
        .or_else([TxnOp::get(key, None)]);
    let resp = c.txn(txn).await.map_err(|e| put_error(e, lease))?;
    let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
    let mut kvs = Vec::new();
    for op in resp.op_responses() {
        match op {
            TxnOpResponse::Put(mut p) => kvs.extend(p.take_prev_key().map(KeyValue::from)),
            TxnOpResponse::Get(mut g) => kvs.extend(g.take_kvs().into_iter().map(KeyValue::from)),
            _ => {}
        }
    }
    if !resp.succeeded() {
        let key = String::from_utf8_lossy(key);
        return Err(match mode {
            PutMode::IfAbsent => Error::Exists(format!("key {key:?} {what}")),
            _ => Error::NotFound(format!("key {key:?} {what}")),
        });
    }
    Ok(Kvs { revision, kvs })
}

fn put_error(e: etcd_client::Error, lease: i64) -> Error {
    match Error::from_etcd("put", e) {
        Error::Etcd(m) if m.contains("requested lease not found") => {
            Error::NotFound(format!("lease {lease:x}: {m}"))
        }
        other => other,
    }
}

pub(crate) async fn grant(mut client: etcd_client::Client, ttl: i64) -> Result<i64> {
    let resp = client
        .lease_grant(ttl, None)
        .await
        .map_err(|e| Error::from_etcd("lease grant", e))?;
    if !resp.error().is_empty() {
        return Err(Error::Etcd(format!("lease grant: {}", resp.error())));
    }
    Ok(resp.id())
}

pub(crate) async fn revoke(mut client: etcd_client::Client, id: i64) -> Result<()> {
    match client.lease_revoke(id).await {
        Ok(_) => Ok(()),
        Err(e) => Err(match Error::from_etcd("lease revoke", e) {
            Error::Etcd(m) if m.contains("lease not found") => {
                Error::NotFound(format!("lease {id:x}: {m}"))
            }
            other => other,
        }),
    }
}

/// What [`Client::status`] returns: one member's view of the cluster.
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
