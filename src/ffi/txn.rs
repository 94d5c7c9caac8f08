//! `etcd_sd_txn` and `etcd_sd_txn_response`: transactions from C. A transaction is built with
//! compares and operations, run by `etcd_sd_client_txn`, and answered by a response whose
//! per-operation results are read by index.

use crate::error::{Error, Result};
use crate::ffi::args::{
    check_out, opt_ref, take_box, try_bytes, try_mut, try_ref, try_str, write_out, Castable,
    OwnershipBox,
};
use crate::ffi::client::{client_ref, etcd_sd_client};
use crate::ffi::kvs::etcd_sd_kvs;
use crate::ffi::result::etcd_sd_result;
use crate::types::{Compare, CompareOp, CompareTarget, Kvs, Txn, TxnOp, TxnOpResponse};
use std::os::raw::c_char;

/// How a compare relates the key's field to the given value (`etcd_sd_txn_compare_*`'s `op`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum etcd_sd_compare_op {
    ETCD_SD_CMP_EQUAL = 0,
    ETCD_SD_CMP_NOT_EQUAL = 1,
    ETCD_SD_CMP_GREATER = 2,
    ETCD_SD_CMP_LESS = 3,
}

/// Which numeric field `etcd_sd_txn_compare_number` looks at.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum etcd_sd_compare_target {
    /// Number of changes since creation (0: the key does not exist).
    ETCD_SD_CMP_VERSION = 0,
    /// Revision of the key's creation (0: the key does not exist).
    ETCD_SD_CMP_CREATE_REVISION = 1,
    /// Revision of the key's last change.
    ETCD_SD_CMP_MOD_REVISION = 2,
    /// The lease the key is attached to (0: none).
    ETCD_SD_CMP_LEASE = 3,
}

/// Which branch an operation is added to: run when every compare holds, or when one fails.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum etcd_sd_txn_branch {
    ETCD_SD_TXN_SUCCESS = 0,
    ETCD_SD_TXN_FAILURE = 1,
}

/// What one operation of a response was.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum etcd_sd_txn_op_kind {
    ETCD_SD_TXN_OP_PUT = 0,
    ETCD_SD_TXN_OP_RANGE = 1,
    ETCD_SD_TXN_OP_DELETE = 2,
    ETCD_SD_TXN_OP_TXN = 3,
}

/// A transaction being built: compares, then operations for each branch. Created by
/// `etcd_sd_txn_new`, freed by `etcd_sd_txn_free`; not thread-safe while being built (one
/// thread at a time), reusable: `etcd_sd_client_txn` only reads it.
pub struct etcd_sd_txn {
    txn: Txn,
}

impl Castable for etcd_sd_txn {
    type Ownership = OwnershipBox;
}

/// What etcd answered to a transaction: whether the compares held, the revision, and one
/// result per operation of the branch that ran. Owned by the caller, freed with
/// `etcd_sd_txn_response_free`; immutable, so it may be read from several threads. Pointers
/// it hands out (`etcd_sd_txn_response_kvs`, `etcd_sd_txn_response_nested`) are valid until
/// it is freed.
pub struct etcd_sd_txn_response {
    succeeded: bool,
    revision: i64,
    ops: Vec<OpResult>,
}

impl Castable for etcd_sd_txn_response {
    type Ownership = OwnershipBox;
}

struct OpResult {
    kind: etcd_sd_txn_op_kind,
    /// Put: the previous entry (0 or 1); range: the entries; delete: the deleted entries.
    kvs: etcd_sd_kvs,
    /// Range: how many keys match; delete: how many were deleted.
    count: i64,
    nested: Option<Box<etcd_sd_txn_response>>,
}

impl etcd_sd_txn_response {
    fn new(r: crate::types::TxnResponse) -> Self {
        let revision = r.revision;
        let kvs = |kvs| etcd_sd_kvs::new(Kvs { revision, kvs });
        let ops = r
            .responses
            .into_iter()
            .map(|op| match op {
                TxnOpResponse::Put { prev } => OpResult {
                    kind: etcd_sd_txn_op_kind::ETCD_SD_TXN_OP_PUT,
                    kvs: kvs(prev.into_iter().collect()),
                    count: 0,
                    nested: None,
                },
                TxnOpResponse::Range {
                    kvs: got, count, ..
                } => OpResult {
                    kind: etcd_sd_txn_op_kind::ETCD_SD_TXN_OP_RANGE,
                    kvs: kvs(got),
                    count,
                    nested: None,
                },
                TxnOpResponse::Delete { deleted, prev_kvs } => OpResult {
                    kind: etcd_sd_txn_op_kind::ETCD_SD_TXN_OP_DELETE,
                    kvs: kvs(prev_kvs),
                    count: deleted,
                    nested: None,
                },
                TxnOpResponse::Txn(t) => OpResult {
                    kind: etcd_sd_txn_op_kind::ETCD_SD_TXN_OP_TXN,
                    kvs: kvs(Vec::new()),
                    count: 0,
                    nested: Some(Box::new(etcd_sd_txn_response::new(t))),
                },
            })
            .collect();
        etcd_sd_txn_response {
            succeeded: r.succeeded,
            revision,
            ops,
        }
    }
}

/// Creates an empty transaction (no compare: the success branch runs) and writes it to `*out`.
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL `out`).
#[no_mangle]
pub extern "C" fn etcd_sd_txn_new(out: *mut *mut etcd_sd_txn) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_txn { txn: Txn::default() }) };
        Ok(())
    }
}

/// Frees a transaction. NULL is a no-op.
#[no_mangle]
pub extern "C" fn etcd_sd_txn_free(txn: *mut etcd_sd_txn) {
    ffi_boundary! {
        // SAFETY: `txn` is NULL (a no-op) or an `etcd_sd_txn` the library handed out (by
        // `write_out`) that the caller gives back here and never uses again (the header's `_free`
        // contract); `Castable` makes it the Box `write_out` made for this type.
        drop(unsafe { take_box(txn) });
    }
}

/// The transaction behind a caller's pointer, to add to it.
///
/// # Safety
/// As [`try_mut`]: `txn` is NULL or a live `etcd_sd_txn` that no other thread uses meanwhile
/// (the header: one thread at a time while it is built).
unsafe fn txn_mut<'a>(txn: *mut etcd_sd_txn) -> Result<&'a mut Txn> {
    // SAFETY: this fn's contract is `try_mut`'s.
    Ok(&mut unsafe { try_mut(txn, "txn") }?.txn)
}

/// An optional C string: NULL or "" is empty.
///
/// # Safety
/// As [`try_str`]: `p` is NULL or a NUL-terminated string that outlives the call.
unsafe fn opt_str<'a>(p: *const c_char, what: &str) -> Result<&'a [u8]> {
    if p.is_null() {
        return Ok(&[]);
    }
    // SAFETY: `p` is non-NULL here, and a NUL-terminated string by this fn's contract.
    Ok(unsafe { try_str(p, what) }?.as_bytes())
}

fn cmp_op(op: u32) -> Result<CompareOp> {
    Ok(match op {
        0 => CompareOp::Equal,
        1 => CompareOp::NotEqual,
        2 => CompareOp::Greater,
        3 => CompareOp::Less,
        o => return Err(Error::invalid(format!("unknown compare op {o}"))),
    })
}

fn branch(txn: &mut Txn, b: u32) -> Result<&mut Vec<TxnOp>> {
    match b {
        0 => Ok(&mut txn.success),
        1 => Ok(&mut txn.failure),
        b => Err(Error::invalid(format!("unknown txn branch {b}"))),
    }
}

/// Adds a compare of the value of `key` (of every key in `[key, range_end)` when `range_end`
/// is neither NULL nor empty) with `value` (`value_len` bytes) by `op` (an
/// `etcd_sd_compare_op`). A missing key makes a value compare fail.
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, empty key, not UTF-8, unknown op).
#[no_mangle]
pub extern "C" fn etcd_sd_txn_compare_value(
    txn: *mut etcd_sd_txn,
    key: *const c_char,
    range_end: *const c_char,
    op: u32,
    value: *const c_char,
    value_len: usize,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `txn` is NULL (refused) or an `etcd_sd_txn` the caller has not freed, and the
        // header lets only one thread at a time call this on it.
        let t = unsafe { txn_mut(txn) }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?.as_bytes().to_vec();
        // SAFETY: `range_end` is NULL (empty) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let range_end = unsafe { opt_str(range_end, "range_end") }?.to_vec();
        // SAFETY: the caller lends `value_len` readable bytes at `value` for the call (NULL is
        // refused unless `value_len` is 0).
        let value = unsafe { try_bytes(value, value_len, "value") }?.to_vec();
        t.compare.push(Compare { key, range_end, op: cmp_op(op)?, target: CompareTarget::Value(value) });
        Ok(())
    }
}

/// Adds a compare of a numeric field (`target`, an `etcd_sd_compare_target`) of `key` (or of
/// every key in `[key, range_end)`) with `number` by `op`. "The key does not exist" is
/// `ETCD_SD_CMP_CREATE_REVISION` (or `_VERSION`) `ETCD_SD_CMP_EQUAL` 0.
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, empty key, not UTF-8, unknown op or target).
#[no_mangle]
pub extern "C" fn etcd_sd_txn_compare_number(
    txn: *mut etcd_sd_txn,
    key: *const c_char,
    range_end: *const c_char,
    target: u32,
    op: u32,
    number: i64,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `txn` is NULL (refused) or an `etcd_sd_txn` the caller has not freed, and the
        // header lets only one thread at a time call this on it.
        let t = unsafe { txn_mut(txn) }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?.as_bytes().to_vec();
        // SAFETY: `range_end` is NULL (empty) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let range_end = unsafe { opt_str(range_end, "range_end") }?.to_vec();
        let target = match target {
            0 => CompareTarget::Version(number),
            1 => CompareTarget::CreateRevision(number),
            2 => CompareTarget::ModRevision(number),
            3 => CompareTarget::Lease(number),
            t => return Err(Error::invalid(format!("unknown compare target {t}"))),
        };
        t.compare.push(Compare { key, range_end, op: cmp_op(op)?, target });
        Ok(())
    }
}

/// Adds to `branch` (an `etcd_sd_txn_branch`) a put of `key -> value` under `lease` (0:
/// none); with `prev_kv` its result holds the value replaced.
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, empty key, not UTF-8, unknown branch).
#[no_mangle]
pub extern "C" fn etcd_sd_txn_put(
    txn: *mut etcd_sd_txn,
    branch_: u32,
    key: *const c_char,
    value: *const c_char,
    value_len: usize,
    lease: i64,
    prev_kv: bool,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `txn` is NULL (refused) or an `etcd_sd_txn` the caller has not freed, and the
        // header lets only one thread at a time call this on it.
        let t = unsafe { txn_mut(txn) }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?.as_bytes().to_vec();
        // SAFETY: the caller lends `value_len` readable bytes at `value` for the call (NULL is
        // refused unless `value_len` is 0).
        let value = unsafe { try_bytes(value, value_len, "value") }?.to_vec();
        branch(t, branch_)?.push(TxnOp::Put { key, value, lease, prev_kv });
        Ok(())
    }
}

/// Adds to `branch` a read of `key` (of `[key, range_end)` when `range_end` is neither NULL
/// nor empty; "\0" means every key from `key` on), at most `limit` keys when > 0, at
/// `revision` when > 0; with `keys_only` without values.
/// Errors: as `etcd_sd_txn_put`.
#[no_mangle]
pub extern "C" fn etcd_sd_txn_range(
    txn: *mut etcd_sd_txn,
    branch_: u32,
    key: *const c_char,
    range_end: *const c_char,
    limit: i64,
    revision: i64,
    keys_only: bool,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `txn` is NULL (refused) or an `etcd_sd_txn` the caller has not freed, and the
        // header lets only one thread at a time call this on it.
        let t = unsafe { txn_mut(txn) }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?.as_bytes().to_vec();
        // SAFETY: `range_end` is NULL (empty) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let range_end = unsafe { range_end_of(range_end) }?;
        branch(t, branch_)?.push(TxnOp::Range { key, range_end, limit, revision, keys_only });
        Ok(())
    }
}

/// Adds to `branch` a delete of `key` (of `[key, range_end)` when `range_end` is neither NULL
/// nor empty); with `prev_kv` its result holds the deleted entries.
/// Errors: as `etcd_sd_txn_put`.
#[no_mangle]
pub extern "C" fn etcd_sd_txn_delete(
    txn: *mut etcd_sd_txn,
    branch_: u32,
    key: *const c_char,
    range_end: *const c_char,
    prev_kv: bool,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `txn` is NULL (refused) or an `etcd_sd_txn` the caller has not freed, and the
        // header lets only one thread at a time call this on it.
        let t = unsafe { txn_mut(txn) }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?.as_bytes().to_vec();
        // SAFETY: `range_end` is NULL (empty) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let range_end = unsafe { range_end_of(range_end) }?;
        branch(t, branch_)?.push(TxnOp::Delete { key, range_end, prev_kv });
        Ok(())
    }
}

/// A range end from C: NULL or "" for none; a string holding only "\0" cannot be passed as a
/// C string, so "\\0" (backslash, zero) is not special either: use `etcd_sd_txn_range_from`.
///
/// # Safety
/// As [`opt_str`]: `p` is NULL or a NUL-terminated string that outlives the call.
unsafe fn range_end_of(p: *const c_char) -> Result<Vec<u8>> {
    // SAFETY: this fn's contract is `opt_str`'s.
    Ok(unsafe { opt_str(p, "range_end") }?.to_vec())
}

/// Adds to `branch` a read of every key from `key` on (range end "\0"), at most `limit`
/// when > 0, at `revision` when > 0.
/// Errors: as `etcd_sd_txn_put`.
#[no_mangle]
pub extern "C" fn etcd_sd_txn_range_from(
    txn: *mut etcd_sd_txn,
    branch_: u32,
    key: *const c_char,
    limit: i64,
    revision: i64,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `txn` is NULL (refused) or an `etcd_sd_txn` the caller has not freed, and the
        // header lets only one thread at a time call this on it.
        let t = unsafe { txn_mut(txn) }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?.as_bytes().to_vec();
        branch(t, branch_)?.push(TxnOp::Range { key, range_end: vec![0], limit, revision, keys_only: false });
        Ok(())
    }
}

/// Adds to `branch` the transaction `nested` (copied: it may be freed or reused after).
/// Errors: as `etcd_sd_txn_put`.
#[no_mangle]
pub extern "C" fn etcd_sd_txn_nest(
    txn: *mut etcd_sd_txn,
    branch_: u32,
    nested: *const etcd_sd_txn,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `nested` is NULL (refused) or an `etcd_sd_txn` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let inner = unsafe { try_ref(nested, "nested") }?.txn.clone();
        // SAFETY: `txn` is NULL (refused) or an `etcd_sd_txn` the caller has not freed, and the
        // header lets only one thread at a time call this on it.
        let t = unsafe { txn_mut(txn) }?;
        branch(t, branch_)?.push(TxnOp::Txn(inner));
        Ok(())
    }
}

/// Runs `txn` (which is left as it was) and writes etcd's answer to `*out`. A transaction that
/// only reads is retried across members like any read; one that writes is sent once, so that
/// it never applies twice (after connecting, which is retried): a lost answer is
/// `ETCD_SD_TIMEOUT` or `ETCD_SD_UNAVAILABLE`, and the caller cannot tell whether it applied.
/// Blocks at most the request timeout.
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, an empty key), `ETCD_SD_ETCD_ERROR` (etcd refused
/// it: too many operations, a key written twice), `ETCD_SD_NOT_FOUND` (a put under a lease that
/// does not exist), `ETCD_SD_UNAVAILABLE`, `ETCD_SD_TIMEOUT`, `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_txn(
    client: *const etcd_sd_client,
    txn: *const etcd_sd_txn,
    out: *mut *mut etcd_sd_txn_response,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: `txn` is NULL (refused) or an `etcd_sd_txn` from its `_new`, not freed yet (the
        // header's contract); it is only read during the call.
        let t = unsafe { try_ref(txn, "txn") }?;
        let r = c.txn(&t.txn)?;
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_txn_response::new(r)) };
        Ok(())
    }
}

/// Frees a response. NULL is a no-op.
#[no_mangle]
pub extern "C" fn etcd_sd_txn_response_free(response: *mut etcd_sd_txn_response) {
    ffi_boundary! {
        // SAFETY: `response` is NULL (a no-op) or an `etcd_sd_txn_response` the library handed out
        // (by `write_out`; never a view into a response, which the header says is not freed) that
        // the caller gives back here and never uses again (the header's `_free` contract);
        // `Castable` makes it the Box `write_out` made for this type.
        drop(unsafe { take_box(response) });
    }
}

/// Whether every compare held (the success branch ran); false for NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_txn_response_succeeded(response: *const etcd_sd_txn_response) -> bool {
    ffi_boundary! {
        // SAFETY: `response` is NULL (the documented default is returned) or an
        // `etcd_sd_txn_response` not freed yet, owned or a view into a response not freed yet (the
        // header's contract); it is only read here.
        unsafe { opt_ref(response) }.is_some_and(|r| r.succeeded)
    }
}

/// The store's revision after the transaction; 0 for NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_txn_response_revision(response: *const etcd_sd_txn_response) -> i64 {
    ffi_boundary! {
        // SAFETY: `response` is NULL (the documented default is returned) or an
        // `etcd_sd_txn_response` not freed yet, owned or a view into a response not freed yet (the
        // header's contract); it is only read here.
        unsafe { opt_ref(response) }.map_or(0, |r| r.revision)
    }
}

/// The number of operation results (those of the branch that ran); 0 for NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_txn_response_len(response: *const etcd_sd_txn_response) -> usize {
    ffi_boundary! {
        // SAFETY: `response` is NULL (the documented default is returned) or an
        // `etcd_sd_txn_response` not freed yet, owned or a view into a response not freed yet (the
        // header's contract); it is only read here.
        unsafe { opt_ref(response) }.map_or(0, |r| r.ops.len())
    }
}

fn op_at(response: *const etcd_sd_txn_response, index: usize) -> Option<&'static OpResult> {
    // SAFETY: the caller passes NULL or a live response, and uses what we return only while
    // that response lives (the header says so); 'static stands for that lifetime here.
    unsafe { opt_ref(response) }.and_then(|r| r.ops.get(index))
}

/// The kind of operation `index` (an `etcd_sd_txn_op_kind`), or -1 when `response` is NULL or
/// `index` out of range.
#[no_mangle]
pub extern "C" fn etcd_sd_txn_response_kind(
    response: *const etcd_sd_txn_response,
    index: usize,
) -> i32 {
    ffi_boundary! {
        op_at(response, index).map_or(-1, |o| o.kind as i32)
    }
}

/// The entries of operation `index`: for a range the keys read, for a put the value replaced
/// (when asked with `prev_kv`), for a delete the deleted entries (with `prev_kv`); empty for a
/// nested transaction. Borrowed: valid until the response is freed; never free it. NULL when
/// `response` is NULL or `index` out of range.
#[no_mangle]
pub extern "C" fn etcd_sd_txn_response_kvs(
    response: *const etcd_sd_txn_response,
    index: usize,
) -> *const etcd_sd_kvs {
    ffi_boundary! {
        op_at(response, index).map_or(std::ptr::null(), |o| &o.kvs as *const etcd_sd_kvs)
    }
}

/// For a range, how many keys match (beyond any limit); for a delete, how many were deleted;
/// 0 otherwise, or when `response` is NULL or `index` out of range.
#[no_mangle]
pub extern "C" fn etcd_sd_txn_response_count(
    response: *const etcd_sd_txn_response,
    index: usize,
) -> i64 {
    ffi_boundary! {
        op_at(response, index).map_or(0, |o| o.count)
    }
}

/// The response of a nested transaction at `index`. Borrowed: valid until the outer response
/// is freed; never free it. NULL when it is not a nested transaction.
#[no_mangle]
pub extern "C" fn etcd_sd_txn_response_nested(
    response: *const etcd_sd_txn_response,
    index: usize,
) -> *const etcd_sd_txn_response {
    ffi_boundary! {
        op_at(response, index)
            .and_then(|o| o.nested.as_deref())
            .map_or(std::ptr::null(), |n| n as *const etcd_sd_txn_response)
    }
}
