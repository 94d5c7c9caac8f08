//! `etcd_sd_discovery`: the C face of [`Discovery`], with function-pointer callbacks.

use crate::discovery::Discovery;
use crate::event::{Event, EventKind, EventSink};
use crate::ffi::args::{check_out, take_box, try_str, write_out, Castable, OwnershipBox, UserData};
use crate::ffi::options::{etcd_sd_options, options_ref};
use crate::ffi::result::etcd_sd_result;
use crate::options::Options;
use crate::Result;
use std::os::raw::{c_char, c_void};

/// Called for each put or delete under a discovery's prefix.
///
/// `key`/`value` point to `key_len`/`value_len` bytes, each also followed by a NUL byte; they
/// are valid only during the call (copy what you keep). For a delete, `value` is the value
/// the key had before it was deleted. `user_data` is what was given to `_new`.
pub type etcd_sd_event_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        key: *const c_char,
        key_len: usize,
        value: *const c_char,
        value_len: usize,
    ),
>;

/// Watches every key under a prefix and reports puts and deletes through callbacks.
///
/// Threading: the initial listing's `on_put` calls run on the thread that calls `_new`,
/// before it returns. Every later callback runs on one of the library's callback threads
/// (`etcd-sd-cb`, two for the whole process), never on the thread that drives keep-alives,
/// never two at once for one discovery, in etcd revision order. A callback may block (only
/// this discovery's events wait) and may call any `etcd_sd_*` function, including
/// `etcd_sd_discovery_free` on its own discovery (see there). With
/// `etcd_sd_options_set_inline_callbacks` the later callbacks run on the I/O thread instead,
/// and must not block (see there for the rules).
pub struct etcd_sd_discovery {
    /// Held for its `Drop`, which stops the watch and the callbacks.
    pub(crate) inner: Discovery,
}

impl Castable for etcd_sd_discovery {
    type Ownership = OwnershipBox;
}

struct CallbackSink {
    on_put: etcd_sd_event_fn,
    on_del: etcd_sd_event_fn,
    user_data: UserData,
}

thread_local! {
    /// The buffer each callback's key and value are copied into (key, NUL, value, NUL),
    /// reused across callbacks on this thread: no allocation per event.
    static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl EventSink for CallbackSink {
    fn on_event(&self, event: &Event) {
        let f = match event.kind {
            EventKind::Put => self.on_put,
            EventKind::Delete => self.on_del,
        };
        let Some(f) = f else { return };
        let call = |buf: &mut Vec<u8>| {
            let (k, v) = (&event.key, &event.value);
            buf.clear();
            buf.extend_from_slice(k);
            buf.push(0);
            buf.extend_from_slice(v);
            buf.push(0);
            let (key, value) = buf.split_at(k.len() + 1);
            // SAFETY: `f` and `user_data` were given to `_new` by the caller, who vouched for
            // their use from our callback threads until the discovery is freed (the header's
            // contract for `etcd_sd_event_fn`); `key` and `value` are NUL-terminated slices of
            // `buf`, alive for the whole call.
            unsafe {
                f(
                    self.user_data.get(),
                    key.as_ptr().cast(),
                    k.len(),
                    value.as_ptr().cast(),
                    v.len(),
                )
            };
        };
        BUF.with(|b| match b.try_borrow_mut() {
            Ok(mut buf) => {
                call(&mut buf);
                // Do not keep a huge value's buffer around for good.
                if buf.capacity() > 64 << 10 {
                    *buf = Vec::new();
                }
            }
            // A callback that creates a discovery delivers its listing on this same thread.
            Err(_) => call(&mut Vec::new()),
        });
    }
}

/// Lists every key under `prefix` (etcd prefix semantics: "/svc" also matches "/svcX/a"),
/// calls `on_put` for each in key order, then watches the prefix from the listing's revision
/// + 1, so no change is lost or reported twice. On success writes the discovery to `*out`.
///
/// `on_put` and `on_del` may be NULL (those events are ignored). `user_data` is passed to
/// them untouched; it must stay valid until `etcd_sd_discovery_free` returns.
/// Blocks until the listing is delivered. How long: the first page (the first 5,000 keys)
/// at most the connect timeout (5 s here); a larger prefix is read in later pages (5,000 to
/// 250,000 keys each, sized from the first page), each of which may take up to 10 s more
/// (retried across members); plus the time the `on_put` calls themselves take. So a prefix
/// of at most 5,000 keys is bounded by the connect timeout, and one of n pages by the connect
/// timeout + (n - 1) x 10 s. If a later page fails, the keys already reported stay reported
/// and the watch reads the prefix again and reports the difference.
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, empty prefix, bad endpoints, not UTF-8),
/// `ETCD_SD_UNAVAILABLE`, `ETCD_SD_ETCD_ERROR`.
#[no_mangle]
pub extern "C" fn etcd_sd_discovery_new(
    endpoints: *const c_char,
    prefix: *const c_char,
    on_put: etcd_sd_event_fn,
    on_del: etcd_sd_event_fn,
    user_data: *mut c_void,
    out: *mut *mut etcd_sd_discovery,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `endpoints` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let opts = Options::new(unsafe { try_str(endpoints, "endpoints") }?)?;
        // SAFETY: `prefix` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let prefix = unsafe { try_str(prefix, "prefix") }?;
        new_discovery(&opts, prefix, on_put, on_del, user_data, out)
    }
}

/// Like `etcd_sd_discovery_new`, with every setting taken from `opts` (which may be freed
/// afterwards).
#[no_mangle]
pub extern "C" fn etcd_sd_discovery_new_with(
    opts: *const etcd_sd_options,
    prefix: *const c_char,
    on_put: etcd_sd_event_fn,
    on_del: etcd_sd_event_fn,
    user_data: *mut c_void,
    out: *mut *mut etcd_sd_discovery,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `opts` is NULL (refused) or an `etcd_sd_options` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let opts = unsafe { options_ref(opts) }?;
        // SAFETY: `prefix` is NULL (refused) or a NUL-terminated string the caller lends for the
        // call (the header's string contract).
        let prefix = unsafe { try_str(prefix, "prefix") }?;
        new_discovery(opts, prefix, on_put, on_del, user_data, out)
    }
}

fn new_discovery(
    opts: &Options,
    prefix: &str,
    on_put: etcd_sd_event_fn,
    on_del: etcd_sd_event_fn,
    user_data: *mut c_void,
    out: *mut *mut etcd_sd_discovery,
) -> Result<()> {
    let sink = CallbackSink {
        on_put,
        on_del,
        user_data: UserData::new(user_data),
    };
    let inner = Discovery::new(opts, prefix, sink)?;
    // SAFETY: both callers checked `out` non-NULL with check_out before any work; the caller
    // passes it as a writable slot for the new handle.
    unsafe { write_out(out, etcd_sd_discovery { inner }) };
    Ok(())
}

/// Stops watching and frees the discovery. NULL is a no-op.
///
/// When it returns, no callback of this discovery is running or will run, so `user_data` may
/// be freed. Two exceptions, where waiting would never end; in both it returns at once, no
/// further callback of this discovery starts, and the one in progress finishes later:
/// - called from inside one of this discovery's own callbacks (the current callback is the
///   caller);
/// - called from inside a callback of another discovery (or registry) while a callback of
///   this one is running on another thread and is itself waiting, directly or through
///   others, in an `_free` for the caller's callback to return: e.g. discoveries A and B
///   whose callbacks free each other at the same time. This discovery's callback then
///   finishes after the caller's callback returns: free `user_data` only after that (for
///   instance, from the callback in progress itself).
///
/// Must not be called twice on the same pointer.
#[no_mangle]
pub extern "C" fn etcd_sd_discovery_free(discovery: *mut etcd_sd_discovery) {
    ffi_boundary! {
        // SAFETY: `discovery` is NULL (a no-op) or an `etcd_sd_discovery` the library handed out
        // (by `write_out`) that the caller gives back here and never uses again (the header's
        // `_free` contract); `Castable` makes it the Box `write_out` made for this type.
        drop(unsafe { take_box(discovery) });
    }
}
