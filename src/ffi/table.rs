//! `etcd_sd_table`: the C face of [`ServiceTable`], a live service table with load balancing.

use crate::error::Error;
use crate::ffi::args::{
    check_out, opt_ref, take_box, try_ref, try_str, write_out, Castable, OwnershipBox, UserData,
};
use crate::ffi::boundary::Boundary;
use crate::ffi::options::{etcd_sd_options, options_ref};
use crate::ffi::result::{etcd_sd_result, fail, fail_code};
use crate::table::{
    Config, Ejection, Failover, Instance, Instances, Locality, Policy, Selector, ServiceTable,
    SlowStart,
};
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
///   `host:port weight=3`, then metadata tokens `key=value ...`
///   (`10.0.0.5:9000 weight=3 zone=a version=v2`);
/// - the JSON Go's etcd `naming/endpoints` writes: `{"Addr":"host:port","Metadata":...}` or
///   `{"Op":0,"Addr":...,"Metadata":...}`; the weight is `Metadata.weight` when present;
/// - Kratos (`{"endpoints":["grpc://host:port",..],"metadata":{..},..}`: the first URL of the
///   scheme `etcd_sd_options_set_kratos_endpoint` names, `grpc` by default) and go-micro
///   (`{"nodes":[{"id":..,"address":"host:port","metadata":{..}}],..}`: the node named by the
///   key's last segment, else the first). Every format, with examples: docs/formats.md.
///
/// Weights are 1 to 10000 (default 1). A value that is none of these (empty, bad JSON, a bad
/// weight, a token after the address that is not `key=value`) is not an instance: it is
/// logged and skipped. An instance's metadata pairs are the `key=value` tokens or the
/// JSON `Metadata` members (`etcd_sd_instances_meta_at`). Picks honour draining instances
/// (never picked), the caller's zone and slow start: see `etcd_sd_table_pick_select`. A PUT that repeats a key's value
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
/// The caller's zone is `$ETCD_SD_ZONE` (unset or empty: none; see
/// `etcd_sd_table_set_locality`). Slow start is on (30 s from 10 %) for weighted round
/// robin, off for the other policies (see `etcd_sd_table_set_slow_start`).
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
        let config = Config { policy, ..Config::default() };
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

/// Writes to `*out_stale` whether the table has not yet had etcd's listing: true after a
/// start from the last-known snapshot while etcd was down (`etcd_sd_options_set_snapshot_file`),
/// or with `etcd_sd_options_set_wait_for_etcd`, until etcd answers; the table's instances are
/// the snapshot's meanwhile (and are picked). No I/O.
#[no_mangle]
pub extern "C" fn etcd_sd_table_is_stale(
    table: *const etcd_sd_table,
    out_stale: *mut bool,
) -> etcd_sd_result {
    ffi_boundary! {
        if out_stale.is_null() {
            return Err(crate::error::Error::invalid("out_stale is NULL"));
        }
        // SAFETY: `table` is NULL (refused) or an `etcd_sd_table` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let t = unsafe { try_ref(table, "table") }?;
        // SAFETY: `out_stale` is non-NULL (checked above) and the caller passes it writable.
        unsafe { out_stale.write(t.inner.is_stale()) };
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

/// Sets the caller's zone (`zone` NULL or "": none) and the spill-over threshold. Picks
/// prefer the candidates whose metadata `zone` equals the caller's; they spill over to
/// every zone when the local zone has no candidate, none healthy, or fewer than
/// `min_healthy_percent` (0-100; default 50) of its instances healthy (neither ejected nor
/// draining). Replaces `$ETCD_SD_ZONE`. Takes effect for picks that start after it returns.
#[no_mangle]
pub extern "C" fn etcd_sd_table_set_locality(
    table: *const etcd_sd_table,
    zone: *const c_char,
    min_healthy_percent: u32,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `table` is NULL (refused) or an `etcd_sd_table` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let t = unsafe { try_ref(table, "table") }?;
        let zone = if zone.is_null() {
            None
        } else {
            // SAFETY: `zone` is a non-NULL NUL-terminated string the caller lends for the
            // call (the header's string contract).
            Some(unsafe { try_str(zone, "zone") }?.to_string()).filter(|z| !z.is_empty())
        };
        if min_healthy_percent > 100 {
            return Err(Error::invalid(format!(
                "min_healthy_percent must be 0..100, got {min_healthy_percent}")));
        }
        t.inner.set_locality(Locality { zone, min_healthy_percent });
        Ok(())
    }
}

/// Sets slow start: an instance the table sees after its first listing gets a share that
/// ramps linearly from `floor_percent` (0-100) to full over `window_ms` from the moment the
/// table saw it (Envoy's `slow_start_window`); `window_ms` 0 turns it off. Instances of the
/// first listing are never ramped, nor are picks by hash key. Defaults: 30,000 ms from 10 %
/// for weighted round robin, off for the other policies. Applies at once, also to
/// instances already seen.
#[no_mangle]
pub extern "C" fn etcd_sd_table_set_slow_start(
    table: *const etcd_sd_table,
    window_ms: u64,
    floor_percent: u32,
) -> etcd_sd_result {
    ffi_boundary! {
        // SAFETY: `table` is NULL (refused) or an `etcd_sd_table` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let t = unsafe { try_ref(table, "table") }?;
        if floor_percent > 100 {
            return Err(Error::invalid(format!(
                "floor_percent must be 0..100, got {floor_percent}")));
        }
        t.inner.set_slow_start(SlowStart { window: Duration::from_millis(window_ms), floor_percent });
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
        // SAFETY: `hash_key` is NULL or `hash_key_len` readable bytes the caller lends for the
        // call; `buf` has `buf_len` writable bytes and `out_len` is NULL or writable (the
        // contract above).
        unsafe { pick_into(t, name, None, hash_key, hash_key_len, buf, buf_len, out_len) }
    }
}

/// The body of both picks.
///
/// # Safety
/// `hash_key` is NULL or points to `hash_key_len` readable bytes; `buf` (non-NULL) to
/// `buf_len` writable bytes; `out_len` is NULL or writable; all for the call.
#[allow(clippy::too_many_arguments)]
unsafe fn pick_into(
    t: &etcd_sd_table,
    name: &str,
    selector: Option<&Selector>,
    hash_key: *const c_void,
    hash_key_len: usize,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> PickResult {
    let key = (!hash_key.is_null()).then(|| {
        // SAFETY: `hash_key` is non-NULL here, and the caller lends `hash_key_len` readable
        // bytes at it for the call (this function's contract).
        unsafe { std::slice::from_raw_parts(hash_key.cast::<u8>(), hash_key_len) }
    });
    let copied = t.inner.pick_select_with(name, selector, key, |inst| {
        let a = inst.address_c().as_bytes(); // with its NUL
        if !out_len.is_null() {
            // SAFETY: `out_len` is non-NULL (checked above) and writable for the call (this
            // function's contract).
            unsafe { *out_len = a.len() - 1 };
        }
        if a.len() > buf_len {
            return Err(a.len());
        }
        // SAFETY: `buf` is non-NULL with `buf_len` writable bytes (this function's contract),
        // `a.len() <= buf_len` (checked just above), and `a` is ours, so the two do not
        // overlap.
        unsafe { std::ptr::copy_nonoverlapping(a.as_ptr(), buf.cast::<u8>(), a.len()) };
        Ok(())
    });
    match copied {
        Some(Ok(())) => PickResult::Done,
        Some(Err(need)) => Error::invalid(format!(
            "buffer of {buf_len} bytes is too small for the address ({need} bytes with its NUL)"
        ))
        .into(),
        None => PickResult::NoInstance(match selector {
            None => format!("no instance of service {name:?}"),
            Some(_) => format!("no instance of service {name:?} matches the selector"),
        }),
    }
}

/// What `etcd_sd_table_pick_select` does when no instance matches the selector (draining
/// instances never match). Passed as an integer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum etcd_sd_failover {
    /// No instance: the pick returns `ETCD_SD_NO_INSTANCE`.
    ETCD_SD_FAILOVER_NONE = 0,
    /// Pick among all the service's instances, as without a selector.
    ETCD_SD_FAILOVER_ALL = 1,
    /// Pick among the instances that have none of the selector's keys.
    ETCD_SD_FAILOVER_MISSING_KEY = 2,
}

/// A compiled metadata selector with its failover, for `etcd_sd_table_pick_select`.
/// Immutable: one selector may be used by any number of threads and tables at once. Each has
/// a process-unique identity: a table caches, per service snapshot, the instances each
/// selector chooses (up to 16 selectors per snapshot; more work but are rebuilt per pick),
/// so create a selector once and reuse it rather than per call. Free it with
/// `etcd_sd_selector_free` once no pick uses it.
pub struct etcd_sd_selector {
    inner: Selector,
}

impl Castable for etcd_sd_selector {
    type Ownership = OwnershipBox;
}

/// Compiles `text`: one or more `key=value` separated by commas (`"version=v2,canary=false"`),
/// all of which must equal an instance's metadata for it to match. Whitespace around keys
/// and values is ignored; a value may be empty. `failover` is an `etcd_sd_failover`.
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, an empty selector or term, a term without '=',
/// an empty key, a key given twice, an unknown failover), with the reason in
/// `etcd_sd_last_error()`.
#[no_mangle]
pub extern "C" fn etcd_sd_selector_new(
    text: *const c_char,
    failover: u32,
    out: *mut *mut etcd_sd_selector,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `text` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let text = unsafe { try_str(text, "text") }?;
        let failover = Failover::from_u32(failover)
            .ok_or_else(|| Error::invalid(format!("unknown failover {failover}")))?;
        let inner = Selector::parse(text, failover).map_err(Error::invalid)?;
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_selector { inner }) };
        Ok(())
    }
}

/// Frees a selector. NULL is a no-op. No pick may be using it.
#[no_mangle]
pub extern "C" fn etcd_sd_selector_free(selector: *mut etcd_sd_selector) {
    ffi_boundary! {
        // SAFETY: `selector` is NULL (a no-op) or an `etcd_sd_selector` the library handed out
        // (by `write_out`) that the caller gives back here and never uses again (the header's
        // `_free` contract); `Castable` makes it the Box `write_out` made for this type.
        drop(unsafe { take_box(selector) });
    }
}

/// `etcd_sd_table_pick` among the instances `selector` chooses (NULL: no selector, as
/// `etcd_sd_table_pick`). The rule, on the service's current snapshot:
/// 1. the instances whose metadata has every pair of the selector match;
/// 2. draining instances (metadata `draining=true` or `=1`) never do; with no match left the
///    selector's failover decides (none, all, or those without the selector's keys);
/// 3. with a caller zone (`etcd_sd_table_set_locality`), the matches in that zone are
///    preferred unless fewer than the threshold of them are healthy;
/// 4. the table's policy (or the hash key) picks among those, skipping ejected instances,
///    with slow start.
///
/// Lock-free; allocation-free once the snapshot has met the selector (its first pick on a
/// snapshot computes the matches: O(instances)). Errors as `etcd_sd_table_pick`;
/// `ETCD_SD_NO_INSTANCE` also when nothing matches and the failover gives nothing.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn etcd_sd_table_pick_select(
    table: *const etcd_sd_table,
    service: *const c_char,
    selector: *const etcd_sd_selector,
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
        // SAFETY: `selector` is NULL (no selector) or an `etcd_sd_selector` from its `_new`, not
        // freed yet (the header's contract); it is only read during the call.
        let selector = unsafe { opt_ref(selector) }.map(|s| &s.inner);
        if buf.is_null() {
            return Error::invalid("buf is NULL").into();
        }
        // SAFETY: `hash_key` is NULL or `hash_key_len` readable bytes the caller lends for the
        // call; `buf` has `buf_len` writable bytes and `out_len` is NULL or writable (the
        // contract above).
        unsafe { pick_into(t, name, selector, hash_key, hash_key_len, buf, buf_len, out_len) }
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

/// One metadata pair of an instance, borrowed from an `etcd_sd_instances` snapshot: both
/// strings belong to the snapshot, stay valid until it is freed, and are NUL-terminated.
#[repr(C)]
pub struct etcd_sd_meta_pair {
    pub key: *const c_char,
    pub key_len: usize,
    pub value: *const c_char,
    pub value_len: usize,
}

fn pair_view((k, v): (&str, &str)) -> etcd_sd_meta_pair {
    etcd_sd_meta_pair {
        key: k.as_ptr().cast(),
        key_len: k.len() - 1,
        value: v.as_ptr().cast(),
        value_len: v.len() - 1,
    }
}

/// Instance `i` of a snapshot, or `None` (NULL snapshot, `i` out of range).
///
/// # Safety
/// `instances` is NULL or an `etcd_sd_instances` the caller has not freed.
unsafe fn instance_at<'a>(instances: *const etcd_sd_instances, i: usize) -> Option<&'a Instance> {
    // SAFETY: the caller's promise (this function's contract); only read here.
    unsafe { opt_ref(instances) }.and_then(|s| s.inner.get(i))
}

/// Whether instance `i` of the snapshot is draining (its metadata has `draining=true` or
/// `draining=1`): it stays listed but is never picked for a new call. False when `i` is out
/// of range or `instances` NULL. (A function rather than a field of `etcd_sd_instance`, so
/// that struct keeps its size.)
#[no_mangle]
pub extern "C" fn etcd_sd_instances_draining(
    instances: *const etcd_sd_instances,
    i: usize,
) -> bool {
    ffi_boundary! {
        // SAFETY: `instances` is NULL or an `etcd_sd_instances` the caller has not freed (the
        // header's contract).
        Found(unsafe { instance_at(instances, i) }.is_some_and(Instance::is_draining))
    }
}

/// Number of metadata pairs of instance `i` (0 when out of range or `instances` NULL). The
/// pairs are the value's `key=value` tokens (plain values) or its `Metadata` object's
/// members (JSON values; non-string members as their JSON text), sorted by key, each key
/// once.
#[no_mangle]
pub extern "C" fn etcd_sd_instances_meta_len(
    instances: *const etcd_sd_instances,
    i: usize,
) -> usize {
    ffi_boundary! {
        // SAFETY: `instances` is NULL or an `etcd_sd_instances` the caller has not freed (the
        // header's contract).
        Len(unsafe { instance_at(instances, i) }.map_or(0, |inst| inst.meta_pairs().len()))
    }
}

/// Fills `*out` with metadata pair `j` of instance `i` (in key order); false (and `*out`
/// untouched) when either is out of range or a pointer is NULL. Borrowed from the snapshot:
/// valid until it is freed.
#[no_mangle]
pub extern "C" fn etcd_sd_instances_meta_at(
    instances: *const etcd_sd_instances,
    i: usize,
    j: usize,
    out: *mut etcd_sd_meta_pair,
) -> bool {
    ffi_boundary! {
        // SAFETY: `instances` is NULL or an `etcd_sd_instances` the caller has not freed (the
        // header's contract).
        let Some(inst) = (unsafe { instance_at(instances, i) }) else { return Found(false) };
        let Some(pair) = inst.meta_c(j) else { return Found(false) };
        if out.is_null() {
            return Found(false);
        }
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it writable for the call.
        unsafe { *out = pair_view(pair) };
        Found(true)
    }
}

/// Fills `*out` with the metadata pair of instance `i` whose key is `key` (NUL-terminated);
/// false (and `*out` untouched) when there is none or a pointer is NULL. Borrowed from the
/// snapshot: valid until it is freed. `etcd_sd_instances_meta_get(s, i, "zone", &p)` gives
/// an instance's zone.
#[no_mangle]
pub extern "C" fn etcd_sd_instances_meta_get(
    instances: *const etcd_sd_instances,
    i: usize,
    key: *const c_char,
    out: *mut etcd_sd_meta_pair,
) -> bool {
    ffi_boundary! {
        // SAFETY: `instances` is NULL or an `etcd_sd_instances` the caller has not freed (the
        // header's contract).
        let Some(inst) = (unsafe { instance_at(instances, i) }) else { return Found(false) };
        if key.is_null() || out.is_null() {
            return Found(false);
        }
        // SAFETY: `key` is a non-NULL NUL-terminated string the caller lends for the call (the
        // header's string contract).
        let Ok(key) = (unsafe { try_str(key, "key") }) else { return Found(false) };
        let Some(pair) = inst.meta_get_c(key) else { return Found(false) };
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it writable for the call.
        unsafe { *out = pair_view(pair) };
        Found(true)
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
