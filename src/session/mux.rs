//! One gRPC watch stream per connection, shared by every watch of the process on it (as Go
//! clientv3's `watchGrpcStream`): a gateway watching 7 services costs etcd one stream, not 7.
//!
//! Each watch ([`crate::session::watch`]) opens a *subscription*: a watch request with its own
//! id (client-assigned, `WatchCreateRequest.watch_id`), its own start revision and range.
//! Creations go one at a time, as clientv3's do: etcd 3.4 refuses a creation (no permission,
//! a stale token) with watch id -1, which is then the one creation outstanding. A stale or
//! unknown token breaks the whole stream (its credentials are the stream's: the library
//! authenticates again and every watch resumes); a permission refused ends that watch only. Responses are routed by watch
//! id to the subscription's queue; etcd's stream-wide progress answers (watch id -1) go to
//! every subscription. Dropping a subscription sends a cancel request and leaves the stream
//! open for the others; the stream is closed when its last subscription goes.
//!
//! When the stream breaks (the member fails, or stays silent: see below), every subscription
//! is told and ends; each watch then resumes from its own revision, on a new stream, after
//! its own back-off. A compaction or a replaced etcd is handled by each watch for itself, as
//! before.
//!
//! **Silence.** After `PROBE_IDLE` without any message on the stream (`FRESH_PROBE_IDLE` in
//! its first `FRESH` seconds), the member is asked for progress; if nothing arrives within
//! `PROBE_ANSWER` (`FRESH_PROBE_ANSWER`), the member is left for the next one and every
//! subscription resumes there. One probe serves every watch of the stream.
//!
//! **Through etcd's gRPC proxy** (`etcd grpc-proxy start`, which fleets put in front of the
//! members): the proxy numbers a stream's watches itself, from 0, ignoring the ids asked for,
//! and never answers a progress request. So each creation's answer says which id etcd (or the
//! proxy) gave the watch: responses and cancels are translated by a per-stream map
//! ([`Ids`]), and a stream whose first creation came back under another id than asked is a
//! proxy's: it is not probed for silence (the HTTP/2 pings still watch the connection, and
//! the proxy follows the members itself).
//!
//! **A slow watch.** Each subscription queues at most [`SUB_QUEUE`] responses. A watch whose
//! task falls that far behind (its task is starved; callbacks never run on it) is dropped
//! from the stream: its queue is closed, a cancel is sent, and it resumes from its own
//! revision on its own request. So one slow watch never holds back the others by more than
//! the routing of one response.

use crate::error::{Error, Result};
use crate::outage::OutageLog;
use crate::requests::range::MAX_REPLY;
use crate::runtime;
use crate::transport::Shared;
use etcd_client::{WatchOptions, WatchRequestSender, WatchResponse, WatchResponseStream};
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Responses a subscription may have queued before it is dropped from the stream.
pub(crate) const SUB_QUEUE: usize = 256;

/// Silence on a watch stream after which the member is asked for a progress notification,
/// and how long it then has to answer before the stream moves to another member. The HTTP/2
/// pings (10 s + 5 s) catch the same failure for the connection as a whole.
const PROBE_IDLE: Duration = Duration::from_secs(5);
const PROBE_ANSWER: Duration = Duration::from_secs(3);
/// The same, for the first seconds of a stream (`FRESH`): a member that has just restarted
/// may accept a watch and stay silent while it catches up (the restart-storm benchmark saw 8 s
/// of silence); asking early moves the stream to a member that answers within about 2 s.
const FRESH: Duration = Duration::from_secs(10);
const FRESH_PROBE_IDLE: Duration = Duration::from_secs(1);
const FRESH_PROBE_ANSWER: Duration = Duration::from_secs(1);

/// What a subscription receives.
pub(crate) enum Msg {
    /// A response for this watch (its id), or a stream-wide progress answer (id -1).
    Response(WatchResponse),
    /// The stream broke: resume from the watch's revision.
    Broken(Error),
}

enum Cmd {
    Open {
        id: i64,
        key: Vec<u8>,
        opts: WatchOptions,
        tx: mpsc::Sender<Msg>,
    },
    Cancel {
        id: i64,
    },
    /// A watch found the stream's member unfit (it lags): move the stream to the next one.
    Leave(Error),
}

/// The shared stream of one connection.
pub(crate) struct Mux {
    cmds: mpsc::UnboundedSender<Cmd>,
    next_id: AtomicI64,
}

/// One watch on the shared stream; dropping it cancels the watch (the stream stays).
pub(crate) struct Sub {
    pub(crate) rx: mpsc::Receiver<Msg>,
    id: i64,
    mux: Arc<Mux>,
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.mux.cmds.send(Cmd::Cancel { id: self.id });
    }
}

static MUXES: Lazy<Mutex<HashMap<usize, Weak<Mux>>>> = Lazy::new(Mutex::default);

impl Mux {
    /// The shared stream of `conn` (started with the first watch on it; its task ends when
    /// the last watch of the connection is gone).
    pub(crate) fn of(conn: &Arc<Shared>) -> Arc<Mux> {
        let key = Arc::as_ptr(conn) as usize;
        let mut all = MUXES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = all.get(&key).and_then(Weak::upgrade) {
            return m;
        }
        all.retain(|_, w| w.strong_count() > 0);
        let (tx, rx) = mpsc::unbounded_channel();
        let mux = Arc::new(Mux {
            cmds: tx,
            next_id: AtomicI64::new(1),
        });
        all.insert(key, Arc::downgrade(&mux));
        runtime::spawn(run(conn.clone(), rx));
        mux
    }

    /// Opens a watch of `key` with `opts` (range, start revision, progress notify).
    pub(crate) fn open(self: &Arc<Self>, key: Vec<u8>, opts: WatchOptions) -> Sub {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(SUB_QUEUE);
        let _ = self.cmds.send(Cmd::Open { id, key, opts, tx });
        Sub {
            rx,
            id,
            mux: self.clone(),
        }
    }

    /// Moves the stream to the next member: every watch on it resumes there.
    pub(crate) fn leave(&self, why: Error) {
        let _ = self.cmds.send(Cmd::Leave(why));
    }
}

/// A subscription waiting for, or on, the stream.
struct Wanted {
    key: Vec<u8>,
    opts: WatchOptions,
    tx: mpsc::Sender<Msg>,
}

/// The mux task: opens a stream when there are watches, routes its responses, and when it
/// breaks tells every watch and waits for them to open again.
async fn run(conn: Arc<Shared>, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
    let mut subs: HashMap<i64, Wanted> = HashMap::new();
    // One WARN line when the stream starts failing, one INFO line when it serves again; its
    // watches log their part at DEBUG.
    let mut outage = OutageLog::new("shared watch stream", log::Level::Warn);
    loop {
        // Wait for a watch to serve.
        while subs.is_empty() {
            match cmds.recv().await {
                None => return,
                Some(cmd) => apply_offline(&mut subs, cmd),
            }
        }
        let member = match conn.pick().await {
            Ok(m) => m,
            Err(e) => {
                outage.failed(&e);
                end_all(&mut subs, &e);
                continue;
            }
        };
        let mut client = member
            .client
            .watch_client()
            .max_decoding_message_size(MAX_REPLY);
        // The stream opens with one watch request; the others follow on it.
        let mut ids: Vec<i64> = subs.keys().copied().collect();
        ids.sort_unstable();
        let first = &subs[&ids[0]];
        let opened = client
            .watch(
                first.key.clone(),
                Some(first.opts.clone().with_watch_id(ids[0])),
            )
            .await;
        let (mut requests, mut stream) = match opened {
            Ok(s) => s.split(),
            Err(e) => {
                let e = Error::from_etcd("watch", e);
                outage.failed(&e);
                member.failed(&e).await;
                end_all(&mut subs, &e);
                continue;
            }
        };
        let mut creating = Creating {
            outstanding: Some(ids[0]),
            queue: ids[1..].iter().copied().collect(),
        };
        let err = serve(
            &mut subs,
            &mut creating,
            &mut cmds,
            &mut requests,
            &mut stream,
            &mut outage,
        )
        .await;
        let Some(err) = err else {
            return; // every Mux handle is gone
        };
        if !matches!(err, Error::Closed(_)) {
            outage.failed(&err);
            member.failed(&err).await;
        }
        end_all(&mut subs, &err);
    }
}

/// Applies a command while no stream is open.
fn apply_offline(subs: &mut HashMap<i64, Wanted>, cmd: Cmd) {
    match cmd {
        Cmd::Open { id, key, opts, tx } => {
            subs.insert(id, Wanted { key, opts, tx });
        }
        Cmd::Cancel { id } => {
            subs.remove(&id);
        }
        Cmd::Leave(_) => {}
    }
}

async fn create(requests: &mut WatchRequestSender, id: i64, w: &Wanted) -> Result<()> {
    requests
        .watch(w.key.clone(), Some(w.opts.clone().with_watch_id(id)))
        .await
        .map_err(|e| Error::from_etcd("watch", e))
}

/// Tells every subscription that the stream ended (they resume on their own) and forgets them.
fn end_all(subs: &mut HashMap<i64, Wanted>, err: &Error) {
    for (_, w) in subs.drain() {
        let _ = w.tx.try_send(Msg::Broken(err.clone()));
    }
}

/// Serves one open stream until it fails (`Some(error)`; `Closed` when its last watch left)
/// or every handle of the mux is gone (`None`).
async fn serve(
    subs: &mut HashMap<i64, Wanted>,
    creating: &mut Creating,
    cmds: &mut mpsc::UnboundedReceiver<Cmd>,
    requests: &mut WatchRequestSender,
    stream: &mut WatchResponseStream,
    outage: &mut OutageLog,
) -> Option<Error> {
    let opened = Instant::now();
    let mut last = Instant::now();
    let mut probed = false;
    let mut ids = Ids::default();
    loop {
        if let Err(e) = creating.pump(subs, requests).await {
            return Some(e);
        }
        if ids.proxied == Some(true) {
            probed = false; // a proxy never answers a probe: none is sent (see the module doc)
        }
        let fresh = opened.elapsed() < FRESH;
        let silence = match (probed, fresh) {
            (true, true) => FRESH_PROBE_ANSWER,
            (true, false) => PROBE_ANSWER,
            (false, true) => FRESH_PROBE_IDLE,
            (false, false) => PROBE_IDLE,
        };
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None => return None,
                Some(Cmd::Open { id, key, opts, tx }) => {
                    subs.insert(id, Wanted { key, opts, tx });
                    creating.queue.push_back(id);
                }
                Some(Cmd::Cancel { id }) => {
                    if subs.remove(&id).is_some() {
                        if subs.is_empty() {
                            return Some(Error::Closed("no watch left on the stream".into()));
                        }
                        // Not created yet: cancelled when its creation is answered (`route`).
                        if let Some(server) = ids.forget(id) {
                            if let Err(e) = requests.cancel(server).await {
                                return Some(Error::from_etcd("watch cancel", e));
                            }
                        }
                    }
                }
                Some(Cmd::Leave(why)) => return Some(why),
            },
            message = stream.message() => {
                last = Instant::now();
                probed = false;
                match message {
                    Ok(Some(resp)) => {
                        outage.recovered();
                        if let Err(e) = route(subs, creating, &mut ids, requests, resp).await {
                            return Some(e);
                        }
                    }
                    Ok(None) => {
                        return Some(Error::Unavailable("watch stream closed by the server".into()));
                    }
                    Err(e) => return Some(Error::from_etcd("watch", e)),
                }
            }
            _ = tokio::time::sleep_until(last + silence), if ids.proxied != Some(true) => {
                if probed {
                    return Some(Error::Timeout(silence, "watch progress".into()));
                }
                if let Err(e) = requests.request_progress().await {
                    return Some(Error::from_etcd("watch", e));
                }
                probed = true;
                last = Instant::now();
            }
        }
    }
}

/// Creations not yet answered: at most one outstanding, the others waiting their turn.
#[derive(Default)]
struct Creating {
    outstanding: Option<i64>,
    queue: std::collections::VecDeque<i64>,
}

impl Creating {
    /// Sends the next creation when none is outstanding (skipping watches cancelled meanwhile).
    async fn pump(
        &mut self,
        subs: &HashMap<i64, Wanted>,
        requests: &mut WatchRequestSender,
    ) -> Result<()> {
        while self.outstanding.is_none() {
            let Some(id) = self.queue.pop_front() else {
                return Ok(());
            };
            if let Some(w) = subs.get(&id) {
                create(requests, id, w).await?;
                self.outstanding = Some(id);
            }
        }
        Ok(())
    }
}

/// The ids etcd gave this stream's watches. etcd 3.4 gives the id asked for; its gRPC proxy
/// gives its own (from 0), so every response and cancel goes through this map.
#[derive(Default)]
struct Ids {
    /// The server's id of each created watch (ours → its).
    server: HashMap<i64, i64>,
    /// Ours of each server id.
    ours: HashMap<i64, i64>,
    /// Known at the first creation answered: whether the ids were not the ones asked for
    /// (a proxy's stream).
    proxied: Option<bool>,
}

impl Ids {
    fn created(&mut self, ours: i64, server: i64) {
        if self.proxied.is_none() {
            self.proxied = Some(ours != server);
            if ours != server {
                log::info!(target: "etcd_sd",
                    "watch stream: the server numbers the watches itself (etcd's gRPC proxy?); \
                     ids are translated and the stream is not probed for silence");
            }
        }
        self.server.insert(ours, server);
        self.ours.insert(server, ours);
    }

    /// Forgets our watch `ours`; its server id when it had been created.
    fn forget(&mut self, ours: i64) -> Option<i64> {
        let server = self.server.remove(&ours)?;
        self.ours.remove(&server);
        Some(server)
    }
}

/// Hands a response to its subscription (every subscription for a stream-wide progress
/// answer). A subscription whose queue is full is dropped from the stream (it resumes). An
/// error ends the stream.
async fn route(
    subs: &mut HashMap<i64, Wanted>,
    creating: &mut Creating,
    ids: &mut Ids,
    requests: &mut WatchRequestSender,
    resp: WatchResponse,
) -> Result<()> {
    let server = resp.watch_id();
    let mut resp = resp;
    let id;
    if resp.created() {
        let answered = creating.outstanding.take();
        if server == -1 && resp.canceled() {
            // The outstanding creation was refused.
            let reason = resp.cancel_reason().to_string();
            if reason.contains("invalid auth token")
                || reason.contains("revision of auth store is old")
            {
                return Err(Error::Auth(format!("watch: {reason}")));
            }
            let Some(refused) = answered else {
                return Ok(());
            };
            id = refused;
        } else {
            // The answer to the one creation outstanding, under the id the server gave it.
            let Some(ours) = answered else {
                return Ok(());
            };
            id = ours;
            if !resp.canceled() {
                ids.created(ours, server);
            }
        }
        resp.0.watch_id = id;
        if !subs.contains_key(&id) && !resp.canceled() {
            // Cancelled before its creation was answered: cancel it now.
            ids.forget(id);
            requests
                .cancel(server)
                .await
                .map_err(|e| Error::from_etcd("watch cancel", e))?;
            return Ok(());
        }
    } else if server == -1 {
        for w in subs.values() {
            let copy = WatchResponse(resp.0.clone());
            let _ = w.tx.try_send(Msg::Response(copy));
        }
        return Ok(());
    } else {
        let Some(&ours) = ids.ours.get(&server) else {
            return Ok(()); // a watch cancelled meanwhile
        };
        id = ours;
        resp.0.watch_id = id;
    }
    let canceled = resp.canceled();
    let Some(w) = subs.get(&id) else {
        return Ok(()); // a watch cancelled meanwhile
    };
    match w.tx.try_send(Msg::Response(resp)) {
        Ok(()) => {
            if canceled {
                // etcd ended it (compaction, refusal): the watch lists again
                subs.remove(&id);
                ids.forget(id);
            }
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            log::warn!(target: "etcd_sd",
                "watch: one watch fell {SUB_QUEUE} responses behind on the shared stream; it resumes on its own");
            subs.remove(&id);
            if let Some(server) = ids.forget(id) {
                let _ = requests.cancel(server).await;
            }
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            subs.remove(&id);
            if let Some(server) = ids.forget(id) {
                let _ = requests.cancel(server).await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcd_client::proto::PbWatchResponse;

    fn response(watch_id: i64) -> WatchResponse {
        WatchResponse(PbWatchResponse {
            watch_id,
            ..Default::default()
        })
    }

    /// Subscriptions with these ids, and the receiving end of each (in the same order).
    fn subs_of(ids: [i64; 2]) -> (HashMap<i64, Wanted>, [mpsc::Receiver<Msg>; 2]) {
        let mut subs = HashMap::new();
        let rxs = ids.map(|id| {
            let (tx, rx) = mpsc::channel(SUB_QUEUE);
            let w = Wanted {
                key: b"k".to_vec(),
                opts: WatchOptions::new(),
                tx,
            };
            subs.insert(id, w);
            rx
        });
        (subs, rxs)
    }

    /// A watch whose queue is full is dropped from the stream (closed queue, cancel sent to
    /// etcd) without holding back the others; progress answers (id -1) reach every watch.
    #[tokio::test]
    async fn a_full_queue_drops_only_its_watch() {
        let (req_tx, mut req_rx) = mpsc::channel(8);
        let mut requests = WatchRequestSender(req_tx);
        let mut creating = Creating::default();
        let mut ids = Ids::default();
        ids.created(5, 5);
        ids.created(6, 6);
        let (mut subs, [mut slow, mut fast]) = subs_of([5, 6]);
        // SUB_QUEUE responses fill its queue; one more is over the bound.
        for i in 0..=SUB_QUEUE {
            if i == SUB_QUEUE {
                assert!(subs.contains_key(&5), "dropped before its queue was full");
            }
            route(
                &mut subs,
                &mut creating,
                &mut ids,
                &mut requests,
                response(5),
            )
            .await
            .unwrap();
        }
        assert!(!subs.contains_key(&5), "the slow watch left the stream");
        let cancel = format!("{:?}", req_rx.try_recv().unwrap());
        assert!(
            cancel.contains("CancelRequest") && cancel.contains("watch_id: 5"),
            "{cancel}"
        );
        for _ in 0..SUB_QUEUE {
            assert!(matches!(slow.try_recv(), Ok(Msg::Response(_))));
        }
        assert!(
            slow.recv().await.is_none(),
            "then its queue ends: it resumes"
        );
        route(
            &mut subs,
            &mut creating,
            &mut ids,
            &mut requests,
            response(6),
        )
        .await
        .unwrap();
        route(
            &mut subs,
            &mut creating,
            &mut ids,
            &mut requests,
            response(-1),
        )
        .await
        .unwrap();
        let ids: Vec<i64> = std::iter::from_fn(|| match fast.try_recv() {
            Ok(Msg::Response(r)) => Some(r.watch_id()),
            _ => None,
        })
        .collect();
        assert_eq!(ids, [6, -1]);
    }

    fn refusal(reason: &str) -> WatchResponse {
        WatchResponse(PbWatchResponse {
            watch_id: -1,
            created: true,
            canceled: true,
            cancel_reason: reason.into(),
            ..Default::default()
        })
    }

    /// etcd 3.4 refuses a creation with watch id -1: a permission refused ends the one
    /// creation outstanding; a stale token ends the stream (the library authenticates again).
    #[tokio::test]
    async fn refusals_go_to_the_creation_outstanding() {
        let (req_tx, _req_rx) = mpsc::channel(8);
        let mut requests = WatchRequestSender(req_tx);
        let (mut subs, [mut rx7, mut rx8]) = subs_of([7, 8]);
        let mut creating = Creating {
            outstanding: Some(7),
            queue: [8].into_iter().collect(),
        };
        let mut ids = Ids::default();
        let denied = refusal("etcdserver: permission denied");
        route(&mut subs, &mut creating, &mut ids, &mut requests, denied)
            .await
            .unwrap();
        match rx7.try_recv() {
            Ok(Msg::Response(r)) => assert!(r.watch_id() == 7 && r.canceled()),
            _ => panic!("the refusal did not reach watch 7"),
        }
        assert!(!subs.contains_key(&7) && creating.outstanding.is_none());
        assert!(rx8.try_recv().is_err(), "watch 8 is not told");
        creating.outstanding = Some(8);
        let stale = refusal("etcdserver: invalid auth token");
        let err = route(&mut subs, &mut creating, &mut ids, &mut requests, stale).await;
        assert!(matches!(err, Err(Error::Auth(m)) if m.contains("invalid auth token")));
    }

    fn created(watch_id: i64) -> WatchResponse {
        WatchResponse(PbWatchResponse {
            watch_id,
            created: true,
            ..Default::default()
        })
    }

    /// etcd's gRPC proxy gives a stream's watches its own ids, from 0: each creation's answer
    /// maps the id it gave to ours, events and cancels are translated, and the stream is
    /// known as a proxy's (not probed for silence). etcd itself gives the ids asked for.
    #[tokio::test]
    async fn ids_given_by_a_proxy_are_translated() {
        let (req_tx, mut req_rx) = mpsc::channel(8);
        let mut requests = WatchRequestSender(req_tx);
        let (mut subs, [mut rx1, mut rx2]) = subs_of([1, 2]);
        let mut ids = Ids::default();
        let mut creating = Creating {
            outstanding: Some(1),
            queue: [2].into_iter().collect(),
        };
        route(
            &mut subs,
            &mut creating,
            &mut ids,
            &mut requests,
            created(0),
        )
        .await
        .unwrap();
        assert_eq!(ids.proxied, Some(true));
        creating.outstanding = creating.queue.pop_front();
        route(
            &mut subs,
            &mut creating,
            &mut ids,
            &mut requests,
            created(1),
        )
        .await
        .unwrap();
        // Server id 1 is our watch 2, server id 0 our watch 1.
        for server in [1, 0] {
            route(
                &mut subs,
                &mut creating,
                &mut ids,
                &mut requests,
                response(server),
            )
            .await
            .unwrap();
        }
        let got = |rx: &mut mpsc::Receiver<Msg>| -> Vec<(i64, bool)> {
            std::iter::from_fn(|| match rx.try_recv() {
                Ok(Msg::Response(r)) => Some((r.watch_id(), r.created())),
                _ => None,
            })
            .collect()
        };
        assert_eq!(got(&mut rx1), [(1, true), (1, false)]);
        assert_eq!(got(&mut rx2), [(2, true), (2, false)]);
        // Our watch 2 goes: the cancel names the proxy's id for it.
        subs.remove(&2);
        assert_eq!(ids.forget(2), Some(1));
        route(
            &mut subs,
            &mut creating,
            &mut ids,
            &mut requests,
            response(1),
        )
        .await
        .unwrap();
        assert!(rx2.try_recv().is_err(), "nothing for a watch gone");
        assert!(req_rx.try_recv().is_err());

        let mut etcd = Ids::default();
        etcd.created(3, 3);
        assert_eq!(etcd.proxied, Some(false));
    }
}
