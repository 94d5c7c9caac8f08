//! A registry: a set of keys kept in etcd under a lease for the life of the object.
//!
//! By default every registry of a process with the same connection settings and TTL puts its
//! keys under one shared lease ([`crate::session::kept`]), kept alive once through the connection's one
//! keep-alive stream: creating a registry costs no round trip once the process holds that
//! lease, and freeing one deletes its own keys (one request). A crash still removes them all
//! after the TTL. With [`Options::set_own_lease`] a registry gets a lease of its own, revoked
//! when it is freed. Either way, when the lease is lost a new one is granted and every key is
//! put back, and the status callback of each registry says so.

use crate::dispatch::Sink;
use crate::drain;
use crate::error::{Error, Result};
use crate::options::{Options, ValueFormat};
use crate::requests::kv::delete_all;
use crate::requests::lease::revoke;
use crate::runtime;
use crate::session::kept::{self, KeptInner};
use crate::session::session;
use crate::stats::RegistryStats;
use crate::table::address;
use crate::transport::retry;
use crate::types::PutMode;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use crate::types::Status;

/// Keeps a set of keys registered under a lease for the life of the object.
pub struct Registry {
    lease: Arc<KeptInner>,
    /// Names this registry's keys in a shared lease.
    tag: u64,
    own_lease: bool,
    request_timeout: Duration,
    format: ValueFormat,
    closed: bool,
    /// The values as registered, and whether they are in etcd with the draining mark. Held
    /// across a register's put, so that a drain and a register of the same registry are
    /// serialized (a key registered while draining is put marked).
    values: Mutex<Values>,
}

#[derive(Default)]
struct Values {
    draining: bool,
    registered: BTreeMap<String, String>,
}

impl Registry {
    /// Joins the process's shared lease for these settings (granting it first if this is the
    /// first registry), or grants a lease of its own with `opts.own_lease`. Fails with
    /// `Unavailable` when a grant is needed and no endpoint answers within the connect
    /// timeout, unless `opts.wait_for_etcd` is set: then it succeeds and grants in the
    /// background.
    pub fn new(opts: &Options) -> Result<Self> {
        let session = session(opts)?;
        let lease = if opts.own_lease {
            KeptInner::start(&session.home(), opts, opts.ttl_seconds, 0, false)?
        } else {
            session.shared_lease(opts)?
        };
        crate::stats::REGISTRIES.fetch_add(1, Ordering::Relaxed);
        Ok(Registry {
            lease,
            tag: kept::new_tag(),
            own_lease: opts.own_lease,
            request_timeout: opts.request_timeout,
            format: opts.value_format,
            closed: false,
            values: Mutex::default(),
        })
    }

    fn values(&self) -> MutexGuard<'_, Values> {
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn put(&self, key: &str, value: &str) -> Result<()> {
        self.lease
            .put_tagged(
                key.as_bytes(),
                value.as_bytes(),
                PutMode::Always,
                self.tag,
                self.request_timeout,
            )
            .map(|_| ())
    }

    /// Puts `key -> value` under the lease (again, if already registered: the value is
    /// updated). The key stays registered, across lease losses, until `unregister` or drop.
    /// While a `wait_for_etcd` registry has not reached etcd yet, the key is only recorded and
    /// put when the lease is granted. With [`ValueFormat::GoNaming`] the value is first
    /// converted ([`go_naming_value`]): what is registered is the converted value.
    pub fn register(&self, key: &str, value: &str) -> Result<()> {
        // Before taking the registry's lock: a refused call must not wait for a thread that
        // holds it while it waits for the I/O thread (an inline callback runs there).
        runtime::may_block()?;
        if key.is_empty() {
            return Err(Error::invalid("key is empty"));
        }
        let converted;
        let value = match self.format {
            ValueFormat::AsGiven => value,
            ValueFormat::GoNaming => {
                converted = go_naming_value(value)?;
                converted.as_str()
            }
        };
        let mut values = self.values();
        if values.draining {
            self.put(key, &drain::mark(value)?)?;
        } else {
            self.put(key, value)?;
        }
        if values
            .registered
            .insert(key.to_string(), value.to_string())
            .is_none()
        {
            crate::stats::REGISTERED_KEYS.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Marks every key of this registry as draining in etcd (see [`crate::drain`]): tables
    /// stop picking these instances for new calls while calls in flight go on. Keys
    /// registered later are put marked too. Then `unregister` or drop, once the calls in
    /// flight are done; or [`Self::undrain`]. Each key is one put (bounded by the request
    /// timeout); every key is tried, and the first failure is returned. A value the mark
    /// cannot be added to (JSON of no known format) is `InvalidArgument`, before anything is
    /// changed.
    pub fn drain(&self) -> Result<()> {
        self.set_draining(true)
    }

    /// Takes the draining mark away: the keys hold their values as registered again.
    pub fn undrain(&self) -> Result<()> {
        self.set_draining(false)
    }

    /// True after [`Self::drain`] (until [`Self::undrain`]).
    pub fn is_draining(&self) -> bool {
        self.values().draining
    }

    fn set_draining(&self, on: bool) -> Result<()> {
        // Refused before the lock, as in `register`.
        runtime::may_block()?;
        let mut values = self.values();
        let mut puts = Vec::with_capacity(values.registered.len());
        for (key, value) in &values.registered {
            let value = if on {
                drain::mark(value)?
            } else {
                value.clone()
            };
            puts.push((key.clone(), value));
        }
        if values.draining != on {
            let change = if on { 1 } else { -1 };
            crate::stats::REGISTRIES_DRAINING.fetch_add(change, Ordering::Relaxed);
        }
        values.draining = on;
        let mut first_error = None;
        for (key, value) in puts {
            if let Err(e) = self.put(&key, &value) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deletes `key` and stops keeping it registered. Keys this registry did not register are
    /// not touched, and are not an error.
    pub fn unregister(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid("key is empty"));
        }
        // Refused before the lock, as in `register`.
        runtime::may_block()?;
        // Forgotten before the delete, so that a lease recovery running meanwhile does not
        // put it back; remembered again if the delete fails, so that a retry deletes it.
        let mut values = self.values();
        let Some(value) = self.lease.forget_own(key.as_bytes(), self.tag) else {
            return Ok(());
        };
        let registered = values.registered.remove(key);
        if registered.is_some() {
            crate::stats::REGISTERED_KEYS.fetch_sub(1, Ordering::Relaxed);
        }
        if self.lease.id() == 0 {
            return Ok(());
        }
        let key = key.as_bytes().to_vec();
        let conn = self.lease.conn();
        let deleted = runtime::block_on(retry(&conn, self.request_timeout, "unregister", |c| {
            delete_all(c, std::slice::from_ref(&key))
        }))
        .and_then(|r| r);
        if deleted.is_err() {
            self.lease.restore(&key, value, self.tag);
            if let Some(v) = registered {
                values
                    .registered
                    .insert(String::from_utf8_lossy(&key).into_owned(), v);
            }
        }
        deleted
    }

    /// The lease currently holding the keys (it changes after a recovery; 0 before the first
    /// grant of a `wait_for_etcd` registry). Registries sharing a lease report the same id.
    pub fn lease_id(&self) -> i64 {
        self.lease.id()
    }

    /// The number of keys this registry keeps registered.
    pub fn key_count(&self) -> usize {
        self.lease.key_count(Some(self.tag))
    }

    /// What the registry is doing: lease, TTL left, keys, losses and restores, member in use.
    pub fn stats(&self) -> RegistryStats {
        let l = &self.lease;
        RegistryStats {
            lease_id: l.id(),
            lease_ttl: l.ttl(),
            lease_ttl_left: l.ttl_left(),
            keys: self.key_count() as u64,
            lease_losses: l.losses.load(Ordering::Relaxed),
            lease_restores: l.restores.load(Ordering::Relaxed),
            shared_lease: l.is_shared(),
            member: l.conn().current_endpoint(),
        }
    }

    /// Calls `sink` (on the callback pool, never two at once) when the registration is lost
    /// and when it is restored. Replaces any earlier sink; after drop none runs.
    pub fn set_status_sink(&self, sink: Option<Sink<Status>>) {
        self.lease.set_status(self.tag, sink);
    }

    /// Frees the registry: its keys disappear at once (its own lease is revoked; in a shared
    /// lease its keys are deleted). Bounded by the request timeout when etcd is gone (the keys
    /// then expire after the TTL).
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        self.set_status_sink(None);
        {
            let mut values = self.values();
            let keys = std::mem::take(&mut values.registered).len() as i64;
            crate::stats::REGISTERED_KEYS.fetch_sub(keys, Ordering::Relaxed);
            if std::mem::replace(&mut values.draining, false) {
                crate::stats::REGISTRIES_DRAINING.fetch_sub(1, Ordering::Relaxed);
            }
        }
        crate::stats::REGISTRIES.fetch_sub(1, Ordering::Relaxed);
        let conn = self.lease.conn();
        let limit = self.request_timeout;
        let work = if self.own_lease {
            let id = self.lease.retire();
            if id == 0 {
                return Ok(());
            }
            // Retried like any idempotent request, so a dead member in the endpoint list does
            // not turn a graceful exit into a wait for the TTL; "not found" means already gone.
            Box::pin(async move {
                match retry(&conn, limit, "lease revoke", |c| revoke(c, id)).await {
                    Err(Error::NotFound(_)) => Ok(()),
                    other => other.map(|_| ()),
                }
            })
                as std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>
        } else {
            let keys = self.lease.take_own(self.tag);
            if keys.is_empty() || self.lease.id() == 0 {
                return Ok(());
            }
            Box::pin(
                async move { retry(&conn, limit, "unregister", |c| delete_all(c, &keys)).await },
            )
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Dropped inside async code: cannot block here, so finish in the background.
            runtime::spawn(work);
            return Ok(());
        }
        let r = runtime::block_on(work).and_then(|r| r);
        if let Err(e) = &r {
            log::warn!(target: "etcd_sd", "registry: {e}; keys expire after the TTL instead");
        }
        r
    }
}

/// `value` as Go's etcd `naming/endpoints` manager writes an endpoint
/// (`endpoints.Manager.AddEndpoint`): the `json.Marshal` of its stored record
/// (`internal.Update{Op, Addr, Metadata}`, fields without JSON tags, so the members are named
/// as the fields, in that order; `Op` 0 is "add"), e.g.
/// `{"Op":0,"Addr":"10.0.0.5:9000","Metadata":null}`, which the gRPC resolver of etcd 3.4 and
/// 3.5 (`naming/resolver`) and the older grpc-naming watcher read. A plain value
/// `host:port WEIGHT` (or `weight=WEIGHT`) with a weight other than 1 gets
/// `"Metadata":{"weight":WEIGHT}` (and the plain value's metadata pairs, if any, as strings).
/// A JSON object with a non-empty string `Addr` is taken as
/// already in that format and returned as given; any other value is an invalid argument.
pub fn go_naming_value(value: &str) -> Result<String> {
    let bad =
        |why: String| Error::invalid(format!("value {value:?} for the Go naming format: {why}"));
    let e = address::parse(value.as_bytes()).map_err(bad)?;
    if value.trim_start().starts_with('{') {
        let has_addr = serde_json::from_str::<serde_json::Value>(value)
            .ok()
            .is_some_and(|v| v.get("Addr").is_some());
        if !has_addr {
            return Err(bad(
                "a JSON value must be a Go naming one, with \"Addr\"".into()
            ));
        }
        return Ok(value.to_string());
    }
    // Plain metadata pairs (if the plain form has any) go along as strings, the weight as a
    // number; Go's json.Marshal of a map sorts its keys, as serde_json's map does.
    let mut meta: serde_json::Map<String, serde_json::Value> = e
        .meta
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    if e.weight != 1 {
        meta.insert("weight".into(), e.weight.into());
    }
    let addr = serde_json::Value::String(e.addr);
    Ok(match meta.is_empty() {
        true => format!(r#"{{"Op":0,"Addr":{addr},"Metadata":null}}"#),
        false => format!(
            r#"{{"Op":0,"Addr":{addr},"Metadata":{}}}"#,
            serde_json::Value::Object(meta)
        ),
    })
}

/// How long the shared lease outlives the last registry using it, so that a process that
/// frees and creates registries again reuses it (a new registry then costs no round trip).
const LINGER: Duration = Duration::from_secs(30);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.shutdown();
        if !self.own_lease && Arc::strong_count(&self.lease) == 1 {
            let lease = self.lease.clone();
            runtime::spawn(async move {
                tokio::time::sleep(LINGER).await;
                drop(lease);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_naming_values() {
        let g = |v: &str| go_naming_value(v).unwrap();
        let plain = r#"{"Op":0,"Addr":"10.0.0.5:9000","Metadata":null}"#;
        assert_eq!(g("10.0.0.5:9000"), plain);
        assert_eq!(g(" 10.0.0.5:9000 1 "), plain);
        let weighted = r#"{"Op":0,"Addr":"h:1","Metadata":{"weight":3}}"#;
        assert_eq!(g("h:1 weight=3"), weighted);
        let given = r#"{"Addr":"h:1","Metadata":{"zone":"a"}}"#;
        assert_eq!(g(given), given);
        assert!(go_naming_value(r#"{"endpoints":["grpc://h:1"]}"#).is_err());
        assert!(go_naming_value("h:1 0").is_err());
        assert!(go_naming_value("").is_err());
        for v in ["10.0.0.5:9000", "h:1 7", given] {
            let (back, given) = (
                address::parse(g(v).as_bytes()),
                address::parse(v.as_bytes()),
            );
            let (back, given) = (back.unwrap(), given.unwrap());
            assert_eq!((back.addr, back.weight), (given.addr, given.weight));
        }
    }
}
