//! The session state of one connection: what the layers above keep per connection, beside
//! the transport and not inside it -- the kept leases (their keep-alive stream, the book of
//! their ids, the registries' shared lease per TTL) and the recent listings. One [`Session`]
//! per shared connection, found by the connection settings.

use super::book::Book;
use super::keeper::Keeper;
use super::kept::{Home, KeptInner};
use super::listings::RecentListings;
use crate::error::Result;
use crate::options::Options;
use crate::stats::ProcessStats;
use crate::transport::{self, Shared};
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// What the library keeps for one shared connection.
pub(crate) struct Session {
    conn: Arc<Shared>,
    /// The connection's one keep-alive stream.
    keeper: Arc<Keeper>,
    /// Every id a kept lease of this connection ever had.
    book: Arc<Book<KeptInner>>,
    /// The registries' shared lease, per TTL.
    shared: Mutex<HashMap<i64, Weak<KeptInner>>>,
    /// Recent listings, for watches that continue from them.
    pub(crate) listings: RecentListings,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Live sessions by the address of their connection (a session holds its connection, so the
/// address is not reused while the entry is alive).
static SESSIONS: Lazy<Mutex<HashMap<usize, Weak<Session>>>> = Lazy::new(Mutex::default);

/// The session of the connection for `opts`, made when needed. Nothing touches the network.
pub(crate) fn session(opts: &Options) -> Result<Arc<Session>> {
    let conn = transport::connect(opts)?;
    let key = Arc::as_ptr(&conn) as usize;
    let mut sessions = lock(&SESSIONS);
    if let Some(s) = sessions.get(&key).and_then(Weak::upgrade) {
        return Ok(s);
    }
    sessions.retain(|_, w| w.strong_count() > 0);
    let session = Arc::new(Session {
        keeper: Arc::new(Keeper::new(conn.clone())),
        conn,
        book: Arc::new(Book::default()),
        shared: Mutex::default(),
        listings: RecentListings::default(),
    });
    sessions.insert(key, Arc::downgrade(&session));
    Ok(session)
}

impl Session {
    pub(crate) fn conn(&self) -> &Arc<Shared> {
        &self.conn
    }

    /// What a kept lease of this session needs (and the session held alive by it).
    pub(crate) fn home(self: &Arc<Self>) -> Home {
        Home {
            conn: self.conn.clone(),
            keeper: self.keeper.clone(),
            book: self.book.clone(),
            _anchor: self.clone(),
        }
    }

    /// The lease every registry of this connection with this TTL shares, created (and granted)
    /// when the first one needs it. The grant is made without holding the session's lock, so
    /// that registries made together while etcd does not answer each wait at most their own
    /// connect timeout; when two grant at once, the second lease is dropped (and revoked).
    pub(crate) fn shared_lease(self: &Arc<Self>, opts: &Options) -> Result<Arc<KeptInner>> {
        let ttl = opts.ttl_seconds;
        if let Some(l) = self.usable_shared(ttl, opts) {
            return Ok(l);
        }
        let l = KeptInner::start(&self.home(), opts, ttl, 0, true)?;
        let mut shared = lock(&self.shared);
        if let Some(existing) = shared.get(&ttl).and_then(Weak::upgrade) {
            if usable(&existing, opts) {
                return Ok(existing);
            }
        }
        shared.insert(ttl, Arc::downgrade(&l));
        Ok(l)
    }

    fn usable_shared(&self, ttl: i64, opts: &Options) -> Option<Arc<KeptInner>> {
        let l = lock(&self.shared).get(&ttl).and_then(Weak::upgrade)?;
        usable(&l, opts).then_some(l)
    }

    /// The kept lease that has or had `id`, if it is still kept.
    pub(crate) fn kept(&self, id: i64) -> Option<Arc<KeptInner>> {
        self.book.lookup(id).filter(|k| !k.is_retired())
    }

    /// The keys kept by leases of this session that lie in `[from, end)` ("\0": no end).
    pub(crate) fn kept_keys_in(&self, from: &[u8], end: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for k in self.book.owners() {
            out.extend(k.keys_in(from, end));
        }
        out
    }

    /// A key (or prefix) was deleted through the client: no kept lease puts it back.
    pub(crate) fn forget(&self, key: &[u8], prefix: bool) {
        for k in self.book.owners() {
            k.forget(key, prefix);
        }
    }
}

/// Whether a registry made with `opts` may join the shared lease `l`: a lease still waiting for
/// etcd (made for a `wait_for_etcd` registry) is shared only with registries that also wait;
/// one that must fail fast grants its own.
fn usable(l: &KeptInner, opts: &Options) -> bool {
    !l.is_retired() && (l.id() != 0 || opts.wait_for_etcd)
}

/// Connections, members and kept leases of the whole process.
pub(crate) fn process_stats() -> ProcessStats {
    let (connections, members_connected) = transport::connection_stats();
    let live: Vec<Arc<Session>> = lock(&SESSIONS).values().filter_map(Weak::upgrade).collect();
    ProcessStats {
        connections,
        members_connected,
        leases_kept: live.iter().map(|s| s.keeper.len() as u64).sum(),
        requests_retried: crate::stats::RETRIED.load(Ordering::Relaxed),
    }
}
