//! `etcd_sd_registry`: the C face of [`Registry`].

use crate::ffi::args::{
    check_out, take_box, try_ref, try_str, write_out, Castable, OwnershipBox, UserData,
};
use crate::ffi::options::{etcd_sd_options, options_ref};
use crate::ffi::result::etcd_sd_result;
use crate::options::Options;
use crate::registry::{Registry, Status};
use std::os::raw::{c_char, c_void};

/// Keeps keys registered in etcd under a lease that the library keeps alive.
///
/// By default every registry of the process with the same connection settings and TTL puts its
/// keys under one shared lease, renewed once for all (a thousand registries cost one renewal
/// per second, and a registry made after the first costs no round trip);
/// `etcd_sd_options_set_own_lease` gives a registry a lease of its own. Created by
/// `etcd_sd_registry_new`/`_new_with`, freed by `etcd_sd_registry_free`, which deletes the
/// registry's keys at once (one request; with an own lease, by revoking it). The keep-alive runs on the library's
/// own I/O thread and never waits on user code. A registry may be used from any thread, by
/// several at once.
pub struct etcd_sd_registry {
    pub(crate) inner: Registry,
}

impl Castable for etcd_sd_registry {
    type Ownership = OwnershipBox;
}

/// Connects to `endpoints` (see `etcd_sd_options_set_endpoints`) and joins the process's
/// shared lease of `ttl_seconds` for these endpoints, granting it first if no registry holds it
/// yet. On success writes the registry to `*out`.
///
/// Blocks until etcd answers when a grant is needed, at most the connect timeout (5 s here; use `_new_with` to
/// change it). Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, bad endpoints, `ttl_seconds <= 0`),
/// `ETCD_SD_UNAVAILABLE` (no endpoint answered in time), `ETCD_SD_ETCD_ERROR`.
#[no_mangle]
pub extern "C" fn etcd_sd_registry_new(
    endpoints: *const c_char,
    ttl_seconds: i64,
    out: *mut *mut etcd_sd_registry,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `endpoints` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let mut opts = Options::new(unsafe { try_str(endpoints, "endpoints") }?)?;
        opts.set_ttl(ttl_seconds)?;
        let inner = Registry::new(&opts)?;
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_registry { inner }) };
        Ok(())
    }
}

/// Like `etcd_sd_registry_new`, with every setting taken from `opts` (which may be freed
/// afterwards).
#[no_mangle]
pub extern "C" fn etcd_sd_registry_new_with(
    opts: *const etcd_sd_options,
    out: *mut *mut etcd_sd_registry,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `opts` is NULL (refused) or an `etcd_sd_options` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let inner = Registry::new(unsafe { options_ref(opts) }?)?;
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_registry { inner }) };
        Ok(())
    }
}

/// Puts `key -> value` under the registry's lease; registering a key again updates its value.
/// The key stays registered (re-put after any lease loss) until `_unregister` or `_free`.
///
/// Blocks for one round trip, at most the request timeout. Errors: `ETCD_SD_INVALID_ARGUMENT`
/// (NULL, empty key, not UTF-8), `ETCD_SD_UNAVAILABLE`, `ETCD_SD_TIMEOUT`, `ETCD_SD_ETCD_ERROR`.
#[no_mangle]
pub extern "C" fn etcd_sd_registry_register(
    registry: *mut etcd_sd_registry,
    key: *const c_char,
    value: *const c_char,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `registry` is NULL (refused) or an `etcd_sd_registry` from its `_new`, not freed
        // yet (the header's contract); it is only read during the call.
        let r = unsafe { try_ref(registry, "registry") }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?;
        // SAFETY: `value` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let value = unsafe { try_str(value, "value") }?;
        r.inner.register(key, value)
    }
}

/// Deletes `key` from etcd and stops keeping it registered. A key that was never registered
/// is not an error. Errors as for `_register`.
#[no_mangle]
pub extern "C" fn etcd_sd_registry_unregister(
    registry: *mut etcd_sd_registry,
    key: *const c_char,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `registry` is NULL (refused) or an `etcd_sd_registry` from its `_new`, not freed
        // yet (the header's contract); it is only read during the call.
        let r = unsafe { try_ref(registry, "registry") }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?;
        r.inner.unregister(key)
    }
}

/// Marks every key of this registry as draining in etcd (the metadata `draining=true`, in
/// the value's own format: see the README's "Drain"): tables stop picking these instances
/// for new calls, while calls in flight go on. Keys registered later are put marked too.
/// Then, once the calls in flight are done, `_unregister` or `_free`; or `_undrain`.
///
/// Blocks for one put per key, each bounded by the request timeout; every key is tried and
/// the first failure is returned. Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL registry, a JSON
/// value of no known format: nothing is changed), `ETCD_SD_UNAVAILABLE`, `ETCD_SD_TIMEOUT`.
#[no_mangle]
pub extern "C" fn etcd_sd_registry_drain(registry: *mut etcd_sd_registry) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `registry` is NULL (refused) or an `etcd_sd_registry` from its `_new`, not freed
        // yet (the header's contract); it is only read during the call.
        unsafe { try_ref(registry, "registry") }?.inner.drain()
    }
}

/// Takes the draining mark of `etcd_sd_registry_drain` away: every key holds its value as
/// registered again. Blocking and errors as for `_drain`.
#[no_mangle]
pub extern "C" fn etcd_sd_registry_undrain(registry: *mut etcd_sd_registry) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `registry` is NULL (refused) or an `etcd_sd_registry` from its `_new`, not freed
        // yet (the header's contract); it is only read during the call.
        unsafe { try_ref(registry, "registry") }?.inner.undrain()
    }
}

/// Writes the lease currently holding the keys to `*out` (it changes when the library has to
/// grant a new lease after the old one was lost).
#[no_mangle]
pub extern "C" fn etcd_sd_registry_lease_id(
    registry: *const etcd_sd_registry,
    out: *mut i64,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `registry` is NULL (refused) or an `etcd_sd_registry` from its `_new`, not freed
        // yet (the header's contract); it is only read during the call.
        let r = unsafe { try_ref(registry, "registry") }?;
        if out.is_null() {
            return Err(crate::error::Error::invalid("out is NULL"));
        }
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it writable for the call.
        unsafe { *out = r.inner.lease_id() };
        Ok(())
    }
}

/// A change in a registry's standing, reported to its status callback.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum etcd_sd_status {
    /// The lease is gone (expired during an outage, revoked from outside): etcd no longer holds
    /// this registry's keys. The library is already granting a new lease.
    ETCD_SD_STATUS_LOST = 1,
    /// A new lease was granted and every registered key is in etcd again. Also reported once
    /// when a registry created with `wait_for_etcd` first reaches etcd.
    ETCD_SD_STATUS_RESTORED = 2,
}

/// Receives a registry's status changes, on one of the library's callback threads, never two
/// at once for one registry, never on the thread that drives keep-alives.
pub type etcd_sd_status_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, status: etcd_sd_status)>;

/// Sets (or, with `status_fn` NULL, removes) the callback told when this registry's
/// registration is lost and when it is restored; replaces any earlier one. After this call
/// or `etcd_sd_registry_free` returns, the earlier callback is not running and will not run
/// again, so its `user_data` may be freed (unless called from inside that very callback).
#[no_mangle]
pub extern "C" fn etcd_sd_registry_set_status_fn(
    registry: *mut etcd_sd_registry,
    status_fn: etcd_sd_status_fn,
    user_data: *mut c_void,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `registry` is NULL (refused) or an `etcd_sd_registry` from its `_new`, not freed
        // yet (the header's contract); it is only read during the call.
        let r = unsafe { try_ref(registry, "registry") }?;
        let sink = status_fn.map(|f| {
            let ud = UserData::new(user_data);
            Box::new(move |s: &Status| {
                let status = match s {
                    Status::Lost => etcd_sd_status::ETCD_SD_STATUS_LOST,
                    Status::Restored => etcd_sd_status::ETCD_SD_STATUS_RESTORED,
                };
                // SAFETY: `f` and `user_data` were given here by the caller, who vouched for
                // calls from a callback thread until replaced or the registry is freed (the
                // `etcd_sd_status_fn` contract).
                unsafe { f(ud.get(), status) }
            }) as crate::dispatch::Sink<Status>
        });
        r.inner.set_status_sink(sink);
        Ok(())
    }
}

/// Deletes the registry's keys (one request; a registry with its own lease revokes it) and
/// frees it, so watchers see every key deleted at once. NULL is a no-op.
///
/// Returns within about the request timeout even when etcd is gone (the keys then expire
/// after the TTL). May be called from any thread, including from a discovery callback.
/// Must not be called twice on the same pointer.
#[no_mangle]
pub extern "C" fn etcd_sd_registry_free(registry: *mut etcd_sd_registry) {
    ffi_boundary! {
        // SAFETY: `registry` is NULL (a no-op) or an `etcd_sd_registry` the library handed out (by
        // `write_out`) that the caller gives back here and never uses again (the header's `_free`
        // contract); `Castable` makes it the Box `write_out` made for this type.
        if let Some(r) = unsafe { take_box(registry) } {
            let _ = r.inner.close();
        }
    }
}
