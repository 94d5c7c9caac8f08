//! Leader election ([`Election`]) on etcd's election service, held under a lease. Campaigning
//! waits (bounded) until every earlier candidate is gone; leadership is then held until
//! `resign`, drop, or its loss, which is reported and never repaired (see [`crate::held`]):
//! a process that wants to lead again campaigns again, knowing it lost in between.

use crate::dispatch::Sink;
use crate::error::{Error, Result};
use crate::held::{await_waiter_gone, Held};
use crate::kv::Client;
use crate::lock::Lease;
use crate::requests::election::{campaign, leader, proclaim, resign};
use crate::requests::kv::check_key;
use crate::runtime;
use crate::transport::{once, retry};
use crate::types::{KeyValue, LeaderKey};
use std::time::Duration;

/// A held leadership. Dropping it resigns (best effort, bounded by the request timeout).
pub struct Election {
    client: Client,
    leader: LeaderKey,
    held: Held,
}

impl Election {
    /// Waits at most `wait` until `value` leads election `name` under `lease`. `on_lost` (on
    /// the callback pool, once) is told if leadership is lost while held. Fails with
    /// `Timeout` when another still leads after `wait` (this process is then no candidate).
    pub fn campaign(
        client: &Client,
        name: &[u8],
        value: &[u8],
        lease: Lease,
        wait: Duration,
        on_lost: Option<Sink<Error>>,
    ) -> Result<Election> {
        check_key(name)?;
        let (lease_id, kept) = lease.take(client)?;
        let conn = client.session.conn().clone();
        let won = runtime::block_on(once(&conn, wait, "campaign", |c| {
            campaign(c, name, value, lease_id)
        }))?;
        let (leader, revision) = match won {
            Ok(w) => w,
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
                        "campaign {:?}: lease {lease_id:x} does not exist",
                        String::from_utf8_lossy(name)
                    )),
                    other => other,
                });
            }
        };
        let what = format!(
            "leadership of {} ({})",
            String::from_utf8_lossy(name),
            String::from_utf8_lossy(&leader.key)
        );
        let held = Held::new(
            conn,
            what,
            leader.key.clone(),
            value.to_vec(),
            revision,
            kept,
            on_lost,
        );
        Ok(Election {
            client: client.clone(),
            leader,
            held,
        })
    }

    /// Who leads: this process's leader key (name, key, creation revision, lease).
    pub fn leader_key(&self) -> &LeaderKey {
        &self.leader
    }

    /// `Err(Lost)` once leadership is lost.
    pub fn check(&self) -> Result<()> {
        self.held.check()
    }

    /// Announces a new value without another election. `Err(Lost)` when no longer leading.
    pub fn proclaim(&self, value: &[u8]) -> Result<()> {
        self.held.check()?;
        let conn = self.client.session.conn();
        let limit = self.client.opts.request_timeout;
        runtime::block_on(retry(conn, limit, "proclaim", |c| {
            proclaim(c, &self.leader, value)
        }))?
        .map(|_| ())
        .map_err(|e| {
            if e.is_not_leader() {
                // Lost before the watch said so: the same loss, reported as one.
                Error::Lost(e.detail().to_owned())
            } else {
                e
            }
        })
    }

    /// Gives up leadership (once: later calls do nothing). `Err(Lost)` if it was lost before.
    pub fn resign(&self) -> Result<()> {
        self.release()
    }

    fn release(&self) -> Result<()> {
        let (leader, limit) = (&self.leader, self.client.opts.request_timeout);
        self.held.give_back(limit, "resign", |c| resign(c, leader))
    }
}

impl std::fmt::Debug for Election {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Election")
            .field("leader", &self.leader)
            .finish()
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        if let Err(e) = self.release() {
            if !matches!(e, Error::Lost(_)) {
                log::warn!(target: "etcd_sd", "resign on drop: {e}");
            }
        }
    }
}

/// The current leader of election `name` (key and value), `NotFound` when none leads.
pub fn current_leader(client: &Client, name: &[u8]) -> Result<KeyValue> {
    check_key(name)?;
    let conn = client.session.conn();
    runtime::block_on(retry(conn, client.opts.request_timeout, "leader", |c| {
        leader(c, name)
    }))?
    .map(|(kv, _)| kv)
}
