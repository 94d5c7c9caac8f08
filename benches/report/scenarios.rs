//! The scenarios run by the parent process. Every registry and discovery measured is made
//! through the C ABI (`capi`); the plain `etcd_client::Client`s here only write load and
//! give the floor (a bare watch) that the library is compared with.

use crate::capi::{c, Discovery, Probe, Registry};
use crate::child;
use crate::report::Report;
use crate::util::{
    clock_ticks_per_second, cpu_ticks, fmt_ms, mb, ms, round3, stats, threads_cpu_ticks, Stats, J,
};
use etcd_client::{
    Client, CompactionOptions, DeleteOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    WatchOptions,
};
use std::collections::HashMap;
use std::ffi::CString;
use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

pub struct Ctx {
    pub endpoint: String,
    pub ep: CString,
    pub etcd_pid: u32,
    /// Drives the bench's own clients (load, puts). One worker.
    pub rt: Runtime,
    /// Drives the floor's bare watch, apart from the putting client, as the library's I/O
    /// thread is apart from the program's. One worker.
    pub floor_rt: Runtime,
    pub client: Client,
    pub idle_seconds: u64,
}

fn runtime(name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("bench runtime")
}

impl Ctx {
    pub fn new(endpoint: &str, etcd_pid: u32, idle_seconds: u64) -> Result<Ctx, String> {
        let rt = runtime("bench-io");
        let floor_rt = runtime("bench-floor");
        let client = rt
            .block_on(Client::connect([endpoint], None))
            .map_err(|e| format!("bench client: {e}"))?;
        Ok(Ctx {
            endpoint: endpoint.to_string(),
            ep: c(endpoint),
            etcd_pid,
            rt,
            floor_rt,
            client,
            idle_seconds,
        })
    }

    fn put(&self, key: &str, value: &str) -> Result<(), String> {
        let mut cl = self.client.clone();
        self.rt
            .block_on(cl.put(key, value, None))
            .map(|_| ())
            .map_err(|e| format!("put {key}: {e}"))
    }

    /// Deletes everything under `prefix` and compacts the history, so later scenarios run on
    /// a small store.
    pub fn clear(&self, prefix: &str) -> Result<(), String> {
        let mut cl = self.client.clone();
        self.rt.block_on(async move {
            let resp = cl
                .delete(prefix, Some(DeleteOptions::new().with_prefix()))
                .await
                .map_err(|e| format!("delete {prefix}: {e}"))?;
            let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
            if rev > 0 {
                // Physical: returns once etcd has really dropped the history, so its
                // background compaction does not run into the next measurement.
                cl.compact(rev, Some(CompactionOptions::new().with_physical()))
                    .await
                    .map_err(|e| format!("compact: {e}"))?;
            }
            Ok(())
        })
    }
}

fn stats_row(rep: &mut Report, sc: &str, metric: &str, s: &Stats, target: Option<(&str, bool)>) {
    match target {
        Some((t, met)) => rep.check(sc, metric, s.triple(), t, met),
        None => rep.info(sc, metric, s.triple()),
    }
}

fn since(t0: Instant, t1: Instant) -> Duration {
    t1.saturating_duration_since(t0)
}

// ---------------------------------------------------------------------------------------------
// 1. register
// ---------------------------------------------------------------------------------------------

pub fn register(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    const SC: &str = "1. register";
    // 1,000 runs: a p99 from 200 is the second worst sample.
    let (runs, warmup) = (1000, 5);
    let value = c("10.0.0.1:5000");
    let measure = |warm: bool| -> Result<[Vec<Duration>; 4], String> {
        // With an object alive, a new registry reuses its connection (the library shares one
        // per endpoint list); without, each registry dials etcd itself.
        let _holder = if warm {
            Some(Discovery::new(
                &ctx.ep,
                "/bench/s1-holder/",
                Probe::new(false),
            )?)
        } else {
            None
        };
        let (mut total, mut new, mut reg, mut floor) = (vec![], vec![], vec![], vec![]);
        for i in 0..runs + warmup {
            let key = c(&format!("/bench/s1/{warm}/k{i:04}"));
            let t0 = Instant::now();
            let r = Registry::new(&ctx.ep, 3)?;
            let t1 = Instant::now();
            r.register(&key, &value)?;
            let t2 = Instant::now();
            drop(r);
            // The floor, interleaved: a bare etcd-client put on an open connection.
            let t3 = Instant::now();
            ctx.put(&format!("/bench/s1/floor/k{i:04}"), "10.0.0.1:5000")?;
            let t4 = Instant::now();
            if i >= warmup {
                total.push(t2 - t0);
                new.push(t1 - t0);
                reg.push(t2 - t1);
                floor.push(t4 - t3);
            }
        }
        Ok([total, new, reg, floor])
    };
    let cold = measure(false)?;
    let warm = measure(true)?;
    let floors: Vec<Duration> = cold[3].iter().chain(&warm[3]).copied().collect();
    let sf = stats(&floors);
    let [ct, cn, cr, _] = cold.map(|v| stats(&v));
    let [wt, wn, wr, _] = warm.map(|v| stats(&v));
    stats_row(
        rep,
        SC,
        "`_new` + `_register`, fresh registry, nothing else open, p50/p90/p99 (etcd-cpp-apiv3, own connection: p99 4.95 ms)",
        &ct,
        Some(("p50 ≤ 1.0 ms, p99 ≤ 3 ms", ct.p50 <= 1.0 && ct.p99 <= 3.0)),
    );
    stats_row(rep, SC, "… of which `_new` / `_register` p50", &ct, None);
    rep.rows.last_mut().expect("row").value = format!("{} / {} ms", fmt_ms(cn.p50), fmt_ms(cr.p50));
    stats_row(
        rep,
        SC,
        "`_new` + `_register`, connection already open (a discovery alive), p50/p90/p99",
        &wt,
        Some(("p50 ≤ 1.0 ms, p99 ≤ 3 ms", wt.p50 <= 1.0 && wt.p99 <= 3.0)),
    );
    stats_row(rep, SC, "… of which `_new` / `_register` p50", &wt, None);
    rep.rows.last_mut().expect("row").value = format!("{} / {} ms", fmt_ms(wn.p50), fmt_ms(wr.p50));
    stats_row(
        rep,
        SC,
        "(floor) bare etcd-client put, connection open, interleaved with the runs above, p50/p90/p99",
        &sf,
        None,
    );
    let (so, sof) = own_lease_register(ctx, 500, warmup)?;
    stats_row(
        rep,
        SC,
        "`_new` + `_register` with a lease of its own (`own_lease`), connection open, p50/p90/p99",
        &so,
        None,
    );
    stats_row(
        rep,
        SC,
        "(floor) bare etcd-client lease grant + put under it, interleaved, p50/p90/p99",
        &sof,
        None,
    );
    let (r50, r99) = (so.p50 / sof.p50, so.p99 / sof.p99);
    rep.check(
        SC,
        "own lease / floor, p50 / p99",
        format!("{r50:.2}× / {r99:.2}×"),
        "p99 ≤ 1.05× the floor",
        r99 <= 1.05,
    );
    rep.detail(
        SC,
        J::obj(vec![
            ("runs", J::Num(runs as f64)),
            ("own_lease_total", so.json()),
            ("own_lease_floor", sof.json()),
            ("cold_total", ct.json()),
            ("cold_new", cn.json()),
            ("cold_register", cr.json()),
            ("warm_total", wt.json()),
            ("warm_new", wn.json()),
            ("warm_register", wr.json()),
            ("floor_put", sf.json()),
        ]),
    );
    ctx.clear("/bench/s1")
}

/// `runs` registrations each with a lease of its own (two round trips: the grant, the put),
/// on an open connection, each freed (its lease revoked) before the next, untimed; interleaved
/// with the floor: a bare etcd-client grant and put under it (revoked, untimed).
fn own_lease_register(ctx: &Ctx, runs: usize, warmup: usize) -> Result<(Stats, Stats), String> {
    let _holder = Discovery::new(&ctx.ep, "/bench/s1-holder/", Probe::new(false))?;
    let value = c("10.0.0.1:5000");
    let (mut ours, mut floor) = (vec![], vec![]);
    for i in 0..runs + warmup {
        let key = c(&format!("/bench/s1/own/k{i:04}"));
        let t0 = Instant::now();
        let r = Registry::new_own_lease(&ctx.ep, 3)?;
        r.register(&key, &value)?;
        let t1 = Instant::now();
        drop(r);
        let mut cl = ctx.client.clone();
        let fkey = format!("/bench/s1/own-floor/k{i:04}");
        let t2 = Instant::now();
        let id = ctx.rt.block_on(async {
            let id = cl
                .lease_grant(3, None)
                .await
                .map_err(|e| format!("floor grant: {e}"))?
                .id();
            cl.put(
                fkey,
                "10.0.0.1:5000",
                Some(PutOptions::new().with_lease(id)),
            )
            .await
            .map_err(|e| format!("floor put: {e}"))?;
            Ok::<i64, String>(id)
        })?;
        let t3 = Instant::now();
        ctx.rt
            .block_on(cl.lease_revoke(id))
            .map_err(|e| format!("floor revoke: {e}"))?;
        if i >= warmup {
            ours.push(t1 - t0);
            floor.push(t3 - t2);
        }
    }
    Ok((stats(&ours), stats(&floor)))
}

// ---------------------------------------------------------------------------------------------
// 2. put -> callback, against a bare etcd-client watch
// ---------------------------------------------------------------------------------------------

/// What the floor watch does with each event: stamp it, or pass it to another thread.
type FloorSink = Box<dyn Fn(EventType, &[u8], Instant) + Send>;

/// A bare `etcd_client` watch on its own runtime thread, stamping each event on arrival.
struct FloorWatch {
    task: tokio::task::JoinHandle<()>,
}

impl FloorWatch {
    /// `hop`: hand each event to a plain thread parked on a channel, which stamps it: the
    /// floor plus the one thread hop the library makes by design (I/O thread -> callback
    /// thread), to tell that hop's cost from the rest of the library's.
    fn start(ctx: &Ctx, prefix: &str, probe: Arc<Probe>, hop: bool) -> Result<FloorWatch, String> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let endpoint = ctx.endpoint.clone();
        let prefix = prefix.to_string();
        let sink: FloorSink = if hop {
            let (tx, rx) = std::sync::mpsc::channel::<(EventType, Vec<u8>)>();
            let p = probe.clone();
            std::thread::Builder::new()
                .name("bench-hop".into())
                .spawn(move || {
                    for (kind, key) in rx {
                        let at = Instant::now();
                        match kind {
                            EventType::Put => p.put(&key, at),
                            EventType::Delete => p.del(&key, at),
                        }
                    }
                })
                .map_err(|e| format!("hop thread: {e}"))?;
            Box::new(move |kind, key, _at| {
                let _ = tx.send((kind, key.to_vec()));
            })
        } else {
            Box::new(move |kind, key, at| match kind {
                EventType::Put => probe.put(key, at),
                EventType::Delete => probe.del(key, at),
            })
        };
        let task = ctx.floor_rt.spawn(async move {
            let mut client = match Client::connect([endpoint], None).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("floor connect: {e}")));
                    return;
                }
            };
            // The same request the library makes (prefix, no previous value).
            let opts = WatchOptions::new().with_prefix();
            let mut stream = match client.watch(prefix, Some(opts)).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("floor watch: {e}")));
                    return;
                }
            };
            let mut ready = Some(ready_tx);
            while let Ok(Some(resp)) = stream.message().await {
                let at = Instant::now();
                if resp.created() {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                for ev in resp.events() {
                    if let Some(kv) = ev.kv() {
                        sink(ev.event_type(), kv.key(), at);
                    }
                }
            }
        });
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(FloorWatch { task }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("floor watch not created within 10 s".into()),
        }
    }
}

impl Drop for FloorWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long one thread takes to wake another that is parked: the hop the library adds
/// between its I/O thread and a callback thread.
fn handoff(n: usize) -> Stats {
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Duration>();
    let waker = std::thread::spawn(move || {
        for t0 in rx {
            let _ = back_tx.send(t0.elapsed());
        }
    });
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        // Long enough for the receiver to stop spinning and park.
        std::thread::sleep(Duration::from_micros(300));
        let _ = tx.send(Instant::now());
        if let Ok(d) = back_rx.recv() {
            v.push(d);
        }
    }
    drop(tx);
    let _ = waker.join();
    stats(&v)
}

pub fn put_callback(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    const SC: &str = "2. put→callback";
    let (n, block, warmup) = (2000usize, 100usize, 20usize);
    let ours_probe = Probe::new(true);
    let ours = Discovery::new(&ctx.ep, "/bench/s2/ours/", ours_probe.clone())?;
    let inline_probe = Probe::new(true);
    let inline = Discovery::new_inline(&ctx.ep, "/bench/s2/inline/", inline_probe.clone())?;
    let floor_probe = Probe::new(true);
    let floor = FloorWatch::start(ctx, "/bench/s2/floor/", floor_probe.clone(), false)?;
    let hop_probe = Probe::new(true);
    let hop = FloorWatch::start(ctx, "/bench/s2/hop/", hop_probe.clone(), true)?;
    let arms: [(&str, &Probe); 4] = [
        ("ours", &ours_probe),
        ("inline", &inline_probe),
        ("floor", &floor_probe),
        ("hop", &hop_probe),
    ];

    let one = |which: &str, probe: &Probe, i: usize| -> Result<(Duration, Duration), String> {
        let key = format!("/bench/s2/{which}/k{i:05}");
        let t0 = Instant::now();
        ctx.put(&key, "10.0.0.1:5000")?;
        let ack = t0.elapsed();
        let t1 = probe
            .wait_put(&key, Duration::from_secs(5))
            .ok_or_else(|| format!("{which}: no callback for {key} within 5 s"))?;
        Ok((since(t0, t1), ack))
    };
    for i in 0..warmup {
        for (which, probe) in arms {
            one(which, probe, 100_000 + i)?;
        }
    }
    // Interleaved blocks, so drift (etcd's WAL, GC, other load) hits every arm alike.
    let mut lat: [Vec<Duration>; 4] = Default::default();
    let mut acks = vec![];
    for b in 0..n / block {
        for (a, (which, probe)) in arms.iter().enumerate() {
            for i in 0..block {
                let (l, ack) = one(which, probe, b * block + i)?;
                lat[a].push(l);
                acks.push(ack);
            }
        }
    }
    drop((floor, hop, ours, inline));
    let [so, si, sf, sh] = lat.map(|v| stats(&v));
    let sa = stats(&acks);
    let ratio = so.p50 / sf.p50;
    let ratios = |s: &Stats, base: &Stats| {
        format!(
            "{:.2}× / {:.2}× / {:.2}×",
            s.p50 / base.p50,
            s.p90 / base.p90,
            s.p99 / base.p99
        )
    };
    stats_row(
        rep,
        SC,
        "etcd-sd discovery (C callback), 2,000 events, p50/p90/p99 (etcd-cpp-apiv3: 0.565 / 0.735 ms)",
        &so,
        Some((
            "≤ 1.0× etcd-cpp-apiv3: p50 ≤ 0.565, p90 ≤ 0.735 ms",
            so.p50 <= 0.565 && so.p90 <= 0.735,
        )),
    );
    stats_row(
        rep,
        SC,
        "floor: bare etcd-client watch, 2,000 events, p50/p90/p99",
        &sf,
        None,
    );
    rep.check(
        SC,
        "ours / floor, p50",
        format!("{ratio:.2}× (+{} ms)", fmt_ms(so.p50 - sf.p50)),
        "≤ 1.10× (our own floor)",
        ratio <= 1.10,
    );
    rep.info(SC, "ours / floor, p50 / p90 / p99", ratios(&so, &sf));
    stats_row(
        rep,
        SC,
        "etcd-sd discovery, inline callbacks (on the I/O thread), 2,000 events, p50/p90/p99",
        &si,
        None,
    );
    let inline_ok = si.p90 <= 1.05 * sf.p90 && si.p99 <= 1.05 * sf.p99;
    rep.check(
        SC,
        "inline / floor, p50 / p90 / p99",
        ratios(&si, &sf),
        "p90, p99 ≤ 1.05× the floor",
        inline_ok,
    );
    stats_row(
        rep,
        SC,
        "(context) floor + one thread hop (watch thread → parked thread), p50/p90/p99",
        &sh,
        None,
    );
    rep.info(
        SC,
        "(context) ours / (floor + hop), p50",
        format!("{:.2}× (+{} ms)", so.p50 / sh.p50, fmt_ms(so.p50 - sh.p50)),
    );
    // Where the callback pool's extra comes from: the whole hand-off (pool − inline) next to
    // the bare wake-up of a parked thread (hop − floor); what is left of the first is the
    // mailbox (its lock, its queue, the pool's run queue).
    let diff = |a: &Stats, b: &Stats| {
        format!(
            "{} / {} / {} ms",
            fmt_ms(a.p50 - b.p50),
            fmt_ms(a.p90 - b.p90),
            fmt_ms(a.p99 - b.p99)
        )
    };
    rep.info(
        SC,
        "(context) the hand-off: ours − inline, p50 / p90 / p99",
        diff(&so, &si),
    );
    rep.info(
        SC,
        "(context) a parked thread's wake-up: (floor + hop) − floor, p50 / p90 / p99",
        diff(&sh, &sf),
    );
    stats_row(rep, SC, "(context) put round trip, p50/p90/p99", &sa, None);
    let sw = handoff(2000);
    stats_row(
        rep,
        SC,
        "(context) thread wake-up on an idle machine (std channel, parked receiver), p50/p90/p99",
        &sw,
        None,
    );
    rep.detail(
        SC,
        J::obj(vec![
            ("events_each", J::Num(n as f64)),
            ("ours", so.json()),
            ("ours_inline", si.json()),
            ("floor", sf.json()),
            ("floor_plus_hop", sh.json()),
            ("ratio_p50", J::Num(round3(ratio))),
            ("inline_ratio_p90", J::Num(round3(si.p90 / sf.p90))),
            ("inline_ratio_p99", J::Num(round3(si.p99 / sf.p99))),
            ("put_ack", sa.json()),
            ("thread_wakeup_idle", sw.json()),
        ]),
    );
    ctx.clear("/bench/s2/")
}

// ---------------------------------------------------------------------------------------------
// 3. graceful offline
// ---------------------------------------------------------------------------------------------

pub fn graceful_offline(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    const SC: &str = "3. graceful offline";
    // 1,000 runs: a p99 from 200 is the second worst sample.
    let (runs, warmup) = (1000, 3);
    let probe = Probe::new(true);
    let watcher = Discovery::new(&ctx.ep, "/bench/s3/ours/", probe.clone())?;
    // The floor, interleaved: a bare delete seen by a bare etcd-client watch.
    let floor_probe = Probe::new(true);
    let floor = FloorWatch::start(ctx, "/bench/s3/floor/", floor_probe.clone(), false)?;
    let value = c("10.0.0.1:5000");
    let (mut lat, mut ret, mut fl) = (vec![], vec![], vec![]);
    let mut cl = ctx.client.clone();
    for i in 0..runs + warmup {
        let key = format!("/bench/s3/ours/k{i:04}");
        let r = Registry::new(&ctx.ep, 3)?;
        r.register(&c(&key), &value)?;
        probe
            .wait_put(&key, Duration::from_secs(5))
            .ok_or_else(|| format!("no put for {key}"))?;
        let t0 = Instant::now();
        drop(r); // etcd_sd_registry_free
        let returned = t0.elapsed();
        let t1 = probe
            .wait_del(&key, Duration::from_secs(10))
            .ok_or_else(|| format!("no on_del for {key} within 10 s"))?;

        let fkey = format!("/bench/s3/floor/k{i:04}");
        ctx.put(&fkey, "10.0.0.1:5000")?;
        floor_probe
            .wait_put(&fkey, Duration::from_secs(5))
            .ok_or_else(|| format!("floor: no put for {fkey}"))?;
        let t2 = Instant::now();
        ctx.rt
            .block_on(cl.delete(fkey.as_str(), None))
            .map_err(|e| format!("delete {fkey}: {e}"))?;
        let t3 = floor_probe
            .wait_del(&fkey, Duration::from_secs(10))
            .ok_or_else(|| format!("floor: no delete for {fkey} within 10 s"))?;
        if i >= warmup {
            lat.push(since(t0, t1));
            ret.push(returned);
            fl.push(since(t2, t3));
        }
    }
    drop((watcher, floor));
    let (sl, sr, sf) = (stats(&lat), stats(&ret), stats(&fl));
    stats_row(
        rep,
        SC,
        "`etcd_sd_registry_free` → `on_del` at a watcher, p50/p90/p99 (etcd-cpp-apiv3: p99 1.14 ms)",
        &sl,
        Some(("p50 ≤ 5 ms, p99 ≤ 2 ms", sl.p50 <= 5.0 && sl.p99 <= 2.0)),
    );
    stats_row(
        rep,
        SC,
        "(floor) bare etcd-client delete → bare watch event, interleaved, p50/p90/p99",
        &sf,
        None,
    );
    stats_row(
        rep,
        SC,
        "(context) `_free` returns after, p50/p90/p99",
        &sr,
        None,
    );
    rep.detail(
        SC,
        J::obj(vec![
            ("free_to_on_del", sl.json()),
            ("floor_delete_to_event", sf.json()),
            ("free_returns", sr.json()),
        ]),
    );
    ctx.clear("/bench/s3/")
}

// ---------------------------------------------------------------------------------------------
// 4. crash offline
// ---------------------------------------------------------------------------------------------

pub fn crash_offline(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    const SC: &str = "4. crash offline";
    let runs = 3usize;
    let probe = Probe::new(true);
    let watcher = Discovery::new(&ctx.ep, "/bench/s4/", probe.clone())?;
    let mut details = vec![];
    for ttl in [1i64, 3] {
        let mut lat = vec![];
        let mut granted = 0;
        for run in 0..runs {
            let key = format!("/bench/s4/ttl{ttl}/r{run}");
            let (mut proc_, mut out) = child::spawn(
                "crash",
                &[
                    ("BENCH_ENDPOINT", ctx.endpoint.clone()),
                    ("BENCH_TTL", ttl.to_string()),
                    ("BENCH_KEY", key.clone()),
                ],
            )?;
            let mut line = String::new();
            let _ = out.read_line(&mut line);
            let Some(lease) = line
                .strip_prefix("READY ")
                .and_then(|l| l.trim().parse::<i64>().ok())
            else {
                let _ = proc_.kill();
                let _ = proc_.wait();
                return Err(format!("crash child did not register: {line:?}"));
            };
            probe
                .wait_put(&key, Duration::from_secs(5))
                .ok_or_else(|| format!("no put for {key}"))?;
            let mut cl = ctx.client.clone();
            granted = ctx
                .rt
                .block_on(cl.lease_time_to_live(lease, None))
                .map(|r| r.granted_ttl())
                .unwrap_or(-1);
            // Kill at different points of the keep-alive cycle (renewals every TTL/3).
            let renew_ms = ttl as u64 * 1000 / 3;
            let offset = 200 + run as u64 * renew_ms / runs as u64;
            std::thread::sleep(Duration::from_millis(offset));
            let t0 = Instant::now();
            let _ = proc_.kill(); // SIGKILL
            let _ = proc_.wait();
            let t1 = probe
                .wait_del(&key, Duration::from_secs(ttl as u64 + 15))
                .ok_or_else(|| format!("no on_del for {key} within TTL + 15 s"))?;
            lat.push(since(t0, t1));
        }
        let s = stats(&lat);
        let all: Vec<String> = lat
            .iter()
            .map(|d| format!("{:.2}", d.as_secs_f64()))
            .collect();
        let limit = ttl as f64 + 0.5;
        rep.check(
            SC,
            &format!("TTL {ttl} s (etcd granted {granted} s): SIGKILL → `on_del`, {runs} runs"),
            format!("{} s (max {:.2} s)", all.join(", "), s.max / 1000.0),
            &format!("≤ {limit:.1} s"),
            s.max / 1000.0 <= limit,
        );
        details.push(J::obj(vec![
            ("ttl_requested_s", J::Num(ttl as f64)),
            ("ttl_granted_s", J::Num(granted as f64)),
            (
                "seconds",
                J::Arr(
                    lat.iter()
                        .map(|d| J::Num(round3(d.as_secs_f64())))
                        .collect(),
                ),
            ),
        ]));
    }
    drop(watcher);
    rep.detail(SC, J::Arr(details));
    ctx.clear("/bench/s4/")
}

// ---------------------------------------------------------------------------------------------
// 5. initial sync
// ---------------------------------------------------------------------------------------------

/// Puts `n` keys under `prefix` in txns of 128 puts, 16 in flight.
fn load(ctx: &Ctx, prefix: &str, n: usize) -> Result<Duration, String> {
    const OPS: usize = 128;
    let chunks = n.div_ceil(OPS);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (mut cl, next, prefix) = (ctx.client.clone(), next.clone(), prefix.to_string());
            ctx.rt.spawn(async move {
                loop {
                    let chunk = next.fetch_add(1, Ordering::Relaxed);
                    if chunk >= chunks {
                        return Ok::<(), String>(());
                    }
                    let ops: Vec<TxnOp> = (chunk * OPS..((chunk + 1) * OPS).min(n))
                        .map(|i| {
                            let value =
                                format!("10.{}.{}.{}:50051", i >> 16, (i >> 8) & 255, i & 255);
                            TxnOp::put(format!("{prefix}svc-{i:06}"), value, None)
                        })
                        .collect();
                    cl.txn(Txn::new().and_then(ops))
                        .await
                        .map_err(|e| format!("load txn: {e}"))?;
                }
            })
        })
        .collect();
    ctx.rt.block_on(async {
        for t in tasks {
            t.await.map_err(|e| format!("load task: {e}"))??;
        }
        Ok::<(), String>(())
    })?;
    Ok(t0.elapsed())
}

/// The key just past every key starting with `prefix`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The floor for an initial listing: a bare etcd-client range read of `prefix` (decode limit
/// raised), in one response or in pages of `page` keys at one revision. Median of 3.
fn bare_list(ctx: &Ctx, prefix: &str, page: Option<i64>) -> Result<(Duration, usize), String> {
    let mut runs = vec![];
    let mut count = 0;
    for _ in 0..3 {
        let mut kv = ctx.client.kv_client().max_decoding_message_size(1 << 30);
        let end = prefix_end(prefix);
        let (took, n) = ctx.rt.block_on(async move {
            let t0 = Instant::now();
            let (mut n, mut key, mut rev) = (0usize, prefix.as_bytes().to_vec(), 0i64);
            loop {
                let mut o = GetOptions::new().with_range(end.clone());
                if let Some(p) = page {
                    o = o.with_limit(p);
                }
                if rev > 0 {
                    o = o.with_revision(rev);
                }
                let resp = kv
                    .get(key.clone(), Some(o))
                    .await
                    .map_err(|e| format!("bare get: {e}"))?;
                if rev == 0 {
                    rev = resp.header().map(|h| h.revision()).unwrap_or(0);
                }
                n += resp.kvs().len();
                match resp.kvs().last() {
                    Some(last) if page.is_some() && resp.more() => {
                        key = last.key().to_vec();
                        key.push(0);
                    }
                    _ => break,
                }
            }
            Ok::<_, String>((t0.elapsed(), n))
        })?;
        runs.push(took);
        count = n;
    }
    runs.sort();
    Ok((runs[1], count))
}

pub fn initial_sync(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    const SC: &str = "5. initial sync";
    let mut details = vec![];
    for n in [10_000usize, 100_000] {
        let prefix = format!("/bench/sync{n}/");
        let loaded = load(ctx, &prefix, n)?;
        let label = if n == 10_000 { "10k" } else { "100k" };
        let (one, got1) = bare_list(ctx, &prefix, None)?;
        let (paged, got2) = bare_list(ctx, &prefix, Some(10_000))?;
        if got1 != n || got2 != n {
            return Err(format!("bare listing found {got1}/{got2} of {n} keys"));
        }
        rep.info(
            SC,
            &format!("{label} keys: (floor) bare etcd-client get, decode limit raised: one response / pages of 10,000"),
            format!("{:.1} ms / {:.1} ms", ms(one), ms(paged)),
        );
        let r = child::run_to_end(
            "sync",
            &[
                ("BENCH_ENDPOINT", ctx.endpoint.clone()),
                ("BENCH_PREFIX", prefix.clone()),
                ("BENCH_N", n.to_string()),
            ],
        );
        ctx.clear(&prefix)?;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                rep.check(
                    SC,
                    &format!("{label} keys: `etcd_sd_discovery_new`"),
                    format!("FAILED: {}", e.replace('|', "/")),
                    if n == 100_000 {
                        "≤ 220 ms (0.8× etcd-cpp-apiv3's 277 ms), RSS growth ≤ 50 MB"
                    } else {
                        ""
                    },
                    false,
                );
                details.push(J::obj(vec![
                    ("keys", J::Num(n as f64)),
                    ("load_ms", J::Num(round3(ms(loaded)))),
                    ("bare_get_ms", J::Num(round3(ms(one)))),
                    ("bare_get_paged_ms", J::Num(round3(ms(paged)))),
                    ("error", J::str(e)),
                ]));
                continue;
            }
        };
        let num = |k: &str| {
            r.get(k)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        let new_ms = num("new_ms");
        let delivered = num("delivered");
        let growth_kb = num("rss_after_kb") - num("rss_before_kb");
        let peak_kb = num("hwm_kb") - num("rss_before_kb");
        let settled_kb = num("rss_settled_kb") - num("rss_before_kb");
        let freed_kb = num("rss_after_free_kb") - num("rss_before_kb");
        let complete = delivered as usize == n;
        let time_label = format!("{label} keys: `_new` (listing delivered: {delivered} puts)");
        let growth_label = format!("{label} keys: RSS growth after `_new` (peak)");
        let growth = format!(
            "{:.1} MB ({:.1} MB peak)",
            growth_kb / 1024.0,
            peak_kb / 1024.0
        );
        if n == 100_000 {
            rep.check(
                SC,
                &time_label,
                format!("{new_ms:.0} ms"),
                "≤ 220 ms (0.8× etcd-cpp-apiv3's 277 ms)",
                complete && new_ms <= 220.0,
            );
            rep.check(
                SC,
                &growth_label,
                growth,
                "≤ 50 MB",
                growth_kb / 1024.0 <= 50.0,
            );
        } else {
            rep.info(SC, &time_label, format!("{new_ms:.1} ms"));
            rep.info(SC, &growth_label, growth);
        }
        details.push(J::obj(vec![
            ("keys", J::Num(n as f64)),
            ("load_ms", J::Num(round3(ms(loaded)))),
            ("bare_get_ms", J::Num(round3(ms(one)))),
            ("bare_get_paged_ms", J::Num(round3(ms(paged)))),
            ("new_ms", J::Num(new_ms)),
            ("delivered", J::Num(delivered)),
            ("rss_growth_kb", J::Num(growth_kb)),
            ("rss_peak_growth_kb", J::Num(peak_kb)),
            ("rss_growth_settled_kb", J::Num(settled_kb)),
            ("rss_growth_after_free_kb", J::Num(freed_kb)),
        ]));
    }
    rep.detail(SC, J::Arr(details));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 6. fan-out, and the 1 + 1 footprint
// ---------------------------------------------------------------------------------------------

fn get(r: &HashMap<String, String>, k: &str) -> f64 {
    r.get(k).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

pub fn footprint(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    const SC: &str = "0. footprint";
    let r = child::run_to_end("footprint", &[("BENCH_ENDPOINT", ctx.endpoint.clone())])?;
    let lib = get(&r, "threads_library");
    let rss = get(&r, "rss_kb");
    let names = r.get("thread_names").cloned().unwrap_or_default();
    rep.check(
        SC,
        "1 registry + 1 discovery (fresh process): library threads (all threads)",
        format!("{lib} ({}: {names})", get(&r, "threads_total")),
        "≤ 3",
        lib <= 3.0,
    );
    rep.check(
        SC,
        "1 registry + 1 discovery (fresh process): RSS (anon / file)",
        format!(
            "{:.1} MB ({:.1} / {:.1}); {:.1} MB before the first call",
            mb(rss as u64),
            mb(get(&r, "rss_anon_kb") as u64),
            mb(get(&r, "rss_file_kb") as u64),
            mb(get(&r, "rss_before_kb") as u64)
        ),
        "< 8 MB",
        rss < 8.0 * 1024.0,
    );
    let j = J::Obj(
        r.iter()
            .map(|(k, v)| {
                let val = v.parse::<f64>().map(J::Num).unwrap_or_else(|_| J::str(v));
                (k.clone(), val)
            })
            .collect(),
    );
    rep.detail(SC, j);
    Ok(())
}

/// etcd-cpp-apiv3's workload for its 1,000 + 100 figure: each of the 100 discoveries watches
/// all 1,000 keys (100,000 puts delivered), where scenario 6 splits them in 10 groups.
pub fn fan_out_all(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    const SC: &str = "6b. fan-out 1,000 + 100, every discovery sees every key";
    let r = child::run_to_end(
        "fanout",
        &[
            ("BENCH_ENDPOINT", ctx.endpoint.clone()),
            ("BENCH_IDLE_S", ctx.idle_seconds.to_string()),
            ("BENCH_ETCD_PID", ctx.etcd_pid.to_string()),
            ("BENCH_FAN_GROUPS", "1".into()),
        ],
    );
    let _ = ctx.clear("/bench/fan/");
    let r = r?;
    let (rss, rss_idle) = (get(&r, "rss_kb"), get(&r, "rss_after_idle_kb"));
    rep.check(
        SC,
        "RSS once all is registered / after the idle window (the anchor's own workload)",
        format!("{:.1} MB / {:.1} MB", rss / 1024.0, rss_idle / 1024.0),
        "≤ 20 MB (etcd-cpp-apiv3: 98.6 MB)",
        rss.max(rss_idle) <= 20.0 * 1024.0,
    );
    let idle = get(&r, "idle_cpu_pct");
    rep.check(
        SC,
        &format!(
            "idle CPU over {:.0} s (% of one core)",
            get(&r, "idle_window_s")
        ),
        format!("{idle:.2} %"),
        "≤ 0.5 % (etcd-cpp-apiv3: 12.65 %)",
        idle <= 0.5,
    );
    rep.info(
        SC,
        "all 100,000 puts delivered to the 100 discoveries after",
        format!("{:.0} ms", get(&r, "all_delivered_ms")),
    );
    Ok(())
}

pub fn fan_out(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    const SC: &str = "6. fan-out 1,000 + 100";
    let r = child::run_to_end(
        "fanout",
        &[
            ("BENCH_ENDPOINT", ctx.endpoint.clone()),
            ("BENCH_IDLE_S", ctx.idle_seconds.to_string()),
            ("BENCH_ETCD_PID", ctx.etcd_pid.to_string()),
        ],
    );
    let _ = ctx.clear("/bench/fan/");
    let r = r?;
    let all_ms = get(&r, "register_all_ms");
    rep.check(
        SC,
        "time to register all 1,000 (`_new` + `_register` each; p50 / p99 each) (etcd-cpp-apiv3: 1.70 s)",
        format!(
            "{:.0} ms ({} / {} ms); all 10,000 puts delivered to the 100 discoveries after {:.0} ms",
            get(&r, "register_all_ms"),
            fmt_ms(get(&r, "register_each_p50_ms")),
            fmt_ms(get(&r, "register_each_p99_ms")),
            get(&r, "all_delivered_ms")
        ),
        "≤ 0.4 s",
        all_ms <= 400.0,
    );
    rep.info(
        SC,
        "(floor) 1,000 sequential bare etcd-client puts of the same shape, discoveries alive",
        format!("{:.0} ms", get(&r, "floor_puts_ms")),
    );
    rep.info(
        SC,
        "time to create the 100 discoveries",
        format!("{:.0} ms", get(&r, "discoveries_ms")),
    );
    let lib = get(&r, "threads_library");
    rep.check(
        SC,
        "process threads: library (all)",
        format!("{lib} ({})", get(&r, "threads_total")),
        "≤ 3",
        lib <= 3.0,
    );
    let (rss, rss_idle) = (get(&r, "rss_kb"), get(&r, "rss_after_idle_kb"));
    rep.check(
        SC,
        "RSS once all is registered / after the idle window",
        format!("{:.1} MB / {:.1} MB", rss / 1024.0, rss_idle / 1024.0),
        "≤ 20 MB (etcd-cpp-apiv3: 98.6 MB)",
        rss.max(rss_idle) <= 20.0 * 1024.0,
    );
    let idle = get(&r, "idle_cpu_pct");
    rep.check(
        SC,
        &format!(
            "idle CPU over {:.0} s (% of one core)",
            get(&r, "idle_window_s")
        ),
        format!(
            "{idle:.2} % (scheduler's exact count: {:.2} %; etcd meanwhile: {:.2} %)",
            get(&r, "idle_cpu_sched_pct"),
            get(&r, "etcd_cpu_pct")
        ),
        "≤ 0.5 % (etcd-cpp-apiv3: 12.65 %)",
        idle <= 0.5,
    );
    rep.info(
        SC,
        "(context) freeing all 1,000 registries",
        format!("{:.0} ms", get(&r, "free_all_ms")),
    );
    let j = J::Obj(
        r.iter()
            .map(|(k, v)| {
                let val = v.parse::<f64>().map(J::Num).unwrap_or_else(|_| J::str(v));
                (k.clone(), val)
            })
            .collect(),
    );
    rep.detail(SC, j);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 7. burst
// ---------------------------------------------------------------------------------------------

/// `n` puts under `prefix`, `inflight` at a time; returns when the burst started and when
/// the last put was acknowledged.
fn burst_puts(
    ctx: &Ctx,
    prefix: &str,
    n: usize,
    inflight: usize,
) -> Result<(Instant, Duration), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..inflight)
        .map(|_| {
            let (mut cl, next, prefix) = (ctx.client.clone(), next.clone(), prefix.to_string());
            ctx.rt.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<(), String>(());
                    }
                    cl.put(format!("{prefix}k{i:05}"), "10.0.0.1:5000", None)
                        .await
                        .map_err(|e| format!("burst put: {e}"))?;
                }
            })
        })
        .collect();
    ctx.rt.block_on(async {
        for t in tasks {
            t.await.map_err(|e| format!("burst task: {e}"))??;
        }
        Ok::<(), String>(())
    })?;
    Ok((t0, t0.elapsed()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Watcher {
    None,
    Bare,
    Ours,
}

/// One burst measurement.
struct BurstRun {
    /// Events (or, without a watcher, acknowledged puts) per second.
    rate: f64,
    /// Acknowledged puts per second.
    acked: f64,
    /// CPU seconds of the watcher's threads (etcd-sd-*, or the bare watch's) per event.
    watcher_cpu_per_event: f64,
    /// etcd's CPU use during the burst, in cores.
    etcd_cores: f64,
}

fn burst_once(ctx: &Ctx, w: Watcher, n: usize, inflight: usize) -> Result<BurstRun, String> {
    let limit = Duration::from_secs(120);
    let hz = clock_ticks_per_second();
    let etcd_pid = ctx.etcd_pid.to_string();
    let probe = Probe::new(false);
    let (prefix, threads) = match w {
        Watcher::None => ("/bench/s7/none/", ""),
        Watcher::Bare => ("/bench/s7/bare/", "bench-floor"),
        Watcher::Ours => ("/bench/s7/ours/", "etcd-sd"),
    };
    let bare = match w {
        Watcher::Bare => Some(FloorWatch::start(ctx, prefix, probe.clone(), false)?),
        _ => None,
    };
    let ours = match w {
        Watcher::Ours => Some(Discovery::new(&ctx.ep, prefix, probe.clone())?),
        _ => None,
    };
    std::thread::sleep(Duration::from_millis(100));
    let th0 = if threads.is_empty() {
        0
    } else {
        threads_cpu_ticks(threads)
    };
    let e0 = cpu_ticks(&etcd_pid);
    let (t0, took) = burst_puts(ctx, prefix, n, inflight)?;
    let end = if w == Watcher::None {
        t0 + took
    } else {
        probe
            .wait_puts(n as u64, limit)
            .ok_or_else(|| format!("watcher saw {} of {n} puts", probe.puts()))?
    };
    let wall = since(t0, end).max(took);
    let th1 = if threads.is_empty() {
        0
    } else {
        threads_cpu_ticks(threads)
    };
    let e1 = cpu_ticks(&etcd_pid);
    drop(bare);
    drop(ours);
    ctx.clear("/bench/s7/")?;
    std::thread::sleep(Duration::from_millis(200));
    Ok(BurstRun {
        rate: n as f64 / since(t0, end).as_secs_f64(),
        acked: n as f64 / took.as_secs_f64(),
        watcher_cpu_per_event: (th1 - th0) as f64 / hz / n as f64,
        etcd_cores: (e1.saturating_sub(e0)) as f64 / hz / wall.as_secs_f64(),
    })
}

pub fn burst(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    const SC: &str = "7. burst";
    let (n, inflight, rounds) = (20_000usize, 64usize, 8usize);
    let modes = [Watcher::None, Watcher::Bare, Watcher::Ours];
    let mut runs: Vec<Vec<BurstRun>> = vec![vec![], vec![], vec![]];
    // Warm-up burst (etcd's first big write allocates its caches).
    burst_once(ctx, Watcher::None, n, inflight)?;
    for round in 0..rounds {
        // Rotate the order, so no mode always runs first or last.
        for k in 0..modes.len() {
            let m = (round + k) % modes.len();
            runs[m].push(burst_once(ctx, modes[m], n, inflight)?);
        }
        eprintln!(
            "bench:   burst round {}: etcd alone {:.0}/s, bare watch {:.0}/s, etcd-sd {:.0}/s",
            round + 1,
            runs[0][round].rate,
            runs[1][round].rate,
            runs[2][round].rate
        );
    }
    let median = |m: usize, f: fn(&BurstRun) -> f64| {
        let mut v: Vec<f64> = runs[m].iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let rate = |r: &BurstRun| r.rate;
    let (m_none, m_bare, m_ours) = (median(0, rate), median(1, rate), median(2, rate));
    let acked = |r: &BurstRun| r.acked;
    let cpu = |r: &BurstRun| r.watcher_cpu_per_event * 1e6;
    let cores = |r: &BurstRun| r.etcd_cores;
    // Each round's etcd-sd rate over the same round's etcd-alone rate: rounds are minutes
    // apart at most, so this pairs runs that saw the same background load.
    let mut paired: Vec<f64> = runs[2]
        .iter()
        .zip(&runs[0])
        .map(|(o, a)| o.rate / a.rate)
        .collect();
    paired.sort_by(|a, b| a.total_cmp(b));
    let ratio = paired[paired.len() / 2];
    rep.info(
        SC,
        &format!("etcd alone, no watcher: {n} puts, {inflight} in flight (median of {rounds})"),
        format!(
            "{m_none:.0} puts/s (etcd busy {:.2} cores)",
            median(0, cores)
        ),
    );
    rep.info(
        SC,
        "floor: bare etcd-client watch, until the last event arrived",
        format!(
            "{m_bare:.0} events/s = {:.0} % of etcd alone (puts acked at {:.0}/s; watch thread {:.1} µs CPU/event; etcd {:.2} cores)",
            m_bare / m_none * 100.0,
            median(1, acked),
            median(1, cpu),
            median(1, cores)
        ),
    );
    rep.check(
        SC,
        "etcd-sd discovery, until the last `on_put` ran",
        format!(
            "{m_ours:.0} events/s; median per-round ratio to etcd alone {:.0} %; {:.0} % of the floor (puts acked at {:.0}/s; etcd-sd threads {:.1} µs CPU/event; etcd {:.2} cores)",
            ratio * 100.0,
            m_ours / m_bare * 100.0,
            median(2, acked),
            median(2, cpu),
            median(2, cores)
        ),
        "≥ 90 % of etcd alone",
        ratio >= 0.90,
    );
    let arr = |m: usize, f: fn(&BurstRun) -> f64| {
        J::Arr(runs[m].iter().map(|r| J::Num(round3(f(r)))).collect())
    };
    rep.detail(
        SC,
        J::obj(vec![
            ("puts", J::Num(n as f64)),
            ("in_flight", J::Num(inflight as f64)),
            ("rounds", J::Num(rounds as f64)),
            ("etcd_alone_per_s", arr(0, rate)),
            ("bare_watch_per_s", arr(1, rate)),
            ("etcd_sd_per_s", arr(2, rate)),
            ("bare_watch_acked_per_s", arr(1, acked)),
            ("etcd_sd_acked_per_s", arr(2, acked)),
            ("bare_watch_cpu_us_per_event", arr(1, cpu)),
            ("etcd_sd_cpu_us_per_event", arr(2, cpu)),
            ("etcd_cores_alone", arr(0, cores)),
            ("etcd_cores_bare", arr(1, cores)),
            ("etcd_cores_etcd_sd", arr(2, cores)),
            (
                "ratio_per_round_sorted",
                J::Arr(paired.iter().map(|v| J::Num(round3(*v))).collect()),
            ),
            ("ratio_median", J::Num(round3(ratio))),
        ]),
    );
    Ok(())
}
