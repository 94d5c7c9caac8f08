//! `etcd_sd_options`: an opaque builder for every setting, so fields can be added without
//! breaking the ABI.

use crate::error::Error;
use crate::error::Result;
use crate::ffi::args::{
    check_out, take_box, try_mut, try_ref, try_str, write_out, Castable, OwnershipBox,
};
use crate::ffi::result::etcd_sd_result;
use crate::options::{KratosEndpoint, Options, ValueFormat};
use std::os::raw::c_char;
use std::time::Duration;

/// Settings for `etcd_sd_registry_new_with` and `etcd_sd_discovery_new_with`.
///
/// Defaults: no endpoints (one must be set), TTL 3 s, connect timeout 5000 ms, request
/// timeout 3000 ms. Created by `etcd_sd_options_new`, freed by `etcd_sd_options_free`; the
/// objects created from it copy what they need, so it may be freed right after. Not
/// thread-safe: do not change one options object from two threads at once.
pub struct etcd_sd_options {
    pub(crate) inner: Options,
}

impl Castable for etcd_sd_options {
    type Ownership = OwnershipBox;
}

/// Creates an options object with the defaults and writes it to `*out`.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` if `out` is NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_options_new(out: *mut *mut etcd_sd_options) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_options { inner: Options::default() }) };
        Ok(())
    }
}

/// Frees an options object. NULL is a no-op.
#[no_mangle]
pub extern "C" fn etcd_sd_options_free(opts: *mut etcd_sd_options) {
    ffi_boundary! {
        // SAFETY: `opts` is NULL (a no-op) or an `etcd_sd_options` the library handed out (by
        // `write_out`) that the caller gives back here and never uses again (the header's `_free`
        // contract); `Castable` makes it the Box `write_out` made for this type.
        drop(unsafe { take_box(opts) });
    }
}

/// Sets the endpoints: one `http://host:port` or `host:port`, or several separated by commas
/// (the members of a cluster). `https://` needs the TLS settings.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` for NULL, empty, non-UTF-8 or malformed input; the
/// message names the bad part. The options are unchanged on error.
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_endpoints(
    opts: *mut etcd_sd_options,
    endpoints: *const c_char,
) -> etcd_sd_result {
    with_options(opts, |o| {
        // SAFETY: `endpoints` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let endpoints = unsafe { try_str(endpoints, "endpoints") }?;
        o.set_endpoints(endpoints)
    })
}

/// Sets the lease TTL of registries, in seconds (default 3). Keys of a process that dies
/// without freeing its registry disappear after this long.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` if `ttl_seconds <= 0` or `opts` is NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_ttl(
    opts: *mut etcd_sd_options,
    ttl_seconds: i64,
) -> etcd_sd_result {
    with_options(opts, |o| o.set_ttl(ttl_seconds))
}

/// Sets how long `_new` waits for etcd to answer before failing with `ETCD_SD_UNAVAILABLE`
/// (default 5000 ms).
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` if `ms` is 0 or `opts` is NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_connect_timeout_ms(
    opts: *mut etcd_sd_options,
    ms: u64,
) -> etcd_sd_result {
    with_options(opts, |o| o.set_connect_timeout(Duration::from_millis(ms)))
}

/// Sets the bound on each request (register, unregister, the revoke in `_free`), default
/// 3000 ms.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` if `ms` is 0 or `opts` is NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_request_timeout_ms(
    opts: *mut etcd_sd_options,
    ms: u64,
) -> etcd_sd_result {
    with_options(opts, |o| o.set_request_timeout(Duration::from_millis(ms)))
}

/// Off by default: `_new` fails with `ETCD_SD_UNAVAILABLE` when etcd does not answer within
/// the connect timeout. On: `_new` returns at once, without any round trip, and the object
/// connects in the background: a registry grants its lease and puts the keys registered
/// meanwhile (its status callback reports `ETCD_SD_STATUS_RESTORED`), a discovery delivers
/// its initial listing through the callback threads, a keep-alive grants its lease (its id is
/// 0 until then), a watch starts from etcd's revision when it first answers. Services need no
/// wait-for-etcd wrapper.
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_wait_for_etcd(
    opts: *mut etcd_sd_options,
    wait: bool,
) -> etcd_sd_result {
    with_options(opts, |o| {
        o.set_wait_for_etcd(wait);
        Ok(())
    })
}

/// Off by default: a new connection starts on a random member of the endpoint list, so that a
/// fleet of processes given the same list spreads its watch and keep-alive streams over the
/// members instead of loading the first. On: it starts on the first endpoint (e.g. the local
/// member, listed first) and fails over in list order.
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_prefer_first_member(
    opts: *mut etcd_sd_options,
    first: bool,
) -> etcd_sd_result {
    with_options(opts, |o| {
        o.set_prefer_first_member(first);
        Ok(())
    })
}

/// Off by default: discoveries and watches made with these options run their callbacks on
/// the library's callback threads (`etcd-sd-cb`), where a callback may block. On: callbacks
/// after the initial listing run on the I/O thread (`etcd-sd-io`) as each event arrives,
/// which saves the hand-off to a callback thread (docs/performance.md measures it), under one
/// rule: **the callback must not block**. While it runs, no keep-alive, watch or request of
/// the process makes progress (a callback that blocks for the TTL loses every lease). So it
/// must not sleep, do I/O, wait for a lock held across slow work, call a blocking `etcd_sd_*`
/// function (those fail there with `ETCD_SD_INTERNAL` and say why) or free another object
/// whose callbacks run on the callback threads; freeing its own discovery or watch from
/// inside the callback is allowed. Reading the event, updating your own table under a short
/// lock, or posting to a queue of your own is what it is for. Order and exclusivity are as
/// without it: in revision order, never two at once for one object. The initial listing's
/// `on_put` calls still run on the thread calling `_new`. Service tables made with these
/// options apply each change on the I/O thread too (a pick sees it without a hand-off); their
/// change callback (`etcd_sd_table_set_changed_fn`) still runs on a callback thread.
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_inline_callbacks(
    opts: *mut etcd_sd_options,
    inline: bool,
) -> etcd_sd_result {
    with_options(opts, |o| {
        o.set_inline_callbacks(inline);
        Ok(())
    })
}

/// Service tables only (`etcd_sd_table_new`): keeps the table's last-known snapshot in the
/// file `path` and starts from it when etcd does not answer the first listing. The file is
/// written atomically (a temporary file renamed over it) after changes, at most once a
/// second, from a library thread. A table created while etcd is down (unreachable, refusing)
/// starts from the file, reports itself stale (`etcd_sd_table_is_stale`) and takes etcd's
/// listing as soon as etcd answers. A missing, corrupt or foreign file (another prefix,
/// another format) is logged with its reason and ignored: `_new` then fails as without it.
/// NULL clears the setting. Errors: `ETCD_SD_INVALID_ARGUMENT` (an empty path).
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_snapshot_file(
    opts: *mut etcd_sd_options,
    path: *const c_char,
) -> etcd_sd_result {
    with_options(opts, |o| {
        if path.is_null() {
            return o.set_snapshot_file(None);
        }
        // SAFETY: `path` is non-NULL (checked above) and a NUL-terminated string the caller
        // lends for the call (the header's string contract).
        o.set_snapshot_file(Some(unsafe { try_str(path, "path") }?))
    })
}

/// Sets the PEM file holding the CA certificate(s) that signed etcd's server certificate
/// (without it, `https://` endpoints are checked against the system's roots). The file is
/// read when a registry or discovery connects; a missing or unreadable file is then an
/// `ETCD_SD_INVALID_ARGUMENT` naming it. Needs `https://` endpoints.
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_ca_file(
    opts: *mut etcd_sd_options,
    path: *const c_char,
) -> etcd_sd_result {
    // SAFETY: `path` is NULL (refused) or a NUL-terminated string the caller lends for the call
    // (the header's string contract).
    with_options(opts, |o| o.set_ca_file(unsafe { try_str(path, "path") }?))
}

/// Sets the client certificate and private key (PEM files) for mutual TLS. Read when an
/// object connects, like the CA file.
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_client_cert(
    opts: *mut etcd_sd_options,
    cert_path: *const c_char,
    key_path: *const c_char,
) -> etcd_sd_result {
    with_options(opts, |o| {
        // SAFETY: `cert_path` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let cert = unsafe { try_str(cert_path, "cert_path") }?;
        // SAFETY: `key_path` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let key = unsafe { try_str(key_path, "key_path") }?;
        o.set_client_cert(cert, key)
    })
}

/// Sets the name etcd's certificate is checked against, when it differs from the host in
/// the endpoints (for example endpoints given as IP addresses).
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_server_name(
    opts: *mut etcd_sd_options,
    name: *const c_char,
) -> etcd_sd_result {
    with_options(opts, |o| {
        // SAFETY: `name` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        o.set_server_name(unsafe { try_str(name, "name") }?)
    })
}

/// Sets the etcd user and password (etcd with auth enabled). The library authenticates when
/// it connects and again whenever the token expires or the auth store changes. The password
/// is copied, kept in memory only, and never logged or put in an error message.
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_user(
    opts: *mut etcd_sd_options,
    user: *const c_char,
    password: *const c_char,
) -> etcd_sd_result {
    with_options(opts, |o| {
        // SAFETY: `user` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let user = unsafe { try_str(user, "user") }?;
        // SAFETY: `password` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let password = unsafe { try_str(password, "password") }?;
        o.set_user(user, password)
    })
}

/// Off by default: registries of a process with the same settings and TTL share one lease,
/// kept alive once (freeing one deletes its own keys). On: a registry made with these options
/// gets a lease of its own, revoked when it is freed.
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_own_lease(
    opts: *mut etcd_sd_options,
    own: bool,
) -> etcd_sd_result {
    with_options(opts, |o| {
        o.set_own_lease(own);
        Ok(())
    })
}

/// How a registry writes the value of each key it registers (`etcd_sd_options_set_value_format`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum etcd_sd_value_format {
    /// The value as given (the default).
    ETCD_SD_VALUE_AS_GIVEN = 0,
    /// The JSON Go's etcd `naming/endpoints` manager writes, so that Go programs using etcd's
    /// gRPC resolver (`etcd:///TARGET`, keys `TARGET/NAME`) find the instance:
    /// `host:port` becomes `{"Op":0,"Addr":"host:port","Metadata":null}`, and `host:port N`
    /// (a weight N other than 1) `{"Op":0,"Addr":"host:port","Metadata":{"weight":N}}`. A
    /// JSON object with an `Addr` (to add metadata) is written as given; any other value is
    /// refused by `etcd_sd_registry_register` with `ETCD_SD_INVALID_ARGUMENT`.
    ETCD_SD_VALUE_GO_NAMING = 1,
}

/// Sets how registries made with these options write their values: an
/// `etcd_sd_value_format` value (default `ETCD_SD_VALUE_AS_GIVEN`). The service table reads
/// every format (see docs/formats.md) whatever this says.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` for NULL or an unknown format.
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_value_format(
    opts: *mut etcd_sd_options,
    format: u32,
) -> etcd_sd_result {
    with_options(opts, |o| {
        let f = match format {
            x if x == etcd_sd_value_format::ETCD_SD_VALUE_AS_GIVEN as u32 => ValueFormat::AsGiven,
            x if x == etcd_sd_value_format::ETCD_SD_VALUE_GO_NAMING as u32 => ValueFormat::GoNaming,
            other => return Err(Error::invalid(format!("unknown value format {other}"))),
        };
        o.set_value_format(f);
        Ok(())
    })
}

/// Sets which of a Kratos instance's `endpoints` URLs gives its address in a service table
/// made with these options: `"grpc"` (the default), `"http"` or any URL scheme (case is
/// ignored) takes the first URL with that scheme, and an instance without one is not an
/// instance; `"first"` takes the first URL whatever its scheme.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` for NULL or text that is neither a scheme nor `first`;
/// the options are then unchanged.
#[no_mangle]
pub extern "C" fn etcd_sd_options_set_kratos_endpoint(
    opts: *mut etcd_sd_options,
    which: *const c_char,
) -> etcd_sd_result {
    with_options(opts, |o| {
        // SAFETY: `which` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let which = unsafe { try_str(which, "which") }?;
        o.set_kratos_endpoint(KratosEndpoint::parse(which)?);
        Ok(())
    })
}

/// Applies settings from the environment, each only when the variable is set:
/// `ETCD_SD_CONNECT_TIMEOUT_MS`, `ETCD_SD_REQUEST_TIMEOUT_MS`, `ETCD_SD_TTL` (seconds) and
/// `ETCD_SD_WAIT_FOR_ETCD` (1 or 0). The compat headers call it, so a program built against
/// them is tuned without code changes. (`ETCD_SD_LOG` sets the log level.)
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` naming the variable whose value is bad; the options are
/// then unchanged.
#[no_mangle]
pub extern "C" fn etcd_sd_options_apply_env(opts: *mut etcd_sd_options) -> etcd_sd_result {
    with_options(opts, |o| o.apply_env())
}

/// Applies `f` to a copy and stores it only on success, so a failed setter changes nothing.
fn with_options(
    opts: *mut etcd_sd_options,
    f: impl FnOnce(&mut Options) -> Result<()>,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `opts` is NULL (refused) or an `etcd_sd_options` the caller has not freed, and
        // the header lets only one thread at a time call this on it.
        let o = unsafe { try_mut(opts, "options") }?;
        let mut copy = o.inner.clone();
        f(&mut copy)?;
        o.inner = copy;
        Ok(())
    }
}

/// The options behind a caller's pointer, for the `_new_with` functions.
///
/// # Safety
/// `opts` is NULL or a live options object (made by `etcd_sd_options_new`, not freed yet)
/// that no other thread changes during the call (the header: not thread-safe).
pub(crate) unsafe fn options_ref<'a>(opts: *const etcd_sd_options) -> Result<&'a Options> {
    // SAFETY: this fn's contract is `try_ref`'s for an `etcd_sd_options`.
    Ok(&unsafe { try_ref(opts, "options") }?.inner)
}
