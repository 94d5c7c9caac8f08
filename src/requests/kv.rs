//! Key-value requests: one attempt each, on one member's client (the caller retries them
//! through [`crate::transport::retry`] where that is safe).

use crate::error::{Error, Result};
use crate::requests::range::prefix_end;
use crate::types::{KeyValue, Kvs, PutMode};
use etcd_client::{Compare, CompareOp, DeleteOptions, PutOptions, Txn, TxnOp, TxnOpResponse};

/// Operations per transaction when keys are put or deleted together (etcd's default
/// `--max-txn-ops` is 128).
pub(crate) const TXN_OPS: usize = 128;

/// Refuses the empty key (etcd would read it as "no key").
pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("key is empty"));
    }
    Ok(())
}

/// The value of one key (0 or 1 entries), at revision `at` (0: the latest).
pub(crate) async fn get(mut c: etcd_client::Client, key: &[u8], at: i64) -> Result<Kvs> {
    let opts = (at > 0).then(|| etcd_client::GetOptions::new().with_revision(at));
    let mut resp = c
        .get(key, opts)
        .await
        .map_err(|e| Error::from_etcd("get", e))?;
    let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
    let kvs = resp.take_kvs().into_iter().map(KeyValue::from).collect();
    Ok(Kvs { revision, kvs })
}

/// Deletes `key`, or every key under it when `prefix`; returns what was deleted.
pub(crate) async fn delete(c: etcd_client::Client, key: &[u8], prefix: bool) -> Result<Kvs> {
    let end = if prefix { prefix_end(key) } else { Vec::new() };
    delete_range(c, key, &end).await
}

/// Deletes `key`, or every key in `[key, end)` when `end` is not empty; returns what was
/// deleted.
pub(crate) async fn delete_range(
    mut c: etcd_client::Client,
    key: &[u8],
    end: &[u8],
) -> Result<Kvs> {
    let mut opts = DeleteOptions::new().with_prev_key();
    if !end.is_empty() {
        opts = opts.with_range(end.to_vec());
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
}

/// The error of a put that `mode` refused.
pub(crate) fn refused(key: &[u8], mode: PutMode) -> Error {
    let key = String::from_utf8_lossy(key);
    match mode {
        PutMode::IfAbsent => Error::Exists(format!("key {key:?} exists")),
        _ => Error::NotFound(format!("key {key:?} not found")),
    }
}

/// One put request (a transaction when `mode` sets a condition): (applied, kvs). Applied:
/// the previous value (0 or 1 entries). Refused by `mode`: the value that is there
/// (`IfAbsent`; the transaction reads it in the same request) or nothing (`IfPresent`).
pub(crate) async fn put_cond(
    mut c: etcd_client::Client,
    key: &[u8],
    value: &[u8],
    lease: i64,
    mode: PutMode,
) -> Result<(bool, Kvs)> {
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
        return Ok((true, Kvs { revision, kvs }));
    }
    // create_revision == 0 means "the key does not exist".
    let cmp = match mode {
        PutMode::IfAbsent => CompareOp::Equal,
        _ => CompareOp::Greater,
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
    Ok((resp.succeeded(), Kvs { revision, kvs }))
}

fn put_error(e: etcd_client::Error, lease: i64) -> Error {
    match Error::from_etcd("put", e) {
        e if e.is_lease_not_found() => Error::NotFound(format!("lease {lease:x}: {}", e.detail())),
        other => other,
    }
}

/// Deletes `keys`, `TXN_OPS` per transaction (one request for a registry's usual few keys; a
/// single key is a plain delete, which etcd serves faster than a transaction).
pub(crate) async fn delete_all(mut client: etcd_client::Client, keys: &[Vec<u8>]) -> Result<()> {
    if let [key] = keys {
        client
            .delete(key.as_slice(), None)
            .await
            .map_err(|e| Error::from_etcd("delete", e))?;
        return Ok(());
    }
    for chunk in keys.chunks(TXN_OPS) {
        let ops: Vec<TxnOp> = chunk
            .iter()
            .map(|k| TxnOp::delete(k.as_slice(), None::<DeleteOptions>))
            .collect();
        client
            .txn(Txn::new().and_then(ops))
            .await
            .map_err(|e| Error::from_etcd("delete", e))?;
    }
    Ok(())
}
