//! Logging: the library logs through the `log` facade; this sink writes our records to stderr
//! (default) or hands them to a callback the program installs. The level comes from the
//! `ETCD_SD_LOG` environment variable (`off|error|warn|info|debug`, default `warn`) and can be
//! changed at run time.
//!
//! Delivery is off the thread that logs: a record is formatted where it is logged and queued
//! (at most [`QUEUE_CAPACITY`] records); one thread, `etcd-sd-log`, started with the first
//! record, writes them to stderr or calls the program's sink. So neither the I/O thread nor
//! any caller ever waits on a full stderr pipe or a slow log callback. When the queue is full
//! a record is dropped and counted ([`dropped`]); the next record written is preceded by a
//! WARN line saying how many were dropped.
//!
//! Replacing the sink ([`set_sink`]) waits for a call of the old sink in progress, so once it
//! returns the old sink is never called again. Called from inside the sink itself (on the
//! logging thread) it does not wait: the call in progress is the caller, and the next record
//! goes to the new sink. A sink may log (the record is queued behind), and may block, which
//! only holds up logging.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::cell::Cell;
use std::collections::VecDeque;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

/// Where records go when the program installed its own sink.
pub type LogSink = Arc<dyn Fn(Level, &str) + Send + Sync>;

/// Records waiting for the logging thread; beyond this they are dropped and counted.
pub const QUEUE_CAPACITY: usize = 1024;

/// How long process exit waits for queued records to be written (a stderr nobody reads must
/// not hang the exit).
const EXIT_FLUSH: Duration = Duration::from_millis(500);

static INIT: Once = Once::new();
static LOGGER: Logger = Logger;
static DROPPED: AtomicU64 = AtomicU64::new(0);

struct State {
    queue: VecDeque<(Level, String)>,
    /// Dropped since the last "dropped" line.
    unreported: u64,
    /// The logging thread was started.
    started: bool,
    /// The logging thread waits for records.
    parked: bool,
    sink: Option<LogSink>,
    /// Bumped by each [`set_sink`].
    generation: u64,
    /// The logging thread is delivering a record, with the sink of this generation.
    delivering: Option<u64>,
    /// Threads waiting for `delivering` to change ([`set_sink`], [`flush`]).
    waiters: usize,
}

static STATE: Mutex<State> = Mutex::new(State {
    queue: VecDeque::new(),
    unreported: 0,
    started: false,
    parked: false,
    sink: None,
    generation: 0,
    delivering: None,
    waiters: 0,
});
/// The logging thread waits here for records.
static WORK: Condvar = Condvar::new();
/// [`set_sink`] and [`flush`] wait here for the delivery in progress.
static DELIVERED: Condvar = Condvar::new();

thread_local! {
    /// True on the logging thread (where a sink runs).
    static ON_LOG_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// A panic while the lock was held (none is expected) leaves the state usable.
fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

struct Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        // Only our own records: dependencies' chatter is not the program's business.
        metadata.target().starts_with("etcd_sd") && metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            enqueue(record.level(), record.args().to_string());
        }
    }

    fn flush(&self) {
        flush(Duration::from_secs(1));
    }
}

/// Queues a record for the logging thread, starting it the first time.
fn enqueue(level: Level, msg: String) {
    let mut st = state();
    if st.queue.len() >= QUEUE_CAPACITY {
        st.unreported += 1;
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    st.queue.push_back((level, msg));
    if st.parked {
        st.parked = false;
        WORK.notify_one();
    }
    if st.started {
        return;
    }
    st.started = true;
    drop(st);
    let spawned = std::thread::Builder::new()
        .name("etcd-sd-log".into())
        .spawn(run);
    match spawned {
        // SAFETY: registers a plain `extern "C" fn` with no captured state.
        Ok(_) => unsafe {
            libc::atexit(flush_at_exit);
        },
        Err(e) => {
            // No thread: write what is queued here, as before there was one; try again later.
            let mut st = state();
            st.started = false;
            let queued: Vec<_> = st.queue.drain(..).collect();
            drop(st);
            for (level, msg) in queued {
                write_stderr(level, &msg);
            }
            write_stderr(
                Level::Warn,
                &format!("cannot start the logging thread: {e}"),
            );
        }
    }
}

/// The logging thread: delivers queued records one at a time, in order.
fn run() {
    ON_LOG_THREAD.with(|t| t.set(true));
    let mut st = state();
    loop {
        let Some((level, msg)) = st.queue.pop_front() else {
            st.parked = true;
            st = WORK.wait(st).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        let dropped = std::mem::take(&mut st.unreported);
        let sink = st.sink.clone();
        st.delivering = Some(st.generation);
        drop(st);
        if dropped > 0 {
            let line = format!(
                "{dropped} log record(s) dropped: the log queue ({QUEUE_CAPACITY} records) was \
                 full (stderr or the log callback too slow)"
            );
            deliver(&sink, Level::Warn, &line);
        }
        deliver(&sink, level, &msg);
        drop(sink);
        st = state();
        st.delivering = None;
        if st.waiters > 0 {
            DELIVERED.notify_all();
        }
    }
}

fn deliver(sink: &Option<LogSink>, level: Level, msg: &str) {
    match sink {
        Some(sink) => {
            // A Rust sink that panics loses its record, not the logging thread.
            let _ = catch_unwind(AssertUnwindSafe(|| sink(level, msg)));
        }
        None => write_stderr(level, msg),
    }
}

fn write_stderr(level: Level, msg: &str) {
    let _ = writeln!(std::io::stderr(), "[etcd-sd] {level:<5} {msg}");
}

/// Waits until every queued record is delivered, at most `limit`. Returns at once on the
/// logging thread (a sink that flushes would wait for itself).
pub fn flush(limit: Duration) {
    if ON_LOG_THREAD.with(|t| t.get()) {
        return;
    }
    let deadline = Instant::now() + limit;
    let mut st = state();
    while st.started && (!st.queue.is_empty() || st.delivering.is_some()) {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return;
        };
        st.waiters += 1;
        st = DELIVERED
            .wait_timeout(st, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        st.waiters -= 1;
    }
}

/// At exit, give queued records a moment to reach stderr or the sink.
extern "C" fn flush_at_exit() {
    let _ = catch_unwind(|| flush(EXIT_FLUSH));
}

/// Records dropped since the process started because the queue was full.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Installs the logger once and applies `ETCD_SD_LOG`. If the program (a Rust one linking the
/// rlib) already installed a `log` logger, our records go to that one instead.
pub(crate) fn init() {
    INIT.call_once(|| {
        let level = std::env::var("ETCD_SD_LOG")
            .ok()
            .and_then(|v| parse_level(&v))
            .unwrap_or(LevelFilter::Warn);
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(level);
        }
    });
}

/// `off|error|warn|info|debug|trace`, case-insensitive.
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    s.trim().parse().ok()
}

/// Sets the most verbose level that is emitted.
pub fn set_level(level: LevelFilter) {
    init();
    log::set_max_level(level);
}

/// Sends records to `sink` instead of stderr; `None` restores stderr. Records already queued
/// go to the new sink.
///
/// On return the old sink is not running and will not be called again, except when called
/// from inside the sink itself: then it returns at once, and the call in progress (the
/// caller) is the old sink's last. Must not be called while holding a lock the sink takes.
pub fn set_sink(sink: Option<LogSink>) {
    init();
    let mut st = state();
    let old = std::mem::replace(&mut st.sink, sink);
    st.generation += 1;
    let generation = st.generation;
    if !ON_LOG_THREAD.with(|t| t.get()) {
        while matches!(st.delivering, Some(g) if g < generation) {
            st.waiters += 1;
            st = DELIVERED.wait(st).unwrap_or_else(|e| e.into_inner());
            st.waiters -= 1;
        }
    }
    drop(st);
    drop(old);
}
