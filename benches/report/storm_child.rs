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

use crate::capi::{c, Registry};
use etcd_sd::ffi::{
    etcd_sd_discovery, etcd_sd_discovery_new, etcd_sd_discovery_stats, etcd_sd_discovery_stats_get,
    etcd_sd_last_error, etcd_sd_process_stats, etcd_sd_process_stats_get, etcd_sd_registry_stats,
    etcd_sd_registry_stats_get, etcd_sd_result,
};
use std::collections::HashMap;
use std::ffi::CStr;
use std::io::Write;
use std::os::raw::{c_char, c_void};
use std::sync::Mutex;
use std::time::Duration;

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

fn last_error() -> String {
    // SAFETY: a thread-local NUL-terminated string, never NULL.
    unsafe { CStr::from_ptr(etcd_sd_last_error()) }
        .to_string_lossy()
        .into_owned()
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
            let mut s: etcd_sd_registry_stats = unsafe { std::mem::zeroed() };
            s.size = std::mem::size_of::<etcd_sd_registry_stats>();
            if etcd_sd_registry_stats_get(reg.raw(), &mut s) != etcd_sd_result::ETCD_SD_OK {
                return Err(format!("registry stats: {}", last_error()));
            }
            if i == 0 {
                lease = (s.lease_id, s.lease_losses, s.lease_restores);
            }
            n += s.keys;
        }
        let mut ps: etcd_sd_process_stats = unsafe { std::mem::zeroed() };
        ps.size = std::mem::size_of::<etcd_sd_process_stats>();
        let _ = etcd_sd_process_stats_get(&mut ps);
        let line = format!(
            "REG {} {} {} {n} {}",
            lease.0, lease.1, lease.2, ps.requests_retried
        );
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
    entries: HashMap<Vec<u8>, u64>,
    hash: u64,
}

fn table(user_data: *mut c_void) -> &'static Mutex<Table> {
    // SAFETY: user_data is the leaked Mutex<Table> of `discovery` below (never freed).
    unsafe { &*(user_data as *const Mutex<Table>) }
}

unsafe extern "C" fn on_put(
    user_data: *mut c_void,
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
) {
    // SAFETY: key and value point to key_len and value_len bytes during the call.
    let (key, value) = unsafe {
        (
            std::slice::from_raw_parts(key.cast::<u8>(), key_len),
            std::slice::from_raw_parts(value.cast::<u8>(), value_len),
        )
    };
    let h = entry_hash(key, value);
    let mut t = table(user_data).lock().unwrap_or_else(|e| e.into_inner());
    let old = t.entries.insert(key.to_vec(), h).unwrap_or(0);
    t.hash = t.hash.wrapping_sub(old).wrapping_add(h);
}

unsafe extern "C" fn on_del(
    user_data: *mut c_void,
    key: *const c_char,
    key_len: usize,
    _value: *const c_char,
    _value_len: usize,
) {
    // SAFETY: as in on_put.
    let key = unsafe { std::slice::from_raw_parts(key.cast::<u8>(), key_len) };
    let mut t = table(user_data).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(old) = t.entries.remove(key) {
        t.hash = t.hash.wrapping_sub(old);
    }
}

pub fn discovery() -> Result<(), String> {
    let ep = c(&var("BENCH_ENDPOINTS")?);
    let prefix = c(&var("BENCH_PREFIX")?);
    let tab: &'static Mutex<Table> = Box::leak(Box::default());
    let mut d: *mut etcd_sd_discovery = std::ptr::null_mut();
    let r = etcd_sd_discovery_new(
        ep.as_ptr(),
        prefix.as_ptr(),
        Some(on_put),
        Some(on_del),
        tab as *const Mutex<Table> as *mut c_void,
        &mut d,
    );
    if r != etcd_sd_result::ETCD_SD_OK {
        return Err(format!("discovery: {}", last_error()));
    }
    let (mut last_t, mut last_s) = (String::new(), String::new());
    loop {
        let line = {
            let t = tab.lock().unwrap_or_else(|e| e.into_inner());
            format!("TABLE {} {}", t.entries.len(), t.hash)
        };
        if line != last_t {
            say(&line);
            last_t = line;
        }
        let mut s: etcd_sd_discovery_stats = unsafe { std::mem::zeroed() };
        s.size = std::mem::size_of::<etcd_sd_discovery_stats>();
        if etcd_sd_discovery_stats_get(d, &mut s) == etcd_sd_result::ETCD_SD_OK {
            let line = format!("DSTATS {} {} {}", s.resumes, s.relists, s.revision);
            if line != last_s {
                say(&line);
                last_s = line;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
