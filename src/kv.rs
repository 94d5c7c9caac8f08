//! The general etcd client: plain key-value and lease calls over the same shared connections,
//! retry and failover as registries and discoveries. The C ABI's `etcd_sd_client` and the
//! etcd-cpp-apiv3 compatibility headers stand on it.
//!
//! Every call blocks the calling thread for at most the request timeout (the first call on a
//! connection may also spend up to the connect timeout dialling). Keep-alives and watches made
//! from a client ([`Client::keep_alive`], [`crate::watch`]) share the connection's one
//! keep-alive stream and the resumable watch of the discovery.

use crate::error::{Error, Result};
use crate::options::Options;
use crate::requests::kv::{self as kv_req, check_key};
use crate::requests::{cluster, lease as lease_req, lock as lock_req, range, txn as txn_req};
use crate::runtime;
use crate::session::kept::{Heal, KeptLease, CLIENT_TAG};
use crate::session::{session, Session};
use crate::transport::{first_contact_error, once, retry, retry_leaderless};
use crate::types::{LeaseInfo, Member, PutReply, Txn, TxnOp, TxnResponse};

pub use crate::types::MemberStatus;
use std::sync::Arc;

pub use crate::types::{KeyValue, Kvs, PutMode};

/// A general etcd client. Cheap to create (no I/O until the first call) and to share.
#[derive(Clone)]
pub struct Client {
    pub(crate) session: Arc<Session>,
    pub(crate) opts: Options,
}

impl Client {
    /// A client for `opts`; connections are shared with every object of the same settings.
    pub fn new(opts: &Options) -> Result<Self> {
        Ok(Client {
            session: session(opts)?,
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
        runtime::block_on(retry(
            self.session.conn(),
            self.opts.request_timeout,
            what,
            attempt,
        ))?
        .map_err(|e| first_contact_error(e, &self.opts))
    }

    /// Puts `key -> value`, under `lease` when it is not 0, if `mode` allows; returns the
    /// previous value (0 or 1 entries). A lease kept by a [`KeptLease`] of this process is
    /// translated to its current id (it changes when the lease is lost and re-granted) and
    /// the key is put back under every later lease of it.
    pub fn put(&self, key: &[u8], value: &[u8], lease: i64, mode: PutMode) -> Result<Kvs> {
        let reply = self.put_reply(key, value, lease, mode)?;
        if !reply.applied {
            return Err(kv_req::refused(key, mode));
        }
        Ok(reply.kvs)
    }

    /// [`Self::put`] with the whole answer: a refusal by `mode` is a reply with `applied`
    /// false, with the value that is there for `IfAbsent` (read in the same request), and
    /// `lease` is the lease the key is under (a kept lease's current id).
    pub fn put_reply(
        &self,
        key: &[u8],
        value: &[u8],
        lease: i64,
        mode: PutMode,
    ) -> Result<PutReply> {
        check_key(key)?;
        if lease != 0 {
            if let Some(kept) = self.session.kept(lease) {
                let limit = self.opts.request_timeout;
                return kept.put_reply(key, value, mode, CLIENT_TAG, limit);
            }
        }
        let (applied, kvs) = self.run("put", |c| kv_req::put_cond(c, key, value, lease, mode))?;
        Ok(PutReply {
            applied,
            lease,
            kvs,
        })
    }

    /// The value of one key (0 or 1 entries).
    pub fn get(&self, key: &[u8]) -> Result<Kvs> {
        check_key(key)?;
        let kvs = self.run("get", |c| kv_req::get(c, key, 0))?;
        self.session.listings.record(key, false, kvs.revision);
        Ok(kvs)
    }

    /// Every key under `prefix` (at most `limit` when `limit > 0`), in key order, read at one
    /// revision. Recorded as "listed at that revision", so that a watch on the same prefix
    /// started right after (without a revision) continues from there: see [`crate::watch`].
    pub fn range(&self, prefix: &[u8], limit: i64) -> Result<Kvs> {
        check_key(prefix)?;
        let (kvs, revision) = self.run("range", |c| range::list(c, prefix, limit, 0))?;
        if limit <= 0 {
            self.session.listings.record(prefix, true, revision);
        }
        Ok(Kvs { revision, kvs })
    }

    /// Deletes `key`, or every key under it when `prefix`; returns what was deleted.
    pub fn delete(&self, key: &[u8], prefix: bool) -> Result<Kvs> {
        check_key(key)?;
        self.session.forget(key, prefix);
        self.run("delete", |c| kv_req::delete(c, key, prefix))
    }

    /// Grants a lease of `ttl_seconds`; returns its id. Not kept alive (see [`Self::keep_alive`]).
    pub fn lease_grant(&self, ttl_seconds: i64) -> Result<i64> {
        Ok(self.lease_grant_info(ttl_seconds)?.id)
    }

    /// [`Self::lease_grant`] with etcd's whole answer: the TTL it granted (etcd raises a TTL
    /// under its minimum) and the revision.
    pub fn lease_grant_info(&self, ttl_seconds: i64) -> Result<LeaseInfo> {
        if ttl_seconds <= 0 {
            return Err(Error::invalid(format!(
                "ttl must be > 0 seconds, got {ttl_seconds}"
            )));
        }
        self.run("lease grant", |c| lease_req::grant(c, ttl_seconds))
    }

    /// Revokes a lease (its keys are deleted). An unknown or expired lease is `NotFound`.
    /// A lease kept by a [`KeptLease`] of this process is revoked under its current id, and
    /// its keep-alive stops recovering it.
    pub fn lease_revoke(&self, id: i64) -> Result<()> {
        self.lease_revoke_info(id).map(|_| ())
    }

    /// [`Self::lease_revoke`], answering the id revoked (a kept lease's current one) and the
    /// revision.
    pub fn lease_revoke_info(&self, id: i64) -> Result<LeaseInfo> {
        // A kept lease revoked by its own process ends for good: its keep-alive's `check`
        // fails from now on (the lease is not granted again behind its owner's back). It
        // stops being renewed and recovered first, and its owner is told only once the
        // revoke is done: told before, an owner that reacts at once (a lock freed in its
        // `on_lost` revokes its lease) could revoke it first and make this call NotFound.
        let Some(kept) = self.session.kept(id) else {
            return self.run("lease revoke", |c| lease_req::revoke(c, id));
        };
        let current = kept.retire();
        let revoked = self.run("lease revoke", |c| lease_req::revoke(c, current));
        kept.end(Error::Lost(format!(
            "lease {id:x} was revoked by this process"
        )));
        revoked
    }

    /// (TTL left, granted TTL) of a lease in seconds; TTL left is -1 when it does not exist.
    pub fn lease_ttl(&self, id: i64) -> Result<(i64, i64)> {
        let info = self.lease_ttl_info(id)?;
        Ok((info.ttl, info.granted_ttl))
    }

    /// [`Self::lease_ttl`] with the id asked about (a kept lease's current one) and the
    /// revision; `ttl` is the seconds left.
    pub fn lease_ttl_info(&self, id: i64) -> Result<LeaseInfo> {
        let id = self.session.kept(id).map(|k| k.id()).unwrap_or(id);
        self.run("lease time-to-live", |c| lease_req::time_to_live(c, id))
    }

    /// Keeps a lease alive: `lease` when not 0, else a new one of `ttl_seconds`. See
    /// [`KeptLease`] for what happens when the lease is lost.
    pub fn keep_alive(&self, ttl_seconds: i64, lease: i64) -> Result<KeptLease> {
        KeptLease::new(
            &self.session.home(),
            &self.opts,
            ttl_seconds,
            lease,
            Heal::Recover,
        )
    }

    /// The value of one key as it was at `revision` (0: now). A compacted revision is
    /// `InvalidArgument` (etcd's "required revision has been compacted").
    pub fn get_at(&self, key: &[u8], revision: i64) -> Result<Kvs> {
        check_key(key)?;
        check_revision(revision)?;
        self.run("get", |c| kv_req::get(c, key, revision))
    }

    /// Every key in `[from, end)` (every key starting with `from` when `end` is empty; at
    /// most `limit` when > 0), in key order, at `revision` (0: now).
    pub fn range_at(&self, from: &[u8], end: &[u8], limit: i64, revision: i64) -> Result<Kvs> {
        check_key(from)?;
        check_revision(revision)?;
        let end = if end.is_empty() {
            range::prefix_end(from)
        } else {
            end.to_vec()
        };
        let (kvs, revision) = self.run("range", |c| {
            range::list_range(c, from, end.clone(), limit, revision)
        })?;
        Ok(Kvs { revision, kvs })
    }

    /// Deletes every key in `[from, end)` (`end` "\0": every key from `from` on); returns
    /// what was deleted. No keep-alive of this process puts a deleted key back.
    pub fn delete_range(&self, from: &[u8], end: &[u8]) -> Result<Kvs> {
        check_key(from)?;
        if end.is_empty() {
            return Err(Error::invalid("range end is empty"));
        }
        for k in self.session.kept_keys_in(from, end) {
            self.session.forget(&k, false);
        }
        self.run("delete", |c| kv_req::delete_range(c, from, end))
    }

    /// Runs a transaction. One that only reads is retried across members like any read; one
    /// that writes is sent once (a retry after a lost answer could apply it twice), after
    /// connecting (which is retried).
    pub fn txn(&self, txn: &Txn) -> Result<TxnResponse> {
        check_txn(txn)?;
        if read_only(txn) {
            return self.run("txn", |c| txn_req::run(c, txn));
        }
        runtime::block_on(once(
            self.session.conn(),
            self.opts.request_timeout,
            "txn",
            |c| txn_req::run(c, txn),
        ))?
        .map_err(|e| first_contact_error(e, &self.opts))
    }

    /// Releases the lock whose owner key is `key` (etcd-cpp-apiv3's `unlock(lock_key)`);
    /// returns the revision. Prefer [`crate::lock::Lock::unlock`], which also stops its lease.
    pub fn unlock(&self, key: &[u8]) -> Result<i64> {
        check_key(key)?;
        self.run("unlock", |c| lock_req::unlock(c, key))
    }

    /// Every member of the cluster. Answered even by a member without a leader (a cluster
    /// that lost its quorum still lists its members), as etcdctl does.
    pub fn members(&self) -> Result<Vec<Member>> {
        runtime::block_on(retry_leaderless(
            self.session.conn(),
            self.opts.request_timeout,
            "member list",
            cluster::list,
        ))?
        .map_err(|e| first_contact_error(e, &self.opts))
    }

    /// Adds a member that will listen on `peer_urls` (not started: the cluster waits for it,
    /// and loses its quorum if it never comes). Sent once.
    pub fn member_add(&self, peer_urls: &[String], is_learner: bool) -> Result<Member> {
        if peer_urls.is_empty() {
            return Err(Error::invalid("no peer URL given"));
        }
        runtime::block_on(once(
            self.session.conn(),
            self.opts.request_timeout,
            "member add",
            |c| cluster::add(c, peer_urls, is_learner),
        ))?
        .map_err(|e| first_contact_error(e, &self.opts))
    }

    /// Removes member `id` (`NotFound` when there is no such member).
    pub fn member_remove(&self, id: u64) -> Result<()> {
        self.run("member remove", |c| cluster::remove(c, id))
    }

    /// The ids of every lease etcd holds.
    pub fn leases(&self) -> Result<Vec<i64>> {
        Ok(self.leases_at()?.0)
    }

    /// [`Self::leases`] and the revision when etcd answered.
    pub fn leases_at(&self) -> Result<(Vec<i64>, i64)> {
        self.run("lease leases", lease_req::leases)
    }

    /// The status of the member that answers (with several endpoints, the current one: give
    /// a client one endpoint to ask that member). Retried like a read.
    pub fn status(&self) -> Result<MemberStatus> {
        self.run("status", cluster::status)
    }
}

fn check_revision(revision: i64) -> Result<()> {
    if revision < 0 {
        return Err(Error::invalid(format!(
            "revision must be >= 0, got {revision}"
        )));
    }
    Ok(())
}

/// A transaction etcd would refuse for its shape: say so before sending it.
fn check_txn(txn: &Txn) -> Result<()> {
    for c in &txn.compare {
        check_key(&c.key)?;
    }
    for op in txn.success.iter().chain(&txn.failure) {
        match op {
            TxnOp::Put { key, .. } | TxnOp::Range { key, .. } | TxnOp::Delete { key, .. } => {
                check_key(key)?
            }
            TxnOp::Txn(t) => check_txn(t)?,
        }
    }
    Ok(())
}

fn read_only(txn: &Txn) -> bool {
    txn.success.iter().chain(&txn.failure).all(|op| match op {
        TxnOp::Range { .. } => true,
        TxnOp::Txn(t) => read_only(t),
        _ => false,
    })
}
