//! The log sink (issue 17): a replaced logger is never called once `etcd_sd_set_logger`
//! returns, re-entrant sinks do not deadlock, and a stderr nobody reads never stalls the I/O
//! thread (keep-alives go on).

mod common;

use common::{opts, Etcd};
use etcd_sd::ffi::{
    etcd_sd_log_level, etcd_sd_process_stats, etcd_sd_process_stats_get, etcd_sd_result,
    etcd_sd_set_logger,
};
use etcd_sd::Registry;
use std::io::{BufRead, BufReader, Write};
use std::os::raw::{c_char, c_void};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The logger is process-wide: the cases that replace it take turns.
static TURN: Mutex<()> = Mutex::new(());

/// One installed logger's `user_data`.
#[derive(Default)]
struct Probe {
    calls: AtomicU64,
    /// Set once `etcd_sd_set_logger` replacing this logger returned: the memory is "freed".
    freed: AtomicBool,
    /// Calls that were running, or started, after `freed` was set.
    late: AtomicU64,
    /// What the callback does from inside (see `probe_log`).
    reentrant: AtomicU64,
}

const LOG_FROM_INSIDE: u64 = 1;
const REPLACE_FROM_INSIDE: u64 = 2;

unsafe extern "C" fn probe_log(
    user_data: *mut c_void,
    _level: etcd_sd_log_level,
    _message: *const c_char,
    _message_len: usize,
) {
    let p = &*(user_data as *const Probe);
    if p.freed.load(Ordering::SeqCst) {
        p.late.fetch_add(1, Ordering::SeqCst);
    }
    p.calls.fetch_add(1, Ordering::SeqCst);
    match p.reentrant.load(Ordering::SeqCst) {
        LOG_FROM_INSIDE => log::warn!(target: "etcd_sd", "logged from inside the log callback"),
        REPLACE_FROM_INSIDE => {
            // Replaces itself with stderr: must return (not wait for this very call).
            assert_eq!(
                etcd_sd_set_logger(None, std::ptr::null_mut()),
                etcd_sd_result::ETCD_SD_OK
            );
            p.reentrant.store(0, Ordering::SeqCst);
        }
        _ => {}
    }
    // Some work, so that a call is often in flight when the logger is replaced.
    for _ in 0..50 {
        std::hint::spin_loop();
        std::thread::yield_now();
    }
    // Still running after the replacement returned: the caller may have freed user_data.
    if p.freed.load(Ordering::SeqCst) {
        p.late.fetch_add(1, Ordering::SeqCst);
    }
}

fn install(p: &Probe) {
    let ud = p as *const Probe as *mut c_void;
    assert_eq!(
        etcd_sd_set_logger(Some(probe_log), ud),
        etcd_sd_result::ETCD_SD_OK
    );
}

/// Waits (bounded) until `p` has been called `n` times.
fn wait_calls(p: &Probe, n: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.calls.load(Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "{what}: the logger was not called"
        );
        std::thread::yield_now();
    }
}

/// Another thread logs in a loop while the logger is replaced again and again: once
/// `etcd_sd_set_logger(NULL)` returns, the old logger is neither running nor called again.
#[test]
fn replaced_logger_is_never_called_after_the_replace_returns() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    etcd_sd::log::set_level(log::LevelFilter::Warn);
    let stop = Arc::new(AtomicBool::new(false));
    let logger = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                log::warn!(target: "etcd_sd", "record {i}");
                i += 1;
                if i % 64 == 0 {
                    std::thread::yield_now();
                }
            }
        })
    };
    // Keep stderr quiet between two loggers: a logger that counts nothing in particular.
    let quiet = Box::leak(Box::<Probe>::default());
    let mut late = 0;
    for round in 0..200 {
        let p = Box::new(Probe::default());
        install(&p);
        wait_calls(&p, 1, &format!("round {round}"));
        install(quiet); // replaces `p`
        p.freed.store(true, Ordering::SeqCst);
        // A marker: the next logger is called after this point; `p` must not be.
        wait_calls(quiet, quiet.calls.load(Ordering::SeqCst) + 2, "marker");
        late += p.late.load(Ordering::SeqCst);
    }
    stop.store(true, Ordering::SeqCst);
    logger.join().unwrap();
    etcd_sd::log::flush(Duration::from_secs(10)); // the queued records go to `quiet`
    assert_eq!(
        etcd_sd_set_logger(None, std::ptr::null_mut()),
        etcd_sd_result::ETCD_SD_OK
    );
    assert_eq!(
        late, 0,
        "{late} calls of a logger after etcd_sd_set_logger replaced it"
    );
}

/// A log callback may log (through a library call) and may replace the logger, itself
/// included, without a deadlock.
#[test]
fn log_callback_may_log_and_replace_the_logger() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    etcd_sd::log::set_level(log::LevelFilter::Warn);
    let p = Box::leak(Box::<Probe>::default());
    p.reentrant.store(LOG_FROM_INSIDE, Ordering::SeqCst);
    install(p);
    log::warn!(target: "etcd_sd", "first");
    // The record logged from inside is delivered too (and logs another: a chain).
    wait_calls(p, 5, "logging from inside");
    p.reentrant.store(REPLACE_FROM_INSIDE, Ordering::SeqCst);
    let q = Box::leak(Box::<Probe>::default());
    // The chain goes on until the callback replaced itself with stderr; then `q` takes over.
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.reentrant.load(Ordering::SeqCst) != 0 {
        assert!(
            Instant::now() < deadline,
            "the callback never replaced itself"
        );
        std::thread::yield_now();
    }
    let n = p.calls.load(Ordering::SeqCst);
    install(q);
    p.freed.store(true, Ordering::SeqCst);
    log::warn!(target: "etcd_sd", "to q");
    wait_calls(q, 1, "after the self-replacement");
    assert_eq!(
        p.calls.load(Ordering::SeqCst),
        n,
        "the self-replaced logger was called again"
    );
    assert_eq!(p.late.load(Ordering::SeqCst), 0);
    assert_eq!(
        etcd_sd_set_logger(None, std::ptr::null_mut()),
        etcd_sd_result::ETCD_SD_OK
    );
}

/// Where a record goes matters little here: what matters is that writing it never holds up
/// the I/O thread. The child process (this binary, re-executed) has a stderr pipe that nobody
/// reads, filled before the library starts; a keep-alive on a second etcd then fails, which
/// logs a warning from the I/O thread. The first registry's lease must go on being renewed.
#[test]
fn full_stderr_pipe_does_not_stall_keepalives() {
    if std::env::var("ETCD_SD_STALL_CHILD").is_ok() {
        return stall_child();
    }
    let live = Etcd::start();
    let mut doomed = Etcd::start();
    // Renewed every ttl/3 s, and etcd reports the time left in whole seconds: with 6 s the
    // time left is seen to go up at each renewal (4 -> 5 or 6).
    let ttl = 6;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "full_stderr_pipe_does_not_stall_keepalives",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ETCD_SD_STALL_CHILD", "1")
        .env("ETCD_SD_LIVE", live.endpoint())
        .env("ETCD_SD_DOOMED", doomed.endpoint())
        .env("ETCD_SD_TTL", ttl.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()) // never read; kept open until the end
        .spawn()
        .unwrap();
    let _stderr = child.stderr.take();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest may print "test NAME ... " first, on the same line.
            if let Some((_, id)) = line.split_once("ready ") {
                let _ = tx.send(Ok(i64::from_str_radix(id.trim(), 16).unwrap()));
            } else if line.contains("error: ") {
                let _ = tx.send(Err(line));
            }
        }
    });
    let lease = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the child did not register within 30 s")
        .unwrap_or_else(|e| panic!("child: {e}"));
    doomed.kill(); // the child's keep-alive stream to it fails: a WARN from the I/O thread
    let client = etcd_sd::kv::Client::new(&opts(&live.endpoint(), ttl)).unwrap();
    // The condition: the lease is seen renewed (its time left goes up) twice after the kill,
    // which takes 2 to 3 renewal intervals; stalled, it would expire instead.
    let start = Instant::now();
    let (mut renewals, mut last) = (0, i64::MAX);
    while renewals < 2 {
        let (left, _) = client.lease_ttl(lease).unwrap();
        assert!(
            left > 0,
            "the lease expired {:?} after the keep-alive failure: the I/O thread stalled",
            start.elapsed()
        );
        if left > last {
            renewals += 1;
        }
        last = left;
        assert!(start.elapsed() < Duration::from_secs(30), "no renewal seen");
        std::thread::sleep(Duration::from_millis(100)); // polling etcd, not synchronising
    }
    let _ = child.stdin.take().map(|mut s| s.write_all(b"bye\n"));
    let _ = child.kill();
    let _ = child.wait();
}

fn stall_child() {
    let env = |k: &str| std::env::var(k).unwrap();
    let ttl: i64 = env("ETCD_SD_TTL").parse().unwrap();
    // Fill the pipe: write without blocking until it would block.
    // SAFETY: fcntl and write on fd 2 with a local buffer.
    unsafe {
        let flags = libc::fcntl(2, libc::F_GETFL);
        libc::fcntl(2, libc::F_SETFL, flags | libc::O_NONBLOCK);
        let buf = [b'x'; 4096];
        while libc::write(2, buf.as_ptr().cast(), buf.len()) > 0 {}
        libc::fcntl(2, libc::F_SETFL, flags);
    }
    // stderr is full: failures are reported on stdout.
    let registry = |endpoint: &str, key: &str| {
        let r = Registry::new(&opts(endpoint, ttl)).and_then(|r| r.register(key, "v").map(|_| r));
        r.unwrap_or_else(|e| {
            println!("error: {key}: {e}");
            std::process::exit(1)
        })
    };
    let a = registry(&env("ETCD_SD_LIVE"), "/stall/a");
    let _b = registry(&env("ETCD_SD_DOOMED"), "/stall/b");
    println!("ready {:x}", a.lease_id());
    std::io::stdout().flush().unwrap();
    // Until the parent is done (it kills us).
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    std::process::exit(0);
}

/// A sink that blocks until released, recording what it was given.
#[derive(Default)]
struct Gate {
    open: AtomicBool,
    calls: AtomicU64,
    messages: Mutex<Vec<String>>,
}

unsafe extern "C" fn gated_log(
    user_data: *mut c_void,
    _level: etcd_sd_log_level,
    message: *const c_char,
    message_len: usize,
) {
    // SAFETY: `user_data` is the `Gate` the test installed and keeps alive until it replaced
    // the logger; `message` is `message_len` bytes the library lends for the call.
    let (g, text) = unsafe {
        (
            &*(user_data as *const Gate),
            std::slice::from_raw_parts(message.cast::<u8>(), message_len),
        )
    };
    g.calls.fetch_add(1, Ordering::SeqCst);
    g.messages
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(text).into_owned());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !g.open.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::yield_now();
    }
}

/// A sink that does not return fills the queue (1,024 records); what comes beyond is dropped,
/// counted in the process stats, and announced by the next record once the sink returns.
#[test]
fn a_stuck_sink_drops_and_counts_records() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let gate = Gate::default();
    let ud = &gate as *const Gate as *mut c_void;
    assert_eq!(
        etcd_sd_set_logger(Some(gated_log), ud),
        etcd_sd_result::ETCD_SD_OK
    );
    let stats = || {
        // SAFETY: the stats struct is plain integers, for which all zeroes is a valid value.
        let mut s: etcd_sd_process_stats = unsafe { std::mem::zeroed() };
        s.size = std::mem::size_of::<etcd_sd_process_stats>();
        assert_eq!(
            etcd_sd_process_stats_get(&mut s),
            etcd_sd_result::ETCD_SD_OK
        );
        s.log_records_dropped
    };
    log::warn!(target: "etcd_sd", "first: the sink blocks on it");
    let deadline = Instant::now() + Duration::from_secs(10);
    while gate.calls.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the sink was never called");
        std::thread::yield_now();
    }
    let before = stats();
    let extra = 100;
    for i in 0..etcd_sd::log::QUEUE_CAPACITY + extra {
        log::warn!(target: "etcd_sd", "filler {i}");
    }
    let dropped = stats() - before;
    // Other tests of this binary may log meanwhile: at least `extra` records were dropped.
    assert!(
        dropped >= extra as u64,
        "{dropped} records dropped, expected at least {extra}"
    );
    assert_eq!(etcd_sd::log::dropped(), stats());
    gate.open.store(true, Ordering::SeqCst);
    // Once the queue has drained (the first record and the 1,024 queued ones reached the
    // sink), the next record is preceded by the "dropped" line.
    let queued = 1 + etcd_sd::log::QUEUE_CAPACITY as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while gate.calls.load(Ordering::SeqCst) < queued {
        assert!(Instant::now() < deadline, "the queue did not drain");
        std::thread::yield_now();
    }
    log::warn!(target: "etcd_sd", "last");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (said, last) = {
            let m = gate.messages.lock().unwrap();
            (
                m.iter().any(|m| m.contains("log record(s) dropped")),
                m.iter().any(|m| m.ends_with("last")),
            )
        };
        if said && last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 'records dropped' line reached the sink"
        );
        std::thread::yield_now();
    }
    assert_eq!(
        etcd_sd_set_logger(None, std::ptr::null_mut()),
        etcd_sd_result::ETCD_SD_OK
    );
}

/// A shared watch stream that breaks under 7 discoveries says so at WARN through its own
/// outage log (issue 20: the fleet fault bench saw 8 warnings per process), not once per watch.
#[test]
fn a_broken_shared_stream_warns_once() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = lines.clone();
    etcd_sd::log::set_sink(Some(Arc::new(move |lvl, msg: &str| {
        if lvl <= log::Level::Warn {
            l.lock().unwrap().push(msg.to_string());
        }
    })));
    let mut etcd = Etcd::start();
    let o = opts(&etcd.endpoint(), 5);
    let ds: Vec<etcd_sd::Discovery> = (0..7)
        .map(|i| {
            etcd_sd::Discovery::new(&o, &format!("/warn/{i}/"), |_: &etcd_sd::Event| {}).unwrap()
        })
        .collect();
    wait_until_watchers(&etcd, 7);
    etcd.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream_lines = || {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.contains("watch"))
            .cloned()
            .collect::<Vec<_>>()
    };
    while stream_lines().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no warning about the watch stream"
        );
        std::thread::yield_now();
    }
    // Every watch has met the break twice (it logs its part right after counting a resume):
    // a per-watch warning of the first one would be in the sink by now.
    while !ds.iter().all(|d| d.stats().resumes >= 2) {
        assert!(Instant::now() < deadline, "the watches did not retry");
        std::thread::yield_now();
    }
    etcd_sd::log::flush(Duration::from_secs(5));
    let watch_lines = stream_lines();
    etcd_sd::log::set_sink(None);
    drop(ds);
    // The stream's outage log: its first failure, and a line when the kind of failure changes
    // (broken pipe, then connection refused); nothing from the 7 watches.
    assert!(
        !watch_lines.is_empty()
            && watch_lines.len() <= 2
            && watch_lines
                .iter()
                .all(|m| m.starts_with("shared watch stream: ")),
        "the stream's own lines only, none per watch: {watch_lines:#?}"
    );
}

fn wait_until_watchers(etcd: &Etcd, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while etcd.watchers() != n {
        assert!(Instant::now() < deadline, "{n} watchers never seen");
        std::thread::sleep(Duration::from_millis(20)); // polling etcd, not synchronising
    }
}
