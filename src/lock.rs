//! A distributed lock ([`Lock`]) on etcd's lock service, held under a lease. Acquiring waits
//! (bounded) until every earlier holder and waiter is gone; the lock is then held until
//! `unlock`, drop, or its loss, which is reported and never repaired (see [`crate::held`]).

use crate::dispatch::Sink;
use crate::error::{Error, Result};
use crate::held::{await_waiter_gone, Held};
use crate::kv::Client;
use crate::requests::kv::{check_key, get};
use crate::requests::lock::{lock, unlock};
use crate::runtime;
use crate::session::kept::{Heal, KeptLease};
use crate::transport::{once, retry};
use std::time::Duration;

/// Which lease a lock or a campaign is held under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    /// A lease of its own with this TTL in seconds, granted and kept alive by the library
    /// (never re-granted if lost) and revoked on release.
    Own(i64),
    /// The caller's lease: the caller keeps it alive (and revokes it).
    Given(i64),
}

impl Lease {
    /// Grants (for `Own`) the lease; returns its id and the kept lease.
    pub(crate) fn take(self, client: &Client) -> Result<(i64, Option<KeptLease>)> {
        match self {
            Lease::Own(ttl) => {
                let kept =
                    KeptLease::new(&client.session.home(), &client.opts, ttl, 0, Heal::Never)?;
                Ok((kept.id(), Some(kept)))
            }
            Lease::Given(0) => Err(Error::invalid("lease 0: give a granted lease")),
            Lease::Given(id) => Ok((id, None)),
        }
    }
}

/// A held lock. Dropping it unlocks (best effort, bounded by the request timeout).
pub struct Lock {
    client: Client,
    name: Vec<u8>,
    key: Vec<u8>,
    revision: i64,
    lease: i64,
    held: Held,
}

impl Lock {
    /// Waits at most `wait` until lock `name` is held under `lease`. `on_lost` (on the
    /// callback pool, once) is told if the lock is lost while held. Fails with `Timeout` when
    /// the lock is still held by another after `wait` (this process then holds nothing and
    /// waits no longer), `NotFound` when a given lease does not exist.
    pub fn acquire(
        client: &Client,
        name: &[u8],
        lease: Lease,
        wait: Duration,
        on_lost: Option<Sink<Error>>,
    ) -> Result<Lock> {
        check_key(name)?;
        let (lease_id, kept) = lease.take(client)?;
        let conn = client.session.conn().clone();
        let acquired = runtime::block_on(once(&conn, wait, "lock", |c| lock(c, name, lease_id)))?;
        let (key, _) = match acquired {
            Ok(k) => k,
            Err(e) => {
                match &kept {
                    Some(k) => {
                        let _ = k.revoke();
                    }
                    None if e.is_transient() => await_waiter_gone(&conn, name, lease_id),
                    None => {}
                }
                return Err(match e {
                    e if e.is_lease_not_found() => Error::NotFound(format!(
                        "lock {:?}: lease {lease_id:x} does not exist",
                        String::from_utf8_lossy(name)
                    )),
                    other => other,
                });
            }
        };
        // The owner key as etcd holds it: its create revision is the fencing token.
        let limit = client.opts.request_timeout;
        let read = runtime::block_on(retry(&conn, limit, "lock", |c| get(c, &key, 0)))?;
        let kv = match read {
            Ok(kvs) => kvs.kvs.into_iter().next(),
            Err(e) => {
                let _ = runtime::block_on(once(&conn, limit, "unlock", |c| unlock(c, &key)));
                return Err(e);
            }
        };
        let Some(kv) = kv else {
            return Err(Error::Lost(format!(
                "lock {:?}: lost as soon as it was acquired (its lease ended)",
                String::from_utf8_lossy(name)
            )));
        };
        let what = format!("lock {}", String::from_utf8_lossy(&key));
        let held = Held::new(
            conn,
            what,
            key.clone(),
            kv.value,
            kv.mod_revision,
            kept,
            on_lost,
        );
        Ok(Lock {
            client: client.clone(),
            name: name.to_vec(),
            key,
            revision: kv.create_revision,
            lease: lease_id,
            held,
        })
    }

    /// The lock's name.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The owner key (the name, '/', the lease id in hex): what etcd-cpp-apiv3's `lock_key`
    /// is and `unlock` takes.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The revision the owner key was created at: a fencing token, larger for every later
    /// holder. Pass it to the resource the lock guards, which refuses smaller ones.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The lease the lock is held under.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// `Err(Lost)` once the lock is lost (its lease ended or its key was deleted).
    pub fn check(&self) -> Result<()> {
        self.held.check()
    }

    /// Releases the lock (once: later calls do nothing). `Err(Lost)` if it was lost before
    /// (nothing is released then: it was not held any more).
    pub fn unlock(&self) -> Result<()> {
        self.release()
    }

    fn release(&self) -> Result<()> {
        let (key, limit) = (&self.key, self.client.opts.request_timeout);
        self.held.give_back(limit, "unlock", |c| unlock(c, key))
    }
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("revision", &self.revision)
            .field("lease", &self.lease)
            .finish()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            return; // cannot block here: the lease (if ours) expires after its TTL
        }
        if let Err(e) = self.release() {
            if !matches!(e, Error::Lost(_)) {
                log::warn!(target: "etcd_sd", "unlock on drop: {e}");
            }
        }
    }
}
