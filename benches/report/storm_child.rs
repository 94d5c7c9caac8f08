//! The restart storm's child processes (scenario 9), through the C ABI as a C program uses it.
//!
//! - `storm-registrant`: BENCH_REGS registries of BENCH_KEYS keys each (TTL BENCH_TTL, so they
//!   share the process's one lease), says `READY`, then prints
//!   `REG <lease id> <losses> <restores> <keys> <requests retried>` whenever that changes.
//! - `storm-discovery`: one discovery on BENCH_PREFIX that keeps the table its callbacks
//!   announce, and prints `TABLE <keys> <hash>` and `DSTATS <resumes> <relists> <revision>`
//!   whenever they change.
//!
//! Both run until the parent kills them.

use crate::capi::{c, process_stats, Discovery, Registry, Sink};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The key and value of key `k` of registry `r` of registrant process `p`.
pub fn key_value(p: usize, r: usize, k: usize) -> (String, String) {
    (
        format!("/bench/storm/p{p:02}/r{r:02}/k{k}"),
        format!("10.{p}.{r}.{k}:{}", 5000 + k),
    )
}

/// A table's fingerprint that does not depend on the order it was built in: the wrapping sum
/// of each entry's FNV-1a hash.
pub fn entry_hash(key: &[u8], value: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.iter().chain([0u8].iter()).chain(value.iter()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("child needs {name}"))
}

fn num(name: &str) -> Result<usize, String> {
    var(name)?.parse().map_err(|e| format!("{name}: {e}"))
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub fn registrant() -> Result<(), String> {
    let ep = c(&var("BENCH_ENDPOINTS")?);
    let (p, regs, keys) = (num("BENCH_PROC")?, num("BENCH_REGS")?, num("BENCH_KEYS")?);
    let ttl = num("BENCH_TTL")? as i64;
    let mut all = Vec::with_capacity(regs);
    for r in 0..regs {
        let reg = Registry::new(&ep, ttl)?;
        for k in 0..keys {
            let (key, value) = key_value(p, r, k);
            reg.register(&c(&key), &c(&value))?;
        }
        all.push(reg);
    }
    say("READY");
    let mut last = String::new();
    loop {
        // Every registry shares the process's lease: the first one's figures are the lease's.
        let mut lease = (0i64, 0u64, 0u64);
        let mut n = 0u64;
        for (i, reg) in all.iter().enumerate() {
            let s = reg.stats().map_err(|e| format!("registry stats: {e}"))?;
            if i == 0 {
                lease = (s.lease_id, s.lease_losses, s.lease_restores);
            }
            n += s.keys;
        }
        let retried = process_stats().map_or(0, |ps| ps.requests_retried);
        let line = format!("REG {} {} {} {n} {retried}", lease.0, lease.1, lease.2);
        if line != last {
            say(&line);
            last = line;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The table a discovery's callbacks announced.
#[derive(Default)]
struct Table {
    state: Mutex<TableState>,
}

#[derive(Default)]
struct TableState {
    entries: HashMap<Vec<u8>, u64>,
    hash: u64,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, TableState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sink for Table {
    fn on_put(&self, key: &[u8], value: &[u8], _at: Instant) {
        let h = entry_hash(key, value);
        let mut t = self.lock();
        let old = t.entries.insert(key.to_vec(), h).unwrap_or(0);
        t.hash = t.hash.wrapping_sub(old).wrapping_add(h);
    }

    fn on_del(&self, key: &[u8], _at: Instant) {
        let mut t = self.lock();
        if let Some(old) = t.entries.remove(key) {
            t.hash = t.hash.wrapping_sub(old);
        }
    }
}

pub fn discovery() -> Result<(), String> {
    let ep = c(&var("BENCH_ENDPOINTS")?);
    let d = Discovery::new(&ep, &var("BENCH_PREFIX")?, Arc::new(Table::default()))
        .map_err(|e| format!("discovery: {e}"))?;
    let (mut last_t, mut last_s) = (String::new(), String::new());
    loop {
        let line = {
            let t = d.sink().lock();
            format!("TABLE {} {}", t.entries.len(), t.hash)
        };
        if line != last_t {
            say(&line);
            last_t = line;
        }
        if let Ok(s) = d.stats() {
            let line = format!("DSTATS {} {} {}", s.resumes, s.relists, s.revision);
            if line != last_s {
                say(&line);
                last_s = line;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
