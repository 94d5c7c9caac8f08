//! `etcd_sd_lock`: the C face of [`Lock`], a distributed lock that reports its loss.

use crate::dispatch::Sink;
use crate::error::Error;
use crate::ffi::args::{
    check_out, opt_ref, take_box, try_ref, try_str, write_out, Castable, OwnershipBox, UserData,
};
use crate::ffi::client::{client_ref, etcd_sd_client};
use crate::ffi::result::etcd_sd_result;
use crate::lock::{Lease, Lock};
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::time::Duration;

/// Called once when a lock or a leadership is lost while held (its lease expired or was
/// revoked, or its key was deleted), on a callback thread, never after the object's `_free`
/// returns (unless called from inside this callback). `result` is `ETCD_SD_LOST`, `message`
/// says what happened (valid during the call). The object may be freed from inside the call.
pub type etcd_sd_lost_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, result: c_int, message: *const c_char)>;

/// A held lock. Thread-safe: the getters, `_check` and `_unlock` may be called from any threads
/// at once (only the first `_unlock` releases); `_free` once, when no other call on it runs.
///
/// The lock lives under a lease. With `lease` 0 at creation the library grants one of
/// `ttl_seconds` and keeps it alive through the connection's keep-alive stream; it is revoked
/// when the lock is released. The library never takes a lost lock again: when the lease ends
/// (etcd unreachable past the TTL, a revoke by anyone) or the lock's key is deleted, `on_lost`
/// is called once, `etcd_sd_lock_check` and `etcd_sd_lock_unlock` return `ETCD_SD_LOST`, and
/// the caller decides what to do (typically: stop the guarded work, acquire again).
pub struct etcd_sd_lock {
    inner: Lock,
    key: CString,
}

impl Castable for etcd_sd_lock {
    type Ownership = OwnershipBox;
}

/// A sink calling a C `etcd_sd_lost_fn`.
pub(crate) fn lost_sink(f: etcd_sd_lost_fn, user_data: *mut c_void) -> Option<Sink<Error>> {
    let f = f?;
    let user_data = UserData::new(user_data);
    Some(Box::new(move |e: &Error| {
        let code = etcd_sd_result::from(e) as c_int;
        let msg = CString::new(e.to_string().replace('\0', " ")).unwrap_or_default();
        // SAFETY: the caller gave `f` and `user_data` for calls from callback threads until
        // the object is freed; `msg` outlives the call.
        unsafe { f(user_data.get(), code, msg.as_ptr()) };
    }))
}

/// How long to wait: `wait_ms`, or the request timeout when 0.
pub(crate) fn wait_of(wait_ms: u64, c: &crate::kv::Client) -> Duration {
    match wait_ms {
        0 => c.options().request_timeout,
        ms => Duration::from_millis(ms),
    }
}

/// The lease to hold something under: `lease`, or (0) one of `ttl_seconds` of its own.
pub(crate) fn lease_of(ttl_seconds: i64, lease: i64) -> Lease {
    match lease {
        0 => Lease::Own(ttl_seconds),
        id => Lease::Given(id),
    }
}

/// Acquires lock `name`, waiting at most `wait_ms` (0: the request timeout) while others hold
/// it or wait for it before us, and writes it to `*out`. Held under `lease`, or, when `lease`
/// is 0, under a lease of `ttl_seconds` of its own (see `etcd_sd_lock`). `on_lost` may be
/// NULL; `user_data` must stay valid until `etcd_sd_lock_free` returns.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, empty name, `ttl_seconds <= 0` without a lease),
/// `ETCD_SD_TIMEOUT` (still held by another after `wait_ms`: nothing is held or left waiting),
/// `ETCD_SD_NOT_FOUND` (the given lease does not exist), `ETCD_SD_UNAVAILABLE`,
/// `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_lock_new(
    client: *const etcd_sd_client,
    name: *const c_char,
    ttl_seconds: i64,
    lease: i64,
    wait_ms: u64,
    on_lost: etcd_sd_lost_fn,
    user_data: *mut c_void,
    out: *mut *mut etcd_sd_lock,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: `name` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let name = unsafe { try_str(name, "name") }?;
        let inner = Lock::acquire(
            c,
            name.as_bytes(),
            lease_of(ttl_seconds, lease),
            wait_of(wait_ms, c),
            lost_sink(on_lost, user_data),
        )?;
        let key = CString::new(inner.key().to_vec())
            .map_err(|_| Error::Internal("lock key holds a NUL byte".into()))?;
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_lock { inner, key }) };
        Ok(())
    }
}

/// The owner key (the name, '/', the lease id in hex): what `etcd_sd_client_unlock` takes.
/// Valid until the lock is freed; NULL for NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_lock_key(lock: *const etcd_sd_lock) -> *const c_char {
    ffi_boundary! {
        // SAFETY: `lock` is NULL (the documented default is returned) or an `etcd_sd_lock` the
        // caller has not freed (the header's contract); it is only read here.
        unsafe { opt_ref(lock) }.map_or(std::ptr::null(), |l| l.key.as_ptr())
    }
}

/// The revision the lock's key was created at: a fencing token, larger for every later
/// holder of the same lock. 0 for NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_lock_revision(lock: *const etcd_sd_lock) -> i64 {
    ffi_boundary! {
        // SAFETY: `lock` is NULL (the documented default is returned) or an `etcd_sd_lock` the
        // caller has not freed (the header's contract); it is only read here.
        unsafe { opt_ref(lock) }.map_or(0, |l| l.inner.revision())
    }
}

/// The lease the lock is held under. 0 for NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_lock_lease(lock: *const etcd_sd_lock) -> i64 {
    ffi_boundary! {
        // SAFETY: `lock` is NULL (the documented default is returned) or an `etcd_sd_lock` the
        // caller has not freed (the header's contract); it is only read here.
        unsafe { opt_ref(lock) }.map_or(0, |l| l.inner.lease())
    }
}

/// `ETCD_SD_OK` while held; `ETCD_SD_LOST` once lost; `ETCD_SD_CLOSED` after
/// `etcd_sd_lock_unlock`. Never blocks.
#[no_mangle]
pub extern "C" fn etcd_sd_lock_check(lock: *const etcd_sd_lock) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `lock` is NULL (refused) or an `etcd_sd_lock` from its `_new`, not freed yet (the
        // header's contract); it is only read during the call.
        unsafe { try_ref(lock, "lock") }?.inner.check()
    }
}

/// Releases the lock (and revokes its own lease). `ETCD_SD_LOST` when it was lost before:
/// nothing was held. Later calls return `ETCD_SD_OK` and do nothing. Blocks at most the
/// request timeout. Free it afterwards with `etcd_sd_lock_free`.
#[no_mangle]
pub extern "C" fn etcd_sd_lock_unlock(lock: *mut etcd_sd_lock) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `lock` is NULL (refused) or an `etcd_sd_lock` the caller has not freed; only
        // shared access is made (giving back is guarded by an atomic flag), so reads from other
        // threads at the same time are sound.
        let l = unsafe { try_ref(lock, "lock") }?;
        l.inner.unlock()
    }
}

/// Frees a lock, releasing it first if still held (best effort, at most the request
/// timeout). NULL is a no-op. After it returns `on_lost` is not called.
#[no_mangle]
pub extern "C" fn etcd_sd_lock_free(lock: *mut etcd_sd_lock) {
    ffi_boundary! {
        // SAFETY: `lock` is NULL (a no-op) or an `etcd_sd_lock` the library handed out (by
        // `write_out`) that the caller gives back here and never uses again (the header's `_free`
        // contract); `Castable` makes it the Box `write_out` made for this type.
        drop(unsafe { take_box(lock) });
    }
}

/// Releases the lock whose owner key is `key` (etcd-cpp-apiv3's `unlock(lock_key)`), held by
/// any process. Prefer `etcd_sd_lock_unlock` for a lock of this process, which also revokes
/// its lease. Blocks at most the request timeout.
/// Errors: `ETCD_SD_INVALID_ARGUMENT`, `ETCD_SD_UNAVAILABLE`, `ETCD_SD_TIMEOUT`, `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_unlock(
    client: *const etcd_sd_client,
    key: *const c_char,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?;
        c.unlock(key.as_bytes()).map(|_| ())
    }
}
