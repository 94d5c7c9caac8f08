//! `etcd_sd_metrics_text`: the process's counters as Prometheus text ([`crate::metrics`]).

use crate::error::Error;
use crate::ffi::result::etcd_sd_result;
use std::os::raw::c_char;

/// Writes the process's counters in the Prometheus text exposition format (version 0.0.4:
/// serve it with `Content-Type: text/plain; version=0.0.4`): connections, leases,
/// registries, watches and service tables, with HELP and TYPE lines and stable names and
/// labels (listed in the README's "Metrics").
///
/// As `snprintf`: writes at most `capacity` bytes to `buf`, always NUL-terminated when
/// `capacity > 0`, and the length of the whole text (without the NUL) to `*out_len`; the
/// text was cut when `*out_len >= capacity`, so call again with a buffer of `*out_len + 1`
/// bytes. `buf` may be NULL when `capacity` is 0 (to ask the length). Does no I/O; takes
/// about a microsecond per instance of the tables. Any thread.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (`out_len` NULL, `buf` NULL with `capacity > 0`).
#[no_mangle]
pub extern "C" fn etcd_sd_metrics_text(
    buf: *mut c_char,
    capacity: usize,
    out_len: *mut usize,
) -> etcd_sd_result {
    ffi_boundary! {
        if out_len.is_null() {
            return Err(Error::invalid("out_len is NULL"));
        }
        if buf.is_null() && capacity > 0 {
            return Err(Error::invalid("buf is NULL"));
        }
        let text = crate::metrics::text();
        if capacity > 0 {
            let n = text.len().min(capacity - 1);
            // SAFETY: `buf` is non-NULL (checked above) with `capacity` writable bytes (the
            // caller's promise); `n + 1 <= capacity`, and `text` is ours, so no overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
                buf.add(n).write(0);
            }
        }
        // SAFETY: `out_len` is non-NULL (checked above) and the caller passes it writable.
        unsafe { out_len.write(text.len()) };
        Ok(())
    }
}
