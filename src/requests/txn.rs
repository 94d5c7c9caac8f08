//! Transactions: [`crate::types::Txn`] sent as one etcd Txn request, the answer read back into
//! [`TxnResponse`]. One attempt on one member's client: a transaction is retried by the caller
//! only where running it twice is harmless.

use crate::error::{Error, Result};
use crate::types::{
    Compare, CompareOp, CompareTarget, KeyValue, Txn, TxnOp, TxnOpResponse, TxnResponse,
};
use etcd_client as ec;

/// Runs `txn` once.
pub(crate) async fn run(mut client: ec::Client, txn: &Txn) -> Result<TxnResponse> {
    let resp = client
        .txn(to_etcd(txn))
        .await
        .map_err(|e| Error::from_etcd("txn", e))?;
    Ok(from_etcd(&resp))
}

fn to_etcd(txn: &Txn) -> ec::Txn {
    ec::Txn::new()
        .when(txn.compare.iter().map(compare).collect::<Vec<_>>())
        .and_then(txn.success.iter().map(op).collect::<Vec<_>>())
        .or_else(txn.failure.iter().map(op).collect::<Vec<_>>())
}

fn compare(c: &Compare) -> ec::Compare {
    let op = match c.op {
        CompareOp::Equal => ec::CompareOp::Equal,
        CompareOp::NotEqual => ec::CompareOp::NotEqual,
        CompareOp::Greater => ec::CompareOp::Greater,
        CompareOp::Less => ec::CompareOp::Less,
    };
    let key = c.key.clone();
    let cmp = match &c.target {
        CompareTarget::Value(v) => ec::Compare::value(key, op, v.clone()),
        CompareTarget::Version(n) => ec::Compare::version(key, op, *n),
        CompareTarget::CreateRevision(n) => ec::Compare::create_revision(key, op, *n),
        CompareTarget::ModRevision(n) => ec::Compare::mod_revision(key, op, *n),
        CompareTarget::Lease(n) => ec::Compare::lease(key, op, *n),
    };
    if c.range_end.is_empty() {
        cmp
    } else {
        cmp.with_range(c.range_end.clone())
    }
}

fn op(o: &TxnOp) -> ec::TxnOp {
    match o {
        TxnOp::Put {
            key,
            value,
            lease,
            prev_kv,
        } => {
            let mut opts = ec::PutOptions::new();
            if *lease != 0 {
                opts = opts.with_lease(*lease);
            }
            if *prev_kv {
                opts = opts.with_prev_key();
            }
            ec::TxnOp::put(key.clone(), value.clone(), Some(opts))
        }
        TxnOp::Range {
            key,
            range_end,
            limit,
            revision,
            keys_only,
        } => {
            let mut opts = ec::GetOptions::new();
            if !range_end.is_empty() {
                opts = opts.with_range(range_end.clone());
            }
            if *limit > 0 {
                opts = opts.with_limit(*limit);
            }
            if *revision > 0 {
                opts = opts.with_revision(*revision);
            }
            if *keys_only {
                opts = opts.with_keys_only();
            }
            ec::TxnOp::get(key.clone(), Some(opts))
        }
        TxnOp::Delete {
            key,
            range_end,
            prev_kv,
        } => {
            let mut opts = ec::DeleteOptions::new();
            if !range_end.is_empty() {
                opts = opts.with_range(range_end.clone());
            }
            if *prev_kv {
                opts = opts.with_prev_key();
            }
            ec::TxnOp::delete(key.clone(), Some(opts))
        }
        TxnOp::Txn(t) => ec::TxnOp::txn(to_etcd(t)),
    }
}

fn from_etcd(resp: &ec::TxnResponse) -> TxnResponse {
    let responses = resp
        .op_responses()
        .into_iter()
        .map(|r| match r {
            ec::TxnOpResponse::Put(mut p) => TxnOpResponse::Put {
                prev: p.take_prev_key().map(KeyValue::from),
            },
            ec::TxnOpResponse::Get(mut g) => TxnOpResponse::Range {
                count: g.count(),
                more: g.more(),
                kvs: g.take_kvs().into_iter().map(KeyValue::from).collect(),
            },
            ec::TxnOpResponse::Delete(mut d) => TxnOpResponse::Delete {
                deleted: d.deleted(),
                prev_kvs: d.take_prev_kvs().into_iter().map(KeyValue::from).collect(),
            },
            ec::TxnOpResponse::Txn(t) => TxnOpResponse::Txn(from_etcd(&t)),
        })
        .collect();
    TxnResponse {
        succeeded: resp.succeeded(),
        revision: resp.header().map(|h| h.revision()).unwrap_or(0),
        responses,
    }
}
