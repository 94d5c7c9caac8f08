//! The callback pool: a fixed number of threads named `etcd-sd-cb` that run every user
//! callback (discovery events after the initial listing, registry status changes).
//!
//! Each discovery or registry owns a [`Mailbox`], an actor-style queue: at most one pool thread drains a
//! given mailbox at a time, so one discovery's callbacks never overlap and arrive in the order
//! they were posted (revision order), while a callback that blocks only holds up its own
//! discovery and one pool thread. Keep-alives run on the runtime, never here.
//!
//! An *inline* mailbox ([`Mailbox::new_inline`], opted into with
//! `Options::set_inline_callbacks`) skips the pool: `post` runs the callbacks at once on the
//! posting thread, the runtime's I/O thread. That saves the hand-off (a wake-up of a parked
//! pool thread, a lock and a queue) at the cost of the rule that such a callback never blocks:
//! while it runs, no keep-alive, watch or request of the process makes progress. Order and
//! exclusivity hold as for the pool: one watch task posts a mailbox's events, in order.

use once_cell::sync::Lazy;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;

/// Pool threads. Two, so one blocked callback does not stall every other discovery.
pub const CALLBACK_THREADS: usize = 2;
/// Events one pool thread delivers from a mailbox before letting other mailboxes have a turn.
const BATCH: usize = 256;

/// The callback a mailbox delivers to.
pub type Sink<E> = Box<dyn Fn(&E) + Send + Sync>;

/// One object's event queue and the gate that makes its callbacks exclusive.
pub struct Mailbox<E> {
    sink: Sink<E>,
    queue: Mutex<Queue<E>>,
    /// Which thread runs a callback of this mailbox now; `close` waits on it.
    gate: Arc<Gate>,
    closed: AtomicBool,
    /// Run callbacks on the posting thread instead of the pool.
    inline: bool,
}

struct Queue<E> {
    events: VecDeque<E>,
    /// True while the mailbox sits in the pool's run queue or a pool thread is draining it.
    scheduled: bool,
}

/// A callback in progress, for `close` to wait on. Not a mutex held across the callback: a
/// close that must wait can then first check that waiting would not deadlock (see
/// [`Mailbox::close`]).
struct Gate {
    state: Mutex<GateState>,
    idle: Condvar,
}

struct GateState {
    /// The thread running one of the mailbox's callbacks now.
    running: Option<ThreadId>,
    /// Threads waiting in `close` for that callback to return (notify only when some are).
    waiters: usize,
}

/// The wait-for graph of closes: each thread waiting in `close` for another thread's
/// callback, and the gate it waits on. A close that would wait on a thread that itself waits,
/// directly or through others, on the closing thread's own callback does not wait (it would
/// never return). Only closes that wait are here: a handful at most.
static WAITING: Mutex<Vec<(ThreadId, Arc<Gate>)>> = Mutex::new(Vec::new());

impl<E: Send + 'static> Mailbox<E> {
    /// A mailbox whose callbacks run on the pool.
    pub fn new(sink: Sink<E>) -> Arc<Self> {
        Self::with_delivery(sink, false)
    }

    /// A mailbox whose callbacks run on the thread that posts (see the module's doc): for
    /// sinks that never block.
    pub fn new_inline(sink: Sink<E>) -> Arc<Self> {
        Self::with_delivery(sink, true)
    }

    /// [`Self::new_inline`] when `inline`, else [`Self::new`].
    pub fn with_delivery(sink: Sink<E>, inline: bool) -> Arc<Self> {
        Arc::new(Mailbox {
            sink,
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                scheduled: false,
            }),
            gate: Arc::new(Gate {
                state: Mutex::new(GateState {
                    running: None,
                    waiters: 0,
                }),
                idle: Condvar::new(),
            }),
            closed: AtomicBool::new(false),
            inline,
        })
    }

    /// Runs the callback for `event` on the calling thread (used for the initial listing,
    /// before any pool thread can touch this mailbox). Returns false once closed.
    pub fn deliver_now(&self, event: &E) -> bool {
        {
            let mut st = lock(&self.gate.state);
            // `close` sets `closed` under this lock: a callback starts before it or not at all.
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            st.running = Some(std::thread::current().id());
        }
        let r = catch_unwind(AssertUnwindSafe(|| (self.sink)(event)));
        {
            let mut st = lock(&self.gate.state);
            st.running = None;
            if st.waiters > 0 {
                self.gate.idle.notify_all();
            }
        }
        if r.is_err() {
            log::error!(target: "etcd_sd", "a callback panicked; event dropped");
        }
        true
    }

    /// Queues events for delivery on the pool, in order; an inline mailbox delivers them
    /// now, on the calling thread, stopping at the first that finds it closed. Events of one
    /// mailbox are posted by one task at a time, so inline callbacks keep their order and
    /// never overlap.
    pub fn post(self: &Arc<Self>, events: impl IntoIterator<Item = E>) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        if self.inline {
            for event in events {
                if !self.deliver_now(&event) {
                    break;
                }
            }
            return;
        }
        let schedule = {
            let mut q = lock(&self.queue);
            q.events.extend(events);
            let idle = !q.scheduled && !q.events.is_empty();
            if idle {
                q.scheduled = true;
            }
            idle
        };
        if schedule {
            POOL.schedule(self.clone());
        }
    }

    /// Stops delivery: no callback of this mailbox starts after `close` returns. On return no
    /// callback of it is running either, except in two cases where waiting for it would never
    /// end, in which `close` returns at once and the callback in progress finishes later:
    /// - called from inside one of this mailbox's own callbacks (the caller is that callback);
    /// - called from inside a callback of another mailbox while this one's callback, on
    ///   another thread, is itself waiting in a `close`, directly or through others, for the
    ///   caller's callback to return (two discoveries freeing each other from their
    ///   callbacks). That callback finishes after the caller's callback returns.
    pub fn close(&self) {
        {
            let _st = lock(&self.gate.state);
            self.closed.store(true, Ordering::Release);
        }
        lock(&self.queue).events.clear();
        let me = std::thread::current().id();
        let mut registered = false;
        let mut st = lock(&self.gate.state);
        while let Some(holder) = st.running {
            if holder == me {
                break; // inside our own callback
            }
            if !registered {
                drop(st);
                // Check and register under one lock, so that of two closes that would wait
                // on each other, the second one sees the first.
                let mut graph = lock(&WAITING);
                if waits_on(&graph, &self.gate, me) {
                    log::debug!(target: "etcd_sd",
                        "callback close: not waiting for a callback that waits for ours");
                    return;
                }
                graph.push((me, self.gate.clone()));
                registered = true;
                drop(graph);
                st = lock(&self.gate.state);
                continue;
            }
            st.waiters += 1;
            st = self.gate.idle.wait(st).unwrap_or_else(|e| e.into_inner());
            st.waiters -= 1;
        }
        drop(st);
        if registered {
            lock(&WAITING).retain(|(t, _)| *t != me);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Whether the thread running a callback behind `gate` is, through the closes in `graph`,
/// waiting for `me`: following "runs the callback of" and "waits in close on" from the gate
/// leads back to `me`.
fn waits_on(graph: &[(ThreadId, Arc<Gate>)], gate: &Gate, me: ThreadId) -> bool {
    let mut holder = lock(&gate.state).running;
    // Each step follows a distinct waiting thread: at most `graph.len()` of them.
    for _ in 0..=graph.len() {
        match holder {
            None => return false,
            Some(t) if t == me => return true,
            Some(t) => match graph.iter().find(|(w, _)| *w == t) {
                None => return false,
                Some((_, g)) => holder = lock(&g.state).running,
            },
        }
    }
    false
}

/// What the pool runs: a mailbox of any event type.
trait Drain: Send + Sync {
    /// Delivers up to `BATCH` queued events; returns whether more remain.
    fn drain(&self) -> bool;
}

impl<E: Send + 'static> Drain for Mailbox<E> {
    fn drain(&self) -> bool {
        let batch: Vec<E> = {
            let mut q = lock(&self.queue);
            let n = q.events.len().min(BATCH);
            q.events.drain(..n).collect()
        };
        for event in &batch {
            if !self.deliver_now(event) {
                break;
            }
        }
        let mut q = lock(&self.queue);
        let more = !q.events.is_empty() && !self.is_closed();
        if !more {
            q.scheduled = false;
        }
        more
    }
}

/// A poisoned lock here only means a callback panicked while we held it; the data is fine.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An idle pool thread parks at once. (Round 3 had it spin 50 us first; on 2 cores the spin
/// took CPU from etcd and the I/O thread, and measured no better: docs/performance.md,
/// round 4.)
struct Pool {
    ready: Mutex<Ready>,
    wake: Condvar,
}

#[derive(Default)]
struct Ready {
    mailboxes: VecDeque<Arc<dyn Drain>>,
    /// Pool threads asleep on `wake`: notifying costs a system call, so only when one is.
    idle: usize,
}

static POOL: Lazy<Pool> = Lazy::new(|| {
    for i in 0..CALLBACK_THREADS {
        std::thread::Builder::new()
            .name("etcd-sd-cb".into())
            .spawn(worker)
            .unwrap_or_else(|e| panic!("etcd-sd: cannot start callback thread {i}: {e}"));
    }
    Pool {
        ready: Mutex::default(),
        wake: Condvar::new(),
    }
});

impl Pool {
    fn schedule(&self, mailbox: Arc<dyn Drain>) {
        let mut ready = lock(&self.ready);
        ready.mailboxes.push_back(mailbox);
        if ready.idle > 0 {
            self.wake.notify_one();
        }
    }
}

fn worker() {
    loop {
        let mailbox = {
            let mut ready = lock(&POOL.ready);
            loop {
                if let Some(m) = ready.mailboxes.pop_front() {
                    break m;
                }
                ready.idle += 1;
                ready = POOL.wake.wait(ready).unwrap_or_else(|e| e.into_inner());
                ready.idle -= 1;
            }
        };
        if mailbox.drain() {
            POOL.schedule(mailbox);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn delivers_in_order_without_overlap() {
        let (tx, rx) = mpsc::channel();
        let busy = Arc::new(AtomicBool::new(false));
        let b = busy.clone();
        let tx = Mutex::new(tx);
        let mb = Mailbox::new(Box::new(move |e: &Event| {
            assert!(!b.swap(true, Ordering::SeqCst), "overlapping callbacks");
            std::thread::sleep(Duration::from_micros(50));
            b.store(false, Ordering::SeqCst);
            lock(&tx).send(e.key.clone()).unwrap();
        }));
        for i in 0..1000u32 {
            mb.post([Event::put(i.to_be_bytes().to_vec(), vec![])]);
        }
        for i in 0..1000u32 {
            let k = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(k, i.to_be_bytes().to_vec());
        }
    }

    /// A's callback closes B while B's callback, at the same time, closes A: both closes
    /// return (one waits for the other's callback, the other sees the cycle and does not).
    #[test]
    fn mailboxes_closing_each_other_from_their_callbacks_do_not_deadlock() {
        type Slot = Arc<Mutex<Option<Arc<Mailbox<Event>>>>>;
        let (tx, rx) = mpsc::channel::<usize>();
        let rendezvous = Arc::new(std::sync::Barrier::new(2));
        let slots: [Slot; 2] = [Arc::default(), Arc::default()];
        let make = |me: usize| {
            let other = slots[1 - me].clone();
            let (tx, rendezvous) = (Mutex::new(tx.clone()), rendezvous.clone());
            Mailbox::new(Box::new(move |_e: &Event| {
                rendezvous.wait(); // both callbacks in progress at once
                let victim = lock(&other).take();
                if let Some(victim) = victim {
                    victim.close();
                    lock(&tx).send(1 - me).unwrap();
                }
            }) as Sink<Event>)
        };
        let (a, b) = (make(0), make(1));
        *lock(&slots[0]) = Some(a.clone());
        *lock(&slots[1]) = Some(b.clone());
        a.post([Event::put("k", "")]);
        b.post([Event::put("k", "")]);
        let mut closed = vec![
            rx.recv_timeout(Duration::from_secs(10)).expect("deadlock"),
            rx.recv_timeout(Duration::from_secs(10)).expect("deadlock"),
        ];
        closed.sort();
        assert_eq!(closed, [0, 1]);
        assert!(a.is_closed() && b.is_closed());
    }

    /// An inline mailbox runs each callback on the posting thread before `post` returns, in
    /// order; closing it from inside a callback stops the rest of the batch.
    #[test]
    fn inline_delivers_on_the_posting_thread_and_stops_when_closed() {
        type Seen = Arc<Mutex<Vec<(Vec<u8>, ThreadId)>>>;
        let seen: Seen = Arc::default();
        let slot: Arc<Mutex<Option<Arc<Mailbox<Event>>>>> = Arc::default();
        let (s, me) = (seen.clone(), slot.clone());
        let mb = Mailbox::new_inline(Box::new(move |e: &Event| {
            lock(&s).push((e.key.clone(), std::thread::current().id()));
            if e.key == b"stop" {
                if let Some(m) = lock(&me).take() {
                    m.close();
                }
            }
        }));
        *lock(&slot) = Some(mb.clone());
        let poster = std::thread::spawn(move || {
            mb.post([Event::put("a", ""), Event::put("b", "")]);
            let after_first = lock(&seen).len();
            mb.post([Event::put("stop", ""), Event::put("never", "")]);
            mb.post([Event::put("never", "")]);
            (after_first, std::thread::current().id(), seen)
        });
        let (after_first, poster_id, seen) = poster.join().unwrap();
        assert_eq!(after_first, 2, "post returned before its callbacks ran");
        let seen = lock(&seen);
        let keys: Vec<&[u8]> = seen.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, [&b"a"[..], b"b", b"stop"]);
        assert!(seen.iter().all(|(_, t)| *t == poster_id));
    }

    #[test]
    fn close_from_inside_own_callback_returns() {
        let (tx, rx) = mpsc::channel::<u32>();
        let slot: Arc<Mutex<Option<Arc<Mailbox<Event>>>>> = Arc::default();
        let s = slot.clone();
        let tx = Mutex::new(tx);
        let mb = Mailbox::new(Box::new(move |_e: &Event| {
            if let Some(me) = lock(&s).clone() {
                me.close();
            }
            lock(&tx).send(1).unwrap();
        }));
        *lock(&slot) = Some(mb.clone());
        mb.post([Event::put("a", ""), Event::put("b", "")]);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        lock(&slot).take();
    }
}
