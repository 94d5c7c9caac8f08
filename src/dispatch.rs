//! The callback pool: a fixed number of threads named `etcd-sd-cb` that run every user
//! callback (discovery events after the initial listing, registry status changes).
//!
//! Each discovery or registry owns a [`Mailbox`], an actor-style queue: at most one pool thread drains a
//! given mailbox at a time, so one discovery's callbacks never overlap and arrive in the order
//! they were posted (revision order), while a callback that blocks only holds up its own
//! discovery and one pool thread. Keep-alives run on the runtime, never here.

use once_cell::sync::Lazy;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Pool threads. Two, so one blocked callback does not stall every other discovery.
pub const CALLBACK_THREADS: usize = 2;
/// Events one pool thread delivers from a mailbox before letting other mailboxes have a turn.
const BATCH: usize = 256;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Mailboxes whose callback this thread is running right now (innermost last).
    static ACTIVE: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// The callback a mailbox delivers to.
pub type Sink<E> = Box<dyn Fn(&E) + Send + Sync>;

/// One object's event queue and the lock that makes its callbacks exclusive.
pub struct Mailbox<E> {
    id: u64,
    sink: Sink<E>,
    queue: Mutex<Queue<E>>,
    /// Held for the whole of each callback; `close` takes it to wait for a running one.
    gate: Mutex<()>,
    closed: AtomicBool,
}

struct Queue<E> {
    events: VecDeque<E>,
    /// True while the mailbox sits in the pool's run queue or a pool thread is draining it.
    scheduled: bool,
}

impl<E: Send + 'static> Mailbox<E> {
    pub fn new(sink: Sink<E>) -> Arc<Self> {
        Arc::new(Mailbox {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            sink,
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                scheduled: false,
            }),
            gate: Mutex::new(()),
            closed: AtomicBool::new(false),
        })
    }

    /// Runs the callback for `event` on the calling thread (used for the initial listing,
    /// before any pool thread can touch this mailbox). Returns false once closed.
    pub fn deliver_now(&self, event: &E) -> bool {
        let _gate = lock(&self.gate);
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        ACTIVE.with(|a| a.borrow_mut().push(self.id));
        let r = catch_unwind(AssertUnwindSafe(|| (self.sink)(event)));
        ACTIVE.with(|a| a.borrow_mut().pop());
        if r.is_err() {
            log::error!(target: "etcd_sd", "a callback panicked; event dropped");
        }
        true
    }

    /// Queues events for delivery on the pool, in order.
    pub fn post(self: &Arc<Self>, events: impl IntoIterator<Item = E>) {
        if self.closed.load(Ordering::Acquire) {
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

    /// Stops delivery. On return no callback of this mailbox runs or will run, except when
    /// called from inside one of its own callbacks: then it returns at once and no further
    /// callback starts after the current one returns.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        lock(&self.queue).events.clear();
        let inside_own = ACTIVE.with(|a| a.borrow().contains(&self.id));
        if !inside_own {
            drop(lock(&self.gate));
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
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
