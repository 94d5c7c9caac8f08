//! `etcd_sd_watch`: the C face of [`Watcher`], raw events of a key or prefix.

use crate::event::EventKind;
use crate::ffi::args::{check_out, take_box, try_str, write_out, Castable, OwnershipBox, UserData};
use crate::ffi::client::{client_ref, etcd_sd_client};
use crate::ffi::kvs::{etcd_sd_kv, view};
use crate::ffi::result::etcd_sd_result;
use crate::types::KeyValue;
use crate::watch::{Batch, Watcher};
use std::os::raw::{c_char, c_void};

/// What happened to a key.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum etcd_sd_watch_event_type {
    ETCD_SD_WATCH_PUT = 0,
    ETCD_SD_WATCH_DELETE = 1,
}

/// One change seen by a watch. For a delete, `kv` holds the key and the delete's revision
/// (`mod_revision`) with an empty value, and `prev_kv` the value the key had.
#[repr(C)]
pub struct etcd_sd_watch_event {
    pub r#type: etcd_sd_watch_event_type,
    pub kv: etcd_sd_kv,
    /// Whether `prev_kv` is set: the key's previous value, as the watch last reported it (false
    /// for a PUT that created the key). It comes from the watch's own table, not from etcd, so
    /// only its key and value are set (revisions, version and lease are 0).
    pub has_prev_kv: bool,
    pub prev_kv: etcd_sd_kv,
}

/// Called with the events of one etcd watch response, in revision order.
///
/// `events` points to `n_events` events, valid only during the call (copy what you keep).
/// `revision` is the store revision the batch brings the watch to. `compact_revision` is 0,
/// except when the watch's revision was compacted: then this call carries the difference
/// between what the watch had reported and what etcd holds now (read again), as ordinary
/// PUT and DELETE events with `prev_kv` (possibly none), and `compact_revision` is the oldest
/// revision etcd kept.
pub type etcd_sd_watch_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        events: *const etcd_sd_watch_event,
        n_events: usize,
        revision: i64,
        compact_revision: i64,
    ),
>;

/// Watches a key or every key under a prefix and reports each change through a callback.
///
/// It never goes silent: a broken stream resumes from the last revision seen (nothing lost,
/// nothing twice, on another member if needed); after a compaction, or when etcd was replaced
/// (new cluster id, revisions going backwards), it reads the key or prefix again and reports
/// the difference.
///
/// Threading: callbacks run on the library's callback threads (`etcd-sd-cb`), never two at
/// once for one watch, in revision order, never on the I/O thread. A callback may block (only
/// this watch waits) and may call any `etcd_sd_*` function, including `etcd_sd_watch_free` on
/// its own watch. With `etcd_sd_options_set_inline_callbacks` (on the client's options) they
/// run on the I/O thread instead, and must not block (see there for the rules).
pub struct etcd_sd_watch {
    pub(crate) inner: Watcher,
}

impl Castable for etcd_sd_watch {
    type Ownership = OwnershipBox;
}

/// Starts watching `key` (every key under it when `prefix` is true) and writes the watch to
/// `*out`.
///
/// `start_revision` > 0: report changes from that revision on. 0: from now -- except that
/// when the same key or prefix was read by `etcd_sd_client_range` / `etcd_sd_client_get`
/// through a client with the same settings less than a minute ago, the watch continues right
/// after that read, so list-then-watch loses nothing in between. Blocks for one read of the
/// key or prefix (at most the connect timeout), as it is now or, with a `start_revision`, as
/// it was just before it: that read gives the events their `prev_kv`. `user_data` is passed to `on_events` and must
/// stay valid until `etcd_sd_watch_free` returns.
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (NULL, empty key, negative revision, not UTF-8),
/// `ETCD_SD_UNAVAILABLE` (unless the options ask to wait for etcd), `ETCD_SD_AUTH`.
#[no_mangle]
pub extern "C" fn etcd_sd_watch_new(
    client: *const etcd_sd_client,
    key: *const c_char,
    prefix: bool,
    start_revision: i64,
    on_events: etcd_sd_watch_fn,
    user_data: *mut c_void,
    out: *mut *mut etcd_sd_watch,
) -> etcd_sd_result {
    ffi_boundary! {
        check_out(out, "out")?;
        // SAFETY: `client` is NULL (refused) or an `etcd_sd_client` from its `_new`, not freed yet
        // (the header's contract); it is only read during the call.
        let c = unsafe { client_ref(client) }?;
        // SAFETY: `key` is NULL (refused) or a NUL-terminated string the caller lends for the call
        // (the header's string contract).
        let key = unsafe { try_str(key, "key") }?;
        let user_data = UserData::new(user_data);
        let sink = Box::new(move |b: &Batch| {
            if let Some(f) = on_events {
                deliver(f, &user_data, b);
            }
        });
        let inner = Watcher::new(c, key.as_bytes(), prefix, start_revision, sink)?;
        // SAFETY: `out` is non-NULL (checked above) and the caller passes it as a writable slot for
        // the new handle.
        unsafe { write_out(out, etcd_sd_watch { inner }) };
        Ok(())
    }
}

/// Copies of a key-value with the NUL terminators the C view needs.
fn terminated(kv: &KeyValue) -> KeyValue {
    let mut c = kv.clone();
    c.key.push(0);
    c.value.push(0);
    c
}

fn deliver(
    f: unsafe extern "C" fn(*mut c_void, *const etcd_sd_watch_event, usize, i64, i64),
    user_data: &UserData,
    b: &Batch,
) {
    let owned: Vec<(KeyValue, Option<KeyValue>)> = b
        .events
        .iter()
        .map(|e| (terminated(&e.kv), e.prev.as_ref().map(terminated)))
        .collect();
    let empty = terminated(&KeyValue::default());
    let events: Vec<etcd_sd_watch_event> = b
        .events
        .iter()
        .zip(&owned)
        .map(|(e, (kv, prev))| etcd_sd_watch_event {
            r#type: match e.kind {
                EventKind::Put => etcd_sd_watch_event_type::ETCD_SD_WATCH_PUT,
                EventKind::Delete => etcd_sd_watch_event_type::ETCD_SD_WATCH_DELETE,
            },
            kv: view(kv),
            has_prev_kv: prev.is_some(),
            prev_kv: view(prev.as_ref().unwrap_or(&empty)),
        })
        .collect();
    // SAFETY: `f` and `user_data` were given to `etcd_sd_watch_new`, the caller vouching for
    // calls from a callback thread until the watch is freed (the `etcd_sd_watch_fn`
    // contract); `events` and the strings its views point into (`owned`, `empty`) live until
    // the call returns.
    unsafe {
        f(
            user_data.get(),
            events.as_ptr(),
            events.len(),
            b.revision,
            b.compact_revision,
        )
    };
}

/// Stops the watch and frees it. NULL is a no-op.
///
/// When it returns, no callback of this watch is running or will run, so `user_data` may be
/// freed. Exception: called from inside one of this watch's own callbacks, it returns at once
/// (the current callback is the caller) and no further callback starts.
#[no_mangle]
pub extern "C" fn etcd_sd_watch_free(watch: *mut etcd_sd_watch) {
    ffi_boundary! {
        // SAFETY: `watch` is NULL (a no-op) or an `etcd_sd_watch` the library handed out (by
        // `write_out`) that the caller gives back here and never uses again (the header's `_free`
        // contract); `Castable` makes it the Box `write_out` made for this type.
        drop(unsafe { take_box(watch) });
    }
}
