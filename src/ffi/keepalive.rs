//! `etcd_sd_keepalive`: the C face of [`KeptLease`], a lease kept alive and recovered.

use crate::ffi::args::{check_out, opt_ref, take_box, write_out, Castable, OwnershipBox, UserData};
use crate::ffi::client::{client_ref, etcd_sd_client};
use crate::ffi::result::etcd_sd_result;
use crate::session::kept::{GaveUp, KeptLease};
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};

/// Called once if a keep-alive gives up (see `etcd_sd_keepalive_new`), on a callback thread.
/// `lease` is the last lease id, `result` an `etcd_sd_result` code and `message` says why
/// (valid during the call).
pub type etcd_sd_keepalive_fn = Option<
    unsafe extern "C" fn(user_data: *mut c_void, lease: i64, result: c_int, message: *const c_char),
>;

/// Keeps one lease alive, renewing it through the process's one keep-alive stream per
/// connection (no thread or stream of its own), at no later than a third of its TTL.
///
/// When etcd loses the lease (it expired while etcd was unreachable, was revoked from
/// outside, etcd restarted past the TTL), the keep-alive grants a new lease of the same TTL,
/// puts back every key that was put under the old one through an `etcd_sd_client` of this
/// process with the same settings, and from then on `etcd_sd_keepalive_lease` returns the new
/// id -- and a put naming the old id goes under the new one. It retries through any outage; it
/// gives up only when etcd refuses the grant for good (authentication or permission), and
/// then calls `on_give_up` once and `etcd_sd_keepalive_check` returns the error.
///
/// Thread-safe. Freed by `etcd_sd_keepalive_free`, which stops the renewals without revoking:
/// the lease then expires after its TTL (revoke it with `etcd_sd_client_lease_revoke` to
/// delete its keys at once).
pub struct etcd_sd_keepalive {
    inner: KeptLease,
}

impl Castable for etcd_sd_keepalive {
    type Ownership = OwnershipBox;
}

/// Starts keeping `lease` alive, or, when `lease` is 0, grants a new lease of `ttl_seconds`
/// first (blocking, at most the connect timeout). Writes the keep-alive to `*out`.
///
/// `on_give_up` may be NULL; `user_data` is passed to it and must stay valid until
/// `etcd_sd_keepalive_free` returns. A given `lease` that turns out not to exist is treated
/// as lost: a new one is granted.
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, `ttl_seconds <= 0`), `ETCD_SD_UNAVAILABLE` (etcd
/// did not answer the grant within the connect timeout: never a keep-alive of lease 0, unless
/// the options ask to wait for etcd), `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_keepalive_new(
    client: *const etcd_sd_client,
    ttl_seconds: i64,
    lease: i64,
    on_give_up: etcd_sd_keepalive_fn,
    user_data: *mut c_void,
    out: *mut *mut etcd_sd_keepalive,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        let inner = c.keep_alive(ttl_seconds, lease)?;
        if let Some(f) = on_give_up {
            let user_data = UserData::new(user_data);
            inner.set_give_up_sink(Some(Box::new(move |g: &GaveUp| {
                let code = etcd_sd_result::from(&g.error) as c_int;
                let msg = CString::new(g.error.to_string().replace('\0', " ")).unwrap_or_default();
                // SAFETY: `f` and `user_data` were given to `_new`, the caller vouching for a
                // call from a callback thread (the `etcd_sd_keepalive_fn` contract); `msg`
                // outlives the call.
                unsafe { f(user_data.get(), g.lease, code, msg.as_ptr()) };
            })));
        }
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_keepalive { inner }) };
        Ok(())
    }
}

/// The lease currently kept (it changes when the lease is lost and re-granted); 0 for NULL,
/// or while a keep-alive created with `wait_for_etcd` has not reached etcd yet.
#[no_mangle]
pub extern "C" fn etcd_sd_keepalive_lease(keepalive: *const etcd_sd_keepalive) -> i64 {
    ffi_boundary! {
        // SAFETY: `keepalive` is NULL (the documented default is returned) or an
        // `etcd_sd_keepalive` the caller has not freed (the header's contract); it is only read
        // here.
        unsafe { opt_ref(keepalive) }.map_or(0, |k| k.inner.id())
    }
}

/// `ETCD_SD_OK` while the keep-alive works (or is recovering); the error it gave up with
/// afterwards. `ETCD_SD_INVALID_ARGUMENT` for NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_keepalive_check(keepalive: *const etcd_sd_keepalive) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `keepalive` is NULL (refused) or an `etcd_sd_keepalive` from its `_new`, not
        // freed yet (the header's contract); it is only read during the call.
        let k = unsafe { crate::ffi::args::try_ref(keepalive, "keepalive") }?;
        k.inner.check()
    }
}

/// Stops keeping the lease alive (it is not revoked) and frees the keep-alive. NULL is a
/// no-op. Returns at once; when it returns `on_give_up` is not running and will not run
/// (unless called from inside it).
#[no_mangle]
pub extern "C" fn etcd_sd_keepalive_free(keepalive: *mut etcd_sd_keepalive) {
    ffi_boundary! {
        // SAFETY: `keepalive` is NULL (a no-op) or an `etcd_sd_keepalive` the library handed out
        // (by `write_out`) that the caller gives back here and never uses again (the header's
        // `_free` contract); `Castable` makes it the Box `write_out` made for this type.
        drop(unsafe { take_box(keepalive) });
    }
}

/// Ends the keep-alive and revokes its lease: every key attached to it leaves etcd at once.
/// From then on `etcd_sd_keepalive_check` returns `ETCD_SD_LOST` (the lease is never granted
/// again); `on_give_up` is called once. A lease etcd no longer has is not an error. Blocks at
/// most the request timeout. Free it afterwards with `etcd_sd_keepalive_free`.
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL), `ETCD_SD_UNAVAILABLE`, `ETCD_SD_TIMEOUT`,
/// `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_keepalive_revoke(keepalive: *const etcd_sd_keepalive) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `keepalive` is NULL (refused) or an `etcd_sd_keepalive` from its `_new`, not
        // freed yet (the header's contract); it is only read during the call.
        unsafe { crate::ffi::args::try_ref(keepalive, "keepalive") }?.inner.revoke()
    }
}
