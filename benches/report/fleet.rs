//! 10. fleet (issue 20 §2): what a fleet of client processes costs etcd.
//!
//! A private 3-member loopback cluster (`cluster.rs`) and N child processes (`fleet` mode,
//! the bench binary re-executed), each as the chat gateway: 1 registry holding its own key
//! (TTL 10 s, so its own lease) and D = 7 discoveries, one per service prefix (user, friend,
//! message, file, speech, transmit, gateway), all through the C ABI. Every process is given the
//! same endpoint list, as a fleet sharing one configuration is.
//!
//! The fleet grows 0 → 50 → 100 → 200 processes (ETCD_SD_FLEET_SIZES). At each size, once
//! every child said READY and etcd's watcher gauge reached N × D, and 3 s more (a keep-alive
//! round), the bench reads for each member its RSS (/proc), its CPU over an idle window of
//! 10 s (ETCD_SD_FLEET_IDLE_S; /proc/<pid>/task/*/schedstat) and from its own `/metrics`
//! `etcd_debugging_mvcc_watch_stream_total`, `etcd_debugging_mvcc_watcher_total`,
//! `go_goroutines` and `go_memstats_heap_inuse_bytes`; and for each child its RSS and thread
//! count (/proc/<pid>/status), and the children's CPU over the same window.
//!
//! At the largest size: put→callback. The bench puts 100 keys under the message prefix one
//! after the other; every child's message discovery prints `EV <key> <CLOCK_MONOTONIC ns>` from
//! its callback (one clock for the whole machine), and the latency of a (put, child) pair is
//! that time minus the time taken just before the put. A bare etcd-client watch in the bench
//! process on the same member gives the floor under the same load.
//!
//! Figures go to the report, to bench-report.json and to target/bench-fleet-<label>.json
//! (ETCD_SD_FLEET_LABEL, default "current"), which scripts/fleet-plot.py draws into
//! docs/fleet.png (scripts/bench.sh runs it).
//!
//! Opt-ins, off by default: ETCD_SD_FLEET_PPROF=<dir> starts the members (and the proxy) with
//! `--enable-pprof` and saves, at each size after the idle window, each one's `/metrics`,
//! `/proc/<pid>/status` and `smaps_rollup`, `/debug/pprof/goroutine?debug=1` and
//! `/debug/pprof/heap?gc=1` (protobuf, for `go tool pprof`) then `heap?debug=1` (text, with
//! runtime.MemStats) into <dir>/<label>-n<N>-<m0|m1|m2|proxy>-*. ETCD_SD_FLEET_BINS=
//! "<label>=<bench binary>,..." adds a pass per other build of the children (as
//! ETCD_SD_FLEET_BEFORE_BIN does for "before"); ETCD_SD_FLEET_PROXY=<labels> (`1`: this build's)
//! runs those passes again, "<label>-proxy", with the children pointed at one `etcd grpc-proxy`
//! in front of the members (the proxy's own RSS, CPU, goroutines and heap reported apart).

use crate::capi::{c, Discovery, Registry, Sink};
use crate::child;
use crate::cluster::{Cluster, Proxy};
use crate::metrics;
use crate::profiles;
use crate::report::Report;
use crate::scenarios::Ctx;
use crate::util::{loadavg1, machine_jiffies, mono_ns, round3, run_ns, stats, status_kb, Stats, J};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const SC: &str = "10. fleet";
/// The chat gateway's services: one discovery each.
pub const SERVICES: [&str; 7] = [
    "user", "friend", "message", "file", "speech", "transmit", "gateway",
];
pub const PREFIX: &str = "/fleet/services/";
const LATENCY_SERVICE: &str = "message";
pub const TTL: i64 = 10;
pub const SETTLE: Duration = Duration::from_secs(3);
const PUTS: usize = 100;
/// Children started but not yet READY at any moment (spreads the start-up).
const STARTING_AT_ONCE: usize = 16;

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// The child
// ---------------------------------------------------------------------------------------------

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A discovery's callbacks: print the time a probe key arrived, ignore the rest.
struct Stamp;

impl Sink for Stamp {
    fn on_put(&self, key: &[u8], _value: &[u8], _at: Instant) {
        if key.windows(7).any(|w| w == b"/probe-") {
            let t = mono_ns();
            say(&format!("EV {} {t}", String::from_utf8_lossy(key)));
        }
    }

    fn on_del(&self, _key: &[u8], _at: Instant) {}
}

/// `fleet` child: 1 registry (own key) + one discovery per service, READY, then idle.
pub fn child() -> Result<(), String> {
    let var = |n: &str| std::env::var(n).map_err(|_| format!("child needs {n}"));
    let ep = c(&var("BENCH_ENDPOINTS")?);
    let p: usize = var("BENCH_PROC")?
        .parse()
        .map_err(|e| format!("proc: {e}"))?;
    let ttl: i64 = var("BENCH_TTL")?.parse().map_err(|e| format!("ttl: {e}"))?;
    let svc = SERVICES[p % SERVICES.len()];
    let reg = Registry::new(&ep, ttl)?;
    reg.register(
        &c(&format!("{PREFIX}{svc}/inst-{p:04}")),
        &c(&format!("10.20.{}.{}:7000", p / 250, p % 250)),
    )?;
    let mut discs = Vec::with_capacity(SERVICES.len());
    for s in SERVICES {
        discs.push(Discovery::new(
            &ep,
            &format!("{PREFIX}{s}/"),
            Arc::new(Stamp),
        )?);
    }
    say("READY");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

// ---------------------------------------------------------------------------------------------
// The bench side
// ---------------------------------------------------------------------------------------------

/// What the children said.
#[derive(Default)]
pub struct Seen {
    pub ready: usize,
    /// Probe key -> the callback times (CLOCK_MONOTONIC ns), one per child that saw it.
    events: HashMap<String, Vec<u64>>,
    /// Probe key -> child -> when that child's discovery first saw it (CLOCK_MONOTONIC ns).
    pub first: HashMap<String, HashMap<usize, u64>>,
    /// Children whose stdout ended (the process exited or was killed).
    pub exited: Vec<usize>,
    /// Probe key -> when the bench's bare watch saw it.
    floor: HashMap<String, u64>,
    pub errors: Vec<String>,
}

pub struct Shared {
    seen: Mutex<Seen>,
    cv: Condvar,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            seen: Mutex::new(Seen::default()),
            cv: Condvar::new(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `ok` holds (true) or `limit` passes (false); a child's error ends it.
    pub fn wait(&self, limit: Duration, mut ok: impl FnMut(&Seen) -> bool) -> Result<bool, String> {
        let deadline = Instant::now() + limit;
        let mut s = self.lock();
        loop {
            if let Some(e) = s.errors.first() {
                return Err(e.clone());
            }
            if ok(&s) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            s = self
                .cv
                .wait_timeout(s, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The children, SIGKILLed and reaped when dropped (also on an error or a panic; the kernel
/// kills them too if the bench dies, see `die_with_parent`).
pub struct Children(pub Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

fn spawn_child(
    exe: &Path,
    idx: usize,
    endpoints: &str,
    shared: &Arc<Shared>,
) -> Result<Child, String> {
    let env = [
        ("BENCH_ENDPOINTS", endpoints.to_string()),
        ("BENCH_PROC", idx.to_string()),
        ("BENCH_TTL", TTL.to_string()),
    ];
    let (child, out) = child::spawn_exe(exe, "fleet", &env)?;
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("bench-fleet-rd".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                let mut f = line.split_whitespace();
                let mut s = shared.lock();
                match f.next() {
                    Some("READY") => s.ready += 1,
                    Some("EV") => {
                        if let (Some(k), Some(t)) = (f.next(), f.next()) {
                            let t = t.parse().unwrap_or(0);
                            s.events.entry(k.to_string()).or_default().push(t);
                            s.first
                                .entry(k.to_string())
                                .or_default()
                                .entry(idx)
                                .or_insert(t);
                        }
                    }
                    Some("RESULT") => s.errors.push(format!("fleet child {idx}: {line}")),
                    _ => continue,
                }
                drop(s);
                shared.cv.notify_all();
            }
            shared.lock().exited.push(idx);
            shared.cv.notify_all();
        })
        .map_err(|e| format!("reader thread: {e}"))?;
    Ok(child)
}

/// One member at one fleet size.
#[derive(Clone, Default)]
struct MemberFig {
    rss_kb: u64,
    cpu_pct: f64,
    watch_streams: f64,
    watchers: f64,
    goroutines: f64,
    heap_inuse_mb: f64,
}

/// The figures at one fleet size.
#[derive(Clone, Default)]
struct Point {
    n: usize,
    members: Vec<MemberFig>,
    /// The grpc-proxy in front of the members, if any (not in `members`' sums).
    proxy: Option<MemberFig>,
    window_s: f64,
    client_rss_kb: Vec<u64>,
    client_threads: Vec<u64>,
    clients_cpu_pct: f64,
    /// The whole machine over the window, in % of one core (all cores: nproc × 100).
    machine_busy_pct: f64,
    load1: f64,
}

impl Point {
    fn sum(&self, f: impl Fn(&MemberFig) -> f64) -> f64 {
        self.members.iter().map(f).sum()
    }
}

fn median(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

/// The gauges read from each member's `/metrics`.
const GAUGES: [&str; 4] = [
    "etcd_debugging_mvcc_watch_stream_total",
    "etcd_debugging_mvcc_watcher_total",
    "go_goroutines",
    "go_memstats_heap_inuse_bytes",
];

pub fn scrape(ports: &[u16]) -> Result<Vec<[f64; 4]>, String> {
    ports
        .iter()
        .map(|p| {
            let body = metrics::fetch(*p, Duration::from_secs(3))
                .ok_or_else(|| format!("no /metrics from 127.0.0.1:{p}"))?;
            let g = metrics::gauges(&body, &GAUGES);
            Ok([0, 1, 2, 3].map(|i| g[i].unwrap_or(f64::NAN)))
        })
        .collect()
}

/// Waits for the fleet of `n` to settle, then measures it over an idle window of `idle`.
fn measure(
    n: usize,
    cl: &Cluster,
    proxy: Option<&Proxy>,
    kids: &Children,
    shared: &Shared,
    idle: Duration,
) -> Result<Point, String> {
    let ports = cl.listening_ports();
    let pids: Vec<String> = cl.pids().iter().map(|p| p.to_string()).collect();
    // Every discovery's watch is on etcd (the library may return from `_new` before the
    // watch is created). Through a proxy, which coalesces watches, the members hold fewer:
    // wait until their count stays the same for 2 s instead.
    let want = (n * SERVICES.len()) as f64;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (f64::NAN, Instant::now());
    loop {
        let watchers: f64 = scrape(&ports)?.iter().map(|g| g[1]).sum();
        if proxy.is_none() && watchers >= want {
            break;
        }
        if proxy.is_some() {
            if watchers != last.0 {
                last = (watchers, Instant::now());
            } else if n == 0 || last.1.elapsed() >= Duration::from_secs(2) {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err(if proxy.is_some() {
                format!("{n} processes through the proxy: etcd's watchers still change after 60 s ({watchers})")
            } else {
                format!("{n} processes: etcd holds {watchers} watchers, not {want}, after 60 s")
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(SETTLE);
    if let Some(e) = shared.lock().errors.first() {
        return Err(e.clone());
    }

    let kid_pids: Vec<String> = kids.0.iter().map(|c| c.id().to_string()).collect();
    let client_rss_kb: Vec<u64> = kid_pids.iter().map(|p| status_kb(p, "VmRSS")).collect();
    let client_threads: Vec<u64> = kid_pids.iter().map(|p| status_kb(p, "Threads")).collect();

    let cpu = |pids: &[String]| -> Vec<u64> { pids.iter().map(|p| run_ns(p)).collect() };
    let proxy_pid = proxy.map(|p| p.pid().to_string());
    let proxy_cpu = || proxy_pid.as_deref().map_or(0, run_ns);
    let load1 = loadavg1();
    let (m0, k0, j0, p0) = (cpu(&pids), cpu(&kid_pids), machine_jiffies(), proxy_cpu());
    let w0 = Instant::now();
    std::thread::sleep(idle);
    let (m1, k1, j1, p1) = (cpu(&pids), cpu(&kid_pids), machine_jiffies(), proxy_cpu());
    let wall = w0.elapsed().as_secs_f64();
    let pct = |ns: u64| ns as f64 / 1e9 / wall * 100.0;
    let gauges = scrape(&ports)?;
    let proxy = match (proxy, &proxy_pid) {
        (Some(p), Some(pid)) => {
            let (goroutines, heap_inuse) = profiles::proxy_runtime(p.port);
            Some(MemberFig {
                rss_kb: status_kb(pid, "VmRSS"),
                cpu_pct: pct(p1.saturating_sub(p0)),
                watch_streams: f64::NAN,
                watchers: f64::NAN,
                goroutines,
                heap_inuse_mb: heap_inuse / 1048576.0,
            })
        }
        _ => None,
    };
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let busy = (j1.0 - j0.0) as f64 / (j1.1 - j0.1).max(1) as f64 * nproc * 100.0;

    let members = (0..pids.len())
        .map(|i| MemberFig {
            rss_kb: status_kb(&pids[i], "VmRSS"),
            cpu_pct: pct(m1[i].saturating_sub(m0[i])),
            watch_streams: gauges[i][0],
            watchers: gauges[i][1],
            goroutines: gauges[i][2],
            heap_inuse_mb: gauges[i][3] / 1048576.0,
        })
        .collect();
    let kcpu: u64 = k1.iter().zip(&k0).map(|(a, b)| a.saturating_sub(*b)).sum();
    Ok(Point {
        n,
        members,
        proxy,
        window_s: wall,
        client_rss_kb,
        client_threads,
        clients_cpu_pct: pct(kcpu),
        machine_busy_pct: busy,
        load1,
    })
}

/// Starts children until `n` are READY, at most STARTING_AT_ONCE starting at a time.
pub fn grow(
    exe: &Path,
    n: usize,
    endpoints: &str,
    kids: &mut Children,
    shared: &Arc<Shared>,
) -> Result<f64, String> {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(120);
    while kids.0.len() < n {
        let ready = shared.lock().ready;
        if kids.0.len() - ready < STARTING_AT_ONCE {
            let idx = kids.0.len();
            kids.0.push(spawn_child(exe, idx, endpoints, shared)?);
            continue;
        }
        let started = kids.0.len();
        shared.wait(Duration::from_millis(200), |s| {
            started - s.ready < STARTING_AT_ONCE
        })?;
        if Instant::now() > deadline {
            return Err(format!("fleet: {started} processes started in 120 s"));
        }
    }
    if !shared.wait(Duration::from_secs(120), |s| s.ready >= n)? {
        return Err(format!(
            "fleet: {} of {n} processes ready after 120 s",
            shared.lock().ready
        ));
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// put→callback at the current size: PUTS probe keys, each waited for in every child.
struct Latency {
    n: usize,
    /// Every (put, child) pair.
    all: Stats,
    /// Per put, the last child to see it.
    last: Stats,
    floor: Stats,
    put_ack: Stats,
    missing: usize,
}

fn latency(cl: &Cluster, n: usize, shared: &Arc<Shared>) -> Result<Latency, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-fleet")
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    // The children's connections go to the first member (every process has the same list
    // and starts on its first endpoint); the put and the floor's watch go there too.
    let ep = cl.client_urls()[0].clone();
    let mut putter = rt
        .block_on(etcd_client::Client::connect([ep.as_str()], None))
        .map_err(|e| format!("connect: {e}"))?;
    let mut watcher = rt
        .block_on(etcd_client::Client::connect([ep.as_str()], None))
        .map_err(|e| format!("connect: {e}"))?;
    let prefix = format!("{PREFIX}{LATENCY_SERVICE}/probe-");
    let mut stream = rt
        .block_on(watcher.watch(
            prefix.as_str(),
            Some(etcd_client::WatchOptions::new().with_prefix()),
        ))
        .map_err(|e| format!("floor watch: {e}"))?;
    let sh = shared.clone();
    let floor_task = rt.spawn(async move {
        while let Ok(Some(resp)) = stream.message().await {
            let t = mono_ns();
            let mut s = sh.lock();
            for ev in resp.events() {
                if let Some(kv) = ev.kv() {
                    let key = String::from_utf8_lossy(kv.key()).into_owned();
                    s.floor.insert(key, t);
                }
            }
            drop(s);
            sh.cv.notify_all();
        }
    });

    let (mut all, mut last, mut floor, mut acks) = (vec![], vec![], vec![], vec![]);
    let mut missing = 0;
    for i in 0..PUTS + 5 {
        let key = format!("{prefix}{i:04}");
        let t0 = mono_ns();
        rt.block_on(putter.put(key.as_str(), "10.0.0.1:5000", None))
            .map_err(|e| format!("put {key}: {e}"))?;
        let ack = mono_ns() - t0;
        let done = shared.wait(Duration::from_secs(5), |s| {
            s.events.get(&key).map_or(0, Vec::len) >= n && s.floor.contains_key(&key)
        })?;
        let s = shared.lock();
        let times = s.events.get(&key).cloned().unwrap_or_default();
        let f = s.floor.get(&key).copied();
        drop(s);
        if i < 5 {
            continue; // warm-up
        }
        if !done {
            missing += n.saturating_sub(times.len());
        }
        let d = |t: u64| Duration::from_nanos(t.saturating_sub(t0));
        all.extend(times.iter().map(|t| d(*t)));
        if let Some(m) = times.iter().max() {
            last.push(d(*m));
        }
        if let Some(f) = f {
            floor.push(d(f));
        }
        acks.push(Duration::from_nanos(ack));
    }
    floor_task.abort();
    drop(rt);
    Ok(Latency {
        n,
        all: stats(&all),
        last: stats(&last),
        floor: stats(&floor),
        put_ack: stats(&acks),
        missing,
    })
}

/// target/ (the parent of this binary's profile directory).
pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("target"))
}

pub fn git_head() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn point_json(p: &Point) -> J {
    let r = round3;
    let members = p
        .members
        .iter()
        .map(|m| {
            J::obj(vec![
                ("rss_mb", J::Num(r(mb(m.rss_kb)))),
                ("cpu_pct", J::Num(r(m.cpu_pct))),
                ("watch_streams", J::Num(m.watch_streams)),
                ("watchers", J::Num(m.watchers)),
                ("goroutines", J::Num(m.goroutines)),
                ("heap_inuse_mb", J::Num(r(m.heap_inuse_mb))),
            ])
        })
        .collect();
    let max = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    J::obj(vec![
        ("n", J::Num(p.n as f64)),
        ("discoveries_each", J::Num(SERVICES.len() as f64)),
        (
            "etcd",
            J::obj(vec![
                (
                    "rss_mb",
                    J::Num(r(mb(p.members.iter().map(|m| m.rss_kb).sum()))),
                ),
                ("cpu_pct", J::Num(r(p.sum(|m| m.cpu_pct)))),
                ("watch_streams", J::Num(p.sum(|m| m.watch_streams))),
                ("watchers", J::Num(p.sum(|m| m.watchers))),
                ("goroutines", J::Num(p.sum(|m| m.goroutines))),
                ("heap_inuse_mb", J::Num(r(p.sum(|m| m.heap_inuse_mb)))),
            ]),
        ),
        ("members", J::Arr(members)),
        (
            "proxy",
            p.proxy.as_ref().map_or(J::Null, |x| {
                J::obj(vec![
                    ("rss_mb", J::Num(r(mb(x.rss_kb)))),
                    ("cpu_pct", J::Num(r(x.cpu_pct))),
                    ("goroutines", J::Num(x.goroutines)),
                    ("heap_inuse_mb", J::Num(r(x.heap_inuse_mb))),
                ])
            }),
        ),
        (
            "clients",
            J::obj(vec![
                ("rss_median_mb", J::Num(r(mb(median(&p.client_rss_kb))))),
                ("rss_max_mb", J::Num(r(mb(max(&p.client_rss_kb))))),
                ("threads_median", J::Num(median(&p.client_threads) as f64)),
                ("threads_max", J::Num(max(&p.client_threads) as f64)),
                ("cpu_pct_all", J::Num(r(p.clients_cpu_pct))),
            ]),
        ),
        ("window_s", J::Num(r(p.window_s))),
        ("machine_busy_pct", J::Num(r(p.machine_busy_pct))),
        ("load1", J::Num(r(p.load1))),
    ])
}

/// The scenario: one pass with this binary's children, labelled ETCD_SD_FLEET_LABEL
/// ("current"); with ETCD_SD_FLEET_BEFORE_BIN (another build of this bench binary, e.g. saved
/// before a change), first a pass with that binary's children, labelled "before", so both
/// are measured in the same run (each on a fresh cluster). ETCD_SD_FLEET_BINS="<label>=<bench
/// binary>,..." adds such a pass per build (after "before"); ETCD_SD_FLEET_PROXY=<labels> (`1`:
/// this build's) runs each of those passes again, "<label>-proxy", with its children pointed at
/// an `etcd grpc-proxy`.
pub fn run(_ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let label = std::env::var("ETCD_SD_FLEET_LABEL").unwrap_or_else(|_| "current".into());
    let mut passes = vec![];
    if let Ok(before) = std::env::var("ETCD_SD_FLEET_BEFORE_BIN") {
        passes.push(("before".to_string(), PathBuf::from(before), false));
    }
    for item in std::env::var("ETCD_SD_FLEET_BINS")
        .unwrap_or_default()
        .split(',')
        .filter(|i| !i.trim().is_empty())
    {
        let (l, path) = item
            .split_once('=')
            .ok_or_else(|| format!("ETCD_SD_FLEET_BINS: {item:?} is not <label>=<path>"))?;
        passes.push((l.trim().to_string(), PathBuf::from(path.trim()), false));
    }
    for (_, bin, _) in &passes {
        if !bin.is_file() {
            return Err(format!("fleet children {}: no such file", bin.display()));
        }
    }
    passes.push((label.clone(), exe, false));
    // ETCD_SD_FLEET_PROXY: the passes (labels; `1`: this build's) also run through a proxy.
    let proxied = std::env::var("ETCD_SD_FLEET_PROXY").unwrap_or_default();
    let proxied: Vec<&str> = proxied.split(',').map(str::trim).collect();
    let passes: Vec<_> = passes
        .into_iter()
        .flat_map(|(l, bin, _)| {
            let also = proxied.contains(&l.as_str()) || (l == label && proxied.contains(&"1"));
            let through = also.then(|| (format!("{l}-proxy"), bin.clone(), true));
            std::iter::once((l, bin, false)).chain(through)
        })
        .collect();
    for (label, exe, proxy) in passes {
        eprintln!(
            "bench:   pass {label}: children from {}{}",
            exe.display(),
            if proxy {
                ", through etcd grpc-proxy"
            } else {
                ""
            }
        );
        pass(&label, &exe, proxy, rep)?;
    }
    Ok(())
}

fn pass(label: &str, exe: &Path, through_proxy: bool, rep: &mut Report) -> Result<(), String> {
    let started = Instant::now();
    let sc = format!("{SC} ({label})");
    let sc = sc.as_str();
    let own = std::env::current_exe().is_ok_and(|e| e == exe);
    let commit = if own {
        git_head()
    } else if label == "before" {
        "ETCD_SD_FLEET_BEFORE_BIN".to_string()
    } else {
        "ETCD_SD_FLEET_BINS".to_string()
    };
    let idle = Duration::from_secs(env_or("ETCD_SD_FLEET_IDLE_S", 10u64));
    let mut sizes: Vec<usize> = std::env::var("ETCD_SD_FLEET_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![50, 100, 200]);
    sizes.sort_unstable();
    sizes.dedup();

    let pprof = profiles::dir()?;
    let flags: &[&str] = if pprof.is_some() {
        &[profiles::FLAG]
    } else {
        &[]
    };
    let cl = Cluster::start_with("fleet", flags)?;
    eprintln!(
        "bench:   3-member cluster {} (pids {:?}), data on {}",
        cl.endpoints(),
        cl.pids(),
        cl.data_location
    );
    let proxy = if through_proxy {
        // Always with pprof: the proxy's goroutines and heap are read there.
        let p = Proxy::start(
            &cl.endpoints(),
            &[profiles::FLAG],
            &cl.dir().join("proxy.log"),
        )?;
        eprintln!(
            "bench:   etcd grpc-proxy {} (pid {})",
            p.endpoint(),
            p.pid()
        );
        Some(p)
    } else {
        None
    };
    let endpoints = proxy
        .as_ref()
        .map_or_else(|| cl.endpoints(), Proxy::endpoint);
    let save_profiles = |n: usize| {
        let Some(dir) = &pprof else { return };
        let ports = cl.listening_ports();
        for (i, pid) in cl.pids().into_iter().enumerate() {
            profiles::save(dir, &format!("{label}-n{n}-m{i}"), ports[i], pid, false);
        }
        if let Some(p) = &proxy {
            profiles::save(dir, &format!("{label}-n{n}-proxy"), p.port, p.pid(), true);
        }
        eprintln!("bench:   profiles at N = {n}: {}", dir.display());
    };
    let shared = Shared::new();
    let mut kids = Children(vec![]);
    let mut points = vec![];
    let base = measure(0, &cl, proxy.as_ref(), &kids, &shared, idle)?;
    save_profiles(0);
    eprintln!(
        "bench:   0 processes: etcd {:.1} MB, {:.2} % CPU",
        mb(base.members.iter().map(|m| m.rss_kb).sum()),
        base.sum(|m| m.cpu_pct)
    );
    points.push(base);
    let mut grow_s = vec![];
    for &n in &sizes {
        let took = grow(exe, n, &endpoints, &mut kids, &shared)?;
        grow_s.push((n, took));
        let p = measure(n, &cl, proxy.as_ref(), &kids, &shared, idle)?;
        save_profiles(n);
        eprintln!(
            "bench:   {n} processes (started in {took:.1} s): etcd {:.1} MB, {:.2} % CPU, {} streams, {} watchers, {} goroutines; machine busy {:.0} % of a core",
            mb(p.members.iter().map(|m| m.rss_kb).sum()),
            p.sum(|m| m.cpu_pct),
            p.sum(|m| m.watch_streams),
            p.sum(|m| m.watchers),
            p.sum(|m| m.goroutines),
            p.machine_busy_pct
        );
        points.push(p);
    }
    let n_max = kids.0.len();
    let lat = if n_max > 0 {
        Some(latency(&cl, n_max, &shared)?)
    } else {
        None
    };
    drop(kids);
    drop(proxy);
    drop(cl);

    // The report's rows.
    let base = points[0].clone();
    let base_rss = base.members.iter().map(|m| m.rss_kb).sum::<u64>();
    rep.info(
        sc,
        "set-up: 3-member loopback cluster; N processes, each 1 registry (own key, TTL 10 s) + 7 discoveries (user, friend, message, file, speech, transmit, gateway), same endpoint list",
        format!(
            "label {label}; idle window {} s; machine busy (whole machine, all processes) {}",
            idle.as_secs(),
            points
                .iter()
                .map(|p| format!("{:.0} %", p.machine_busy_pct))
                .collect::<Vec<_>>()
                .join(" / ")
        ),
    );
    for p in &points {
        let rss = p.members.iter().map(|m| m.rss_kb).sum::<u64>();
        let per = p
            .members
            .iter()
            .map(|m| format!("{:.0}", mb(m.rss_kb)))
            .collect::<Vec<_>>()
            .join("+");
        let cpu = p
            .members
            .iter()
            .map(|m| format!("{:.1}", m.cpu_pct))
            .collect::<Vec<_>>()
            .join("+");
        let proxy = p.proxy.as_ref().map_or(String::new(), |x| {
            format!(
                "; grpc-proxy apart: {:.1} MB, {:.2} % of a core, {} goroutines",
                mb(x.rss_kb),
                x.cpu_pct,
                x.goroutines
            )
        });
        let clients = if p.n == 0 {
            String::new()
        } else {
            format!(
                "; per process RSS {:.1} MB median / {:.1} max, threads {} / {}",
                mb(median(&p.client_rss_kb)),
                mb(p.client_rss_kb.iter().copied().max().unwrap_or(0)),
                median(&p.client_threads),
                p.client_threads.iter().copied().max().unwrap_or(0)
            )
        };
        rep.info(
            sc,
            &format!(
                "N = {}: etcd RSS (members) / idle CPU / watch streams / watchers / goroutines",
                p.n
            ),
            format!(
                "{:.1} MB ({per}; +{:.1}) / {:.2} % of a core ({cpu}) / {} / {} / {}{proxy}{clients}",
                mb(rss),
                mb(rss.saturating_sub(base_rss)),
                p.sum(|m| m.cpu_pct),
                p.sum(|m| m.watch_streams),
                p.sum(|m| m.watchers),
                p.sum(|m| m.goroutines),
            ),
        );
    }
    if let Some(l) = &lat {
        rep.info(
            sc,
            &format!(
                "N = {}: put→callback, {PUTS} puts × every process's message discovery, p50/p90/p99",
                l.n
            ),
            format!(
                "{}; last process per put {}; floor (bare etcd-client watch, bench process) {}; put ack {}{}",
                l.all.triple(),
                l.last.triple(),
                l.floor.triple(),
                l.put_ack.triple(),
                if l.missing > 0 {
                    format!("; {} callbacks missing after 5 s", l.missing)
                } else {
                    String::new()
                }
            ),
        );
    }

    let mut obj = vec![
        ("label", J::str(label)),
        ("commit", J::str(commit)),
        ("children", J::str(exe.display().to_string())),
        ("through_grpc_proxy", J::Bool(through_proxy)),
        ("etcd_version", J::str(crate::server::etcd_version())),
        ("ttl_s", J::Num(TTL as f64)),
        ("idle_window_s", J::Num(idle.as_secs_f64())),
        ("settle_s", J::Num(SETTLE.as_secs_f64())),
        (
            "services",
            J::Arr(SERVICES.iter().map(|s| J::str(*s)).collect()),
        ),
        (
            "grow_s",
            J::Arr(
                grow_s
                    .iter()
                    .map(|(n, s)| J::Arr(vec![J::Num(*n as f64), J::Num(round3(*s))]))
                    .collect(),
            ),
        ),
        ("points", J::Arr(points.iter().map(point_json).collect())),
    ];
    if let Some(l) = &lat {
        obj.push((
            "latency",
            J::obj(vec![
                ("n", J::Num(l.n as f64)),
                ("puts", J::Num(PUTS as f64)),
                ("all", l.all.json()),
                ("last_per_put", l.last.json()),
                ("floor", l.floor.json()),
                ("put_ack", l.put_ack.json()),
                ("missing", J::Num(l.missing as f64)),
            ]),
        ));
    }
    obj.push(("wall_s", J::Num(round3(started.elapsed().as_secs_f64()))));
    let json = J::obj(obj);
    let mut text = String::new();
    json.write(&mut text, 0);
    text.push('\n');
    let out = target_dir().join(format!("bench-fleet-{label}.json"));
    match std::fs::write(&out, &text) {
        Ok(()) => eprintln!("bench:   fleet figures: {}", out.display()),
        Err(e) => eprintln!("bench:   cannot write {}: {e}", out.display()),
    }
    rep.detail(sc, json);
    Ok(())
}
