//! Checking what C hands us: NULL pointers, C strings that must be UTF-8, out-params. Each
//! helper returns an `InvalidArgument` naming the parameter, for use with `?` in a boundary.

use crate::error::{Error, Result};
use std::ffi::CStr;
use std::os::raw::{c_char, c_void};

/// `&T` from a pointer the caller lends us, or an error naming `what` when it is NULL.
///
/// # Safety
/// `p` is NULL or points to a live `T` that nothing mutates during the call.
pub(crate) unsafe fn try_ref<'a, T>(p: *const T, what: &str) -> Result<&'a T> {
    p.as_ref()
        .ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

/// A UTF-8 `&str` from a NUL-terminated C string.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives the call.
pub(crate) unsafe fn try_str<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    CStr::from_ptr(p)
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
    Ok(std::slice::from_raw_parts(p.cast(), len))
}

/// Checks an out-param before any work is done, so a NULL one fails early.
pub(crate) fn check_out<T>(out: *mut *mut T, what: &str) -> Result<()> {
    if out.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    Ok(())
}

/// Moves `value` to the heap and writes it to `out` (checked non-NULL by [`check_out`]).
///
/// # Safety
/// `out` is non-NULL and writable.
pub(crate) unsafe fn write_out<T>(out: *mut *mut T, value: T) {
    *out = Box::into_raw(Box::new(value));
}

/// Takes back ownership of a handle made by [`write_out`]; NULL gives `None`.
///
/// # Safety
/// `p` is NULL or came from `write_out` and was not freed yet.
pub(crate) unsafe fn take_box<T>(p: *mut T) -> Option<Box<T>> {
    (!p.is_null()).then(|| Box::from_raw(p))
}

/// A caller's `user_data`, carried to the threads that run its callbacks. By passing it the
/// caller vouches that its callbacks may use it from those threads (the header says which);
/// the library itself never dereferences it.
pub(crate) struct UserData(*mut c_void);

unsafe impl Send for UserData {}
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
