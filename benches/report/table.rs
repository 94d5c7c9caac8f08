//! Scenario 8: the service table (issue 10).
//!
//! - Pick latency through the C ABI (`etcd_sd_table_pick` into a stack buffer, round robin
//!   over 10 instances registered in the bench's etcd), from 1 thread and from 8 threads at
//!   once, against a table written the way the chat systems write theirs (a mutex around a
//!   map of services, each a mutex around a vector and a counter; `choose` returns a
//!   reference-counted copy of the address), measured in the same run. Latency is sampled per
//!   batch of 100 picks (a single ~20 ns pick is below the clock's resolution and overhead):
//!   each sample is one batch's time / 100.
//! - Pick with a selector and zones (issue 19): `etcd_sd_table_pick_select` with
//!   `version=v2,canary=false` on 10 instances in 2 zones (the caller in zone a: 3 local
//!   matches), from 1 and 8 threads, next to the plain pick of the same run.
//! - Cost of applying 1,000 instance changes to the table core (`Table::apply`, what the
//!   watch callback runs): 1,000 new instances into one service, and 1,000 address changes
//!   spread over 100 services of 10 instances.
//! - Memory per instance: glibc's allocated bytes (mallinfo2) before and after a
//!   `ServiceTable` lists 10,000 instances (100 services x 100) from etcd, over 10,000; this
//!   includes the discovery's own copy of each key and value.

use crate::report::Report;
use crate::scenarios::Ctx;
use crate::util::J;
use etcd_sd::event::Event;
use etcd_sd::ffi::{
    etcd_sd_metrics_text, etcd_sd_options, etcd_sd_options_free, etcd_sd_options_new,
    etcd_sd_options_set_endpoints, etcd_sd_result, etcd_sd_selector, etcd_sd_selector_free,
    etcd_sd_selector_new, etcd_sd_table, etcd_sd_table_free, etcd_sd_table_new, etcd_sd_table_pick,
    etcd_sd_table_pick_select, etcd_sd_table_set_locality,
};
use etcd_sd::table::{Config, Table};
use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::c_char;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const BATCH: usize = 100;
const SVC: &str = "/bench-table/echo";
/// Ten instances with metadata: zones a (0-4) and b (5-9), versions v2 (even) and v1 (odd).
const ZONED: &str = "/bench-table/zoned";

/// The chat systems' table: `std::mutex` + `unordered_map<string, ServiceChannel::ptr>`,
/// each `ServiceChannel` a mutex + `vector<ChannelPtr>` + a 32-bit index.
#[derive(Default)]
struct ChatTable {
    services: Mutex<HashMap<String, Arc<ServiceChannel>>>,
}

#[derive(Default)]
struct ServiceChannel {
    inner: Mutex<(Vec<Arc<String>>, u32)>,
}

impl ChatTable {
    fn online(&self, service: &str, addr: &str) {
        let svc = self
            .services
            .lock()
            .unwrap()
            .entry(service.to_string())
            .or_default()
            .clone();
        svc.inner.lock().unwrap().0.push(Arc::new(addr.to_string()));
    }

    fn choose(&self, service: &str) -> Option<Arc<String>> {
        let svc = self.services.lock().unwrap().get(service)?.clone();
        let mut g = svc.inner.lock().unwrap();
        if g.0.is_empty() {
            return None;
        }
        let idx = g.1 as usize % g.0.len();
        g.1 = g.1.wrapping_add(1);
        Some(g.0[idx].clone())
    }
}

struct SendPtr(*mut etcd_sd_table);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

struct SendSel(*mut etcd_sd_selector);
unsafe impl Send for SendSel {}
unsafe impl Sync for SendSel {}

/// ns per pick, one sample per batch, from `threads` threads at once.
fn sample(threads: usize, batches: usize, pick: &(dyn Fn() + Sync)) -> Vec<f64> {
    let barrier = Barrier::new(threads);
    let out = Mutex::new(Vec::with_capacity(threads * batches));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut local = Vec::with_capacity(batches);
                for _ in 0..BATCH * 10 {
                    pick(); // warm-up
                }
                barrier.wait();
                for _ in 0..batches {
                    let t = Instant::now();
                    for _ in 0..BATCH {
                        pick();
                    }
                    local.push(t.elapsed().as_nanos() as f64 / BATCH as f64);
                }
                out.lock().unwrap().extend(local);
            });
        }
    });
    out.into_inner().unwrap()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[i.clamp(1, v.len()) - 1]
}

fn p50_p99(mut v: Vec<f64>) -> (f64, f64) {
    (pct(&mut v, 50.0), pct(&mut v, 99.0))
}

fn mallinfo_bytes() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    unsafe { libc::mallinfo2().uordblks as u64 }
}

fn new_options(ctx: &Ctx) -> Result<*mut etcd_sd_options, String> {
    let mut o = std::ptr::null_mut();
    if etcd_sd_options_new(&mut o) != etcd_sd_result::ETCD_SD_OK
        || etcd_sd_options_set_endpoints(o, ctx.ep.as_ptr()) != etcd_sd_result::ETCD_SD_OK
    {
        return Err("etcd_sd_options failed".into());
    }
    Ok(o)
}

fn new_table(ctx: &Ctx, prefix: &str) -> Result<SendPtr, String> {
    let o = new_options(ctx)?;
    let p = CString::new(prefix).unwrap();
    let mut t = std::ptr::null_mut();
    let rc = etcd_sd_table_new(o, p.as_ptr(), 0, &mut t);
    etcd_sd_options_free(o);
    if rc != etcd_sd_result::ETCD_SD_OK {
        return Err(format!("etcd_sd_table_new: {rc:?}"));
    }
    Ok(SendPtr(t))
}

/// Puts `items` into etcd, many in flight.
fn put_all(ctx: &Ctx, items: Vec<(String, String)>) -> Result<(), String> {
    ctx.rt.block_on(async {
        let mut handles = Vec::with_capacity(items.len());
        for (k, v) in items {
            let mut c = ctx.client.clone();
            handles.push(tokio::spawn(async move { c.put(k, v, None).await }));
        }
        for h in handles {
            h.await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let name = "8. service table";
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // --- pick latency -----------------------------------------------------------------------
    let addrs: Vec<String> = (0..10).map(|i| format!("10.0.0.{i}:9000")).collect();
    put_all(
        ctx,
        addrs
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("{SVC}/instance-{i}"), a.clone()))
            .collect(),
    )?;
    put_all(
        ctx,
        (0..10)
            .map(|i| {
                (
                    format!("{ZONED}/instance-{i}"),
                    format!(
                        "10.0.1.{i}:9000 zone={} version=v{} canary=false",
                        if i < 5 { "a" } else { "b" },
                        if i % 2 == 0 { 2 } else { 1 }
                    ),
                )
            })
            .collect(),
    )?;
    let table = new_table(ctx, "/bench-table/")?;
    // The caller is in zone a; SVC's instances have no zone, so its plain pick is unchanged.
    let zone = CString::new("a").unwrap();
    if etcd_sd_table_set_locality(table.0, zone.as_ptr(), 50) != etcd_sd_result::ETCD_SD_OK {
        return Err("etcd_sd_table_set_locality failed".into());
    }
    let text = CString::new("version=v2,canary=false").unwrap();
    let mut sel = std::ptr::null_mut();
    if etcd_sd_selector_new(text.as_ptr(), 0, &mut sel) != etcd_sd_result::ETCD_SD_OK {
        return Err("etcd_sd_selector_new failed".into());
    }
    let sel = SendSel(sel);
    let zoned = CString::new(ZONED).unwrap();
    let chat = ChatTable::default();
    for a in &addrs {
        chat.online(SVC, a);
    }
    let svc = CString::new(SVC).unwrap();
    let ours = || {
        let mut buf = [0 as c_char; 64];
        let mut len = 0usize;
        let t = &table;
        let rc = etcd_sd_table_pick(
            t.0,
            svc.as_ptr(),
            std::ptr::null(),
            0,
            buf.as_mut_ptr(),
            64,
            &mut len,
        );
        assert_eq!(rc, etcd_sd_result::ETCD_SD_OK);
        std::hint::black_box(&buf);
    };
    let hashed = || {
        let mut buf = [0 as c_char; 64];
        let mut len = 0usize;
        let key = b"user-123456";
        let t = &table;
        let rc = etcd_sd_table_pick(
            t.0,
            svc.as_ptr(),
            key.as_ptr().cast(),
            key.len(),
            buf.as_mut_ptr(),
            64,
            &mut len,
        );
        assert_eq!(rc, etcd_sd_result::ETCD_SD_OK);
        std::hint::black_box(&buf);
    };
    let selected = || {
        let mut buf = [0 as c_char; 64];
        let mut len = 0usize;
        let (t, s) = (&table, &sel);
        let rc = etcd_sd_table_pick_select(
            t.0,
            zoned.as_ptr(),
            s.0,
            std::ptr::null(),
            0,
            buf.as_mut_ptr(),
            64,
            &mut len,
        );
        assert_eq!(rc, etcd_sd_result::ETCD_SD_OK);
        std::hint::black_box(&buf);
    };
    let theirs = || {
        let a = chat.choose(SVC).expect("instance");
        let mut buf = [0u8; 64];
        buf[..a.len()].copy_from_slice(a.as_bytes());
        std::hint::black_box(&buf);
    };
    let (o1, t1, h1, o8, t8, s1, s8);
    // Interleave the arms so background load hits both alike.
    {
        let mut so1 = vec![];
        let mut st1 = vec![];
        let mut sh1 = vec![];
        let mut so8 = vec![];
        let mut st8 = vec![];
        let mut ss1 = vec![];
        let mut ss8 = vec![];
        for _ in 0..4 {
            ss1.extend(sample(1, 2_500, &selected));
            ss8.extend(sample(8, 1_250, &selected));
            so1.extend(sample(1, 5_000, &ours));
            st1.extend(sample(1, 5_000, &theirs));
            sh1.extend(sample(1, 2_500, &hashed));
            so8.extend(sample(8, 1_250, &ours));
            st8.extend(sample(8, 1_250, &theirs));
        }
        o1 = p50_p99(so1);
        t1 = p50_p99(st1);
        h1 = p50_p99(sh1);
        o8 = p50_p99(so8);
        t8 = p50_p99(st8);
        s1 = p50_p99(ss1);
        s8 = p50_p99(ss8);
    }
    etcd_sd_selector_free(sel.0);
    etcd_sd_table_free(table.0);
    let f = |(p50, p99): (f64, f64)| format!("{p50:.1} / {p99:.1} ns");
    rep.check(
        name,
        "pick (C ABI, round robin, 10 instances), 1 thread, p50 / p99",
        f(o1),
        "p50 ≤ 100 ns",
        o1.0 <= 100.0,
    );
    rep.info(
        name,
        "chat-system table (mutex + vector), 1 thread, p50 / p99",
        f(t1),
    );
    rep.info(
        name,
        "chat-system / ours, 1 thread, p50",
        format!("{:.1}×", t1.0 / o1.0),
    );
    rep.check(
        name,
        &format!(
            "pick, 8 threads at once ({cores} cores), p50 / p99 (per-pick time of each batch)"
        ),
        f(o8),
        "p50 ≤ 4× 1-thread p50",
        o8.0 <= 4.0 * o1.0,
    );
    rep.info(
        name,
        "chat-system table, 8 threads at once, p50 / p99",
        f(t8),
    );
    rep.info(
        name,
        "chat-system / ours, 8 threads, p50 / p99",
        format!("{:.1}× / {:.1}×", t8.0 / o8.0, t8.1 / o8.1),
    );
    rep.info(
        name,
        "pick by consistent hash (C ABI, 1 thread), p50 / p99",
        f(h1),
    );
    rep.info(
        name,
        "pick with a selector (2 pairs) and zones (C ABI, 10 instances, 2 zones), 1 thread, p50 / p99",
        f(s1),
    );
    rep.check(
        name,
        &format!(
            "pick with a selector and zones, 8 threads at once ({cores} cores), p50 / p99 (plain pick, same run: {:.1} / {:.1} ns)",
            o8.0, o8.1
        ),
        f(s8),
        "p50 ≤ 150 ns",
        s8.0 <= 150.0,
    );

    // --- cost of applying changes -----------------------------------------------------------
    let t = Table::new(Config::default());
    let start = Instant::now();
    for i in 0..1000 {
        t.apply(&Event::put(
            format!("/s/one/instance-{i:04}"),
            format!("10.1.{}.{}:9000", i / 256, i % 256),
        ));
    }
    let adds = start.elapsed();
    let t = Table::new(Config::default());
    for s in 0..100 {
        for i in 0..10 {
            t.apply(&Event::put(
                format!("/s/svc-{s}/i{i}"),
                format!("10.2.{s}.{i}:9000"),
            ));
        }
    }
    let start = Instant::now();
    for n in 0..1000 {
        let (s, i) = (n % 100, n / 100);
        t.apply(&Event::put(
            format!("/s/svc-{s}/i{i}"),
            format!("10.3.{s}.{i}:9001"),
        ));
    }
    let moves = start.elapsed();
    let us = |d: Duration| d.as_secs_f64() * 1e6 / 1000.0;
    rep.info(
        name,
        "apply 1,000 changes (table core): 1,000 new instances into one service (0 → 1,000)",
        format!(
            "{:.2} ms ({:.1} µs each)",
            adds.as_secs_f64() * 1e3,
            us(adds)
        ),
    );
    rep.info(
        name,
        "apply 1,000 changes: address changes over 100 services × 10 instances",
        format!(
            "{:.2} ms ({:.1} µs each)",
            moves.as_secs_f64() * 1e3,
            us(moves)
        ),
    );

    // --- memory per instance ----------------------------------------------------------------
    let n = 10_000;
    put_all(
        ctx,
        (0..n)
            .map(|i| {
                (
                    format!("/bench-mem/service-{:03}/instance-{:03}", i / 100, i % 100),
                    format!("10.{}.{}.{}:9000", i / 65536, i / 256 % 256, i % 256),
                )
            })
            .collect(),
    )?;
    let before = mallinfo_bytes();
    let big = new_table(ctx, "/bench-mem/")?;
    std::thread::sleep(Duration::from_millis(200));
    let after = mallinfo_bytes();
    etcd_sd_table_free(big.0);
    let per = after.saturating_sub(before) as f64 / n as f64;
    rep.info(
        name,
        "memory per instance (10,000 instances in 100 services; key ~36 B, value ~14 B; incl. the discovery's copy)",
        format!("{per:.0} bytes ({:.2} MB in all)", after.saturating_sub(before) as f64 / 1048576.0),
    );

    // --- metrics text ------------------------------------------------------------------------
    put_all(
        ctx,
        (0..1000)
            .map(|i| {
                (
                    format!(
                        "/bench-metrics/service-{:02}/instance-{:02}",
                        i / 10,
                        i % 10
                    ),
                    format!("10.9.{}.{}:9000 zone=z{}", i / 256, i % 256, i % 3),
                )
            })
            .collect(),
    )?;
    let mt = new_table(ctx, "/bench-metrics/")?;
    let mut buf = vec![0u8; 1 << 20];
    let mut times = Vec::new();
    let mut len = 0usize;
    for _ in 0..50 {
        let start = Instant::now();
        let r = etcd_sd_metrics_text(buf.as_mut_ptr().cast(), buf.len(), &mut len);
        times.push(start.elapsed().as_secs_f64() * 1e3);
        if r != etcd_sd_result::ETCD_SD_OK || len >= buf.len() {
            return Err("etcd_sd_metrics_text failed".into());
        }
    }
    etcd_sd_table_free(mt.0);
    let (m50, m99) = p50_p99(times);
    rep.check(
        name,
        &format!(
            "metrics text (Prometheus), 1,000 instances in 100 services: p50 / max of 50 ({} KB)",
            len / 1024
        ),
        format!("{m50:.3} / {m99:.3} ms"),
        "p50 ≤ 1 ms",
        m50 <= 1.0,
    );

    rep.detail(
        name,
        J::obj(vec![
            ("metrics_text_1000_p50_ms", J::Num(m50)),
            ("pick_1t_p50_ns", J::Num(o1.0)),
            ("pick_1t_p99_ns", J::Num(o1.1)),
            ("chat_1t_p50_ns", J::Num(t1.0)),
            ("chat_1t_p99_ns", J::Num(t1.1)),
            ("pick_8t_p50_ns", J::Num(o8.0)),
            ("pick_8t_p99_ns", J::Num(o8.1)),
            ("chat_8t_p50_ns", J::Num(t8.0)),
            ("chat_8t_p99_ns", J::Num(t8.1)),
            ("hash_1t_p50_ns", J::Num(h1.0)),
            ("hash_1t_p99_ns", J::Num(h1.1)),
            ("select_zone_1t_p50_ns", J::Num(s1.0)),
            ("select_zone_1t_p99_ns", J::Num(s1.1)),
            ("select_zone_8t_p50_ns", J::Num(s8.0)),
            ("select_zone_8t_p99_ns", J::Num(s8.1)),
            ("apply_1000_adds_ms", J::Num(adds.as_secs_f64() * 1e3)),
            ("apply_1000_moves_ms", J::Num(moves.as_secs_f64() * 1e3)),
            ("bytes_per_instance", J::Num(per.round())),
        ]),
    );
    Ok(())
}
