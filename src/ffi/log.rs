//! Routing the library's log to the program.

use crate::error::Error;
use crate::ffi::args::UserData;
use crate::ffi::result::etcd_sd_result;
use log::{Level, LevelFilter};
use std::os::raw::{c_char, c_void};
use std::sync::Arc;

/// Severity of a log record, and the threshold set by `etcd_sd_set_log_level` (which takes it
/// as a `uint32_t`: C may pass any integer; one that is not a value here is refused with
/// `ETCD_SD_INVALID_ARGUMENT`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum etcd_sd_log_level {
    ETCD_SD_LOG_OFF = 0,
    ETCD_SD_LOG_ERROR = 1,
    ETCD_SD_LOG_WARN = 2,
    ETCD_SD_LOG_INFO = 3,
    ETCD_SD_LOG_DEBUG = 4,
}

/// Receives one log record: `message` points to `message_len` bytes followed by a NUL, valid
/// only during the call. Called only on the library's logging thread (`etcd-sd-log`), one
/// record at a time, in the order they were logged; never on the I/O thread. It may block
/// (only logging waits: beyond 1,024 queued records, records are dropped and counted, see
/// `etcd_sd_process_stats`) and may call `etcd_sd_*` functions, `etcd_sd_set_logger`
/// included (records they log are queued behind the current one).
pub type etcd_sd_log_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: etcd_sd_log_level,
        message: *const c_char,
        message_len: usize,
    ),
>;

/// Sends the library's log records to `log_fn` instead of stderr; NULL restores stderr.
/// `user_data` is passed to `log_fn` untouched and must stay valid until the logger is
/// replaced. Which records are emitted is set by `ETCD_SD_LOG` or `etcd_sd_set_log_level`.
/// Records are written (to stderr or `log_fn`) by the logging thread, shortly after they are
/// logged; records still queued when the logger is replaced go to the new one.
///
/// When it returns, the previous `log_fn` is not running and will not be called again, so its
/// `user_data` may be freed: it waits for a call in progress. Exception: called from inside
/// the previous `log_fn` itself, it returns at once and that call is its last. Do not call it
/// while holding a lock that your `log_fn` takes.
#[no_mangle]
pub extern "C" fn etcd_sd_set_logger(
    log_fn: etcd_sd_log_fn,
    user_data: *mut c_void,
) -> etcd_sd_result {
    ffi_boundary! {
        let sink = log_fn.map(|f| {
            let ud = UserData::new(user_data);
            Arc::new(move |level: Level, msg: &str| {
                let mut text = Vec::with_capacity(msg.len() + 1);
                text.extend_from_slice(msg.as_bytes());
                text.push(0);
                // SAFETY: `f` and `user_data` were given to `etcd_sd_set_logger`, the caller
                // vouching for calls from the logging thread until the logger is replaced (the
                // `etcd_sd_log_fn` contract; `set_sink` waits out a call in progress);
                // `text` holds `msg.len()` bytes and a NUL, alive for the call.
                unsafe { f(ud.get(), to_c_level(level), text.as_ptr().cast(), msg.len()) };
            }) as crate::log::LogSink
        });
        crate::log::set_sink(sink);
        Ok(())
    }
}

/// Sets the most verbose level emitted (default: from `ETCD_SD_LOG`, else WARN). `level` is an
/// `etcd_sd_log_level` value.
///
/// Errors: `ETCD_SD_INVALID_ARGUMENT` (not an `etcd_sd_log_level` value; the level is
/// unchanged).
#[no_mangle]
pub extern "C" fn etcd_sd_set_log_level(level: u32) -> etcd_sd_result {
    ffi_boundary! {
        crate::log::set_level(level_filter(level)?);
        Ok(())
    }
}

/// An `etcd_sd_log_level` from C: any integer may arrive, so it is matched as one.
fn level_filter(level: u32) -> Result<LevelFilter, Error> {
    const OFF: u32 = etcd_sd_log_level::ETCD_SD_LOG_OFF as u32;
    const ERROR: u32 = etcd_sd_log_level::ETCD_SD_LOG_ERROR as u32;
    const WARN: u32 = etcd_sd_log_level::ETCD_SD_LOG_WARN as u32;
    const INFO: u32 = etcd_sd_log_level::ETCD_SD_LOG_INFO as u32;
    const DEBUG: u32 = etcd_sd_log_level::ETCD_SD_LOG_DEBUG as u32;
    match level {
        OFF => Ok(LevelFilter::Off),
        ERROR => Ok(LevelFilter::Error),
        WARN => Ok(LevelFilter::Warn),
        INFO => Ok(LevelFilter::Info),
        DEBUG => Ok(LevelFilter::Debug),
        l => Err(Error::invalid(format!(
            "unknown log level {l} (not an etcd_sd_log_level: 0 OFF to 4 DEBUG)"
        ))),
    }
}

fn to_c_level(level: Level) -> etcd_sd_log_level {
    match level {
        Level::Error => etcd_sd_log_level::ETCD_SD_LOG_ERROR,
        Level::Warn => etcd_sd_log_level::ETCD_SD_LOG_WARN,
        Level::Info => etcd_sd_log_level::ETCD_SD_LOG_INFO,
        Level::Debug | Level::Trace => etcd_sd_log_level::ETCD_SD_LOG_DEBUG,
    }
}
