//! Time stamps for the lines of the long-running commands.

use std::time::{SystemTime, UNIX_EPOCH};

/// UTC wall-clock time of day, "HH:MM:SS.mmm".
pub(crate) fn clock() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}
