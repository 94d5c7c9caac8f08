//! A kept lease: a lease the library keeps alive (through the connection's [`Keeper`]) and
//! recovers. It remembers every key put under it through the library; when etcd loses the
//! lease (it expired while etcd was unreachable, it was revoked from outside, etcd restarted
//! past the TTL) it grants a new one, puts every key back under it, and from then on answers
//! to the old id as well: a put that names the old id goes under the new one.
//!
//! Registries of a process share one kept lease per connection settings and TTL (each keeps
//! its own keys in it); a registry may ask for a lease of its own; each compat `KeepAlive`
//! has its own, as its API promises. All of them renew through the same stream.
//!
//! [`Keeper`]: super::keeper::Keeper

use super::book::Book;
use super::keeper::{Keeper, LeaseOwner};
use crate::backoff::Backoff;
use crate::dispatch::{Mailbox, Sink};
use crate::error::{Error, Result};
use crate::options::Options;
use crate::outage::OutageLog;
use crate::requests::kv::{put_cond, refused, TXN_OPS};
use crate::requests::lease::{grant, revoke};
use crate::runtime;
use crate::transport::{first_contact_error, retry, Shared};
use crate::types::{Kvs, PutMode, PutReply, Status};
use etcd_client::{PutOptions, Txn, TxnOp};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

/// A tag naming who put a key under a shared lease (a registry), so it can take back its own.
pub(crate) fn new_tag() -> u64 {
    NEXT_TAG.fetch_add(1, Ordering::Relaxed)
}

/// The tag of keys put through the general client.
pub(crate) const CLIENT_TAG: u64 = 0;

/// What a kept lease does when etcd loses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heal {
    /// Grant a new lease and put every key back (registrations, compat keep-alives).
    Recover,
    /// Report the loss and stop (locks, leaderships): re-granting would let two owners
    /// believe they hold the same thing.
    Never,
}

/// Why a kept lease stopped recovering.
#[derive(Clone, Debug)]
pub struct GaveUp {
    pub lease: i64,
    pub error: Error,
}

/// key -> (value, tag of who put it).
type Keys = BTreeMap<Vec<u8>, (Vec<u8>, u64)>;

/// What a kept lease needs of its connection's session: the transport, the keep-alive stream
/// and the book of lease ids, and the session itself held alive (`_anchor`: the session is
/// found again by its connection while any lease of it is kept, so its keeper and book stay
/// the only ones of that connection).
#[derive(Clone)]
pub(crate) struct Home {
    pub(crate) conn: Arc<Shared>,
    pub(crate) keeper: Arc<Keeper>,
    pub(crate) book: Arc<Book<KeptInner>>,
    pub(crate) _anchor: Arc<dyn std::any::Any + Send + Sync>,
}

pub(crate) struct KeptInner {
    home: Home,
    ttl: i64,
    request_timeout: Duration,
    /// The current lease (0 while none is held).
    id: AtomicI64,
    keys: Mutex<Keys>,
    /// One lock per key being put, so that concurrent puts of one key reach etcd and the
    /// record above in the same order (else recovery could restore a value etcd no longer
    /// had).
    key_locks: Mutex<HashMap<Vec<u8>, Weak<tokio::sync::Mutex<()>>>>,
    status: Mutex<Vec<(u64, Arc<Mailbox<Status>>)>>,
    give_up: Mutex<Option<Arc<Mailbox<GaveUp>>>>,
    gave_up: Mutex<Option<Error>>,
    recovering: AtomicBool,
    /// Stopped: no renewal, no recovery (revoked through the client, or freed).
    retired: AtomicBool,
    /// Revoke the lease when the last user drops it (the shared registry lease).
    revoke_on_drop: bool,
    heal: Heal,
    /// Times the lease was lost and restored.
    pub(crate) losses: AtomicU64,
    pub(crate) restores: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A lease kept alive and recovered by the library (see the module documentation). Dropping
/// it stops the renewals; the lease then expires after its TTL (it is not revoked).
pub struct KeptLease {
    pub(crate) inner: Arc<KeptInner>,
}

impl KeptLease {
    /// Keeps `lease` alive, or a new lease of `ttl` when `lease` is 0 (granted now; with
    /// `opts.wait_for_etcd` and etcd unreachable, granted in the background instead).
    pub(crate) fn new(
        home: &Home,
        opts: &Options,
        ttl: i64,
        lease: i64,
        heal: Heal,
    ) -> Result<Self> {
        if ttl <= 0 {
            return Err(Error::invalid(format!(
                "ttl must be > 0 seconds, got {ttl}"
            )));
        }
        let inner = KeptInner::start_with(home, opts, ttl, lease, false, heal)?;
        Ok(KeptLease { inner })
    }

    /// Ends the lease: stops renewing it and revokes it (its keys leave etcd at once).
    /// `check` then fails with `Lost`. Revoking a lease etcd no longer has is not an error.
    pub fn revoke(&self) -> Result<()> {
        let id = self
            .inner
            .end(Error::Lost("the lease was revoked by this process".into()));
        if id == 0 {
            return Ok(());
        }
        let conn = self.inner.home.conn.clone();
        let limit = self.inner.request_timeout;
        match runtime::block_on(retry(&conn, limit, "lease revoke", |c| revoke(c, id)))? {
            Err(Error::NotFound(_)) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// The current lease id (it changes when the lease is lost and re-granted; 0 while none is
    /// held).
    pub fn id(&self) -> i64 {
        self.inner.id()
    }

    /// `Err` once the lease ended: recovery gave up (etcd refused to grant a lease for good),
    /// it was lost with [`Heal::Never`], or this process revoked it (`Lost`); else `Ok`.
    pub fn check(&self) -> Result<()> {
        match lock(&self.inner.gave_up).clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Calls `sink` (on the callback pool) when the lease ends (see [`Self::check`]); at once
    /// if it already has. Replaces any earlier sink.
    pub fn set_give_up_sink(&self, sink: Option<Sink<GaveUp>>) {
        let new = sink.map(Mailbox::new);
        let mut slot = lock(&self.inner.give_up);
        if let Some(old) = std::mem::replace(&mut *slot, new) {
            old.close();
        }
        // A lease that ended before the sink was installed is reported now, not never. Under
        // the sink's lock, so that `end` (which posts under it too) cannot post it twice.
        if let (Some(m), Some(err)) = (slot.as_ref(), lock(&self.inner.gave_up).clone()) {
            m.post([GaveUp {
                lease: self.inner.id(),
                error: err,
            }]);
        }
    }

    /// Puts a key under this lease (its current id) and keeps it there across recoveries.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<Kvs> {
        self.inner
            .put(key, value, PutMode::Always, self.inner.request_timeout)
    }
}

impl Drop for KeptLease {
    fn drop(&mut self) {
        self.inner.retire();
        self.set_give_up_sink(None);
    }
}

impl KeptInner {
    pub(crate) fn start(
        home: &Home,
        opts: &Options,
        ttl: i64,
        lease: i64,
        revoke_on_drop: bool,
    ) -> Result<Arc<Self>> {
        Self::start_with(home, opts, ttl, lease, revoke_on_drop, Heal::Recover)
    }

    pub(crate) fn start_with(
        home: &Home,
        opts: &Options,
        ttl: i64,
        lease: i64,
        revoke_on_drop: bool,
        heal: Heal,
    ) -> Result<Arc<Self>> {
        // A lease that must not heal cannot be granted "later" either.
        let wait_for_etcd = opts.wait_for_etcd && heal == Heal::Recover;
        let id = if lease != 0 {
            lease
        } else if wait_for_etcd {
            // Never blocks: granted in the background (Status::Restored says when).
            0
        } else {
            let granted = runtime::block_on(retry(
                &home.conn,
                opts.connect_timeout,
                "lease grant",
                |c| grant(c, ttl),
            ))?
            .map_err(|e| first_contact_error(e, opts));
            match granted {
                Ok(info) => info.id,
                Err(e) if wait_for_etcd && e.is_transient() => {
                    log::warn!(target: "etcd_sd", "lease: {e}; will grant it when etcd answers");
                    0
                }
                Err(e) => return Err(e),
            }
        };
        let inner = Arc::new(KeptInner {
            home: home.clone(),
            ttl,
            request_timeout: opts.request_timeout,
            id: AtomicI64::new(id),
            keys: Mutex::default(),
            key_locks: Mutex::default(),
            status: Mutex::default(),
            give_up: Mutex::default(),
            gave_up: Mutex::default(),
            recovering: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            revoke_on_drop,
            heal,
            losses: AtomicU64::new(0),
            restores: AtomicU64::new(0),
        });
        if id != 0 {
            home.book.remember(id, &inner);
            home.keeper
                .add(id, ttl, opts.request_timeout, inner.owner());
            log::debug!(target: "etcd_sd", "lease {id:x} kept, ttl {ttl}s");
            if heal == Heal::Never {
                runtime::spawn(expire_when_silent(Arc::downgrade(&inner), id));
            }
        } else {
            inner.recovering.store(true, Ordering::Release);
            runtime::spawn(recover(Arc::downgrade(&inner), false));
        }
        Ok(inner)
    }

    pub(crate) fn id(&self) -> i64 {
        self.id.load(Ordering::Acquire)
    }

    /// This lease as the keeper's owner (told when etcd says the lease is gone).
    fn owner(self: &Arc<Self>) -> std::sync::Weak<dyn LeaseOwner> {
        let weak: Weak<KeptInner> = Arc::downgrade(self);
        weak
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    pub(crate) fn ttl(&self) -> i64 {
        self.ttl
    }

    /// Whether this is the registries' shared lease.
    pub(crate) fn is_shared(&self) -> bool {
        self.revoke_on_drop
    }

    /// Time left before the current lease expires, by etcd's last renewal answer.
    pub(crate) fn ttl_left(&self) -> Option<Duration> {
        match self.id() {
            0 => None,
            id => self.home.keeper.ttl_left(id),
        }
    }

    pub(crate) fn conn(&self) -> Arc<Shared> {
        self.home.conn.clone()
    }

    pub(crate) fn key_count(&self, tag: Option<u64>) -> usize {
        let keys = lock(&self.keys);
        match tag {
            None => keys.len(),
            Some(t) => keys.values().filter(|(_, o)| *o == t).count(),
        }
    }

    /// Ends the lease for good with `why`: stops renewing and recovering, makes `check` fail,
    /// and tells the give-up sink and the status sinks (once). Returns the id (for a revoke).
    pub(crate) fn end(&self, why: Error) -> i64 {
        let id = self.retire();
        let sink = {
            let sink = lock(&self.give_up);
            let mut gave_up = lock(&self.gave_up);
            if gave_up.is_some() {
                return id;
            }
            *gave_up = Some(why.clone());
            sink.clone()
        };
        if let Some(m) = sink {
            m.post([GaveUp {
                lease: id,
                error: why,
            }]);
        }
        self.report(Status::Lost);
        id
    }

    /// Stops renewing and recovering; returns the current id (for a revoke).
    pub(crate) fn retire(&self) -> i64 {
        self.retired.store(true, Ordering::Release);
        let id = self.id();
        if id != 0 {
            self.home.keeper.remove(id);
        }
        id
    }

    pub(crate) fn set_status(&self, tag: u64, sink: Option<Sink<Status>>) {
        let mut status = lock(&self.status);
        if let Some(i) = status.iter().position(|(t, _)| *t == tag) {
            status.remove(i).1.close();
        }
        if let Some(s) = sink {
            status.push((tag, Mailbox::new(s)));
        }
    }

    fn report(&self, s: Status) {
        let sinks: Vec<_> = lock(&self.status).iter().map(|(_, m)| m.clone()).collect();
        for m in sinks {
            m.post([s]);
        }
    }

    /// Puts `key` under the current lease (and again under a newer one if the lease changed
    /// meanwhile), then remembers it for recovery. While no lease is held yet (started with
    /// `wait_for_etcd`), an unconditional put is only remembered.
    pub(crate) fn put(
        &self,
        key: &[u8],
        value: &[u8],
        mode: PutMode,
        limit: Duration,
    ) -> Result<Kvs> {
        self.put_tagged(key, value, mode, CLIENT_TAG, limit)
    }

    pub(crate) fn put_tagged(
        &self,
        key: &[u8],
        value: &[u8],
        mode: PutMode,
        tag: u64,
        limit: Duration,
    ) -> Result<Kvs> {
        let reply = self.put_reply(key, value, mode, tag, limit)?;
        if !reply.applied {
            return Err(refused(key, mode));
        }
        Ok(reply.kvs)
    }

    /// [`Self::put_tagged`] with the whole answer: a refusal by `mode` is a reply with
    /// `applied` false (and the value that is there), and `lease` is the lease the key is
    /// under when the call returns.
    pub(crate) fn put_reply(
        &self,
        key: &[u8],
        value: &[u8],
        mode: PutMode,
        tag: u64,
        limit: Duration,
    ) -> Result<PutReply> {
        let key_lock = self.key_lock(key);
        runtime::block_on(async {
            let deadline = tokio::time::Instant::now() + limit;
            let Ok(_serialized) = tokio::time::timeout_at(deadline, key_lock.lock()).await else {
                return Err(Error::Timeout(
                    limit,
                    "put: another put of this key is in progress".into(),
                ));
            };
            let mut backoff = Backoff::new();
            let mut mode = mode;
            let mut result: Option<Kvs> = None;
            loop {
                let id = self.id();
                if id == 0 && mode == PutMode::Always {
                    lock(&self.keys).insert(key.to_vec(), (value.to_vec(), tag));
                    return Ok(PutReply {
                        applied: true,
                        lease: 0,
                        kvs: result.unwrap_or_default(),
                    });
                }
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let put = retry(
                    &self.home.conn,
                    left.max(Duration::from_millis(1)),
                    "put",
                    |c| put_cond(c, key, value, id, mode),
                )
                .await;
                match put {
                    Ok((false, kvs)) if result.is_none() => {
                        return Ok(PutReply {
                            applied: false,
                            lease: id,
                            kvs,
                        });
                    }
                    Ok((_, kvs)) => {
                        lock(&self.keys).insert(key.to_vec(), (value.to_vec(), tag));
                        result.get_or_insert(kvs);
                        if self.id() == id {
                            return Ok(PutReply {
                                applied: true,
                                lease: id,
                                kvs: result.unwrap_or_default(),
                            });
                        }
                        // Recovered meanwhile: put it under the new lease too.
                        mode = PutMode::Always;
                    }
                    // The lease is gone and recovery is (or will be) under way: wait for it.
                    Err(Error::NotFound(m)) if m.starts_with("lease") => {
                        if tokio::time::Instant::now() >= deadline {
                            return Err(Error::Timeout(limit, format!("put: {m}")));
                        }
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        })?
    }

    /// The lock that serializes puts of `key`.
    fn key_lock(&self, key: &[u8]) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = lock(&self.key_locks);
        if let Some(l) = locks.get(key).and_then(Weak::upgrade) {
            return l;
        }
        if locks.len() >= 64 {
            locks.retain(|_, w| w.strong_count() > 0);
        }
        let l = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(key.to_vec(), Arc::downgrade(&l));
        l
    }

    /// The keys kept under this lease that lie in `[from, end)` ("\0": no end).
    pub(crate) fn keys_in(&self, from: &[u8], end: &[u8]) -> Vec<Vec<u8>> {
        lock(&self.keys)
            .keys()
            .filter(|k| k.as_slice() >= from && (end == [0] || k.as_slice() < end))
            .cloned()
            .collect()
    }

    /// Forgets `key` (every key under it when `prefix`) whoever put it.
    pub(crate) fn forget(&self, key: &[u8], prefix: bool) {
        let mut keys = lock(&self.keys);
        if prefix {
            keys.retain(|k, _| !k.starts_with(key));
        } else {
            keys.remove(key);
        }
    }

    /// Forgets `key` if `tag` put it; returns its value if it did (for [`Self::restore`]).
    pub(crate) fn forget_own(&self, key: &[u8], tag: u64) -> Option<Vec<u8>> {
        let mut keys = lock(&self.keys);
        match keys.get(key) {
            Some((_, t)) if *t == tag => keys.remove(key).map(|(v, _)| v),
            _ => None,
        }
    }

    /// Remembers `key` again after a delete of it failed (unless it was put again meanwhile).
    pub(crate) fn restore(&self, key: &[u8], value: Vec<u8>, tag: u64) {
        lock(&self.keys).entry(key.to_vec()).or_insert((value, tag));
    }

    /// Forgets every key `tag` put and returns them.
    pub(crate) fn take_own(&self, tag: u64) -> Vec<Vec<u8>> {
        let mut keys = lock(&self.keys);
        let own: Vec<Vec<u8>> = keys
            .iter()
            .filter(|(_, (_, t))| *t == tag)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &own {
            keys.remove(k);
        }
        own
    }
}

impl LeaseOwner for KeptInner {
    /// etcd says lease `id` is gone: start recovering (once), unless retired or already newer.
    fn lost(self: Arc<Self>, id: i64) {
        if self.retired.load(Ordering::Acquire) || self.id() != id {
            return;
        }
        if self.heal == Heal::Never {
            self.losses.fetch_add(1, Ordering::Relaxed);
            log::warn!(target: "etcd_sd", "lease {id:x} lost; not taken again (it holds a lock or a leadership)");
            self.end(Error::Lost(format!("lease {id:x} expired or was revoked")));
            return;
        }
        if self.recovering.swap(true, Ordering::AcqRel) {
            return;
        }
        self.losses.fetch_add(1, Ordering::Relaxed);
        log::warn!(target: "etcd_sd", "lease {id:x} lost; granting a new one and putting its keys back");
        self.report(Status::Lost);
        runtime::spawn(recover(Arc::downgrade(&self), true));
    }
}

impl KeptInner {
    fn snapshot(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        lock(&self.keys)
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }
}

impl Drop for KeptInner {
    fn drop(&mut self) {
        let id = self.retire();
        if self.revoke_on_drop && id != 0 {
            let conn = self.home.conn.clone();
            let limit = self.request_timeout;
            // Its users deleted their keys already; do not make them wait for this.
            runtime::spawn(async move {
                let _ = retry(&conn, limit, "lease revoke", |c| revoke(c, id)).await;
            });
        }
    }
}

/// A lease that must not heal ends when etcd has not renewed it for its whole TTL: it may have
/// expired in etcd meanwhile (this process cut off from the cluster, another one holding the
/// lock now), so its owner is told at the latest when the TTL runs out, not when etcd answers
/// again. As etcd's Go client does for a session. The lease is then revoked in the background
/// (best effort, for a minute), so that its key does not outlive the loss.
async fn expire_when_silent(weak: Weak<KeptInner>, id: i64) {
    loop {
        let left = {
            let Some(me) = weak.upgrade() else { return };
            if me.is_retired() || me.id() != id {
                return;
            }
            me.home.keeper.ttl_left(id)
        };
        match left {
            Some(d) if !d.is_zero() => tokio::time::sleep(d).await,
            _ => {
                let Some(me) = weak.upgrade() else { return };
                if me.is_retired() {
                    return;
                }
                me.losses.fetch_add(1, Ordering::Relaxed);
                let why = format!(
                    "lease {id:x}: etcd did not renew it for its whole TTL ({} s); it may have expired",
                    me.ttl
                );
                log::warn!(target: "etcd_sd", "{why}; not taken again");
                me.end(Error::Lost(why));
                let conn = me.home.conn.clone();
                drop(me);
                let _ = retry(&conn, Duration::from_secs(60), "lease revoke", |c| {
                    revoke(c, id)
                })
                .await;
                return;
            }
        }
    }
}

/// Grants a new lease and puts every remembered key under it, retrying with backoff until it
/// works, the lease is retired, or etcd refuses for good (then gives up and says so).
async fn recover(weak: Weak<KeptInner>, was_lost: bool) {
    let mut backoff = Backoff::new();
    let mut outage = OutageLog::new("lease recovery", log::Level::Warn);
    loop {
        let Some(me) = weak.upgrade() else { return };
        if me.retired.load(Ordering::Acquire) {
            return;
        }
        let attempt = tokio::time::timeout(me.request_timeout * 2, try_recover(&me)).await;
        let err = match attempt {
            Ok(Ok((id, n))) => {
                outage.recovered();
                me.recovering.store(false, Ordering::Release);
                if was_lost {
                    me.restores.fetch_add(1, Ordering::Relaxed);
                }
                log::info!(target: "etcd_sd", "lease restored: {n} key(s) under lease {id:x}");
                me.report(Status::Restored);
                return;
            }
            Ok(Err(e)) => e,
            Err(_) => Error::Timeout(me.request_timeout * 2, "re-granting the lease".into()),
        };
        if matches!(err, Error::Auth(_) | Error::InvalidArgument(_)) {
            log::error!(target: "etcd_sd", "lease recovery gave up: {err}");
            let sink = {
                // The sink's lock first, as in `end` and `set_give_up_sink`.
                let sink = lock(&me.give_up);
                *lock(&me.gave_up) = Some(err.clone());
                sink.clone()
            };
            if let Some(m) = sink {
                m.post([GaveUp {
                    lease: me.id(),
                    error: err,
                }]);
            }
            return;
        }
        outage.failed(&err);
        drop(me);
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

async fn try_recover(me: &Arc<KeptInner>) -> Result<(i64, usize)> {
    let member = me.home.conn.pick().await?;
    let client = member.client.clone();
    let keys = me.snapshot();
    let id = match fill_new_lease(me, client.clone(), &keys).await {
        Ok(id) => id,
        Err(e) => {
            member.failed(&e).await;
            return Err(e);
        }
    };
    me.id.store(id, Ordering::Release);
    me.home.book.remember(id, me);
    // Again: if the keeper dropped it during the fill (a TTL-0 answer while it was not the
    // current id yet), it is kept again, and a real loss is now reported as one.
    me.home
        .keeper
        .add(id, me.ttl, me.request_timeout, me.owner());
    // Keys put (under the old lease) while this ran: put them under the new one too.
    let later: BTreeMap<_, _> = me
        .snapshot()
        .into_iter()
        .filter(|(k, v)| keys.get(k) != Some(v))
        .collect();
    put_all(client, id, &later, per_attempt(me)).await?;
    Ok((id, keys.len() + later.len()))
}

/// How long one request of a recovery may take before the member is left for the next one
/// (as `client::retry` does): a member that has just restarted may hold a request for
/// seconds before it errs.
fn per_attempt(me: &KeptInner) -> Duration {
    (me.request_timeout / 3).max(Duration::from_secs(1))
}

/// A lease granted for a recovery and not filled yet: dropped armed (the fill failed, or was
/// cancelled by the timeout in `recover`), it stops renewing the lease and revokes it.
struct Unfilled {
    me: Arc<KeptInner>,
    client: etcd_client::Client,
    id: i64,
    armed: bool,
}

impl Drop for Unfilled {
    fn drop(&mut self) {
        if self.armed {
            self.me.home.keeper.remove(self.id);
            let (client, id) = (self.client.clone(), self.id);
            runtime::spawn(async move {
                let _ = revoke(client, id).await;
            });
        }
    }
}

/// Grants a lease and puts `keys` under it; revokes it again if a put fails, so that no
/// half-filled lease is left behind and the next attempt starts afresh. The lease is kept
/// alive from the grant on: on a cluster busy after a restart, putting the keys back can take
/// longer than the TTL, and the lease must not expire under the fill.
async fn fill_new_lease(
    me: &Arc<KeptInner>,
    client: etcd_client::Client,
    keys: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<i64> {
    let limit = per_attempt(me);
    let id = match tokio::time::timeout(limit, grant(client.clone(), me.ttl)).await {
        Ok(r) => r?.id,
        Err(_) => return Err(Error::Timeout(limit, "lease grant".into())),
    };
    let mut unfilled = Unfilled {
        me: me.clone(),
        client: client.clone(),
        id,
        armed: true,
    };
    me.home
        .keeper
        .add(id, me.ttl, me.request_timeout, me.owner());
    put_all(client, id, keys, limit).await?;
    unfilled.armed = false;
    Ok(id)
}

/// Puts `keys` under `lease`, `TXN_OPS` per transaction, each within `limit`.
async fn put_all(
    mut client: etcd_client::Client,
    lease: i64,
    keys: &BTreeMap<Vec<u8>, Vec<u8>>,
    limit: Duration,
) -> Result<()> {
    let items: Vec<_> = keys.iter().collect();
    for chunk in items.chunks(TXN_OPS) {
        let ops: Vec<TxnOp> = chunk
            .iter()
            .map(|(k, v)| {
                TxnOp::put(
                    k.as_slice(),
                    v.as_slice(),
                    Some(PutOptions::new().with_lease(lease)),
                )
            })
            .collect();
        match tokio::time::timeout(limit, client.txn(Txn::new().and_then(ops))).await {
            Ok(r) => r.map_err(|e| Error::from_etcd("put", e))?,
            Err(_) => return Err(Error::Timeout(limit, "put".into())),
        };
    }
    Ok(())
}
