//! Checking what C hands us: NULL pointers, C strings that must be UTF-8, out-params. Each
//! helper returns an `InvalidArgument` naming the parameter, for use with `?` in a boundary.
//!
//! Handles: every opaque C type (`etcd_sd_client`, `etcd_sd_kvs`, ...) implements [`Castable`],
//! which says how its memory is owned. The helpers that borrow a handle from a C pointer
//! ([`try_ref`], [`opt_ref`], [`try_mut`]), hand one out ([`write_out`]) or free one
//! ([`take_box`]) accept only such types, and only with the ownership they declare: a `_free`
//! cannot drop a pointer of another type, and no `&T` is made of a pointer to a type that is
//! not a handle (raw bytes, a caller's struct).

use crate::error::{Error, Result};
use std::ffi::CStr;
use std::os::raw::{c_char, c_void};

/// How a handle's memory is owned: made by `Box::into_raw` ([`write_out`]) and freed, once, by
/// `Box::from_raw` ([`take_box`]). A handle of this kind may also be lent out as a view into
/// another one (`etcd_sd_txn_response_kvs`); the header says such views are never freed.
pub(crate) enum OwnershipBox {}

/// The ownership kinds a [`Castable`] may declare (sealed: only those defined here).
pub(crate) trait Ownership: sealed::Sealed {}
impl Ownership for OwnershipBox {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::ffi::args::OwnershipBox {}
}

/// An opaque C handle type, as rustls-ffi's `Castable`: the type C sees by pointer is the Rust
/// struct itself (cbindgen emits it as an incomplete type), and `Ownership` says how its
/// memory is owned. Implemented once, beside each struct:
///
/// ```ignore
/// impl Castable for etcd_sd_client {
///     type Ownership = OwnershipBox;
/// }
/// ```
pub(crate) trait Castable {
    type Ownership: Ownership;
}

/// `&T` from a handle the caller lends us, or an error naming `what` when it is NULL.
///
/// # Safety
/// `p` is NULL or points to a live `T` (a handle not freed yet, or a view into one) that
/// nothing mutates during the call, nor for as long as the caller keeps the result.
pub(crate) unsafe fn try_ref<'a, T: Castable>(p: *const T, what: &str) -> Result<&'a T> {
    // SAFETY: `p` is NULL (refused here) or a live, unmutated `T`: this fn's contract.
    unsafe { p.as_ref() }.ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

/// `&T` from a handle the caller lends us, `None` when it is NULL: for getters whose NULL
/// answer is a documented value (0, NULL) rather than an error.
///
/// # Safety
/// As [`try_ref`].
pub(crate) unsafe fn opt_ref<'a, T: Castable>(p: *const T) -> Option<&'a T> {
    // SAFETY: `p` is NULL (gives `None`) or a live, unmutated `T`: this fn's contract.
    unsafe { p.as_ref() }
}

/// `&mut T` from a handle the caller lends us for the call, or an error naming `what` when it
/// is NULL. Only for Box-owned handles: the caller owns the one allocation.
///
/// # Safety
/// `p` is NULL or points to a live `T` made by [`write_out`] that no other thread uses during
/// the call (the header makes such a handle one-thread-at-a-time).
pub(crate) unsafe fn try_mut<'a, T: Castable<Ownership = OwnershipBox>>(
    p: *mut T,
    what: &str,
) -> Result<&'a mut T> {
    // SAFETY: `p` is NULL (refused here) or a live `T` used by this thread only: this fn's
    // contract.
    unsafe { p.as_mut() }.ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

/// A UTF-8 `&str` from a NUL-terminated C string.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives the call.
pub(crate) unsafe fn try_str<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: `p` is not NULL (checked above), so by this fn's contract it points to a
    // NUL-terminated string that outlives the call.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|e| Error::invalid(format!("{what} is not valid UTF-8 ({e})")))
}

/// `len` bytes at `p` (NULL allowed when `len` is 0), or an error naming `what`.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that outlive the call.
pub(crate) unsafe fn try_bytes<'a>(p: *const c_char, len: usize, what: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: `p` is non-NULL (checked above) and `len > 0`, so by this fn's contract it
    // points to `len` readable bytes that outlive the call.
    Ok(unsafe { std::slice::from_raw_parts(p.cast(), len) })
}

/// Checks an out-param before any work is done, so a NULL one fails early.
pub(crate) fn check_out<T>(out: *mut *mut T, what: &str) -> Result<()> {
    if out.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    Ok(())
}

/// Moves `value` to the heap and writes it to `out` (checked non-NULL by [`check_out`]). The
/// caller now owns it and frees it with the type's `_free` ([`take_box`]).
///
/// # Safety
/// `out` is non-NULL, aligned and writable (what it held before is overwritten, not freed).
pub(crate) unsafe fn write_out<T: Castable<Ownership = OwnershipBox>>(out: *mut *mut T, value: T) {
    // SAFETY: `out` is non-NULL, aligned and writable: this fn's contract.
    unsafe { out.write(Box::into_raw(Box::new(value))) };
}

/// Takes back ownership of a handle made by [`write_out`]; NULL gives `None`.
///
/// # Safety
/// `p` is NULL or came from `write_out` for this same `T` and was not freed yet (not a view
/// into another handle); nothing uses it afterwards.
pub(crate) unsafe fn take_box<T: Castable<Ownership = OwnershipBox>>(p: *mut T) -> Option<Box<T>> {
    // SAFETY: a non-NULL `p` came from `Box::into_raw` of a `Box<T>` in `write_out` and is
    // freed only here, once: this fn's contract.
    (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
}

/// A caller's `user_data`, carried to the threads that run its callbacks. By passing it the
/// caller vouches that its callbacks may use it from those threads (the header says which);
/// the library itself never dereferences it.
pub(crate) struct UserData(*mut c_void);

// SAFETY: the library never dereferences the pointer, only hands it back to the caller's
// callbacks; by passing it with them the caller vouched that those may use it from our threads.
unsafe impl Send for UserData {}
// SAFETY: as for `Send`: shared access only copies the pointer out (`get`), for the callbacks.
unsafe impl Sync for UserData {}

impl UserData {
    pub(crate) fn new(p: *mut c_void) -> Self {
        UserData(p)
    }

    // A method, so closures capture the whole wrapper rather than the raw pointer field.
    pub(crate) fn get(&self) -> *mut c_void {
        self.0
    }
}
