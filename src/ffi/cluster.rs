//! `etcd_sd_members` and the cluster and lease listing calls of `etcd_sd_client`.

use crate::ffi::args::{check_out, opt_ref, take_box, try_str, write_out, Castable, OwnershipBox};
use crate::ffi::client::{client_ref, etcd_sd_client};
use crate::ffi::result::etcd_sd_result;
use crate::types::Member;
use std::ffi::CString;
use std::os::raw::c_char;

/// One member of the cluster: a view into an `etcd_sd_members`, valid until it is freed.
#[repr(C)]
pub struct etcd_sd_member {
    pub id: u64,
    /// Empty for a member added but not started yet.
    pub name: *const c_char,
    /// Its peer URLs, comma-separated.
    pub peer_urls: *const c_char,
    /// Its client URLs, comma-separated (empty until it starts).
    pub client_urls: *const c_char,
    pub is_learner: bool,
}

/// The members of the cluster, owned by the caller and freed with `etcd_sd_members_free`;
/// immutable, so it may be read from several threads.
pub struct etcd_sd_members {
    members: Vec<(Member, [CString; 3])>,
}

impl Castable for etcd_sd_members {
    type Ownership = OwnershipBox;
}

fn c_string(s: String) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// Writes every member of the cluster to `*out`. Blocks at most the request timeout.
/// Errors: `ETCD_SD_INVALID_ARGUMENT`, `ETCD_SD_UNAVAILABLE`, `ETCD_SD_TIMEOUT`, `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_members(
    client: *const etcd_sd_client,
    out: *mut *mut etcd_sd_members,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let members = unsafe { client_ref(client) }?
            .members()?
            .into_iter()
            .map(|m| {
                let strings = [
                    c_string(m.name.clone()),
                    c_string(m.peer_urls.join(",")),
                    c_string(m.client_urls.join(",")),
                ];
                (m, strings)
            })
            .collect();
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_members { members }) };
        Ok(())
    }
}

/// The number of members; 0 for NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_members_len(members: *const etcd_sd_members) -> usize {
    ffi_boundary! {
        // SAFETY: `members` is NULL (the documented default is returned) or an `etcd_sd_members`
        // the caller has not freed (the header's contract); it is only read here.
        unsafe { opt_ref(members) }.map_or(0, |m| m.members.len())
    }
}

/// Writes member `index` to `*out`; false (and `*out` untouched) when `members` or `out` is
/// NULL or `index` is out of range.
#[no_mangle]
pub extern "C" fn etcd_sd_members_at(
    members: *const etcd_sd_members,
    index: usize,
    out: *mut etcd_sd_member,
) -> bool {
    ffi_boundary! {
        let Some((m, [name, peers, clients])) =
            // SAFETY: `members` is NULL (the documented default is returned) or an
            // `etcd_sd_members` the caller has not freed (the header's contract); it is only read
            // here.
            unsafe { opt_ref(members) }.and_then(|m| m.members.get(index))
        else {
            return false;
        };
        if out.is_null() {
            return false;
        }
        let view = etcd_sd_member {
            id: m.id,
            name: name.as_ptr(),
            peer_urls: peers.as_ptr(),
            client_urls: clients.as_ptr(),
            is_learner: m.is_learner,
        };
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it writable for the call.
        unsafe { out.write(view) };
        true
    }
}

/// Frees a member list. NULL is a no-op.
#[no_mangle]
pub extern "C" fn etcd_sd_members_free(members: *mut etcd_sd_members) {
    ffi_boundary! {
        // SAFETY: `members` is NULL (a no-op) or an `etcd_sd_members` the library handed out (by
        // `write_out`) that the caller gives back here and never uses again (the header's `_free`
        // contract); `Castable` makes it the Box `write_out` made for this type.
        drop(unsafe { take_box(members) });
    }
}

/// Adds a member that will listen on `peer_urls` (comma-separated) and writes its id to
/// `*out_id` (may be NULL). The member is not started: until it is, a cluster that counted on
/// it may lose its quorum. Sent once (never twice). Blocks at most the request timeout.
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, no URL), `ETCD_SD_ETCD_ERROR` (etcd refused:
/// URL already used, unhealthy cluster), `ETCD_SD_UNAVAILABLE`, `ETCD_SD_TIMEOUT`,
/// `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_member_add(
    client: *const etcd_sd_client,
    peer_urls: *const c_char,
    is_learner: bool,
    out_id: *mut u64,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: `peer_urls` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let urls: Vec<String> = unsafe { try_str(peer_urls, "peer_urls") }?
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        let m = c.member_add(&urls, is_learner)?;
        if !out_id.is_null() {
            // SAFETY: `out_id` is non-NULL (checked above) and the caller passes it writable for
            // the call.
            unsafe { out_id.write(m.id) };
        }
        Ok(())
    }
}

/// Removes member `id`. Blocks at most the request timeout.
/// Errors: `ETCD_SD_NOT_FOUND` (no such member), `ETCD_SD_ETCD_ERROR`, `ETCD_SD_UNAVAILABLE`,
/// `ETCD_SD_TIMEOUT`, `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_member_remove(
    client: *const etcd_sd_client,
    id: u64,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        unsafe { client_ref(client) }?.member_remove(id)
    }
}

/// Lists the ids of every lease etcd holds: writes up to `capacity` of them to `ids` (which
/// may be NULL when `capacity` is 0) and the total to `*out_count`; call again with a larger
/// buffer when the total exceeds `capacity`. Blocks at most the request timeout.
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL `out_count`, NULL `ids` with a capacity),
/// `ETCD_SD_UNAVAILABLE`, `ETCD_SD_TIMEOUT`, `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_client_leases(
    client: *const etcd_sd_client,
    ids: *mut i64,
    capacity: usize,
    out_count: *mut usize,
) -> etcd_sd_result {
    crate::ffi::replies::etcd_sd_client_leases_info(
        client,
        ids,
        capacity,
        out_count,
        std::ptr::null_mut(),
    )
}
