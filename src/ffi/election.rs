//! `etcd_sd_election`: the C face of [`Election`], a leadership that reports its loss.

use crate::election::{current_leader, Election};
use crate::error::Error;
use crate::ffi::args::{
    check_out, opt_ref, take_box, try_bytes, try_ref, try_str, write_out, Castable, OwnershipBox,
};
use crate::ffi::client::{client_ref, etcd_sd_client};
use crate::ffi::kvs::etcd_sd_kvs;
use crate::ffi::lock::{etcd_sd_lost_fn, lease_of, lost_sink, wait_of};
use crate::ffi::result::etcd_sd_result;
use crate::types::Kvs;
use std::ffi::CString;
use std::os::raw::{c_char, c_void};

/// A held leadership of an election. Thread-safe: the getters, `_check`, `_proclaim` and
/// `_resign` may be called from any threads at once (only the first `_resign` resigns); `_free`
/// once, when no other call on it runs.
///
/// It lives under a lease, as `etcd_sd_lock` does (granted and kept by the library when
/// `lease` is 0 at creation, revoked on resign). The library never campaigns again by
/// itself: when the lease ends or the leader key is deleted, `on_lost` is called once and
/// `_check`, `_proclaim` and `_resign` return `ETCD_SD_LOST`; to lead again, campaign again.
pub struct etcd_sd_election {
    inner: Election,
    key: CString,
}

impl Castable for etcd_sd_election {
    type Ownership = OwnershipBox;
}

/// Campaigns in election `name` with `value` (`value_len` bytes), waiting at most `wait_ms`
/// (0: the request timeout) until every earlier candidate is gone, and writes the leadership
/// to `*out`. Lease, `on_lost` and `user_data`: as `etcd_sd_lock_new`.
///
/// Errors: as `etcd_sd_lock_new` (`ETCD_SD_TIMEOUT`: another still leads after `wait_ms`, and
/// this process is no candidate any more).
#[no_mangle]
pub extern "C" fn etcd_sd_election_new(
    client: *const etcd_sd_client,
    name: *const c_char,
    value: *const c_char,
    value_len: usize,
    ttl_seconds: i64,
    lease: i64,
    wait_ms: u64,
    on_lost: etcd_sd_lost_fn,
    user_data: *mut c_void,
    out: *mut *mut etcd_sd_election,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: `name` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let name = unsafe { try_str(name, "name") }?;
        // SAFETY: the caller lends `value_len` readable bytes at `value` for the call (NULL is
        // refused unless `value_len` is 0).
        let value = unsafe { try_bytes(value, value_len, "value") }?;
        let inner = Election::campaign(
            c,
            name.as_bytes(),
            value,
            lease_of(ttl_seconds, lease),
            wait_of(wait_ms, c),
            lost_sink(on_lost, user_data),
        )?;
        let key = CString::new(inner.leader_key().key.clone())
            .map_err(|_| Error::Internal("leader key holds a NUL byte".into()))?;
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_election { inner, key }) };
        Ok(())
    }
}

/// This leader's own key (under the election's name). Valid until freed; NULL for NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_election_key(election: *const etcd_sd_election) -> *const c_char {
    ffi_boundary! {
        // SAFETY: `election` is NULL (the documented default is returned) or an `etcd_sd_election`
        // the caller has not freed (the header's contract); it is only read here.
        unsafe { opt_ref(election) }.map_or(std::ptr::null(), |e| e.key.as_ptr())
    }
}

/// The revision the leader key was created at: a fencing token, larger for every later
/// leader. 0 for NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_election_revision(election: *const etcd_sd_election) -> i64 {
    ffi_boundary! {
        // SAFETY: `election` is NULL (the documented default is returned) or an `etcd_sd_election`
        // the caller has not freed (the header's contract); it is only read here.
        unsafe { opt_ref(election) }.map_or(0, |e| e.inner.leader_key().rev)
    }
}

/// The lease the leadership is held under. 0 for NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_election_lease(election: *const etcd_sd_election) -> i64 {
    ffi_boundary! {
        // SAFETY: `election` is NULL (the documented default is returned) or an `etcd_sd_election`
        // the caller has not freed (the header's contract); it is only read here.
        unsafe { opt_ref(election) }.map_or(0, |e| e.inner.leader_key().lease)
    }
}

/// `ETCD_SD_OK` while leading, `ETCD_SD_LOST` once lost, `ETCD_SD_CLOSED` after resigning.
/// Never blocks.
#[no_mangle]
pub extern "C" fn etcd_sd_election_check(election: *const etcd_sd_election) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `election` is NULL (refused) or an `etcd_sd_election` from its `_new`, not freed
        // yet (the header's contract); it is only read during the call.
        unsafe { try_ref(election, "election") }?.inner.check()
    }
}

/// Announces a new value (`value_len` bytes) without another election. Blocks at most the
/// request timeout.
/// Errors: `ETCD_SD_LOST` (no longer leading), `ETCD_SD_CLOSED` (resigned), and those of
/// `etcd_sd_client_put`.
#[no_mangle]
pub extern "C" fn etcd_sd_election_proclaim(
    election: *const etcd_sd_election,
    value: *const c_char,
    value_len: usize,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `election` is NULL (refused) or an `etcd_sd_election` from its `_new`, not freed
        // yet (the header's contract); it is only read during the call.
        let e = unsafe { try_ref(election, "election") }?;
        // SAFETY: the caller lends `value_len` readable bytes at `value` for the call (NULL is
        // refused unless `value_len` is 0).
        let value = unsafe { try_bytes(value, value_len, "value") }?;
        e.inner.proclaim(value)
    }
}

/// Gives up leadership (and revokes its own lease): the next candidate leads. `ETCD_SD_LOST`
/// when it was lost before. Later calls do nothing. Blocks at most the request timeout.
#[no_mangle]
pub extern "C" fn etcd_sd_election_resign(election: *mut etcd_sd_election) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `election` is NULL (refused) or an `etcd_sd_election` the caller has not freed; only
        // shared access is made (giving back is guarded by an atomic flag), so reads from other
        // threads at the same time are sound.
        let e = unsafe { try_ref(election, "election") }?;
        e.inner.resign()
    }
}

/// Frees a leadership, resigning first if still leading (best effort, at most the request
/// timeout). NULL is a no-op. After it returns `on_lost` is not called.
#[no_mangle]
pub extern "C" fn etcd_sd_election_free(election: *mut etcd_sd_election) {
    ffi_boundary! {
        // SAFETY: `election` is NULL (a no-op) or an `etcd_sd_election` the library handed out (by
        // `write_out`) that the caller gives back here and never uses again (the header's `_free`
        // contract); `Castable` makes it the Box `write_out` made for this type.
        drop(unsafe { take_box(election) });
    }
}

/// Writes the current leader of election `name` (its key and value: one entry) to `*out`
/// (free with `etcd_sd_kvs_free`). Blocks at most the request timeout.
/// Errors: `ETCD_SD_NOT_FOUND` (nobody leads), `ETCD_SD_INVALID_ARGUMENT`,
/// `ETCD_SD_UNAVAILABLE`, `ETCD_SD_TIMEOUT`, `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_leader(
    client: *const etcd_sd_client,
    name: *const c_char,
    out: *mut *mut etcd_sd_kvs,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: `name` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let name = unsafe { try_str(name, "name") }?;
        let kv = current_leader(c, name.as_bytes())?;
        let kvs = Kvs { revision: kv.mod_revision, kvs: vec![kv] };
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_kvs::new(kvs)) };
        Ok(())
    }
}
