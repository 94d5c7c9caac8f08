//! `etcd_sd_kvs` and `etcd_sd_kv`: what the general client's KV calls return to C.

use crate::ffi::args::{opt_ref, Castable, OwnershipBox};
use crate::types::{KeyValue, Kvs};
use std::os::raw::c_char;

/// One key as etcd stores it: a view into an `etcd_sd_kvs` (valid until that is freed) or
/// into a watch callback's arguments (valid during the call).
///
/// `key` and `value` point to `key_len` and `value_len` bytes, each also followed by a NUL
/// byte, so they can be used as C strings when they hold no NUL themselves.
#[repr(C)]
pub struct etcd_sd_kv {
    pub key: *const c_char,
    pub key_len: usize,
    pub value: *const c_char,
    pub value_len: usize,
    /// Revision of the key's creation (0 for a deleted key in a watch event).
    pub create_revision: i64,
    /// Revision of its last change (for a delete event: the delete's revision).
    pub mod_revision: i64,
    /// Number of changes since its creation (1 after the first put).
    pub version: i64,
    /// The lease it is attached to, 0 for none.
    pub lease: i64,
}

/// The keys a KV call read, replaced or deleted, and the store revision when etcd answered.
///
/// Owned by the caller, freed with `etcd_sd_kvs_free`; read with `etcd_sd_kvs_len`,
/// `etcd_sd_kvs_revision` and `etcd_sd_kvs_at`. Immutable: may be read from several threads.
pub struct etcd_sd_kvs {
    revision: i64,
    /// Keys and values with a NUL appended (the lengths exclude it).
    kvs: Vec<KeyValue>,
}

impl Castable for etcd_sd_kvs {
    type Ownership = OwnershipBox;
}

impl etcd_sd_kvs {
    pub(crate) fn new(kvs: Kvs) -> Self {
        let mut items = kvs.kvs;
        for kv in &mut items {
            kv.key.push(0);
            kv.value.push(0);
        }
        etcd_sd_kvs {
            revision: kvs.revision,
            kvs: items,
        }
    }
}

/// A view of `kv`, whose key and value end with the NUL pushed by the owner.
pub(crate) fn view(kv: &KeyValue) -> etcd_sd_kv {
    etcd_sd_kv {
        key: kv.key.as_ptr().cast(),
        key_len: kv.key.len().saturating_sub(1),
        value: kv.value.as_ptr().cast(),
        value_len: kv.value.len().saturating_sub(1),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    }
}

/// Number of keys in `kvs` (0 for NULL).
#[no_mangle]
pub extern "C" fn etcd_sd_kvs_len(kvs: *const etcd_sd_kvs) -> usize {
    ffi_boundary! {
        // SAFETY: `kvs` is NULL (the documented default is returned) or an `etcd_sd_kvs` not freed
        // yet, owned or a view into a response not freed yet (the header's contract); it is only
        // read here.
        unsafe { opt_ref(kvs) }.map_or(0, |k| k.kvs.len())
    }
}

/// The store revision when etcd answered (0 for NULL).
#[no_mangle]
pub extern "C" fn etcd_sd_kvs_revision(kvs: *const etcd_sd_kvs) -> i64 {
    ffi_boundary! {
        // SAFETY: `kvs` is NULL (the documented default is returned) or an `etcd_sd_kvs` not freed
        // yet, owned or a view into a response not freed yet (the header's contract); it is only
        // read here.
        unsafe { opt_ref(kvs) }.map_or(0, |k| k.revision)
    }
}

/// Writes a view of key `index` (in key order for a range) to `*out`; the pointers in it stay
/// valid until `kvs` is freed. Returns false (and leaves `*out` alone) when `kvs` or `out` is
/// NULL or `index` is out of range.
#[no_mangle]
pub extern "C" fn etcd_sd_kvs_at(
    kvs: *const etcd_sd_kvs,
    index: usize,
    out: *mut etcd_sd_kv,
) -> bool {
    ffi_boundary! {
        // SAFETY: `kvs` is NULL (the documented default is returned) or an `etcd_sd_kvs` not freed
        // yet, owned or a view into a response not freed yet (the header's contract); it is only
        // read here.
        match (unsafe { opt_ref(kvs) }, out.is_null()) {
            (Some(k), false) => match k.kvs.get(index) {
                Some(kv) => {
                    // SAFETY: `out` is non-NULL (checked above) and the caller passes it writable
                    // for the call.
                    unsafe { out.write(view(kv)) };
                    true
                }
                None => false,
            },
            _ => false,
        }
    }
}

/// Frees a result. NULL is a no-op.
#[no_mangle]
pub extern "C" fn etcd_sd_kvs_free(kvs: *mut etcd_sd_kvs) {
    ffi_boundary! {
        // SAFETY: `kvs` is NULL (a no-op) or an `etcd_sd_kvs` the library handed out (by
        // `write_out`; never a view into a response, which the header says is not freed) that the
        // caller gives back here and never uses again (the header's `_free` contract); `Castable`
        // makes it the Box `write_out` made for this type.
        drop(unsafe { crate::ffi::args::take_box(kvs) });
    }
}
