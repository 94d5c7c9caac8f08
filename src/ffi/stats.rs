//! Introspection structs: each starts with a `size` field that the caller sets to the size of
//! the struct it was compiled with, so fields can be appended without breaking the ABI (an
//! older program gets the fields it knows; a newer program on an older library gets `size`
//! back smaller and the rest untouched).

use crate::error::{Error, Result};
use crate::ffi::args::try_ref;
use crate::ffi::discovery::etcd_sd_discovery;
use crate::ffi::registry::etcd_sd_registry;
use crate::ffi::result::etcd_sd_result;
use crate::ffi::watch::etcd_sd_watch;
use crate::stats::DiscoveryStats;
use std::os::raw::c_char;
use std::time::Duration;

/// Bytes of an endpoint kept in the stats structs (longer ones are cut, always NUL-terminated).
pub const ETCD_SD_STATS_MEMBER_LEN: usize = 128;

/// A registry's state (`etcd_sd_registry_stats_get`).
#[repr(C)]
pub struct etcd_sd_registry_stats {
    /// Set to `sizeof(etcd_sd_registry_stats)` before the call; the library writes back how
    /// many bytes it filled.
    pub size: usize,
    /// The lease holding the keys (0 while none is held, e.g. waiting for etcd).
    pub lease_id: i64,
    /// The TTL the lease was granted with, in seconds.
    pub lease_ttl: i64,
    /// Milliseconds before the lease expires, as etcd said at the last renewal minus the time
    /// since; -1 when unknown (no lease held yet).
    pub lease_ttl_left_ms: i64,
    /// Keys this registry keeps registered.
    pub keys: u64,
    /// Times the lease was lost (etcd no longer held the keys).
    pub lease_losses: u64,
    /// Times a new lease was granted and every key put back.
    pub lease_restores: u64,
    /// True when the lease is the process's shared one (the default), false for an own lease.
    pub shared_lease: bool,
    /// The etcd endpoint requests go to now, NUL-terminated.
    pub member: [c_char; ETCD_SD_STATS_MEMBER_LEN],
}

/// A discovery's or a watch's state (`etcd_sd_discovery_stats_get`, `etcd_sd_watch_stats_get`).
#[repr(C)]
pub struct etcd_sd_discovery_stats {
    /// Set to `sizeof(etcd_sd_discovery_stats)` before the call; the library writes back how
    /// many bytes it filled.
    pub size: usize,
    /// The store revision reached: every change up to it has been reported.
    pub revision: i64,
    /// Keys announced and not withdrawn (the discovery's table).
    pub keys: u64,
    /// Events delivered, the initial listing included.
    pub events: u64,
    /// Times a broken watch stream was resumed from the last revision.
    pub resumes: u64,
    /// Times the prefix was read again (compaction, cancelled watch, etcd replaced).
    pub relists: u64,
    /// Milliseconds since the last event was delivered; -1 if none yet.
    pub ms_since_last_event: i64,
    /// The etcd endpoint the watch uses now, NUL-terminated.
    pub member: [c_char; ETCD_SD_STATS_MEMBER_LEN],
}

/// The process's connections (`etcd_sd_process_stats_get`).
#[repr(C)]
pub struct etcd_sd_process_stats {
    /// Set to `sizeof(etcd_sd_process_stats)` before the call; the library writes back how
    /// many bytes it filled.
    pub size: usize,
    /// Distinct connection settings in use (objects with the same settings share one).
    pub connections: u64,
    /// Member connections established.
    pub members_connected: u64,
    /// Leases kept alive, all renewed through one stream per connection.
    pub leases_kept: u64,
    /// Requests sent again after a failure since the process started.
    pub requests_retried: u64,
    /// Log records dropped since the process started because the log queue (1,024 records)
    /// was full: stderr or the log callback could not keep up.
    pub log_records_dropped: u64,
}

fn member(s: &str) -> [c_char; ETCD_SD_STATS_MEMBER_LEN] {
    let mut out = [0 as c_char; ETCD_SD_STATS_MEMBER_LEN];
    for (o, b) in out
        .iter_mut()
        .zip(s.bytes().take(ETCD_SD_STATS_MEMBER_LEN - 1))
    {
        *o = b as c_char;
    }
    out
}

fn ms(d: Option<Duration>) -> i64 {
    d.map_or(-1, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

/// Checks a size-prefixed out-struct before a call whose effect cannot be undone (a revoke):
/// `out` non-NULL with `size` at least a `size_t`; returns `size`.
///
/// # Safety
/// `out` is NULL or points to a readable `size_t`.
pub(crate) unsafe fn check_sized<T>(out: *mut T) -> Result<usize> {
    if out.is_null() {
        return Err(Error::invalid("out is NULL"));
    }
    // SAFETY: `out` is non-NULL (checked above) and starts with a `size_t` (this fn's
    // contract; the struct is `repr(C)` with `size` first, so it is aligned for one).
    let size = unsafe { out.cast::<usize>().read() };
    if size < std::mem::size_of::<usize>() {
        return Err(Error::invalid(format!(
            "out->size is {size}: set it to sizeof the struct"
        )));
    }
    Ok(size)
}

/// Copies the first `(*out).size` bytes of `value` into `*out` and sets its size to that.
///
/// # Safety
/// `out` is NULL or points to at least `(*out).size` writable bytes starting with a `size_t`.
pub(crate) unsafe fn fill<T>(out: *mut T, value: T) -> Result<()> {
    // SAFETY: this fn's contract is `check_sized`'s.
    let size = unsafe { check_sized(out) }?;
    let n = size.min(std::mem::size_of::<T>());
    // SAFETY: `n` is at most `size` (the writable bytes at `out`, by this fn's contract) and at
    // most `size_of::<T>()` (the readable bytes of `value`); `value` is a local, so they do
    // not overlap. Then `size` itself, which `n >= size_of::<usize>()` covers.
    unsafe {
        std::ptr::copy_nonoverlapping((&value as *const T).cast::<u8>(), out.cast::<u8>(), n);
        out.cast::<usize>().write(n);
    }
    Ok(())
}

fn discovery_stats(s: DiscoveryStats) -> etcd_sd_discovery_stats {
    etcd_sd_discovery_stats {
        size: 0,
        revision: s.revision,
        keys: s.keys,
        events: s.events,
        resumes: s.resumes,
        relists: s.relists,
        ms_since_last_event: ms(s.since_last_event),
        member: member(&s.member),
    }
}

/// Fills `*out` with the registry's state (set `out->size` first). Does no I/O.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, `out->size` too small).
#[no_mangle]
pub extern "C" fn etcd_sd_registry_stats_get(
    registry: *const etcd_sd_registry,
    out: *mut etcd_sd_registry_stats,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `registry` is NULL (refused) or an `etcd_sd_registry` from its `_new`, not freed
        // yet (the header's contract); it is only read during the call.
        let s = unsafe { try_ref(registry, "registry") }?.inner.stats();
        let v = etcd_sd_registry_stats {
            size: 0,
            lease_id: s.lease_id,
            lease_ttl: s.lease_ttl,
            lease_ttl_left_ms: ms(s.lease_ttl_left),
            keys: s.keys,
            lease_losses: s.lease_losses,
            lease_restores: s.lease_restores,
            shared_lease: s.shared_lease,
            member: member(&s.member),
        };
        // SAFETY: `out` is NULL (refused by `fill`) or the caller's stats struct, with at least
        // `out->size` writable bytes starting with that `size_t` (the header's contract).
        unsafe { fill(out, v) }
    }
}

/// Fills `*out` with the discovery's state (set `out->size` first). Does no I/O.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, `out->size` too small).
#[no_mangle]
pub extern "C" fn etcd_sd_discovery_stats_get(
    discovery: *const etcd_sd_discovery,
    out: *mut etcd_sd_discovery_stats,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `discovery` is NULL (refused) or an `etcd_sd_discovery` from its `_new`, not
        // freed yet (the header's contract); it is only read during the call.
        let s = unsafe { try_ref(discovery, "discovery") }?.inner.stats();
        // SAFETY: `out` is NULL (refused by `fill`) or the caller's stats struct, with at least
        // `out->size` writable bytes starting with that `size_t` (the header's contract).
        unsafe { fill(out, discovery_stats(s)) }
    }
}

/// Fills `*out` with the watch's state (set `out->size` first). Does no I/O.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, `out->size` too small).
#[no_mangle]
pub extern "C" fn etcd_sd_watch_stats_get(
    watch: *const etcd_sd_watch,
    out: *mut etcd_sd_discovery_stats,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `watch` is NULL (refused) or an `etcd_sd_watch` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let s = unsafe { try_ref(watch, "watch") }?.inner.stats();
        // SAFETY: `out` is NULL (refused by `fill`) or the caller's stats struct, with at least
        // `out->size` writable bytes starting with that `size_t` (the header's contract).
        unsafe { fill(out, discovery_stats(s)) }
    }
}

/// Fills `*out` with the process's connection state (set `out->size` first). Does no I/O.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, `out->size` too small).
#[no_mangle]
pub extern "C" fn etcd_sd_process_stats_get(out: *mut etcd_sd_process_stats) -> etcd_sd_result {
    ffi_boundary! {
        let s = crate::session::process_stats();
        let v = etcd_sd_process_stats {
            size: 0,
            connections: s.connections,
            members_connected: s.members_connected,
            leases_kept: s.leases_kept,
            requests_retried: s.requests_retried,
            log_records_dropped: crate::log::dropped(),
        };
        // SAFETY: `out` is NULL (refused by `fill`) or the caller's stats struct, with at least
        // `out->size` writable bytes starting with that `size_t` (the header's contract).
        unsafe { fill(out, v) }
    }
}
