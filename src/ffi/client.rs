//! `etcd_sd_client`: the C face of the general client ([`kv::Client`]): KV and lease calls.

use crate::error::{Error, Result};
use crate::ffi::args::{
    check_out, take_box, try_bytes, try_ref, try_str, write_out, Castable, OwnershipBox,
};
use crate::ffi::kvs::etcd_sd_kvs;
use crate::ffi::options::{etcd_sd_options, options_ref};
use crate::ffi::result::etcd_sd_result;
use crate::kv::{self, Kvs, PutMode};
use std::os::raw::c_char;

/// A general etcd client: plain KV and lease calls, keep-alives and watches, over the same
/// shared connections, retry and failover as registries and discoveries.
///
/// Created by `etcd_sd_client_new` (no network I/O), freed by `etcd_sd_client_free`.
/// Thread-safe: one client may be used from any number of threads at once, including from
/// inside callbacks. Each call blocks for at most the request timeout (plus, on the first
/// call of a connection, the time to dial it, at most the connect timeout). Keep-alives and
/// watches made from a client hold their own reference: they may outlive it.
pub struct etcd_sd_client {
    pub(crate) inner: kv::Client,
}

impl Castable for etcd_sd_client {
    type Ownership = OwnershipBox;
}

/// When `etcd_sd_client_put` applies. Functions take it as a `uint32_t` (C may pass any
/// integer; one that is not a value here is refused with `ETCD_SD_INVALID_ARGUMENT`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum etcd_sd_put_mode {
    /// Create or replace.
    ETCD_SD_PUT_ALWAYS = 0,
    /// Only if the key does not exist; else `ETCD_SD_EXISTS`.
    ETCD_SD_PUT_IF_ABSENT = 1,
    /// Only if the key exists; else `ETCD_SD_NOT_FOUND`.
    ETCD_SD_PUT_IF_PRESENT = 2,
}

/// Creates a client with the settings of `opts` (which may be freed afterwards) and writes it
/// to `*out`. Does no network I/O: the connection is dialled by the first call.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, no endpoints set, unreadable TLS files).
#[no_mangle]
pub extern "C" fn etcd_sd_client_new(
    opts: *const etcd_sd_options,
    out: *mut *mut etcd_sd_client,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `opts` is NULL (refused) or an `etcd_sd_options` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let inner = kv::Client::new(unsafe { options_ref(opts) }?)?;
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_client { inner }) };
        Ok(())
    }
}

/// Frees a client. NULL is a no-op. Keep-alives and watches made from it keep working.
#[no_mangle]
pub extern "C" fn etcd_sd_client_free(client: *mut etcd_sd_client) {
    ffi_boundary! {
        // SAFETY: `client` is NULL (a no-op) or an `etcd_sd_client` the library handed out (by
        // `write_out`) that the caller gives back here and never uses again (the header's `_free`
        // contract); `Castable` makes it the Box `write_out` made for this type.
        drop(unsafe { take_box(client) });
    }
}

/// The client behind a caller's pointer.
///
/// # Safety
/// `c` is NULL or a live client (made by `etcd_sd_client_new`, not freed yet).
pub(crate) unsafe fn client_ref<'a>(c: *const etcd_sd_client) -> Result<&'a kv::Client> {
    // SAFETY: `c` is NULL or a live client: this fn's contract, which is `try_ref`'s (a client
    // is never mutated through a pointer, so "unmutated" holds).
    Ok(&unsafe { try_ref(c, "client") }?.inner)
}

/// Writes `kvs` to `*out` when `out` is not NULL.
pub(crate) fn give(out: *mut *mut etcd_sd_kvs, kvs: Kvs) {
    if !out.is_null() {
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_kvs::new(kvs)) };
    }
}

/// Puts `key -> value` (`value_len` bytes, any content; `value` may be NULL when 0), under
/// `lease` unless it is 0, when `mode` (an `etcd_sd_put_mode` value) allows.
///
/// On success, and when `out_prev` is not NULL, writes the previous key-value (0 or 1
/// entries) to `*out_prev` (free it with `etcd_sd_kvs_free`). A lease kept by an
/// `etcd_sd_keepalive` of this process that was lost and re-granted is translated to its
/// current id, and the key is put back under each later lease too.
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, empty key, not UTF-8, unknown mode), `ETCD_SD_EXISTS`
/// (`ETCD_SD_PUT_IF_ABSENT` on an existing key), `ETCD_SD_NOT_FOUND` (`ETCD_SD_PUT_IF_PRESENT`
/// on a missing key, or a lease that does not exist), `ETCD_SD_UNAVAILABLE`,
/// `ETCD_SD_TIMEOUT`, `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_put(
    client: *const etcd_sd_client,
    key: *const c_char,
    value: *const c_char,
    value_len: usize,
    lease: i64,
    mode: u32,
    out_prev: *mut *mut etcd_sd_kvs,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?;
        // SAFETY: the caller lends `value_len` readable bytes at `value` for the call (NULL is
        // refused unless `value_len` is 0).
        let value = unsafe { try_bytes(value, value_len, "value") }?;
        let mode = put_mode(mode)?;
        give(out_prev, c.put(key.as_bytes(), value, lease, mode)?);
        Ok(())
    }
}

/// An `etcd_sd_put_mode` from C: any integer may arrive, so it is matched as one.
pub(crate) fn put_mode(mode: u32) -> Result<PutMode> {
    const ALWAYS: u32 = etcd_sd_put_mode::ETCD_SD_PUT_ALWAYS as u32;
    const IF_ABSENT: u32 = etcd_sd_put_mode::ETCD_SD_PUT_IF_ABSENT as u32;
    const IF_PRESENT: u32 = etcd_sd_put_mode::ETCD_SD_PUT_IF_PRESENT as u32;
    match mode {
        ALWAYS => Ok(PutMode::Always),
        IF_ABSENT => Ok(PutMode::IfAbsent),
        IF_PRESENT => Ok(PutMode::IfPresent),
        m => Err(Error::invalid(format!(
            "unknown put mode {m} (not an etcd_sd_put_mode: 0 ALWAYS, 1 IF_ABSENT, 2 IF_PRESENT)"
        ))),
    }
}

/// Reads one key into `*out` (0 entries when it does not exist; free with `etcd_sd_kvs_free`).
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT`, `ETCD_SD_UNAVAILABLE`, `ETCD_SD_TIMEOUT`, `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_get(
    client: *const etcd_sd_client,
    key: *const c_char,
    out: *mut *mut etcd_sd_kvs,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?;
        give(out, c.get(key.as_bytes())?);
        Ok(())
    }
}

/// Reads every key under `prefix` (at most `limit` when `limit > 0`), in key order, at one
/// revision, into `*out`. Large prefixes are read in pages at that revision.
///
/// A full listing (limit 0) is remembered for a minute: an `etcd_sd_watch_new` on the same
/// prefix with start revision 0 continues right after it, so list-then-watch loses nothing.
/// Errors: as `etcd_sd_client_get`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_range(
    client: *const etcd_sd_client,
    prefix: *const c_char,
    limit: i64,
    out: *mut *mut etcd_sd_kvs,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: `prefix` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let prefix = unsafe { try_str(prefix, "prefix") }?;
        give(out, c.range(prefix.as_bytes(), limit)?);
        Ok(())
    }
}

/// Reads one key as it was at `revision` (0: now) into `*out` (0 entries when it did not
/// exist then). Errors: as `etcd_sd_client_get`, and `ETCD_SD_INVALID_ARGUMENT` for a
/// negative revision or one etcd has compacted away.
#[no_mangle]
pub extern "C" fn etcd_sd_client_get_at(
    client: *const etcd_sd_client,
    key: *const c_char,
    revision: i64,
    out: *mut *mut etcd_sd_kvs,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?;
        give(out, c.get_at(key.as_bytes(), revision)?);
        Ok(())
    }
}

/// Reads every key in `[key, range_end)` (every key starting with `key` when `range_end` is
/// NULL or empty), at most `limit` when > 0, in key order, as they were at `revision` (0: now),
/// into `*out`. Errors: as `etcd_sd_client_get_at`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_range_at(
    client: *const etcd_sd_client,
    key: *const c_char,
    range_end: *const c_char,
    limit: i64,
    revision: i64,
    out: *mut *mut etcd_sd_kvs,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?;
        // SAFETY: `range_end` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let end = if range_end.is_null() { "" } else { unsafe { try_str(range_end, "range_end") }? };
        give(out, c.range_at(key.as_bytes(), end.as_bytes(), limit, revision)?);
        Ok(())
    }
}

/// Reads one key of any bytes (`key_len` bytes at `key`, NUL included if any) as it was at
/// `revision` (0: now) into `*out`. The byte-string form of `etcd_sd_client_get_at`.
/// Errors: as `etcd_sd_client_get_at` (an empty key: `ETCD_SD_INVALID_ARGUMENT`).
#[no_mangle]
pub extern "C" fn etcd_sd_client_get_bytes(
    client: *const etcd_sd_client,
    key: *const c_char,
    key_len: usize,
    revision: i64,
    out: *mut *mut etcd_sd_kvs,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: the caller lends `key_len` readable bytes at `key` for the call (NULL is refused
        // unless `key_len` is 0).
        let key = unsafe { try_bytes(key, key_len, "key") }?;
        give(out, c.get_at(key, revision)?);
        Ok(())
    }
}

/// Reads every key in `[key, range_end)`, both of any bytes (`range_end_len` 0: every key
/// starting with `key`; the one byte "\0": every key from `key` on; `key` "\0" with
/// `range_end` "\0": every key), at most `limit` when > 0, at `revision` (0: now), into
/// `*out`. The byte-string form of `etcd_sd_client_range_at`.
/// Errors: as `etcd_sd_client_get_at`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_range_bytes(
    client: *const etcd_sd_client,
    key: *const c_char,
    key_len: usize,
    range_end: *const c_char,
    range_end_len: usize,
    limit: i64,
    revision: i64,
    out: *mut *mut etcd_sd_kvs,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: the caller lends `key_len` readable bytes at `key` for the call (NULL is refused
        // unless `key_len` is 0).
        let key = unsafe { try_bytes(key, key_len, "key") }?;
        // SAFETY: the caller lends `range_end_len` readable bytes at `range_end` for the call (NULL
        // is refused unless `range_end_len` is 0).
        let end = unsafe { try_bytes(range_end, range_end_len, "range_end") }?;
        give(out, c.range_at(key, end, limit, revision)?);
        Ok(())
    }
}

/// Puts a key of any bytes (`key_len` bytes at `key`): the byte-string form of
/// `etcd_sd_client_put`, with the same modes, lease translation and errors.
#[no_mangle]
pub extern "C" fn etcd_sd_client_put_bytes(
    client: *const etcd_sd_client,
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
    lease: i64,
    mode: u32,
    out_prev: *mut *mut etcd_sd_kvs,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: the caller lends `key_len` readable bytes at `key` for the call (NULL is refused
        // unless `key_len` is 0).
        let key = unsafe { try_bytes(key, key_len, "key") }?;
        // SAFETY: the caller lends `value_len` readable bytes at `value` for the call (NULL is
        // refused unless `value_len` is 0).
        let value = unsafe { try_bytes(value, value_len, "value") }?;
        give(out_prev, c.put(key, value, lease, put_mode(mode)?)?);
        Ok(())
    }
}

/// Deletes the key of any bytes `key` (`key_len` bytes) when `range_end_len` is 0, else every
/// key in `[key, range_end)` ("\0": every key from `key` on); writes what was deleted to
/// `*out_deleted` when it is not NULL. No keep-alive of this process puts a deleted key back.
/// Errors: as `etcd_sd_client_get`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_delete_bytes(
    client: *const etcd_sd_client,
    key: *const c_char,
    key_len: usize,
    range_end: *const c_char,
    range_end_len: usize,
    out_deleted: *mut *mut etcd_sd_kvs,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: the caller lends `key_len` readable bytes at `key` for the call (NULL is refused
        // unless `key_len` is 0).
        let key = unsafe { try_bytes(key, key_len, "key") }?;
        // SAFETY: the caller lends `range_end_len` readable bytes at `range_end` for the call (NULL
        // is refused unless `range_end_len` is 0).
        let end = unsafe { try_bytes(range_end, range_end_len, "range_end") }?;
        let deleted = if end.is_empty() { c.delete(key, false)? } else { c.delete_range(key, end)? };
        give(out_deleted, deleted);
        Ok(())
    }
}

/// Deletes `key`, or every key under it when `prefix` is true. When `out_deleted` is not NULL
/// writes what was deleted to it (0 entries when nothing was). A deleted key is no longer put
/// back by any keep-alive of this process.
///
/// Errors: as `etcd_sd_client_get`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_delete(
    client: *const etcd_sd_client,
    key: *const c_char,
    prefix: bool,
    out_deleted: *mut *mut etcd_sd_kvs,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?;
        give(out_deleted, c.delete(key.as_bytes(), prefix)?);
        Ok(())
    }
}

/// Grants a lease of `ttl_seconds` and writes its id to `*out_id`. Nothing keeps it alive
/// (see `etcd_sd_keepalive_new`).
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (`ttl_seconds <= 0`, NULL), `ETCD_SD_UNAVAILABLE`,
/// `ETCD_SD_TIMEOUT`, `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_lease_grant(
    client: *const etcd_sd_client,
    ttl_seconds: i64,
    out_id: *mut i64,
) -> etcd_sd_result {
    ffi_boundary! {
        if out_id.is_null() {
            return Err(Error::invalid("out_id is NULL"));
        }
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        let id = c.lease_grant(ttl_seconds)?;
        // SAFETY: `out_id` is non-NULL (checked above) and the caller passes it writable for the
        // call.
        unsafe { out_id.write(id) };
        Ok(())
    }
}

/// Revokes a lease: every key attached to it is deleted. A lease kept by an
/// `etcd_sd_keepalive` of this process is revoked under its current id and no longer
/// recovered.
///
/// Errors: `ETCD_SD_NOT_FOUND` (no such lease, or it expired), `ETCD_SD_UNAVAILABLE`,
/// `ETCD_SD_TIMEOUT`, `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_lease_revoke(
    client: *const etcd_sd_client,
    id: i64,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        unsafe { client_ref(client) }?.lease_revoke(id)
    }
}

/// Writes the seconds a lease has left to `*out_ttl_left` (-1 when it does not exist or
/// expired) and the TTL it was granted with to `*out_granted_ttl`; either pointer may be NULL.
///
/// Errors: `ETCD_SD_UNAVAILABLE`, `ETCD_SD_TIMEOUT`, `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_lease_ttl(
    client: *const etcd_sd_client,
    id: i64,
    out_ttl_left: *mut i64,
    out_granted_ttl: *mut i64,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let (left, granted) = unsafe { client_ref(client) }?.lease_ttl(id)?;
        // SAFETY: each out-param is written only when non-NULL; the caller passes a non-NULL one
        // as a writable `int64_t` for the call.
        unsafe {
            if !out_ttl_left.is_null() {
                out_ttl_left.write(left);
            }
            if !out_granted_ttl.is_null() {
                out_granted_ttl.write(granted);
            }
        }
        Ok(())
    }
}
