//! `etcd_sd_table`: the C face of [`ServiceTable`], a live service table with load balancing.

use crate::error::Error;
use crate::ffi::args::{
    check_out, opt_ref, take_box, try_ref, try_str, write_out, Castable, OwnershipBox, UserData,
};
use crate::ffi::boundary::Boundary;
use crate::ffi::options::{etcd_sd_options, options_ref};
use crate::ffi::result::{etcd_sd_result, fail, fail_code};
use crate::table::{Config, Ejection, Instance, Instances, Policy, ServiceTable};
use std::os::raw::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

/// How `etcd_sd_table_pick` chooses an instance when no hash key is given.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum etcd_sd_policy {
    /// Each instance in turn, exactly evenly over whole cycles (a 64-bit counter per service,
    /// so it never overflows, and no index is ever out of range while instances come and go).
    ETCD_SD_POLICY_ROUND_ROBIN = 0,
    /// Uniformly at random.
    ETCD_SD_POLICY_RANDOM = 1,
    /// Smooth weighted round robin, as nginx's (weights from the values; see
    /// `etcd_sd_table_new`).
    ETCD_SD_POLICY_WEIGHTED_ROUND_ROBIN = 2,
    /// Consistent hashing on the hash key; without one, round robin.
    ETCD_SD_POLICY_CONSISTENT_HASH = 3,
}

/// A live table of the services under a prefix, and a load balancer over each.
///
/// A key `/service/user/instance-1` is an instance of service `/service/user` (the key up to
/// its last `/`). Its value gives the address and an optional weight:
/// - `host:port`, optionally followed by a space and a weight: `host:port 3` or
///   `host:port weight=3`;
/// - the JSON Go's etcd `naming/endpoints` writes: `{"Addr":"host:port","Metadata":...}` or
///   `{"Op":0,"Addr":...,"Metadata":...}`; the weight is `Metadata.weight` when present.
///
/// Weights are 1 to 10000 (default 1). A value that is none of these (empty, bad JSON, a bad
/// weight) is not an instance: it is logged and skipped. A PUT that repeats a key's value
/// changes nothing; one that changes the address replaces the instance.
///
/// Threading: every function may be called from any thread at once, except `_free` (not
/// concurrently with another call on the same table). `etcd_sd_table_pick`,
/// `etcd_sd_table_instances` and `etcd_sd_table_report` take no lock that the table's writer
/// holds: they read an immutable snapshot that the watch replaces atomically on each change,
/// so they never wait for etcd or for each other. A pick that starts after the table applied
/// an instance's DELETE never returns that instance.
pub struct etcd_sd_table {
    inner: ServiceTable,
}

impl Castable for etcd_sd_table {
    type Ownership = OwnershipBox;
}

/// An immutable snapshot of one service's instances, in key order. Owned by the caller:
/// free it with `etcd_sd_instances_free`. Later changes to the table do not affect it. It may
/// be read from any thread.
pub struct etcd_sd_instances {
    inner: Instances,
}

impl Castable for etcd_sd_instances {
    type Ownership = OwnershipBox;
}

/// A view of one instance inside an `etcd_sd_instances`: the strings belong to it and stay
/// valid until it is freed. Each string is also NUL-terminated.
#[repr(C)]
pub struct etcd_sd_instance {
    /// The etcd key.
    pub key: *const c_char,
    pub key_len: usize,
    /// The address taken from the value.
    pub address: *const c_char,
    pub address_len: usize,
    /// The JSON text of `Metadata` for JSON values that have one, else NULL (length 0).
    pub metadata: *const c_char,
    pub metadata_len: usize,
    /// The weight (1 when the value has none).
    pub weight: u32,
    /// Consecutive failed calls reported since the last success or ejection.
    pub consecutive_failures: u32,
    /// Ejected (skipped by picks) when the snapshot was taken.
    pub ejected: bool,
}

/// Called after a service's instance set changed (an instance came, left, or changed address
/// or weight), with the service's name (`service_len` bytes, also NUL-terminated, valid only
/// during the call). It runs on one of the library's callback threads ("etcd-sd-cb"), after
/// the new snapshot is in place, never two at once for one table. Typical use: rebuild the
/// channels of that service from `etcd_sd_table_instances`. It may call any `etcd_sd_*`
/// function except `etcd_sd_table_free` on its own table.
pub type etcd_sd_table_changed_fn = Option<
    unsafe extern "C" fn(user_data: *mut c_void, service: *const c_char, service_len: usize),
>;

/// Lists `prefix` (blocking as `etcd_sd_discovery_new` does: the connect timeout for up to
/// 5,000 keys, up to 10 s more for each later page), builds the table from what it
/// finds, and keeps it up to date from a watch (in etcd revision order, resuming and
/// relisting like `etcd_sd_discovery`). `policy` is an `etcd_sd_policy` value. Every service
/// under the prefix is kept until one is declared (`etcd_sd_table_declare`).
///
/// Outlier ejection is on with Envoy-like defaults: 5 consecutive failures (reported with
/// `etcd_sd_table_report`) eject an instance for 30 s, doubling on each repeat up to 300 s,
/// never more than 50 % of a service's instances at once (see `etcd_sd_table_set_ejection`).
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, empty prefix, unknown policy), and those of
/// `etcd_sd_discovery_new_with`.
#[no_mangle]
pub extern "C" fn etcd_sd_table_new(
    opts: *const etcd_sd_options,
    prefix: *const c_char,
    policy: u32,
    out: *mut *mut etcd_sd_table,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `opts` is NULL (refused) or an `etcd_sd_options` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let opts = unsafe { options_ref(opts) }?;
        // SAFETY: `prefix` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let prefix = unsafe { try_str(prefix, "prefix") }?;
        let policy = Policy::from_u32(policy)
            .ok_or_else(|| Error::invalid(format!("unknown policy {policy}")))?;
        let config = Config { policy, ejection: Ejection::default() };
        let inner = ServiceTable::new(opts, prefix, config, &[])?;
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_table { inner }) };
        Ok(())
    }
}

/// Stops the watch and frees the table. NULL is a no-op. When it returns no changed-callback
/// is running or will run (except when called from inside one: not allowed). Snapshots
/// (`etcd_sd_instances`) taken earlier stay valid until freed. Must not be called twice, nor
/// while another thread uses the table.
#[no_mangle]
pub extern "C" fn etcd_sd_table_free(table: *mut etcd_sd_table) {
    ffi_boundary! {
        // SAFETY: `table` is NULL (a no-op) or an `etcd_sd_table` the library handed out (by
        // `write_out`) that the caller gives back here and never uses again (the header's `_free`
        // contract); `Castable` makes it the Box `write_out` made for this type.
        drop(unsafe { take_box(table) });
    }
}

/// Declares a service this process uses ("/service/user", a trailing '/' is ignored). Once
/// any service is declared, only declared services are kept; instances of a service declared
/// late are available at once (the table tracks every key under the prefix). Idempotent.
#[no_mangle]
pub extern "C" fn etcd_sd_table_declare(
    table: *const etcd_sd_table,
    service: *const c_char,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `table` is NULL (refused) or an `etcd_sd_table` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let t = unsafe { try_ref(table, "table") }?;
        // SAFETY: `service` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let service = unsafe { try_str(service, "service") }?;
        t.inner.declare(service);
        Ok(())
    }
}

/// Changes the ejection settings: `consecutive_failures` failures in a row eject an instance
/// (0 turns ejection off) for `base_ms`, doubled on each repeat ejection (one doubling is
/// forgiven per `base_ms` spent admitted) up to `max_ms` (>= `base_ms`); at most
/// `max_ejected_percent` (0-100) of a service's instances are ejected at once; past that,
/// picks choose among all. Ejections already in force keep their end time.
#[no_mangle]
pub extern "C" fn etcd_sd_table_set_ejection(
    table: *const etcd_sd_table,
    consecutive_failures: u32,
    base_ms: u64,
    max_ms: u64,
    max_ejected_percent: u32,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `table` is NULL (refused) or an `etcd_sd_table` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let t = unsafe { try_ref(table, "table") }?;
        if base_ms == 0 || max_ms < base_ms {
            return Err(Error::invalid(format!(
                "ejection times must be 0 < base_ms <= max_ms, got {base_ms} and {max_ms}")));
        }
        if max_ejected_percent > 100 {
            return Err(Error::invalid(format!(
                "max_ejected_percent must be 0..100, got {max_ejected_percent}")));
        }
        t.inner.set_ejection(Ejection {
            consecutive_failures,
            base: Duration::from_millis(base_ms),
            max: Duration::from_millis(max_ms),
            max_ejected_percent,
        });
        Ok(())
    }
}

/// What a pick returns to C: a result, with NO_INSTANCE apart from the error type.
enum PickResult {
    Done,
    Failed(Error),
    NoInstance(String),
}

impl From<Error> for PickResult {
    fn from(e: Error) -> Self {
        PickResult::Failed(e)
    }
}

impl Boundary for PickResult {
    type Out = etcd_sd_result;
    fn finish(self) -> etcd_sd_result {
        match self {
            PickResult::Done => etcd_sd_result::ETCD_SD_OK,
            PickResult::Failed(e) => fail(&e),
            PickResult::NoInstance(msg) => fail_code(etcd_sd_result::ETCD_SD_NO_INSTANCE, &msg),
        }
    }
    fn on_panic(err: Error) -> etcd_sd_result {
        fail(&err)
    }
}

/// `usize` and `bool` results through the boundary (a panic gives 0 / false).
struct Len(usize);
struct Found(bool);

impl Boundary for Len {
    type Out = usize;
    fn finish(self) -> usize {
        self.0
    }
    fn on_panic(err: Error) -> usize {
        fail(&err);
        0
    }
}

impl Boundary for Found {
    type Out = bool;
    fn finish(self) -> bool {
        self.0
    }
    fn on_panic(err: Error) -> bool {
        fail(&err);
        false
    }
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return PickResult::from(e),
        }
    };
}

/// Picks an instance of `service` and copies its address, NUL-terminated, into `buf`
/// (`buf_len` bytes); writes the address length (without the NUL) to `*out_len` when
/// `out_len` is not NULL.
///
/// With `hash_key` non-NULL (`hash_key_len` bytes, any content) the pick is by consistent
/// hashing on that key: the same key reaches the same instance while it is there, and when
/// one of N instances leaves only its ~1/N of the keys move. With `hash_key` NULL the table's
/// policy decides. Ejected instances are skipped (see `etcd_sd_table_set_ejection`).
///
/// Lock-free and allocation-free on success; never blocks. Errors:
/// `ETCD_SD_NO_INSTANCE` (the service has no instance, or is not declared when others are),
/// `ETCD_SD_INVALID_ARGUMENT` (NULL, not UTF-8, or `buf` too small: then `*out_len` still
/// receives the address length, so a buffer of `*out_len + 1` bytes will do).
#[no_mangle]
pub extern "C" fn etcd_sd_table_pick(
    table: *const etcd_sd_table,
    service: *const c_char,
    hash_key: *const c_void,
    hash_key_len: usize,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `table` is NULL (refused) or an `etcd_sd_table` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let t = tri!(unsafe { try_ref(table, "table") });
        // SAFETY: `service` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let name = tri!(unsafe { try_str(service, "service") });
        if buf.is_null() {
            return Error::invalid("buf is NULL").into();
        }
        let key = (!hash_key.is_null()).then(|| {
            // SAFETY: `hash_key` is non-NULL here, and the caller lends `hash_key_len` readable
            // bytes at it for the call.
            unsafe { std::slice::from_raw_parts(hash_key.cast::<u8>(), hash_key_len) }
        });
        let copied = t.inner.pick_with(name, key, |inst| {
            let a = inst.address_c().as_bytes(); // with its NUL
            if !out_len.is_null() {
                // SAFETY: `out_len` is non-NULL (checked above) and the caller passes it writable
                // for the call.
                unsafe { *out_len = a.len() - 1 };
            }
            if a.len() > buf_len {
                return Err(a.len());
            }
            // SAFETY: `buf` is non-NULL (checked above) with `buf_len` writable bytes (the
            // caller's promise), `a.len() <= buf_len` (checked just above), and `a` is ours, so
            // the two do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(a.as_ptr(), buf.cast::<u8>(), a.len()) };
            Ok(())
        });
        match copied {
            Some(Ok(())) => PickResult::Done,
            Some(Err(need)) => Error::invalid(format!(
                "buffer of {buf_len} bytes is too small for the address ({need} bytes with its NUL)"
            )).into(),
            None => PickResult::NoInstance(format!("no instance of service {name:?}")),
        }
    }
}

/// Takes a snapshot of `service`'s instances (in key order) into `*out`; an unknown service
/// gives an empty snapshot (not an error). Lock-free. Free it with `etcd_sd_instances_free`.
#[no_mangle]
pub extern "C" fn etcd_sd_table_instances(
    table: *const etcd_sd_table,
    service: *const c_char,
    out: *mut *mut etcd_sd_instances,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `table` is NULL (refused) or an `etcd_sd_table` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let t = unsafe { try_ref(table, "table") }?;
        // SAFETY: `service` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let service = unsafe { try_str(service, "service") }?;
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_instances { inner: t.inner.instances(service) }) };
        Ok(())
    }
}

/// Reports the result of one call to `address` of `service` (`ok` true: success). After
/// `consecutive_failures` failures in a row the instance is ejected (see
/// `etcd_sd_table_set_ejection`); a success resets the count. Lock-free except at the moment
/// an ejection is decided. `ETCD_SD_NO_INSTANCE` when no instance of the service has that
/// address (it may just have left: callers usually ignore it).
#[no_mangle]
pub extern "C" fn etcd_sd_table_report(
    table: *const etcd_sd_table,
    service: *const c_char,
    address: *const c_char,
    ok: bool,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `table` is NULL (refused) or an `etcd_sd_table` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let t = tri!(unsafe { try_ref(table, "table") });
        // SAFETY: `service` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let service = tri!(unsafe { try_str(service, "service") });
        // SAFETY: `address` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let address = tri!(unsafe { try_str(address, "address") });
        if t.inner.report(service, address, ok) {
            PickResult::Done
        } else {
            PickResult::NoInstance(format!("no instance of {service:?} has address {address:?}"))
        }
    }
}

/// Sets (or, with `changed_fn` NULL, removes) the callback told when a service's instance set
/// changes; replaces any earlier one. When this returns, the earlier callback is not running
/// and will not run again, so its `user_data` may be freed (unless called from inside that
/// very callback). `user_data` must stay valid until the callback is replaced or the table
/// is freed.
#[no_mangle]
pub extern "C" fn etcd_sd_table_set_changed_fn(
    table: *const etcd_sd_table,
    changed_fn: etcd_sd_table_changed_fn,
    user_data: *mut c_void,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `table` is NULL (refused) or an `etcd_sd_table` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let t = unsafe { try_ref(table, "table") }?;
        let sink = changed_fn.map(|f| {
            let ud = UserData::new(user_data);
            Box::new(move |s: &Arc<str>| {
                let mut buf = Vec::with_capacity(s.len() + 1);
                buf.extend_from_slice(s.as_bytes());
                buf.push(0);
                // SAFETY: `f` and `user_data` were given here by the caller, who vouched for
                // calls from a callback thread until replaced or the table is freed (the
                // `etcd_sd_table_changed_fn` contract); `buf` holds `s` and a NUL for the call.
                unsafe { f(ud.get(), buf.as_ptr().cast(), s.len()) }
            }) as crate::dispatch::Sink<Arc<str>>
        });
        t.inner.set_changed(sink);
        Ok(())
    }
}

/// Number of instances in the snapshot (NULL: 0).
#[no_mangle]
pub extern "C" fn etcd_sd_instances_len(instances: *const etcd_sd_instances) -> usize {
    ffi_boundary! {
        // SAFETY: `instances` is NULL (the documented default is returned) or an
        // `etcd_sd_instances` the caller has not freed (the header's contract); it is only read
        // here.
        Len(unsafe { opt_ref(instances) }.map_or(0, |i| i.inner.len()))
    }
}

/// Fills `*out` with instance `i` of the snapshot; false (and `*out` untouched) when `i` is
/// out of range or a pointer is NULL. The strings stay valid until the snapshot is freed.
#[no_mangle]
pub extern "C" fn etcd_sd_instances_at(
    instances: *const etcd_sd_instances,
    i: usize,
    out: *mut etcd_sd_instance,
) -> bool {
    ffi_boundary! {
        // SAFETY: `instances` is NULL (the documented default is returned) or an
        // `etcd_sd_instances` the caller has not freed (the header's contract); it is only read
        // here.
        let (Some(s), false) = (unsafe { opt_ref(instances) }, out.is_null()) else {
            return Found(false);
        };
        let Some(inst) = s.inner.get(i) else { return Found(false) };
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it writable for the call.
        unsafe { *out = view(inst, s.inner.is_ejected(i)) };
        Found(true)
    }
}

fn view(inst: &Instance, ejected: bool) -> etcd_sd_instance {
    let (metadata, metadata_len) = match inst.metadata_c() {
        Some(m) => (m.as_ptr().cast(), m.len() - 1),
        None => (std::ptr::null(), 0),
    };
    etcd_sd_instance {
        key: inst.key_c().as_ptr().cast(),
        key_len: inst.key().len(),
        address: inst.address_c().as_ptr().cast(),
        address_len: inst.address().len(),
        metadata,
        metadata_len,
        weight: inst.weight(),
        consecutive_failures: inst.consecutive_failures(),
        ejected,
    }
}

/// Frees a snapshot. NULL is a no-op.
#[no_mangle]
pub extern "C" fn etcd_sd_instances_free(instances: *mut etcd_sd_instances) {
    ffi_boundary! {
        // SAFETY: `instances` is NULL (a no-op) or an `etcd_sd_instances` the library handed out
        // (by `write_out`) that the caller gives back here and never uses again (the header's
        // `_free` contract); `Castable` makes it the Box `write_out` made for this type.
        drop(unsafe { take_box(instances) });
    }
}
