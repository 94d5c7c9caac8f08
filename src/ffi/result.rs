//! The result enum every fallible function returns, and the per-thread last-error message.

use crate::error::Error;
use std::cell::RefCell;
use std::ffi::CString;
use std::os::raw::{c_char, c_int};

/// What an `etcd_sd_*` call returned. Values are fixed; new ones are only ever appended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum etcd_sd_result {
    /// Success.
    ETCD_SD_OK = 0,
    /// A NULL pointer, an empty or malformed string, invalid UTF-8, a value out of range.
    ETCD_SD_INVALID_ARGUMENT = 1,
    /// No etcd endpoint answered (refused, unreachable, no leader) within the timeout.
    ETCD_SD_UNAVAILABLE = 2,
    /// etcd was reached but did not answer within the request timeout.
    ETCD_SD_TIMEOUT = 3,
    /// etcd refused the request (permission denied, lease not found, ...).
    ETCD_SD_ETCD_ERROR = 4,
    /// The object was already closed.
    ETCD_SD_CLOSED = 5,
    /// A bug in etcd-sd (for example a caught panic). Please report it.
    ETCD_SD_INTERNAL = 6,
    /// etcd refused the user name or password, or the user lacks permission on the key or
    /// prefix.
    ETCD_SD_AUTH = 7,
    /// The TLS handshake failed: untrusted, expired or mismatched certificate, missing client
    /// certificate, or TLS spoken to a plain port. (Plain HTTP to a TLS port cannot be told
    /// from a failing server: it is `ETCD_SD_UNAVAILABLE`, with a hint in the message.)
    ETCD_SD_TLS = 8,
    /// The key or lease does not exist: `ETCD_SD_PUT_IF_PRESENT` on a missing key, a revoke
    /// of an unknown or expired lease.
    ETCD_SD_NOT_FOUND = 9,
    /// The key exists: `ETCD_SD_PUT_IF_ABSENT` on a key that is there.
    ETCD_SD_EXISTS = 10,
    /// Service table: the service has no instance to pick (none registered, not declared, or
    /// every instance gone).
    ETCD_SD_NO_INSTANCE = 11,
    /// A lock or a leadership is lost (its lease expired or was revoked, or its key was
    /// deleted), or a keep-alive's lease was revoked by this process: the library never takes
    /// them again by itself.
    ETCD_SD_LOST = 12,
}

impl From<&Error> for etcd_sd_result {
    fn from(e: &Error) -> Self {
        match e {
            Error::InvalidArgument(_) => etcd_sd_result::ETCD_SD_INVALID_ARGUMENT,
            Error::Unavailable(_) => etcd_sd_result::ETCD_SD_UNAVAILABLE,
            Error::Timeout(..) => etcd_sd_result::ETCD_SD_TIMEOUT,
            Error::Etcd(_) => etcd_sd_result::ETCD_SD_ETCD_ERROR,
            Error::Closed(_) => etcd_sd_result::ETCD_SD_CLOSED,
            Error::Internal(_) => etcd_sd_result::ETCD_SD_INTERNAL,
            Error::Auth(_) => etcd_sd_result::ETCD_SD_AUTH,
            Error::Tls(_) => etcd_sd_result::ETCD_SD_TLS,
            Error::NotFound(_) => etcd_sd_result::ETCD_SD_NOT_FOUND,
            Error::Exists(_) => etcd_sd_result::ETCD_SD_EXISTS,
            Error::Lost(_) => etcd_sd_result::ETCD_SD_LOST,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `e` as this thread's last error and returns its code.
pub(crate) fn fail(e: &Error) -> etcd_sd_result {
    let msg = CString::new(e.to_string().replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = msg);
    e.into()
}

/// Records `msg` as this thread's last error, for a code with no [`Error`] variant
/// (`ETCD_SD_NO_INSTANCE`), and returns the code.
pub(crate) fn fail_code(code: etcd_sd_result, msg: &str) -> etcd_sd_result {
    let msg = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = msg);
    code
}

/// The message of the last call that failed on this thread, or "" if none has.
///
/// The string belongs to the library and stays valid until the next failing `etcd_sd_*` call
/// on the same thread; copy it if you need it longer. Never NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_last_error() -> *const c_char {
    ffi_boundary! {
        LAST_ERROR.with(|l| l.borrow().as_ptr())
    }
}

/// The name of a result code (an `etcd_sd_result` value), e.g. "ETCD_SD_UNAVAILABLE", or
/// "unknown" for a value that is not one: a static string, never NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_result_name(result: c_int) -> *const c_char {
    let name: &'static [u8] = match result {
        0 => b"ETCD_SD_OK\0",
        1 => b"ETCD_SD_INVALID_ARGUMENT\0",
        2 => b"ETCD_SD_UNAVAILABLE\0",
        3 => b"ETCD_SD_TIMEOUT\0",
        4 => b"ETCD_SD_ETCD_ERROR\0",
        5 => b"ETCD_SD_CLOSED\0",
        6 => b"ETCD_SD_INTERNAL\0",
        7 => b"ETCD_SD_AUTH\0",
        8 => b"ETCD_SD_TLS\0",
        9 => b"ETCD_SD_NOT_FOUND\0",
        10 => b"ETCD_SD_EXISTS\0",
        11 => b"ETCD_SD_NO_INSTANCE\0",
        _ => b"unknown\0",
    };
    name.as_ptr().cast()
}

/// The library version, e.g. "0.1.0": a static string, never NULL.
#[no_mangle]
pub extern "C" fn etcd_sd_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
