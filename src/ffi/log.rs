//! Routing the library's log to the program.

use crate::ffi::args::UserData;
use crate::ffi::result::etcd_sd_result;
use log::{Level, LevelFilter};
use std::os::raw::{c_char, c_void};
use std::sync::Arc;

/// Severity of a log record, and the threshold set by `etcd_sd_set_log_level`.
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
/// only during the call. May be called from any thread, the library's I/O thread included, so
/// it must be quick, thread-safe, and must not call any `etcd_sd_*` function.
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
                unsafe { f(ud.get(), to_c_level(level), text.as_ptr().cast(), msg.len()) };
            }) as crate::log::LogSink
        });
        crate::log::set_sink(sink);
        Ok(())
    }
}

/// Sets the most verbose level emitted (default: from `ETCD_SD_LOG`, else WARN).
#[no_mangle]
pub extern "C" fn etcd_sd_set_log_level(level: etcd_sd_log_level) -> etcd_sd_result {
    ffi_boundary! {
        crate::log::set_level(match level {
            etcd_sd_log_level::ETCD_SD_LOG_OFF => LevelFilter::Off,
            etcd_sd_log_level::ETCD_SD_LOG_ERROR => LevelFilter::Error,
            etcd_sd_log_level::ETCD_SD_LOG_WARN => LevelFilter::Warn,
            etcd_sd_log_level::ETCD_SD_LOG_INFO => LevelFilter::Info,
            etcd_sd_log_level::ETCD_SD_LOG_DEBUG => LevelFilter::Debug,
        });
        Ok(())
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
