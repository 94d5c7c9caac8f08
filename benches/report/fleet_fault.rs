//! Scenario 11, the fleet with a member killed (issue 20, "Done when": the fault tests hold
//! with multiplexed watch streams, including a member killed under 200 processes).
//!
//! The fleet of scenario 10 (`fleet.rs`: N child processes, each 1 registry with its own key
//! and lease, TTL 10 s, and 7 discoveries, one per service, all on a 3-member loopback
//! cluster), N = 200 (ETCD_SD_FLEET_FAULT_N). Once every child is READY and etcd holds its
//! N × 7 watchers, the bench SIGKILLs the member holding the most watch streams (each
//! member's `etcd_debugging_mvcc_watch_stream_total`) and checks:
//!
//! - **registrations survive**: a bare etcd-client watch in the bench, on the two survivors,
//!   from the revision before the kill, sees no DELETE of a fleet key up to 2 × TTL after the
//!   kill (a keep-alive that did not move would let its lease expire within one TTL), and all
//!   N keys are in etcd at the end;
//! - **discoveries keep receiving**: right after the kill the bench puts one probe key per
//!   service (through the survivors, retried while they elect a leader); per process, the
//!   time from the first put until all 7 of its discoveries had it (children stamp every
//!   probe's callback with CLOCK_MONOTONIC), p50/p99/max, and the processes that did not
//!   within ETCD_SD_FLEET_FAULT_BOUND_S (30 s) must be 0; the same again once the streams
//!   have moved ("settled") and after the member's restart;
//! - **the streams move**: the survivors' stream gauges reach N + 1 (one per process, plus the
//!   bench's reference watch) and their watcher gauges 7 N + 1, within 60 s;
//! - **the member rejoins**: restarted on its data directory, it is healthy and serves a
//!   serializable read of a key put after its restart.
//!
//! Children still alive at the end must be all N. Figures go to the report and to
//! target/bench-fault-fleet.json (not bench-fleet-*.json: scripts/fleet-plot.py reads those).

use crate::cluster::Cluster;
use crate::fleet::{self, Children, Shared, PREFIX, SERVICES, SETTLE, TTL};
use crate::report::Report;
use crate::scenarios::Ctx;
use crate::util::{loadavg1, machine_jiffies, mono_ns, round3, stats, Stats, J};
use etcd_client::{Client, EventType, GetOptions, WatchOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const SC: &str = "11. fleet, member killed";
/// How long the survivors may take to hold every process's stream again.
const MOVE_LIMIT: Duration = Duration::from_secs(60);
const WATCH_STREAMS: usize = 0;
const WATCHERS: usize = 1;

/// What the bench's own reference watch (on the survivors) saw.
#[derive(Default)]
struct Reference {
    /// Fleet keys (`/inst-`) deleted: must stay empty.
    deletes: Vec<String>,
    /// Probe key -> when this watch saw it.
    probes: HashMap<String, u64>,
    /// Why the watch ended, if it did.
    ended: Option<String>,
}

/// One probe round: a key per service, and when each process had all of them.
struct Round {
    name: &'static str,
    /// From the kill to the first put.
    after_kill: Duration,
    /// The 7 puts' own time (with retries during an election).
    puts: Duration,
    put_retries: usize,
    /// Per process that had all 7: first put -> its last discovery's callback.
    per_process: Stats,
    /// The same from the last put's answer (0 when the process was quicker than the answer).
    per_process_acked: Stats,
    /// Processes that did not have all 7 within the bound, with the services they missed.
    missing: Vec<(usize, Vec<&'static str>)>,
    /// The bench's reference watch: first put -> its last probe.
    reference: Option<Duration>,
}

fn rt() -> Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-fault")
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))
}

fn gauges(ports: &[u16], alive: &[usize]) -> Result<Vec<[f64; 4]>, String> {
    let ports: Vec<u16> = alive.iter().map(|&i| ports[i]).collect();
    fleet::scrape(&ports)
}

/// Puts `/fleet/services/<svc>/probe-<tag>` for every service and waits (at most `bound`
/// from the first put) until all `n` processes had every one of them.
#[allow(clippy::too_many_arguments)]
fn probe_round(
    rt: &Runtime,
    client: &mut Client,
    shared: &Shared,
    reference: &Mutex<Reference>,
    n: usize,
    name: &'static str,
    t_kill: u64,
    bound: Duration,
) -> Result<Round, String> {
    let keys: Vec<String> = SERVICES
        .iter()
        .map(|s| format!("{PREFIX}{s}/probe-{name}"))
        .collect();
    let t0 = mono_ns();
    let mut retries = 0;
    for k in &keys {
        loop {
            let put = rt.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(1),
                    client.put(k.as_str(), "10.0.0.1:5000", None),
                )
                .await
            });
            match put {
                Ok(Ok(_)) => break,
                Ok(Err(e)) if mono_ns() - t0 > bound.as_nanos() as u64 => {
                    return Err(format!("put {k}: {e} (for {} s)", bound.as_secs()))
                }
                Err(_) if mono_ns() - t0 > bound.as_nanos() as u64 => {
                    return Err(format!("put {k}: no answer for {} s", bound.as_secs()))
                }
                _ => {
                    retries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    let puts = Duration::from_nanos(mono_ns() - t0);
    let left = bound.saturating_sub(puts);
    shared.wait(left, |s| {
        keys.iter()
            .all(|k| s.first.get(k).map_or(0, HashMap::len) >= n)
    })?;
    let s = shared.lock();
    let acked = t0 + puts.as_nanos() as u64;
    let mut per = vec![];
    let mut per_acked = vec![];
    let mut missing = vec![];
    for c in 0..n {
        let mut last = 0;
        let mut lacks = vec![];
        for (k, svc) in keys.iter().zip(SERVICES) {
            match s.first.get(k).and_then(|m| m.get(&c)) {
                Some(&t) if t <= t0 + bound.as_nanos() as u64 => last = last.max(t),
                _ => lacks.push(svc),
            }
        }
        if lacks.is_empty() {
            per.push(Duration::from_nanos(last.saturating_sub(t0)));
            per_acked.push(Duration::from_nanos(last.saturating_sub(acked)));
        } else {
            missing.push((c, lacks));
        }
    }
    drop(s);
    let r = reference.lock().unwrap_or_else(|e| e.into_inner());
    let reference = keys
        .iter()
        .map(|k| r.probes.get(k).copied())
        .collect::<Option<Vec<u64>>>()
        .and_then(|v| v.into_iter().max())
        .map(|t| Duration::from_nanos(t.saturating_sub(t0)));
    Ok(Round {
        name,
        after_kill: Duration::from_nanos(t0.saturating_sub(t_kill)),
        puts,
        put_retries: retries,
        per_process: stats(&per),
        per_process_acked: stats(&per_acked),
        missing,
        reference,
    })
}

fn p50_p99_max(s: &Stats) -> String {
    format!(
        "{} / {} / {} ms",
        crate::util::fmt_ms(s.p50),
        crate::util::fmt_ms(s.p99),
        crate::util::fmt_ms(s.max)
    )
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub fn run(_ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let started = Instant::now();
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let n: usize = fleet::env_or("ETCD_SD_FLEET_FAULT_N", 200);
    let bound = Duration::from_secs(fleet::env_or("ETCD_SD_FLEET_FAULT_BOUND_S", 30));
    let d = SERVICES.len();

    let mut cl = Cluster::start_tagged("fleet-fault")?;
    let endpoints = cl.endpoints();
    let urls = cl.client_urls();
    let ports = cl.listening_ports();
    let pids = cl.pids();
    eprintln!(
        "bench:   3-member cluster {endpoints} (pids {pids:?}), data on {}",
        cl.data_location
    );
    let shared = Shared::new();
    let mut kids = Children(vec![]);
    let grew = fleet::grow(&exe, n, &endpoints, &mut kids, &shared)?;
    let all = [0, 1, 2];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let w: f64 = gauges(&ports, &all)?.iter().map(|g| g[WATCHERS]).sum();
        if w >= (n * d) as f64 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{n} processes: {w} watchers in etcd after 60 s"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(SETTLE);
    let before = gauges(&ports, &all)?;
    let leaders: Vec<bool> = all
        .iter()
        .map(|&i| {
            crate::metrics::fetch(ports[i], Duration::from_secs(3))
                .and_then(|b| crate::metrics::gauges(&b, &["etcd_server_is_leader"])[0])
                .is_some_and(|v| v > 0.5)
        })
        .collect();
    let most_streams = (0..3)
        .max_by(|&a, &b| before[a][WATCH_STREAMS].total_cmp(&before[b][WATCH_STREAMS]))
        .unwrap_or(0);
    let kill_leader = std::env::var("ETCD_SD_FLEET_FAULT_KILL").is_ok_and(|v| v == "leader");
    let victim = match leaders.iter().position(|l| *l) {
        Some(l) if kill_leader => l,
        _ => most_streams,
    };
    let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != victim).collect();
    let streams_of = |g: &[[f64; 4]], k: usize| -> String {
        g.iter()
            .map(|m| format!("{:.0}", m[k]))
            .collect::<Vec<_>>()
            .join("+")
    };
    eprintln!(
        "bench:   {n} processes ready in {grew:.1} s; streams per member {}, watchers {}, leader m{}; killing m{victim}",
        streams_of(&before, WATCH_STREAMS),
        streams_of(&before, WATCHERS),
        leaders.iter().position(|l| *l).map_or("?".into(), |i| i.to_string()),
    );

    // The bench's own clients, on the survivors only.
    let rt = rt()?;
    let surv_urls: Vec<&str> = survivors.iter().map(|&i| urls[i].as_str()).collect();
    let mut client = rt
        .block_on(Client::connect(surv_urls.clone(), None))
        .map_err(|e| format!("connect: {e}"))?;
    let mut watcher = rt
        .block_on(Client::connect(surv_urls.clone(), None))
        .map_err(|e| format!("connect: {e}"))?;
    let fleet_keys = |client: &mut Client| -> Result<(usize, i64), String> {
        let r = rt
            .block_on(client.get(
                PREFIX,
                Some(GetOptions::new().with_prefix().with_keys_only()),
            ))
            .map_err(|e| format!("get {PREFIX}: {e}"))?;
        let count = r
            .kvs()
            .iter()
            .filter(|kv| kv.key().windows(6).any(|w| w == b"/inst-"))
            .count();
        Ok((count, r.header().map_or(0, |h| h.revision())))
    };
    let (keys_before, rev0) = fleet_keys(&mut client)?;
    let reference = Arc::new(Mutex::new(Reference::default()));
    let mut stream = rt
        .block_on(
            watcher.watch(
                PREFIX,
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(rev0 + 1),
                ),
            ),
        )
        .map_err(|e| format!("reference watch: {e}"))?;
    let refw = reference.clone();
    let ref_task = rt.spawn(async move {
        let why = loop {
            match stream.message().await {
                Ok(Some(resp)) => {
                    let t = mono_ns();
                    let mut r = refw.lock().unwrap_or_else(|e| e.into_inner());
                    if resp.canceled() {
                        break format!("canceled: {}", resp.cancel_reason());
                    }
                    for ev in resp.events() {
                        let Some(kv) = ev.kv() else { continue };
                        let key = String::from_utf8_lossy(kv.key()).into_owned();
                        match ev.event_type() {
                            EventType::Delete if key.contains("/inst-") => r.deletes.push(key),
                            EventType::Put if key.contains("/probe-") => {
                                r.probes.entry(key).or_insert(t);
                            }
                            _ => {}
                        }
                    }
                }
                Ok(None) => break "stream ended".to_string(),
                Err(e) => break format!("{e}"),
            }
        };
        refw.lock().unwrap_or_else(|e| e.into_inner()).ended = Some(why);
    });

    // The kill.
    let load_before = loadavg1();
    let j0 = machine_jiffies();
    let t_kill = mono_ns();
    cl.kill(victim);
    eprintln!("bench:   m{victim} SIGKILLed");

    let mut rounds = vec![];
    rounds.push(probe_round(
        &rt,
        &mut client,
        &shared,
        &reference,
        n,
        "kill",
        t_kill,
        bound,
    )?);

    // The streams move to the survivors.
    let (want_streams, want_watchers) = ((n + 1) as f64, (n * d + 1) as f64);
    let mut moved = None;
    let mut after;
    let move_deadline = Instant::now() + MOVE_LIMIT;
    loop {
        after = gauges(&ports, &survivors)?;
        let s: f64 = after.iter().map(|g| g[WATCH_STREAMS]).sum();
        let w: f64 = after.iter().map(|g| g[WATCHERS]).sum();
        if s >= want_streams && w >= want_watchers {
            moved = Some(Duration::from_nanos(mono_ns() - t_kill));
            break;
        }
        if Instant::now() > move_deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let any stragglers settle before the final count (a duplicate stream would show here).
    std::thread::sleep(SETTLE);
    after = gauges(&ports, &survivors)?;
    let streams_after: f64 = after.iter().map(|g| g[WATCH_STREAMS]).sum();
    let watchers_after: f64 = after.iter().map(|g| g[WATCHERS]).sum();
    eprintln!(
        "bench:   survivors m{}+m{}: streams {} watchers {} (moved in {:?})",
        survivors[0],
        survivors[1],
        streams_of(&after, WATCH_STREAMS),
        streams_of(&after, WATCHERS),
        moved
    );
    rounds.push(probe_round(
        &rt,
        &mut client,
        &shared,
        &reference,
        n,
        "settled",
        t_kill,
        bound,
    )?);

    // Two TTLs after the kill: a lease whose keep-alive did not move has expired by now.
    let hold = Duration::from_secs(2 * TTL as u64 + 2);
    let since = Duration::from_nanos(mono_ns() - t_kill);
    if since < hold {
        std::thread::sleep(hold - since);
    }
    let (keys_after, _) = fleet_keys(&mut client)?;
    let j1 = machine_jiffies();
    let load_after = loadavg1();
    let (deletes, ref_ended) = {
        let r = reference.lock().unwrap_or_else(|e| e.into_inner());
        (r.deletes.clone(), r.ended.clone())
    };
    eprintln!(
        "bench:   {} s after the kill: {keys_after} of {n} fleet keys, {} DELETE events",
        hold.as_secs(),
        deletes.len()
    );

    // The member comes back.
    let t_restart = Instant::now();
    let healthy = cl.restart(victim, Duration::from_secs(30))?;
    let restart_took = t_restart.elapsed();
    let mut caught_up = None;
    if healthy {
        let key = format!("{PREFIX}rejoin-check");
        rt.block_on(client.put(key.as_str(), "after-restart", None))
            .map_err(|e| format!("put {key}: {e}"))?;
        let mut back = rt
            .block_on(Client::connect([urls[victim].as_str()], None))
            .map_err(|e| format!("connect m{victim}: {e}"))?;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            let got = rt.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(2),
                    back.get(key.as_str(), Some(GetOptions::new().with_serializable())),
                )
                .await
            });
            if let Ok(Ok(r)) = got {
                if r.kvs()
                    .first()
                    .is_some_and(|kv| kv.value() == b"after-restart")
                {
                    caught_up = Some(t.elapsed());
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let rejoined = gauges(&ports, &all).ok();
    rounds.push(probe_round(
        &rt,
        &mut client,
        &shared,
        &reference,
        n,
        "restarted",
        t_kill,
        bound,
    )?);
    ref_task.abort();
    drop(rt);

    let mut dead: Vec<usize> = shared.lock().exited.clone();
    for (i, k) in kids.0.iter_mut().enumerate() {
        if matches!(k.try_wait(), Ok(Some(_))) && !dead.contains(&i) {
            dead.push(i);
        }
    }
    dead.sort_unstable();
    let kid_pids: Vec<u32> = kids.0.iter().map(|k| k.id()).collect();
    drop(kids);
    drop(cl);

    // The rows.
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let busy = (j1.0 - j0.0) as f64 / (j1.1 - j0.1).max(1) as f64 * nproc * 100.0;
    rep.info(
        SC,
        "set-up: the fleet of scenario 10 (3-member loopback cluster; N processes × 1 registry, own lease TTL 10 s, + 7 discoveries); SIGKILL the member with the most watch streams (ETCD_SD_FLEET_FAULT_KILL=leader: the leader)",
        format!(
            "N = {n}, ready in {grew:.1} s; before the kill: streams per member {}, watchers {}; leader m{}; killed m{victim}; machine over the fault phase: busy {busy:.0} % of a core (of {:.0}), load average {load_before:.1} → {load_after:.1}",
            streams_of(&before, WATCH_STREAMS),
            streams_of(&before, WATCHERS),
            leaders.iter().position(|l| *l).map_or("?".into(), |i| i.to_string()),
            nproc * 100.0
        ),
    );
    rep.check(
        SC,
        &format!(
            "registrations survive: DELETE events of fleet keys (bare watch on the survivors, from before the kill to {} s after it) / fleet keys in etcd then",
            hold.as_secs()
        ),
        format!(
            "{} / {keys_after} (before the kill: {keys_before}){}{}",
            deletes.len(),
            if deletes.is_empty() {
                String::new()
            } else {
                format!("; deleted: {}", deletes.join(" "))
            },
            ref_ended
                .as_ref()
                .map_or(String::new(), |e| format!("; reference watch ended: {e}"))
        ),
        &format!("0 / {n}"),
        deletes.is_empty() && keys_after == n && ref_ended.is_none(),
    );
    for r in &rounds {
        let missing = r
            .missing
            .iter()
            .take(10)
            .map(|(c, s)| format!("#{c} (pid {}) lacks {}", kid_pids[*c], s.join(",")))
            .collect::<Vec<_>>()
            .join("; ");
        rep.check(
            SC,
            &format!(
                "probes `{}` (7 keys, one per service, put {} after the kill): processes whose 7 discoveries did not all see them within {} s",
                r.name,
                secs(r.after_kill),
                bound.as_secs()
            ),
            if r.missing.is_empty() {
                "0".to_string()
            } else {
                format!("{} ({missing})", r.missing.len())
            },
            "0",
            r.missing.is_empty(),
        );
        rep.info(
            SC,
            &format!(
                "probes `{}`: per process, first put → all 7 discoveries had them, p50 / p99 / max",
                r.name
            ),
            format!(
                "{} over {} processes ({} from the last put's answer); the 7 puts took {} ms ({} retries); bench's bare watch: {}",
                p50_p99_max(&r.per_process),
                r.per_process.n,
                p50_p99_max(&r.per_process_acked),
                crate::util::fmt_ms(r.puts.as_secs_f64() * 1e3),
                r.put_retries,
                r.reference.map_or("missed".into(), |d| format!(
                    "{} ms",
                    crate::util::fmt_ms(d.as_secs_f64() * 1e3)
                ))
            ),
        );
    }
    rep.check(
        SC,
        "streams move to the survivors: watch streams / watchers on them (+1 each: the bench's reference watch)",
        format!(
            "{streams_after:.0} ({}) / {watchers_after:.0} ({}); reached {} after the kill",
            streams_of(&after, WATCH_STREAMS),
            streams_of(&after, WATCHERS),
            moved.map_or(format!("not within {} s", MOVE_LIMIT.as_secs()), secs)
        ),
        &format!("{} / {} within {} s", n + 1, n * d + 1, MOVE_LIMIT.as_secs()),
        moved.is_some() && streams_after == want_streams && watchers_after == want_watchers,
    );
    rep.check(
        SC,
        &format!("m{victim} restarted on its data: healthy / serves a key put after its restart (serializable read)"),
        format!(
            "{} / {}{}",
            if healthy { secs(restart_took) } else { "not within 30 s".into() },
            caught_up.map_or("no".into(), |d| format!("after {}", secs(d))),
            rejoined.map_or(String::new(), |g| format!(
                "; then streams per member {}",
                streams_of(&g, WATCH_STREAMS)
            ))
        ),
        "healthy ≤ 30 s, caught up ≤ 10 s",
        healthy && caught_up.is_some(),
    );
    rep.check(
        SC,
        "client processes alive at the end",
        format!(
            "{} of {n}{}",
            n - dead.len(),
            if dead.is_empty() {
                String::new()
            } else {
                format!("; exited: {dead:?}")
            }
        ),
        &n.to_string(),
        dead.is_empty(),
    );

    let round_json = |r: &Round| {
        J::obj(vec![
            ("name", J::str(r.name)),
            ("after_kill_s", J::Num(round3(r.after_kill.as_secs_f64()))),
            ("puts_ms", J::Num(round3(r.puts.as_secs_f64() * 1e3))),
            ("put_retries", J::Num(r.put_retries as f64)),
            ("per_process", r.per_process.json()),
            ("per_process_from_ack", r.per_process_acked.json()),
            ("missing", J::Num(r.missing.len() as f64)),
            (
                "reference_ms",
                r.reference
                    .map_or(J::Null, |d| J::Num(round3(d.as_secs_f64() * 1e3))),
            ),
        ])
    };
    let g_json = |g: &[[f64; 4]], k: usize| J::Arr(g.iter().map(|m| J::Num(m[k])).collect());
    let json = J::obj(vec![
        ("commit", J::str(fleet::git_head())),
        ("n", J::Num(n as f64)),
        ("discoveries_each", J::Num(d as f64)),
        ("ttl_s", J::Num(TTL as f64)),
        ("bound_s", J::Num(bound.as_secs_f64())),
        ("grow_s", J::Num(round3(grew))),
        ("victim", J::Num(victim as f64)),
        (
            "leader_before",
            leaders
                .iter()
                .position(|l| *l)
                .map_or(J::Null, |i| J::Num(i as f64)),
        ),
        ("streams_before", g_json(&before, WATCH_STREAMS)),
        ("watchers_before", g_json(&before, WATCHERS)),
        ("streams_after_survivors", g_json(&after, WATCH_STREAMS)),
        ("watchers_after_survivors", g_json(&after, WATCHERS)),
        (
            "moved_s",
            moved.map_or(J::Null, |d| J::Num(round3(d.as_secs_f64()))),
        ),
        ("deletes", J::Num(deletes.len() as f64)),
        ("keys_after", J::Num(keys_after as f64)),
        ("rounds", J::Arr(rounds.iter().map(round_json).collect())),
        (
            "restart_healthy_s",
            J::Num(round3(restart_took.as_secs_f64())),
        ),
        (
            "caught_up_s",
            caught_up.map_or(J::Null, |d| J::Num(round3(d.as_secs_f64()))),
        ),
        ("exited", J::Num(dead.len() as f64)),
        ("machine_busy_pct", J::Num(round3(busy))),
        ("load1_before", J::Num(round3(load_before))),
        ("load1_after", J::Num(round3(load_after))),
        ("wall_s", J::Num(round3(started.elapsed().as_secs_f64()))),
    ]);
    let mut text = String::new();
    json.write(&mut text, 0);
    text.push('\n');
    let out = fleet::target_dir().join("bench-fault-fleet.json");
    match std::fs::write(&out, &text) {
        Ok(()) => eprintln!("bench:   figures: {}", out.display()),
        Err(e) => eprintln!("bench:   cannot write {}: {e}", out.display()),
    }
    rep.detail(SC, json);
    Ok(())
}
