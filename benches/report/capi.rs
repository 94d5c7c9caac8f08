//! The C ABI as a C or C++ program uses it: `etcd_sd_*` calls with C strings, out-pointers
//! and `extern "C"` function-pointer callbacks whose `user_data` is a [`Sink`] (a [`Probe`],
//! or the restart storm's table), plus the stats structs.

use etcd_sd::ffi::{
    etcd_sd_discovery, etcd_sd_discovery_free, etcd_sd_discovery_new, etcd_sd_discovery_new_with,
    etcd_sd_discovery_stats, etcd_sd_discovery_stats_get, etcd_sd_last_error, etcd_sd_options,
    etcd_sd_options_free, etcd_sd_options_new, etcd_sd_options_set_endpoints,
    etcd_sd_options_set_inline_callbacks, etcd_sd_options_set_own_lease, etcd_sd_options_set_ttl,
    etcd_sd_process_stats, etcd_sd_process_stats_get, etcd_sd_registry, etcd_sd_registry_free,
    etcd_sd_registry_lease_id, etcd_sd_registry_new, etcd_sd_registry_new_with,
    etcd_sd_registry_register, etcd_sd_registry_stats, etcd_sd_registry_stats_get, etcd_sd_result,
    etcd_sd_result_name,
};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_void};
use std::ptr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL in bench strings")
}

/// "ETCD_SD_UNAVAILABLE: <message>" for a failed call.
fn failure(r: etcd_sd_result) -> String {
    // SAFETY: both return static or thread-local NUL-terminated strings, never NULL.
    unsafe {
        format!(
            "{}: {}",
            CStr::from_ptr(etcd_sd_result_name(r as i32)).to_string_lossy(),
            CStr::from_ptr(etcd_sd_last_error()).to_string_lossy()
        )
    }
}

fn check(r: etcd_sd_result) -> Result<(), String> {
    if r == etcd_sd_result::ETCD_SD_OK {
        Ok(())
    } else {
        Err(failure(r))
    }
}

/// Records when callbacks ran: per key (when `record`) and as counts.
pub struct Probe {
    state: Mutex<ProbeState>,
    cv: Condvar,
}

#[derive(Default)]
struct ProbeState {
    record: bool,
    puts: HashMap<Vec<u8>, Instant>,
    dels: HashMap<Vec<u8>, Instant>,
    n_puts: u64,
    n_dels: u64,
    last_put: Option<Instant>,
    /// Wake waiters when `n_puts` reaches this (avoids a wake-up per event in bursts).
    wake_at: u64,
}

impl Probe {
    /// `record`: remember each key's callback time (latency scenarios); otherwise only count.
    pub fn new(record: bool) -> Arc<Probe> {
        Arc::new(Probe {
            state: Mutex::new(ProbeState {
                record,
                wake_at: u64::MAX,
                ..Default::default()
            }),
            cv: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ProbeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn put(&self, key: &[u8], at: Instant) {
        let mut s = self.lock();
        s.n_puts += 1;
        s.last_put = Some(at);
        let wake = if s.record {
            s.puts.insert(key.to_vec(), at);
            true
        } else {
            s.n_puts >= s.wake_at
        };
        drop(s);
        if wake {
            self.cv.notify_all();
        }
    }

    pub fn del(&self, key: &[u8], at: Instant) {
        let mut s = self.lock();
        s.n_dels += 1;
        if s.record {
            s.dels.insert(key.to_vec(), at);
        }
        drop(s);
        self.cv.notify_all();
    }

    pub fn puts(&self) -> u64 {
        self.lock().n_puts
    }

    fn wait_key(&self, key: &str, del: bool, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        let mut s = self.lock();
        loop {
            let map = if del { &mut s.dels } else { &mut s.puts };
            if let Some(t) = map.remove(key.as_bytes()) {
                return Some(t);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            s = self
                .cv
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// When the put callback for `key` ran (waits up to `limit`).
    pub fn wait_put(&self, key: &str, limit: Duration) -> Option<Instant> {
        self.wait_key(key, false, limit)
    }

    /// When the delete callback for `key` ran (waits up to `limit`).
    pub fn wait_del(&self, key: &str, limit: Duration) -> Option<Instant> {
        self.wait_key(key, true, limit)
    }

    /// Waits until `n` puts were seen; returns when the last of them was delivered.
    pub fn wait_puts(&self, n: u64, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        let mut s = self.lock();
        s.wake_at = n;
        loop {
            if s.n_puts >= n {
                s.wake_at = u64::MAX;
                return s.last_put;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            s = self
                .cv
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// What a discovery's callbacks report to: the `user_data` of `etcd_sd_discovery_new`. Called
/// on the library's callback threads (and, for the initial listing, on the thread calling
/// `Discovery::new`) with the time the callback started.
pub trait Sink: Send + Sync + 'static {
    fn on_put(&self, key: &[u8], value: &[u8], at: Instant);
    fn on_del(&self, key: &[u8], at: Instant);
}

impl Sink for Probe {
    fn on_put(&self, key: &[u8], _value: &[u8], at: Instant) {
        self.put(key, at);
    }

    fn on_del(&self, key: &[u8], at: Instant) {
        self.del(key, at);
    }
}

/// The `len` bytes at `p` (empty for NULL).
///
/// # Safety
/// `p` points to `len` readable bytes that outlive the returned slice's use.
unsafe fn bytes<'a>(p: *const c_char, len: usize) -> &'a [u8] {
    if p.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }
    }
}

/// `etcd_sd_event_fn` for puts: `user_data` is an `S`.
unsafe extern "C" fn on_put<S: Sink>(
    user_data: *mut c_void,
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
) {
    let at = Instant::now();
    // SAFETY: user_data is the S the Discovery below keeps alive until after the free; key and
    // value point to key_len and value_len bytes for the duration of the call.
    let (sink, key, value) = unsafe {
        (
            &*(user_data as *const S),
            bytes(key, key_len),
            bytes(value, value_len),
        )
    };
    sink.on_put(key, value, at);
}

/// `etcd_sd_event_fn` for deletes.
unsafe extern "C" fn on_del<S: Sink>(
    user_data: *mut c_void,
    key: *const c_char,
    key_len: usize,
    _value: *const c_char,
    _value_len: usize,
) {
    let at = Instant::now();
    // SAFETY: as in on_put.
    let (sink, key) = unsafe { (&*(user_data as *const S), bytes(key, key_len)) };
    sink.on_del(key, at);
}

/// An `etcd_sd_discovery*` with a [`Sink`] as its `user_data`; freed on drop.
pub struct Discovery<S: Sink = Probe> {
    ptr: *mut etcd_sd_discovery,
    sink: Arc<S>,
}

impl<S: Sink> Discovery<S> {
    pub fn new(endpoints: &CStr, prefix: &str, sink: Arc<S>) -> Result<Discovery<S>, String> {
        let prefix = c(prefix);
        let mut out: *mut etcd_sd_discovery = ptr::null_mut();
        let r = etcd_sd_discovery_new(
            endpoints.as_ptr(),
            prefix.as_ptr(),
            Some(on_put::<S>),
            Some(on_del::<S>),
            Arc::as_ptr(&sink) as *mut c_void,
            &mut out,
        );
        check(r)?;
        Ok(Discovery { ptr: out, sink })
    }

    /// [`Self::new`] with `etcd_sd_options_set_inline_callbacks`: the callbacks run on the
    /// library's I/O thread.
    pub fn new_inline(
        endpoints: &CStr,
        prefix: &str,
        sink: Arc<S>,
    ) -> Result<Discovery<S>, String> {
        let prefix = c(prefix);
        let mut opts: *mut etcd_sd_options = ptr::null_mut();
        check(etcd_sd_options_new(&mut opts))?;
        let r = check(etcd_sd_options_set_endpoints(opts, endpoints.as_ptr()))
            .and_then(|()| check(etcd_sd_options_set_inline_callbacks(opts, true)));
        let mut out: *mut etcd_sd_discovery = ptr::null_mut();
        let r = r.and_then(|()| {
            check(etcd_sd_discovery_new_with(
                opts,
                prefix.as_ptr(),
                Some(on_put::<S>),
                Some(on_del::<S>),
                Arc::as_ptr(&sink) as *mut c_void,
                &mut out,
            ))
        });
        etcd_sd_options_free(opts);
        r?;
        Ok(Discovery { ptr: out, sink })
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// `etcd_sd_discovery_stats_get`.
    pub fn stats(&self) -> Result<etcd_sd_discovery_stats, String> {
        // SAFETY: plain integers and byte arrays: all-zero is a valid value.
        let mut s: etcd_sd_discovery_stats = unsafe { std::mem::zeroed() };
        s.size = std::mem::size_of::<etcd_sd_discovery_stats>();
        check(etcd_sd_discovery_stats_get(self.ptr, &mut s))?;
        Ok(s)
    }
}

impl<S: Sink> Drop for Discovery<S> {
    fn drop(&mut self) {
        // After this returns no callback runs, so the sink may go.
        etcd_sd_discovery_free(self.ptr);
    }
}

/// An `etcd_sd_registry*`; freed (lease revoked) on drop.
pub struct Registry {
    ptr: *mut etcd_sd_registry,
}

impl Registry {
    pub fn new(endpoints: &CStr, ttl_seconds: i64) -> Result<Registry, String> {
        let mut out: *mut etcd_sd_registry = ptr::null_mut();
        check(etcd_sd_registry_new(
            endpoints.as_ptr(),
            ttl_seconds,
            &mut out,
        ))?;
        Ok(Registry { ptr: out })
    }

    /// A registry with a lease of its own (`etcd_sd_options_set_own_lease`): its `_new` grants
    /// the lease, its free revokes it.
    pub fn new_own_lease(endpoints: &CStr, ttl_seconds: i64) -> Result<Registry, String> {
        let mut opts: *mut etcd_sd_options = ptr::null_mut();
        check(etcd_sd_options_new(&mut opts))?;
        let mut out: *mut etcd_sd_registry = ptr::null_mut();
        let r = check(etcd_sd_options_set_endpoints(opts, endpoints.as_ptr()))
            .and_then(|()| check(etcd_sd_options_set_ttl(opts, ttl_seconds)))
            .and_then(|()| check(etcd_sd_options_set_own_lease(opts, true)))
            .and_then(|()| check(etcd_sd_registry_new_with(opts, &mut out)));
        etcd_sd_options_free(opts);
        r?;
        Ok(Registry { ptr: out })
    }

    pub fn register(&self, key: &CStr, value: &CStr) -> Result<(), String> {
        check(etcd_sd_registry_register(
            self.ptr,
            key.as_ptr(),
            value.as_ptr(),
        ))
    }

    /// `etcd_sd_registry_stats_get`.
    pub fn stats(&self) -> Result<etcd_sd_registry_stats, String> {
        // SAFETY: plain integers and byte arrays: all-zero is a valid value.
        let mut s: etcd_sd_registry_stats = unsafe { std::mem::zeroed() };
        s.size = std::mem::size_of::<etcd_sd_registry_stats>();
        check(etcd_sd_registry_stats_get(self.ptr, &mut s))?;
        Ok(s)
    }

    pub fn lease_id(&self) -> Result<i64, String> {
        let mut id = 0i64;
        check(etcd_sd_registry_lease_id(self.ptr, &mut id))?;
        Ok(id)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        etcd_sd_registry_free(self.ptr);
    }
}

/// `etcd_sd_process_stats_get`.
pub fn process_stats() -> Result<etcd_sd_process_stats, String> {
    // SAFETY: plain integers: all-zero is a valid value.
    let mut s: etcd_sd_process_stats = unsafe { std::mem::zeroed() };
    s.size = std::mem::size_of::<etcd_sd_process_stats>();
    check(etcd_sd_process_stats_get(&mut s))?;
    Ok(s)
}
