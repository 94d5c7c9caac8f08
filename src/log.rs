//! Logging: the library logs through the `log` facade; this sink writes our records to stderr
//! (default) or hands them to a callback the program installs. The level comes from the
//! `ETCD_SD_LOG` environment variable (`off|error|warn|info|debug`, default `warn`) and can be
//! changed at run time.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::sync::{Arc, Once, RwLock};

/// Where records go when the program installed its own sink.
pub type LogSink = Arc<dyn Fn(Level, &str) + Send + Sync>;

static INIT: Once = Once::new();
static SINK: RwLock<Option<LogSink>> = RwLock::new(None);
static LOGGER: Logger = Logger;

struct Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        // Only our own records: dependencies' chatter is not the program's business.
        metadata.target().starts_with("etcd_sd") && metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let msg = record.args().to_string();
        let sink = SINK.read().ok().and_then(|s| s.clone());
        match sink {
            Some(sink) => sink(record.level(), &msg),
            None => {
                let _ = writeln!(std::io::stderr(), "[etcd-sd] {:<5} {msg}", record.level());
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the logger once and applies `ETCD_SD_LOG`. If the program (a Rust one linking the
/// rlib) already installed a `log` logger, our records go to that one instead.
pub(crate) fn init() {
    INIT.call_once(|| {
        let level = std::env::var("ETCD_SD_LOG")
            .ok()
            .and_then(|v| parse_level(&v))
            .unwrap_or(LevelFilter::Warn);
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(level);
        }
    });
}

/// `off|error|warn|info|debug|trace`, case-insensitive.
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    s.trim().parse().ok()
}

/// Sets the most verbose level that is emitted.
pub fn set_level(level: LevelFilter) {
    init();
    log::set_max_level(level);
}

/// Sends records to `sink` instead of stderr; `None` restores stderr.
pub fn set_sink(sink: Option<LogSink>) {
    init();
    if let Ok(mut s) = SINK.write() {
        *s = sink;
    }
}
