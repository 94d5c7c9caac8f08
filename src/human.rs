//! Durations as a person reads them in a log line or an error message.

use std::time::Duration;

/// "850 ms", "13.2 s", "2 min 5 s": durations as a person reads them in a log.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_millis(3)), "3 ms");
        assert_eq!(human(Duration::from_millis(999)), "999 ms");
        assert_eq!(human(Duration::from_millis(1000)), "1.0 s");
        assert_eq!(human(Duration::from_millis(4_960)), "5.0 s");
        assert_eq!(human(Duration::from_secs(125)), "2 min 5 s");
    }
}
