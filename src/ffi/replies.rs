//! Whole replies of the plain calls, for callers that need more than the short forms of
//! `etcd_sd.h` give: the store revision of every lease call, the TTL etcd granted, the lease
//! a put went under, and the value a refused conditional put found. The short forms are
//! unchanged; etcd-cpp-apiv3's `Response` (index, ttl, lease) is built from these.

use crate::error::Error;
use crate::ffi::client::{client_ref, etcd_sd_client, give, put_mode};
use crate::ffi::kvs::etcd_sd_kvs;
use crate::ffi::result::etcd_sd_result;
use crate::ffi::stats::{check_sized, fill};
use crate::types::{LeaseInfo, PutReply};
use std::os::raw::c_char;

/// A lease call's reply (`etcd_sd_client_lease_*_info`).
#[repr(C)]
pub struct etcd_sd_lease_info {
    /// Set to `sizeof(etcd_sd_lease_info)` before the call; the library writes back how many
    /// bytes it filled.
    pub size: usize,
    /// The lease: for a lease kept by an `etcd_sd_keepalive` of this process, its current id.
    pub id: i64,
    /// Seconds. Grant: the TTL etcd granted (it raises a TTL under its minimum). Time-to-live:
    /// the seconds left, -1 when the lease does not exist or expired. Revoke: 0.
    pub ttl: i64,
    /// Seconds the lease was granted with (time-to-live and grant; 0 for a revoke).
    pub granted_ttl: i64,
    /// The store revision when etcd answered.
    pub revision: i64,
}

/// A put's reply (`etcd_sd_client_put_info`).
#[repr(C)]
pub struct etcd_sd_put_info {
    /// Set to `sizeof(etcd_sd_put_info)` before the call; the library writes back how many
    /// bytes it filled.
    pub size: usize,
    /// False when the mode refused the put: `ETCD_SD_PUT_IF_ABSENT` on a key that exists, or
    /// `ETCD_SD_PUT_IF_PRESENT` on one that does not.
    pub applied: bool,
    /// The lease the key is under when the call returns: a lease kept by an
    /// `etcd_sd_keepalive` of this process that was lost and re-granted is its current id.
    /// 0 for none.
    pub lease: i64,
    /// The store revision when etcd answered.
    pub revision: i64,
}

fn lease_info(i: LeaseInfo) -> etcd_sd_lease_info {
    etcd_sd_lease_info {
        size: 0,
        id: i.id,
        ttl: i.ttl,
        granted_ttl: i.granted_ttl,
        revision: i.revision,
    }
}

/// A lease call with its reply in `*out`: `out` is checked before the call (nothing is done
/// with a bad one), then filled.
///
/// # Safety
/// `client` is NULL or a live `etcd_sd_client`; `out` is NULL or the caller's struct with
/// `out->size` writable bytes, starting with that `size_t`.
unsafe fn lease_call(
    client: *const etcd_sd_client,
    out: *mut etcd_sd_lease_info,
    call: impl FnOnce(&crate::kv::Client) -> crate::error::Result<LeaseInfo>,
) -> crate::error::Result<()> {
    // SAFETY: `out` is NULL (refused) or the caller's struct, starting with its `size`.
    unsafe { check_sized(out) }?;
    // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
    // (this fn's contract); it is only read during the call.
    let info = call(unsafe { client_ref(client) }?)?;
    // SAFETY: `out` was checked above and has `out->size` writable bytes (this fn's contract).
    unsafe { fill(out, lease_info(info)) }
}

/// `etcd_sd_client_lease_grant` with etcd's whole reply in `*out` (`out->size` set by the
/// caller). Errors: those of `etcd_sd_client_lease_grant`, and `ETCD_SD_INVALID_ARGUMENT`
/// for a NULL `out` or a `size` under `sizeof(size_t)`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_lease_grant_info(
    client: *const etcd_sd_client,
    ttl_seconds: i64,
    out: *mut etcd_sd_lease_info,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `client` and `out` come from the caller as the header's contract says, which
        // is `lease_call`'s.
        unsafe { lease_call(client, out, |c| c.lease_grant_info(ttl_seconds)) }
    }
}

/// `etcd_sd_client_lease_revoke` with the id revoked (a kept lease's current one) and the
/// revision in `*out`. `out` is checked before anything is revoked. Errors: those of
/// `etcd_sd_client_lease_revoke`, and `ETCD_SD_INVALID_ARGUMENT` for a bad `out`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_lease_revoke_info(
    client: *const etcd_sd_client,
    id: i64,
    out: *mut etcd_sd_lease_info,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `client` and `out` come from the caller as the header's contract says, which
        // is `lease_call`'s.
        unsafe { lease_call(client, out, |c| c.lease_revoke_info(id)) }
    }
}

/// `etcd_sd_client_lease_ttl` with the whole reply in `*out`: `ttl` is the seconds left (-1
/// when the lease does not exist or expired), `granted_ttl` what it was granted with, `id`
/// the lease asked about (a kept lease's current id). Errors: those of
/// `etcd_sd_client_lease_ttl`, and `ETCD_SD_INVALID_ARGUMENT` for a bad `out`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_lease_ttl_info(
    client: *const etcd_sd_client,
    id: i64,
    out: *mut etcd_sd_lease_info,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `client` and `out` come from the caller as the header's contract says, which
        // is `lease_call`'s.
        unsafe { lease_call(client, out, |c| c.lease_ttl_info(id)) }
    }
}

/// `etcd_sd_client_leases` that also writes the revision etcd answered at to `*out_revision`
/// (when not NULL).
#[no_mangle]
pub extern "C" fn etcd_sd_client_leases_info(
    client: *const etcd_sd_client,
    ids: *mut i64,
    capacity: usize,
    out_count: *mut usize,
    out_revision: *mut i64,
) -> etcd_sd_result {
    ffi_boundary! {
        if out_count.is_null() {
            return Err(Error::invalid("out_count is NULL"));
        }
        if ids.is_null() && capacity > 0 {
            return Err(Error::invalid("ids is NULL"));
        }
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let (all, revision) = unsafe { client_ref(client) }?.leases_at()?;
        for (i, id) in all.iter().take(capacity).enumerate() {
            // SAFETY: `ids` has room for `capacity` ids (the caller's promise), i < capacity.
            unsafe { ids.add(i).write(*id) };
        }
        // SAFETY: `out_count` is non-NULL (checked above) and `out_revision` is written only when
        // non-NULL; the caller passes them writable for the call.
        unsafe {
            out_count.write(all.len());
            if !out_revision.is_null() {
                out_revision.write(revision);
            }
        }
        Ok(())
    }
}

/// `etcd_sd_client_put_bytes` with the whole reply. Unlike it, a put that `mode` refuses is
/// not an error: the call returns `ETCD_SD_OK` with `out->applied` false, and for
/// `ETCD_SD_PUT_IF_ABSENT` `*out_kvs` holds the value that is there (read in the same
/// request). When applied, `*out_kvs` holds the previous value (0 or 1 entries).
/// `*out_kvs` is written (free it with `etcd_sd_kvs_free`) whenever the call returns
/// `ETCD_SD_OK` and `out_kvs` is not NULL. `out->lease` is the lease the key is under (see
/// `etcd_sd_put_info`).
///
/// Errors: as `etcd_sd_client_put_bytes` but for the refusals: `ETCD_SD_NOT_FOUND` then
/// only means that the lease does not exist; `ETCD_SD_INVALID_ARGUMENT` for a bad `out`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_put_info(
    client: *const etcd_sd_client,
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
    lease: i64,
    mode: u32,
    out: *mut etcd_sd_put_info,
    out_kvs: *mut *mut etcd_sd_kvs,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `out` is NULL (refused) or the caller's struct, starting with its `size`.
        unsafe { check_sized(out) }?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: the caller lends `key_len` readable bytes at `key` for the call (NULL is refused
        // unless `key_len` is 0).
        let key = unsafe { crate::ffi::args::try_bytes(key, key_len, "key") }?;
        // SAFETY: the caller lends `value_len` readable bytes at `value` for the call (NULL is
        // refused unless `value_len` is 0).
        let value = unsafe { crate::ffi::args::try_bytes(value, value_len, "value") }?;
        let PutReply { applied, lease, kvs } = c.put_reply(key, value, lease, put_mode(mode)?)?;
        let info = etcd_sd_put_info {
            size: 0,
            applied,
            lease,
            revision: kvs.revision,
        };
        // SAFETY: `out` was checked above and has `out->size` writable bytes (the caller's
        // promise).
        unsafe { fill(out, info) }?;
        give(out_kvs, kvs);
        Ok(())
    }
}
