//! Child processes: this bench binary re-executed (fork + exec, never a bare fork: the
//! library's threads do not survive fork) with `ETCD_SD_BENCH_CHILD=<mode>`. They use only
//! the C ABI and report `RESULT <name> <value>` lines on stdout, so their thread counts and
//! RSS are those of a fresh process holding just what the scenario creates.

use crate::capi::{c, Discovery, Probe, Registry};
use crate::server::die_with_parent;
use crate::util::{
    clock_ticks_per_second, cpu_ticks, ms, rss_kb, run_ns, stats, status_kb, thread_names,
};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

pub const MODE_VAR: &str = "ETCD_SD_BENCH_CHILD";

/// Starts this binary in child `mode` with `env`; stdout piped, stderr inherited.
pub fn spawn(
    mode: &str,
    env: &[(&str, String)],
) -> Result<(Child, BufReader<ChildStdout>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    spawn_exe(&exe, mode, env)
}

/// As [`spawn`], with another build of this bench binary (the fleet's "before" children).
pub fn spawn_exe(
    exe: &std::path::Path,
    mode: &str,
    env: &[(&str, String)],
) -> Result<(Child, BufReader<ChildStdout>), String> {
    let mut cmd = Command::new(exe);
    cmd.env(MODE_VAR, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    die_with_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| format!("spawn child: {e}"))?;
    let out = BufReader::new(child.stdout.take().expect("piped stdout"));
    Ok((child, out))
}

/// Runs a child to completion and collects its `RESULT` lines.
pub fn run_to_end(mode: &str, env: &[(&str, String)]) -> Result<HashMap<String, String>, String> {
    let (mut child, out) = spawn(mode, env)?;
    let mut results = HashMap::new();
    for line in out.lines() {
        let line = line.map_err(|e| format!("reading child output: {e}"))?;
        if let Some(rest) = line.strip_prefix("RESULT ") {
            let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
            results.insert(k.to_string(), v.to_string());
        }
    }
    let status = child.wait().map_err(|e| format!("wait child: {e}"))?;
    if let Some(err) = results.get("error") {
        return Err(format!("child {mode}: {err}"));
    }
    if !status.success() {
        return Err(format!("child {mode} exited with {status}"));
    }
    Ok(results)
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child needs {name}"))
}

fn emit(key: &str, value: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "RESULT {key} {value}");
    let _ = out.flush();
}

/// Entry point of a child process.
pub fn main(mode: &str) {
    let r = match mode {
        "crash" => crash(),
        "footprint" => footprint(),
        "sync" => sync(),
        "fanout" => fanout(),
        "storm-registrant" => crate::storm_child::registrant(),
        "storm-discovery" => crate::storm_child::discovery(),
        "fleet" => crate::fleet::child(),
        other => Err(format!("unknown child mode {other}")),
    };
    if let Err(e) = r {
        emit("error", e.replace('\n', " "));
        std::process::exit(1);
    }
}

/// Registers a key, says READY, then waits to be SIGKILLed.
fn crash() -> Result<(), String> {
    let ep = c(&var("BENCH_ENDPOINT"));
    let ttl: i64 = var("BENCH_TTL").parse().map_err(|e| format!("ttl: {e}"))?;
    let reg = Registry::new(&ep, ttl)?;
    reg.register(&c(&var("BENCH_KEY")), &c("10.0.0.9:5000"))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "READY {}", reg.lease_id()?);
        let _ = out.flush();
    }
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn lib_threads(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| n.starts_with("etcd-sd"))
        .cloned()
        .collect()
}

/// One registry (one key) + one discovery: the process's threads and RSS.
fn footprint() -> Result<(), String> {
    let ep = c(&var("BENCH_ENDPOINT"));
    emit("rss_before_kb", rss_kb());
    emit("threads_before", thread_names().len());
    let reg = Registry::new(&ep, 3)?;
    reg.register(&c("/bench/footprint/svc-1"), &c("10.0.0.1:5000"))?;
    let probe = Probe::new(false);
    let disc = Discovery::new(&ep, "/bench/footprint/", probe)?;
    // One event after the listing, so the callback threads (started on first use) exist.
    reg.register(&c("/bench/footprint/svc-2"), &c("10.0.0.2:5000"))?;
    if disc.sink().wait_puts(2, Duration::from_secs(5)).is_none() {
        return Err("the discovery did not report the second key".into());
    }
    // Let a few keep-alives and the watch run, so what is measured is the steady state.
    std::thread::sleep(Duration::from_secs(3));
    let names = thread_names();
    let lib = lib_threads(&names);
    emit("threads_total", names.len());
    emit("threads_library", lib.len());
    emit("thread_names", names.join(","));
    emit("rss_kb", rss_kb());
    emit("rss_anon_kb", status_kb("self", "RssAnon"));
    emit("rss_file_kb", status_kb("self", "RssFile"));
    emit("hwm_kb", status_kb("self", "VmHWM"));
    emit("listing_seen", disc.sink().puts());
    drop(disc);
    drop(reg);
    Ok(())
}

/// `etcd_sd_discovery_new` on a prefix holding BENCH_N keys: time and RSS growth.
fn sync() -> Result<(), String> {
    let ep = c(&var("BENCH_ENDPOINT"));
    let prefix = var("BENCH_PREFIX");
    let n: u64 = var("BENCH_N").parse().map_err(|e| format!("n: {e}"))?;
    // Start the runtime, the callback pool and the connection first, so the growth measured
    // below is the listing's alone.
    let warm = Discovery::new(&ep, "/bench/warm-up/", Probe::new(false))?;
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kb();
    let probe = Probe::new(false);
    let t0 = Instant::now();
    let disc = Discovery::new(&ep, &prefix, probe);
    let took = t0.elapsed();
    let disc = disc?;
    let after = rss_kb();
    emit("new_ms", format!("{:.3}", ms(took)));
    emit("delivered", disc.sink().puts());
    emit("expected", n);
    emit("rss_before_kb", before);
    emit("rss_after_kb", after);
    emit("hwm_kb", status_kb("self", "VmHWM"));
    std::thread::sleep(Duration::from_millis(500));
    emit("rss_settled_kb", rss_kb());
    drop(disc);
    emit("rss_after_free_kb", rss_kb());
    drop(warm);
    Ok(())
}

/// 100 discoveries + 1,000 registries of one key each, then an idle window.
/// `n` sequential bare puts under the fan-out's groups, from a runtime of this process.
fn floor_puts(endpoint: &str, n: usize, groups: usize) -> Result<Duration, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let mut cl = etcd_client::Client::connect([endpoint], None)
            .await
            .map_err(|e| format!("floor connect: {e}"))?;
        let t0 = Instant::now();
        for i in 0..n {
            let key = format!("/bench/fan/g{}/floor-{i:04}", i % groups);
            cl.put(key, "10.0.0.1:5000", None)
                .await
                .map_err(|e| format!("floor put: {e}"))?;
        }
        Ok(t0.elapsed())
    })
}

fn fanout() -> Result<(), String> {
    let ep = c(&var("BENCH_ENDPOINT"));
    let idle: u64 = var("BENCH_IDLE_S")
        .parse()
        .map_err(|e| format!("idle: {e}"))?;
    let etcd_pid = var("BENCH_ETCD_PID");
    // Groups of keys the discoveries split into: 10 (each discovery sees 100 keys) or 1
    // (each sees all 1,000, as in etcd-cpp-apiv3's measured run).
    let groups: usize = std::env::var("BENCH_FAN_GROUPS")
        .ok()
        .and_then(|g| g.parse().ok())
        .unwrap_or(10);
    let (n_disc, n_reg) = (100usize, 1000usize);
    emit("rss_before_kb", rss_kb());

    let t0 = Instant::now();
    let mut discs = Vec::with_capacity(n_disc);
    for j in 0..n_disc {
        let prefix = format!("/bench/fan/g{}/", j % groups);
        discs.push(Discovery::new(&ep, &prefix, Probe::new(false))?);
    }
    emit("discoveries_ms", format!("{:.1}", ms(t0.elapsed())));

    let value = c("10.0.0.1:5000");
    let mut regs = Vec::with_capacity(n_reg);
    let mut each = Vec::with_capacity(n_reg);
    let t0 = Instant::now();
    for i in 0..n_reg {
        let key = c(&format!("/bench/fan/g{}/inst-{i:04}", i % groups));
        let t = Instant::now();
        let reg = Registry::new(&ep, 3)?;
        reg.register(&key, &value)?;
        each.push(t.elapsed());
        regs.push(reg);
    }
    let register_all = t0.elapsed();
    emit("register_all_ms", format!("{:.1}", ms(register_all)));
    let s = stats(&each);
    emit("register_each_p50_ms", format!("{:.3}", s.p50));
    emit("register_each_p99_ms", format!("{:.3}", s.p99));

    // Every discovery of group g sees the n_reg / groups keys of that group.
    let expected = (n_disc * n_reg / groups) as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: u64 = discs.iter().map(|d| d.sink().puts()).sum();
        if seen >= expected {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("discoveries saw {seen} of {expected} puts"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    emit("all_delivered_ms", format!("{:.1}", ms(t0.elapsed())));

    std::thread::sleep(Duration::from_secs(1));
    let names = thread_names();
    emit("threads_total", names.len());
    emit("threads_library", lib_threads(&names).len());
    emit("thread_names", names.join(","));
    emit("rss_kb", rss_kb());
    emit("rss_anon_kb", status_kb("self", "RssAnon"));

    let hz = clock_ticks_per_second();
    let (cpu0, run0) = (cpu_ticks("self"), run_ns("self"));
    let (etcd0, w0) = (run_ns(&etcd_pid), Instant::now());
    std::thread::sleep(Duration::from_secs(idle));
    let (cpu1, run1) = (cpu_ticks("self"), run_ns("self"));
    let (etcd1, wall) = (run_ns(&etcd_pid), w0.elapsed());
    let pct = |d: u64| d as f64 / hz / wall.as_secs_f64() * 100.0;
    let pct_ns = |d: u64| d as f64 / 1e9 / wall.as_secs_f64() * 100.0;
    emit("idle_window_s", format!("{:.1}", wall.as_secs_f64()));
    emit("idle_cpu_pct", format!("{:.2}", pct(cpu1 - cpu0)));
    emit(
        "idle_cpu_sched_pct",
        format!("{:.2}", pct_ns(run1.saturating_sub(run0))),
    );
    emit(
        "etcd_cpu_pct",
        format!("{:.2}", pct_ns(etcd1.saturating_sub(etcd0))),
    );
    emit("rss_after_idle_kb", rss_kb());

    // The floor: 1,000 sequential bare etcd-client puts of the same keys' shape (each seen by
    // 10 discoveries, as a registration is), on an open connection.
    let floor = floor_puts(&var("BENCH_ENDPOINT"), n_reg, groups)?;
    emit("floor_puts_ms", format!("{:.1}", ms(floor)));

    let t0 = Instant::now();
    drop(regs);
    emit("free_all_ms", format!("{:.1}", ms(t0.elapsed())));
    drop(discs);
    Ok(())
}
