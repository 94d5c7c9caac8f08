//! 9. restart storm (issue 11 §2): a whole etcd cluster restarts under a fleet.
//!
//! A private 3-member loopback cluster; 20 registrant processes × 50 registries × 10 keys
//! (10,000 keys, TTL 3 s: each process's registries share one lease) and 10 discovery
//! processes on the whole prefix, all through the C ABI (`storm_child`). Two outages:
//!
//! - A. every member SIGKILLed for 5 s, then started again on the same data directories (what
//!   the issue describes). etcd gives every lease a fresh TTL (+ an election timeout) when a
//!   leader is elected, so the leases survive if they are renewed in time.
//! - B. the same, but the members first come back on client ports nobody knows, until etcd has
//!   expired every lease and deleted the 10,000 keys; then they restart on their usual ports.
//!   Every process finds its lease gone at the same moment and puts its 500 keys back: the
//!   herd the issue is about.
//!
//! For each: the time from the cluster answering again (a linearizable read succeeds) until
//! the 10,000 keys are all in etcd, and until every discovery's table (its callbacks' view,
//! reported by the child as a count and an order-free hash) equals etcd's; and the request
//! rate etcd saw (`metrics`), its peak 1 s window after the restart against the rate the
//! cluster sustains, measured first in the same run with a saturating burst of puts.

use crate::child;
use crate::cluster::Cluster;
use crate::metrics::{self, Sampler};
use crate::report::Report;
use crate::scenarios::Ctx;
use crate::storm_child::{entry_hash, key_value};
use crate::util::{clock_ticks_per_second, cpu_ticks, round3, J};
use etcd_client::{
    Client, CompactionOptions, ConnectOptions, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp,
};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const SC: &str = "9. restart storm";
const PROCS: usize = 20;
const REGS: usize = 50;
const KEYS: usize = 10;
const DISCS: usize = 10;
const TTL: i64 = 3;
const DOWN: Duration = Duration::from_secs(5);
const PREFIX: &str = "/bench/storm/";
/// The registrants' keys (PREFIX also holds a marker key during an outage's observation).
const KEYS_PREFIX: &str = "/bench/storm/p";
const LOAD_PREFIX: &str = "/bench/storm-load/";
const TARGET_S: f64 = 3.0;
/// Timeout of the polling clients' requests.
const SHORT: Duration = Duration::from_millis(500);

/// A registrant's `REG` line: (when read, lease id, losses, restores, keys, requests retried).
type RegLine = (Instant, i64, u64, u64, u64, u64);

/// What the children said, each line stamped when the parent read it.
#[derive(Default)]
struct Seen {
    ready: usize,
    regs: Vec<Vec<RegLine>>,
    /// Per discovery: (when, keys, hash).
    tables: Vec<Vec<(Instant, u64, u64)>>,
    /// Per discovery: (when, resumes, relists).
    dstats: Vec<Vec<(Instant, u64, u64)>>,
    errors: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Children killed (and reaped) when dropped.
struct Children(Vec<Child>);

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
    mode: &str,
    env: &[(&str, String)],
    idx: usize,
    seen: &Shared,
    kids: &mut Children,
) -> Result<(), String> {
    let (child, out) = child::spawn(mode, env)?;
    kids.0.push(child);
    let (seen, mode) = (seen.clone(), mode.to_string());
    std::thread::Builder::new()
        .name("bench-storm-rd".into())
        .spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                let f: Vec<&str> = line.split_whitespace().collect();
                let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                let mut s = lock(&seen);
                match f.first().copied() {
                    Some("READY") => s.ready += 1,
                    Some("REG") => {
                        let lease = f.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
                        s.regs[idx].push((at, lease, n(2), n(3), n(4), n(5)));
                    }
                    Some("TABLE") => s.tables[idx].push((at, n(1), n(2))),
                    Some("DSTATS") => s.dstats[idx].push((at, n(1), n(2))),
                    Some("RESULT") => s.errors.push(format!("{mode} {idx}: {line}")),
                    _ => {}
                }
            }
        })
        .map_err(|e| format!("reader thread: {e}"))?;
    Ok(())
}

/// The expected table: number of keys and order-free hash.
fn expected() -> (u64, u64) {
    let mut h = 0u64;
    for p in 0..PROCS {
        for r in 0..REGS {
            for k in 0..KEYS {
                let (key, value) = key_value(p, r, k);
                h = h.wrapping_add(entry_hash(key.as_bytes(), value.as_bytes()));
            }
        }
    }
    ((PROCS * REGS * KEYS) as u64, h)
}

/// One client per member; `timeout`: per request.
fn clients(rt: &Runtime, ports: &[u16], timeout: Duration) -> Result<Vec<Client>, String> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(300))
        .with_timeout(timeout);
    ports
        .iter()
        .map(|p| {
            rt.block_on(Client::connect(
                [format!("http://127.0.0.1:{p}")],
                Some(opts.clone()),
            ))
            .map_err(|e| format!("bench client: {e}"))
        })
        .collect()
}

/// Keys under `prefix` by a linearizable count (the first member that answers), or None.
fn count(rt: &Runtime, cls: &[Client], prefix: &str) -> Option<i64> {
    rt.block_on(async {
        for cl in cls {
            let mut cl = cl.clone();
            let opts = GetOptions::new().with_prefix().with_count_only();
            if let Ok(Ok(r)) =
                tokio::time::timeout(Duration::from_millis(300), cl.get(prefix, Some(opts))).await
            {
                return Some(r.count());
            }
        }
        None
    })
}

/// Every key and value under PREFIX as etcd has them: (count, hash).
fn etcd_table(rt: &Runtime, cls: &[Client]) -> Result<(u64, u64), String> {
    let mut cl = cls[0].clone();
    let r = rt
        .block_on(cl.get(PREFIX, Some(GetOptions::new().with_prefix())))
        .map_err(|e| format!("get {PREFIX}: {e}"))?;
    let h = r.kvs().iter().fold(0u64, |h, kv| {
        h.wrapping_add(entry_hash(kv.key(), kv.value()))
    });
    Ok((r.kvs().len() as u64, h))
}

/// Deletes everything under `prefix` and compacts physically.
fn clear(rt: &Runtime, cl: &Client, prefix: &str) -> Result<(), String> {
    let mut cl = cl.clone();
    rt.block_on(async move {
        let r = cl
            .delete(prefix, Some(DeleteOptions::new().with_prefix()))
            .await
            .map_err(|e| format!("delete {prefix}: {e}"))?;
        let rev = r.header().map(|h| h.revision()).unwrap_or(0);
        if rev > 0 {
            cl.compact(rev, Some(CompactionOptions::new().with_physical()))
                .await
                .map_err(|e| format!("compact: {e}"))?;
        }
        Ok(())
    })
}

/// A saturating write load through every member for `secs`: `tasks` tasks per member each
/// sending one request after the other (`batch` = 0: single puts; else txns of `batch`
/// puts). Returns (started, ended, requests acknowledged).
fn saturate(
    rt: &Runtime,
    cls: &[Client],
    tasks: usize,
    batch: usize,
    secs: f64,
) -> Result<(Instant, Instant, u64), String> {
    let done = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let until = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
    let mut handles = vec![];
    for (m, cl) in cls.iter().enumerate() {
        for t in 0..tasks {
            let (mut cl, done) = (cl.clone(), done.clone());
            handles.push(rt.spawn(async move {
                let mut i = 0u64;
                while tokio::time::Instant::now() < until {
                    let key = format!("{LOAD_PREFIX}m{m}t{t}/k{i:06}");
                    if batch == 0 {
                        cl.put(key, "10.0.0.1:5000", None)
                            .await
                            .map_err(|e| format!("load put: {e}"))?;
                    } else {
                        let ops: Vec<TxnOp> = (0..batch)
                            .map(|j| {
                                TxnOp::put(
                                    format!("{key}/{j}"),
                                    "10.0.0.1:5000",
                                    None::<PutOptions>,
                                )
                            })
                            .collect();
                        cl.txn(Txn::new().and_then(ops))
                            .await
                            .map_err(|e| format!("load txn: {e}"))?;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok::<(), String>(())
            }));
        }
    }
    rt.block_on(async {
        for h in handles {
            h.await.map_err(|e| format!("load task: {e}"))??;
        }
        Ok::<(), String>(())
    })?;
    Ok((t0, Instant::now(), done.load(Ordering::Relaxed)))
}

/// Requests/s etcd handled (by the metric) during a load from `t0` to `t1`, leaving out the
/// first 0.5 s (connections warming up); and the acknowledged requests per second.
fn load_rate(sampler: &Sampler, t0: Instant, t1: Instant, acked: u64) -> (f64, f64) {
    std::thread::sleep(metrics::PERIOD * 3);
    let s = sampler.samples();
    let a = metrics::at_or_before(&s, t0 + Duration::from_millis(500));
    let b = metrics::at_or_before(&s, t1);
    let rate = match (a, b) {
        (Some(a), Some(b)) => match (a.at, b.at) {
            (Some(x), Some(y)) if y > x => (b.handled - a.handled) / (y - x).as_secs_f64(),
            _ => 0.0,
        },
        _ => 0.0,
    };
    (rate, acked as f64 / (t1 - t0).as_secs_f64())
}

/// What one outage showed.
struct Outcome {
    name: &'static str,
    /// Clients could reach no member for this long.
    unreachable_s: f64,
    restart_to_answer_s: f64,
    keys_back_s: f64,
    min_keys_after: i64,
    /// Every discovery announced the marker put after the cluster answered and holds etcd's
    /// table (the last one to get there).
    tables_equal_s: f64,
    tables_each_s: Vec<f64>,
    leases_lost: u64,
    lost_each: Vec<u64>,
    restored_each_s: Vec<f64>,
    /// CPU of the three members from their restart to the end of the observation, in cores.
    etcd_cores: f64,
    peak_rate: f64,
    peak_rate_at_s: f64,
    peak_err_rate: f64,
    requests: f64,
    requests_failed: f64,
    /// Stream messages etcd sent (watch responses, keep-alive answers).
    stream_sent: f64,
    /// etcd log lines "took too long" (slow applies, waits for the applied index).
    slow_lines: usize,
    by_method: BTreeMap<String, f64>,
    final_ok: bool,
    /// (seconds from the cluster answering, handled requests/s over the second before).
    rate_series: Vec<(f64, f64)>,
    /// (seconds from the cluster answering, keys in etcd).
    count_series: Vec<(f64, i64)>,
}

struct Env<'a> {
    rt: &'a Runtime,
    cls: &'a [Client],
    admin: &'a [Client],
    seen: &'a Shared,
    sampler: &'a Sampler,
    want: (u64, u64),
}

fn secs(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64()
}

/// Puts `key` through the first member that answers in time.
fn put_any(rt: &Runtime, cls: &[Client], key: &str, value: &str) -> bool {
    rt.block_on(async {
        for cl in cls {
            let mut cl = cl.clone();
            let put = cl.put(key, value, None);
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), put).await {
                return true;
            }
        }
        false
    })
}

/// One outage: kill every member, bring them back (`expire`: hidden until every lease has
/// expired first), and watch the fleet recover.
fn outage(
    cl: &mut Cluster,
    env: &Env,
    name: &'static str,
    tag: &str,
    expire: bool,
) -> Result<Outcome, String> {
    let (n_want, h_want) = env.want;
    let marker = (
        format!("{PREFIX}marker-{tag}"),
        "after the restart".to_string(),
    );
    let want_marked = (
        n_want + 1,
        h_want.wrapping_add(entry_hash(marker.0.as_bytes(), marker.1.as_bytes())),
    );
    // Where each registrant stood before.
    let (pre_losses, pre_restores): (Vec<u64>, Vec<u64>) = lock(env.seen)
        .regs
        .iter()
        .map(|v| v.last().map_or((0, 0), |r| (r.2, r.3)))
        .unzip();
    let slow_before = cl.log_lines_with("took too long");
    let t_kill = Instant::now();
    cl.kill_all();
    if expire {
        cl.restart_all(true)?;
        env.sampler.set_ports(cl.listening_ports());
        cl.wait_healthy(Duration::from_secs(30))?;
        let hidden = clients(env.rt, &cl.listening_ports(), SHORT)?;
        let limit = Instant::now() + Duration::from_secs(20);
        while count(env.rt, &hidden, KEYS_PREFIX) != Some(0) {
            if Instant::now() > limit {
                return Err("the leases did not expire within 20 s of the hidden restart".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "bench:   every key expired {:.1} s after the kill; restarting on the usual ports",
            secs(t_kill, Instant::now())
        );
        drop(hidden);
        cl.kill_all();
    } else {
        std::thread::sleep(DOWN);
    }
    cl.restart_all(false)?;
    let t_restart = Instant::now();
    env.sampler.set_ports(cl.listening_ports());
    let pids = cl.pids();

    // Poll until everything is back (or 30 s), then 1.5 s more for the rate window.
    let mut polls: Vec<(Instant, Option<i64>)> = vec![];
    let limit = t_restart + Duration::from_secs(30);
    let mut marked = false;
    let mut done_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let c = count(env.rt, env.cls, KEYS_PREFIX);
        polls.push((now, c));
        if c.is_some() && !marked {
            marked = put_any(env.rt, env.cls, &marker.0, &marker.1);
        }
        if done_at.is_none()
            && marked
            && c == Some(n_want as i64)
            && recovered(env, want_marked, &pre_losses)
        {
            done_at = Some(now);
        }
        if done_at.is_some_and(|d| now > d + Duration::from_millis(1500)) || now > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let t_end = Instant::now();
    let hz = clock_ticks_per_second();
    let etcd_ticks: u64 = pids.iter().map(|p| cpu_ticks(&p.to_string())).sum();
    let etcd_cores = etcd_ticks as f64 / hz / secs(t_restart, t_end);

    let t_answer = polls
        .iter()
        .find(|(_, c)| c.is_some())
        .map(|(t, _)| *t)
        .ok_or("the cluster did not answer within 30 s of the restart")?;
    // The first poll of the final run of polls that saw every key.
    let answered: Vec<&(Instant, Option<i64>)> =
        polls.iter().filter(|(_, c)| c.is_some()).collect();
    let keys_back = match answered
        .iter()
        .rposition(|(_, c)| *c != Some(n_want as i64))
    {
        None => Some(t_answer),
        Some(i) => answered.get(i + 1).map(|(t, _)| *t),
    };
    let min_keys_after = answered.iter().filter_map(|(_, c)| *c).min().unwrap_or(0);

    let s = lock(env.seen);
    // A discovery's table is right from its last change on, if that is the marked table.
    let tables_each: Vec<f64> = s
        .tables
        .iter()
        .map(|t| match t.last() {
            Some((at, n, h)) if (*n, *h) == want_marked => secs(t_answer, *at),
            _ => f64::NAN,
        })
        .collect();
    let lost_each: Vec<u64> = s
        .regs
        .iter()
        .zip(&pre_losses)
        .map(|(v, pre)| v.last().map_or(0, |r| r.2) - pre)
        .collect();
    // When each registrant's last restore of this outage was reported.
    let restored_each: Vec<f64> = s
        .regs
        .iter()
        .zip(&pre_restores)
        .map(|(v, pre)| {
            let now = v.last().map_or(*pre, |r| r.3);
            if now == *pre {
                return f64::NAN;
            }
            v.iter()
                .find(|r| r.3 == now)
                .map_or(f64::NAN, |r| secs(t_answer, r.0))
        })
        .collect();
    drop(s);

    std::thread::sleep(metrics::PERIOD * 2);
    let samples = env.sampler.samples();
    let rates = metrics::per_second(&samples, t_restart, t_end);
    let (peak_at, peak, _) =
        rates
            .iter()
            .copied()
            .fold((t_restart, 0.0, 0.0), |a, r| if r.1 > a.1 { r } else { a });
    let peak_err = rates.iter().map(|r| r.2).fold(0.0, f64::max);
    let first = metrics::at_or_before(&samples, t_restart)
        .cloned()
        .unwrap_or_default();
    let last = metrics::at_or_before(&samples, t_end)
        .cloned()
        .unwrap_or_default();
    let rate_series = metrics::per_second(&samples, t_kill - Duration::from_secs(1), t_end)
        .into_iter()
        .map(|(at, r, _)| (signed(t_answer, at), r))
        .collect();
    let final_ok = etcd_table(env.rt, env.admin)? == want_marked;

    // Back to the plain table for what follows.
    let mut admin = env.admin[0].clone();
    env.rt
        .block_on(admin.delete(marker.0.as_str(), None))
        .map_err(|e| format!("delete marker: {e}"))?;
    wait_for("tables without the marker", Duration::from_secs(30), || {
        Ok(lock(env.seen)
            .tables
            .iter()
            .all(|t| t.last().is_some_and(|(_, n, h)| (*n, *h) == env.want)))
    })?;

    let all_tables = tables_each.iter().all(|v| !v.is_nan());
    Ok(Outcome {
        name,
        unreachable_s: secs(t_kill, t_answer),
        restart_to_answer_s: secs(t_restart, t_answer),
        keys_back_s: keys_back.map_or(f64::NAN, |t| secs(t_answer, t)),
        min_keys_after,
        tables_equal_s: if all_tables {
            tables_each.iter().copied().fold(0.0, f64::max)
        } else {
            f64::NAN
        },
        tables_each_s: tables_each,
        leases_lost: lost_each.iter().sum(),
        lost_each,
        restored_each_s: restored_each,
        etcd_cores,
        peak_rate: peak,
        peak_rate_at_s: signed(t_answer, peak_at),
        peak_err_rate: peak_err,
        requests: last.handled - first.handled,
        requests_failed: last.handled_err - first.handled_err,
        stream_sent: last.sent - first.sent,
        slow_lines: cl.log_lines_with("took too long") - slow_before,
        by_method: metrics::methods_between(&first, &last),
        final_ok,
        rate_series,
        count_series: polls
            .iter()
            .filter_map(|(t, c)| c.map(|c| (signed(t_answer, *t), c)))
            .collect(),
    })
}

fn signed(from: Instant, at: Instant) -> f64 {
    if at >= from {
        secs(from, at)
    } else {
        -secs(at, from)
    }
}

/// Every registrant holds its keys under a live lease (restored if it was lost) and every
/// discovery shows `want`.
fn recovered(env: &Env, want: (u64, u64), pre_losses: &[u64]) -> bool {
    let s = lock(env.seen);
    let regs_ok = s.regs.iter().zip(pre_losses).all(|(v, _pre)| {
        v.last()
            .is_some_and(|r| r.4 == (REGS * KEYS) as u64 && r.3 == r.2)
    });
    let tables_ok = s
        .tables
        .iter()
        .all(|t| t.last().is_some_and(|(_, n, h)| (*n, *h) == want));
    regs_ok && tables_ok
}

fn wait_for(
    what: &str,
    limit: Duration,
    mut ok: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !ok()? {
        if Instant::now() > deadline {
            return Err(format!("{what}: not within {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn fmt_s(v: f64) -> String {
    if v.is_nan() {
        "never".into()
    } else {
        format!("{v:.2} s")
    }
}

pub fn restart_storm(_ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let started = Instant::now();
    let mut cl = Cluster::start()?;
    eprintln!(
        "bench:   3-member cluster {} (pids {:?}), data on {}",
        cl.endpoints(),
        cl.pids(),
        cl.data_location
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-storm")
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let cls = clients(&rt, &cl.listening_ports(), SHORT)?;
    // For the load, the clean-up and the full reads (no short timeout).
    let admin = clients(&rt, &cl.listening_ports(), Duration::from_secs(20))?;
    let sampler = Sampler::start(cl.listening_ports());

    // What the cluster sustains: single puts, 16 in flight per member, 3 s; then, for
    // context, transactions of 128 puts (what lease recovery sends), 4 in flight per member.
    let (t0, t1, acked) = saturate(&rt, &admin, 16, 0, 3.0)?;
    let (sustained, put_acks) = load_rate(&sampler, t0, t1, acked);
    let (t0, t1, acked) = saturate(&rt, &admin, 4, 128, 1.5)?;
    let (txn_rate, txn_acks) = load_rate(&sampler, t0, t1, acked);
    clear(&rt, &admin[0], LOAD_PREFIX)?;
    eprintln!(
        "bench:   sustained: {sustained:.0} puts/s handled ({put_acks:.0}/s acked); {txn_rate:.0} txns of 128 puts/s"
    );

    let seen: Shared = Arc::new(Mutex::new(Seen {
        regs: vec![vec![]; PROCS],
        tables: vec![vec![]; DISCS],
        dstats: vec![vec![]; DISCS],
        ..Default::default()
    }));
    let mut kids = Children(vec![]);
    let endpoints = cl.endpoints();
    let t_setup = Instant::now();
    for p in 0..PROCS {
        let env = [
            ("BENCH_ENDPOINTS", endpoints.clone()),
            ("BENCH_PROC", p.to_string()),
            ("BENCH_REGS", REGS.to_string()),
            ("BENCH_KEYS", KEYS.to_string()),
            ("BENCH_TTL", TTL.to_string()),
        ];
        spawn_child("storm-registrant", &env, p, &seen, &mut kids)?;
    }
    let check_errors = || -> Result<(), String> {
        match lock(&seen).errors.first() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    };
    wait_for("registrants ready", Duration::from_secs(90), || {
        check_errors()?;
        Ok(lock(&seen).ready == PROCS)
    })?;
    let registered_s = t_setup.elapsed().as_secs_f64();
    for d in 0..DISCS {
        let env = [
            ("BENCH_ENDPOINTS", endpoints.clone()),
            ("BENCH_PREFIX", PREFIX.to_string()),
        ];
        spawn_child("storm-discovery", &env, d, &seen, &mut kids)?;
    }
    let want = expected();
    wait_for("discoveries in sync", Duration::from_secs(60), || {
        check_errors()?;
        let s = lock(&seen);
        Ok(s.tables
            .iter()
            .all(|t| t.last().is_some_and(|(_, n, h)| (*n, *h) == want))
            && s.dstats.iter().all(|v| !v.is_empty())
            && s.regs.iter().all(|v| !v.is_empty()))
    })?;
    if etcd_table(&rt, &admin)? != want {
        return Err("etcd does not hold the 10,000 keys after the set-up".into());
    }
    eprintln!(
        "bench:   {PROCS} × {REGS} × {KEYS} keys registered in {registered_s:.1} s; {DISCS} discoveries in sync after {:.1} s",
        t_setup.elapsed().as_secs_f64()
    );
    // Let a keep-alive round pass, so the outage starts from the steady state.
    std::thread::sleep(Duration::from_millis(1500));

    let env = Env {
        rt: &rt,
        cls: &cls,
        admin: &admin,
        seen: &seen,
        sampler: &sampler,
        want,
    };
    let mut outcomes = vec![];
    for (name, tag, expire) in [
        ("A. killed 5 s, restarted", "a", false),
        ("B. leases expired, then restarted", "b", true),
    ] {
        eprintln!("bench:   outage {name} ...");
        let o = outage(&mut cl, &env, name, tag, expire)?;
        eprintln!(
            "bench:   {name}: answered {:.2} s after restart; keys back +{}, tables +{}, leases lost {}, peak {:.0}/s ({:.0} requests, {:.0} failed)",
            o.restart_to_answer_s,
            fmt_s(o.keys_back_s),
            fmt_s(o.tables_equal_s),
            o.leases_lost,
            o.peak_rate,
            o.requests,
            o.requests_failed
        );
        check_errors()?;
        outcomes.push(o);
        std::thread::sleep(Duration::from_secs(1));
    }
    drop(kids);
    drop(sampler);
    drop(cl);

    rep.info(
        SC,
        "set-up: 3-member loopback cluster; 20 processes × 50 registries × 10 keys (TTL 3 s, one shared lease per process) + 10 discovery processes on the whole prefix",
        format!(
            "10,000 keys registered in {registered_s:.1} s; discoveries in sync"
        ),
    );
    rep.info(
        SC,
        "what the cluster sustains: saturating puts (48 in flight), `grpc_server_handled_total` summed over members",
        format!(
            "{sustained:.0} requests/s ({put_acks:.0} puts/s acked); txns of 128 puts: {txn_rate:.0}/s ({txn_acks:.0}/s acked)"
        ),
    );
    let mut details = vec![];
    for o in &outcomes {
        let who = o.name;
        rep.info(
            SC,
            &format!("{who}: clients cut off / cluster answering after the restart"),
            format!(
                "{:.1} s / {:.2} s; processes that lost their lease: {} of {PROCS}{}",
                o.unreachable_s,
                o.restart_to_answer_s,
                o.lost_each.iter().filter(|n| **n > 0).count(),
                if o.leases_lost > 0 {
                    let last = o.restored_each_s.iter().copied().fold(0.0, f64::max);
                    format!(
                        " ({} losses in all), all restored +{last:.2} s; etcd CPU {:.2} cores",
                        o.leases_lost, o.etcd_cores
                    )
                } else {
                    format!("; etcd CPU {:.2} cores", o.etcd_cores)
                }
            ),
        );
        rep.check(
            SC,
            &format!("{who}: all 10,000 keys in etcd, from the cluster answering"),
            format!(
                "{} (fewest seen {}){}",
                fmt_s(o.keys_back_s),
                o.min_keys_after,
                if o.final_ok {
                    ""
                } else {
                    "; FINAL CONTENT WRONG"
                }
            ),
            "≤ 3 s",
            o.keys_back_s <= TARGET_S && o.final_ok,
        );
        rep.check(
            SC,
            &format!("{who}: every discovery's table equals etcd (incl. a key put after the cluster answered), from the cluster answering"),
            fmt_s(o.tables_equal_s),
            "≤ 3 s",
            o.tables_equal_s <= TARGET_S,
        );
        let top: Vec<String> = o
            .by_method
            .iter()
            .map(|(m, v)| format!("{m} {v:.0}"))
            .collect();
        rep.check(
            SC,
            &format!("{who}: peak requests in 1 s after the restart (sampled every 100 ms)"),
            format!(
                "{:.0}/s = {:.0} % of sustained, at +{:.1} s; {:.0} requests in all ({}), {:.0} failed; {:.0} stream messages sent; {} etcd log lines \"took too long\"",
                o.peak_rate,
                o.peak_rate / sustained * 100.0,
                o.peak_rate_at_s,
                o.requests,
                top.join(", "),
                o.requests_failed,
                o.stream_sent,
                o.slow_lines
            ),
            "≤ sustained",
            o.peak_rate <= sustained,
        );
        let pairs = |v: &[(f64, f64)]| {
            J::Arr(
                v.iter()
                    .map(|(t, r)| J::Arr(vec![J::Num(round3(*t)), J::Num(round3(*r))]))
                    .collect(),
            )
        };
        details.push((
            who.to_string(),
            J::obj(vec![
                ("clients_cut_off_s", J::Num(round3(o.unreachable_s))),
                ("restart_to_answer_s", J::Num(round3(o.restart_to_answer_s))),
                ("keys_back_s", num(o.keys_back_s)),
                ("fewest_keys_seen", J::Num(o.min_keys_after as f64)),
                ("final_content_equal", J::Bool(o.final_ok)),
                ("tables_equal_s", num(o.tables_equal_s)),
                (
                    "tables_equal_each_s",
                    J::Arr(o.tables_each_s.iter().map(|v| num(*v)).collect()),
                ),
                ("lease_losses", J::Num(o.leases_lost as f64)),
                (
                    "lease_losses_each",
                    J::Arr(o.lost_each.iter().map(|v| J::Num(*v as f64)).collect()),
                ),
                (
                    "lease_restored_each_s",
                    J::Arr(o.restored_each_s.iter().map(|v| num(*v)).collect()),
                ),
                ("etcd_cores", J::Num(round3(o.etcd_cores))),
                ("peak_requests_per_s", J::Num(round3(o.peak_rate))),
                ("peak_at_s", J::Num(round3(o.peak_rate_at_s))),
                ("peak_failed_per_s", J::Num(round3(o.peak_err_rate))),
                ("requests", J::Num(o.requests)),
                ("requests_failed", J::Num(o.requests_failed)),
                ("stream_messages_sent", J::Num(o.stream_sent)),
                ("etcd_log_took_too_long", J::Num(o.slow_lines as f64)),
                (
                    "requests_by_method",
                    J::Obj(
                        o.by_method
                            .iter()
                            .map(|(m, v)| (m.clone(), J::Num(*v)))
                            .collect(),
                    ),
                ),
                ("rate_per_s_series", pairs(&o.rate_series)),
                (
                    "keys_series",
                    pairs(
                        &o.count_series
                            .iter()
                            .map(|(t, c)| (*t, *c as f64))
                            .collect::<Vec<_>>(),
                    ),
                ),
            ]),
        ));
    }
    let mut all = vec![
        ("processes", J::Num(PROCS as f64)),
        ("registries_each", J::Num(REGS as f64)),
        ("keys_each", J::Num(KEYS as f64)),
        ("discovery_processes", J::Num(DISCS as f64)),
        ("ttl_s", J::Num(TTL as f64)),
        ("kill_s", J::Num(DOWN.as_secs_f64())),
        ("sustained_requests_per_s", J::Num(round3(sustained))),
        ("sustained_puts_acked_per_s", J::Num(round3(put_acks))),
        ("txn128_per_s", J::Num(round3(txn_rate))),
        ("registered_s", J::Num(round3(registered_s))),
        ("wall_s", J::Num(round3(started.elapsed().as_secs_f64()))),
    ];
    let mut obj: Vec<(String, J)> = all.drain(..).map(|(k, v)| (k.to_string(), v)).collect();
    obj.extend(details);
    rep.detail(SC, J::Obj(obj));
    Ok(())
}

fn num(v: f64) -> J {
    if v.is_nan() {
        J::Null
    } else {
        J::Num(round3(v))
    }
}
