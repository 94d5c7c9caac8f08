//! The keep-alive stream of a connection: one LeaseKeepAlive stream renews every lease that the
//! process keeps through that connection (the shared registry lease, registries with a lease
//! of their own, compat `KeepAlive`s), each at no later than a third of its TTL and half of
//! the time etcd said was left. A thousand registries cost one renewal per second, not a
//! thousand streams.
//!
//! The task runs only while there are leases to keep. When etcd answers TTL 0 for a lease
//! (expired, revoked from outside) its owner (a [`LeaseOwner`]: the kept lease) is told; when the
//! stream breaks or an answer is late, the stream is reopened (on the next member) and every
//! lease is renewed at once.

use crate::backoff::Backoff;
use crate::error::Error;
use crate::outage::OutageLog;
use crate::runtime;
use crate::transport::{Member, Shared};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long opening the stream (which renews its first lease) may take.
const OPEN_WITHIN: Duration = Duration::from_secs(3);

/// Who is told when etcd says a kept lease is gone.
pub(crate) trait LeaseOwner: Send + Sync {
    /// etcd answered that lease `id` no longer exists.
    fn lost(self: Arc<Self>, id: i64);
}

pub(crate) struct Keeper {
    conn: Arc<Shared>,
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    leases: HashMap<i64, Entry>,
    /// True while the stream task runs (it stops when there is nothing to keep).
    running: bool,
}

struct Entry {
    ttl: i64,
    /// When to send the next renewal (`None`: sent, waiting for the answer).
    due: Option<Instant>,
    /// When the answer to the renewal in flight is overdue.
    answer_by: Option<Instant>,
    answer_within: Duration,
    owner: Weak<dyn LeaseOwner>,
    /// etcd's last answer: seconds left, and when it said so.
    left: Option<(i64, Instant)>,
}

impl Keeper {
    /// A keeper of leases granted through `conn`; its task starts with the first lease.
    pub(crate) fn new(conn: Arc<Shared>) -> Self {
        Keeper {
            conn,
            state: Mutex::default(),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts keeping `id` (granted or renewed just now) alive, telling `owner` if it is lost.
    pub(crate) fn add(
        self: &Arc<Self>,
        id: i64,
        ttl: i64,
        request_timeout: Duration,
        owner: Weak<dyn LeaseOwner>,
    ) {
        let answer_within = request_timeout
            .min(Duration::from_millis(ttl.max(1) as u64 * 500))
            .max(Duration::from_millis(500));
        let start = {
            let mut st = self.lock();
            st.leases.insert(
                id,
                Entry {
                    ttl,
                    due: Some(Instant::now() + renew_interval(ttl, ttl)),
                    answer_by: None,
                    answer_within,
                    owner,
                    left: Some((ttl, Instant::now())),
                },
            );
            !std::mem::replace(&mut st.running, true)
        };
        if start {
            runtime::spawn(run(self.clone()));
        }
        self.wake.notify_one();
    }

    /// Stops keeping `id` alive (it expires after its TTL unless revoked).
    pub(crate) fn remove(&self, id: i64) {
        self.lock().leases.remove(&id);
        self.wake.notify_one();
    }

    /// Time left before `id` expires, by etcd's last answer.
    pub(crate) fn ttl_left(&self, id: i64) -> Option<Duration> {
        let (secs, at) = self.lock().leases.get(&id)?.left?;
        Some(Duration::from_secs(secs.max(0) as u64).saturating_sub(at.elapsed()))
    }

    /// Number of leases kept through this connection.
    pub(crate) fn len(&self) -> usize {
        self.lock().leases.len()
    }

    /// etcd says `id` is gone: stop renewing it and tell its owner.
    fn lost(&self, id: i64) {
        let owner = self.lock().leases.remove(&id).map(|e| e.owner);
        if let Some(owner) = owner.and_then(|o| o.upgrade()) {
            owner.lost(id);
        }
    }
}

/// How a stream session ended.
enum End {
    /// Nothing left to keep.
    Empty,
    /// Reopen at once (the lease used to open it was gone).
    Again,
    /// The stream failed or an answer was late: reopen after a backoff.
    Broken(Error),
}

async fn run(keeper: Arc<Keeper>) {
    let mut backoff = Backoff::new();
    let mut outage = OutageLog::new("lease keep-alive", log::Level::Warn);
    loop {
        match session(&keeper, &mut backoff, &mut outage).await {
            End::Empty => {
                let mut st = keeper.lock();
                if st.leases.is_empty() {
                    st.running = false;
                    return;
                }
            }
            End::Again => {}
            End::Broken(err) => {
                outage.failed(&err);
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

async fn session(keeper: &Keeper, backoff: &mut Backoff, outage: &mut OutageLog) -> End {
    let conn = &keeper.conn;
    let Some(first) = keeper.lock().leases.keys().next().copied() else {
        return End::Empty;
    };
    let member = match conn.pick().await {
        Ok(m) => m,
        Err(e) => return End::Broken(e),
    };
    let mut leases = member.client.lease_client();
    let (mut sender, mut stream) = match tokio::time::timeout(OPEN_WITHIN, leases.keep_alive(first))
        .await
    {
        Ok(Ok(pair)) => pair,
        Ok(Err(etcd_client::Error::LeaseKeepAliveError(msg))) if msg.contains("not found") => {
            keeper.lost(first);
            return End::Again;
        }
        Ok(Err(e)) => return broken(&member, Error::from_etcd("keep-alive", e)).await,
        Err(_) => return broken(&member, Error::Timeout(OPEN_WITHIN, "keep-alive".into())).await,
    };
    backoff.reset();
    outage.recovered();
    {
        // Opening renewed `first`; renew every other lease now (they may have waited).
        let now = Instant::now();
        for (id, e) in keeper.lock().leases.iter_mut() {
            e.answer_by = None;
            e.due = Some(if *id == first {
                now + renew_interval(e.ttl, e.ttl)
            } else {
                now
            });
        }
    }
    loop {
        let now = Instant::now();
        let mut to_send = Vec::new();
        let mut next = now + Duration::from_secs(3600);
        let mut late = None;
        {
            let st = &mut *keeper.lock();
            if st.leases.is_empty() {
                return End::Empty;
            }
            for (id, e) in st.leases.iter_mut() {
                if let Some(due) = e.due {
                    if due <= now {
                        to_send.push(*id);
                        e.due = None;
                        e.answer_by = Some(now + e.answer_within);
                    }
                }
                if let Some(by) = e.answer_by {
                    if by <= now {
                        late = Some(e.answer_within);
                    }
                    next = next.min(by);
                }
                if let Some(due) = e.due {
                    next = next.min(due);
                }
            }
        }
        if let Some(within) = late {
            return broken(&member, Error::Timeout(within, "keep-alive".into())).await;
        }
        for id in to_send {
            sender.id = id;
            if let Err(e) = sender.keep_alive().await {
                return broken(&member, Error::from_etcd("keep-alive", e)).await;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = keeper.wake.notified() => {}
            m = stream.message() => match m {
                Ok(Some(resp)) if resp.ttl() <= 0 => keeper.lost(resp.id()),
                Ok(Some(resp)) => {
                    if let Some(e) = keeper.lock().leases.get_mut(&resp.id()) {
                        e.answer_by = None;
                        e.due = Some(Instant::now() + renew_interval(e.ttl, resp.ttl()));
                        e.left = Some((resp.ttl(), Instant::now()));
                    }
                }
                Ok(None) => {
                    let closed = Error::Unavailable("keep-alive stream closed by the server".into());
                    return broken(&member, closed).await;
                }
                Err(e) => return broken(&member, Error::from_etcd("keep-alive", e)).await,
            }
        }
    }
}

/// Hands the failure to the member (switching members, refreshing the token) and says why.
async fn broken(member: &Member<'_>, err: Error) -> End {
    member.failed(&err).await;
    End::Broken(err)
}

/// Renew no later than a third of the TTL and no later than half of the time left.
pub(crate) fn renew_interval(ttl: i64, left: i64) -> Duration {
    let ms = (ttl.max(1) as u64 * 1000 / 3).min(left.max(1) as u64 * 1000 / 2);
    Duration::from_millis(ms.max(100))
}

#[cfg(test)]
mod tests {
    use super::renew_interval;
    use std::time::Duration;

    #[test]
    fn renews_at_a_third_of_ttl_or_half_the_time_left() {
        assert_eq!(renew_interval(3, 3), Duration::from_millis(1000));
        assert_eq!(renew_interval(3, 1), Duration::from_millis(500));
        assert_eq!(renew_interval(1, 1), Duration::from_millis(333));
        assert_eq!(renew_interval(30, 30), Duration::from_millis(10_000));
    }
}
