//! ETCD_SD_FLEET_PPROF=<dir> (off by default): etcd's own view of its memory in the fleet
//! scenario. The members (and the grpc-proxy) then run with `--enable-pprof`, which etcd 3.4
//! serves on the client URL, and at each fleet size, after the idle window, the bench saves
//! for each of them, as `<dir>/<label>-n<N>-<who>-<what>`:
//!
//! - `metrics.txt`: `/metrics` (the `go_memstats_*` gauges: heap in use, idle, released, stacks;
//!   not for the proxy, whose `/metrics` in 3.4 is a member's, fetched for the caller);
//! - `status.txt`, `smaps_rollup.txt`: the kernel's view (RSS, anonymous vs file pages);
//! - `goroutine.txt`: `/debug/pprof/goroutine?debug=1` (goroutines grouped by stack, counted);
//! - `heap.pb.gz`: `/debug/pprof/heap?gc=1` (after a GC: what is live), for
//!   `go tool pprof -sample_index=inuse_space -top <file>`;
//! - `heap.txt`: `/debug/pprof/heap?debug=1`, ending with runtime.MemStats after that GC.
//!
//! The order keeps the first three as measured: the GC comes last.

use crate::metrics;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const VAR: &str = "ETCD_SD_FLEET_PPROF";

/// The flag the profiled members are started with.
pub const FLAG: &str = "--enable-pprof";

/// The directory given in ETCD_SD_FLEET_PPROF (created), if any.
pub fn dir() -> Result<Option<PathBuf>, String> {
    let Some(d) = std::env::var_os(VAR).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let d = PathBuf::from(d);
    std::fs::create_dir_all(&d).map_err(|e| format!("{VAR}={}: {e}", d.display()))?;
    Ok(Some(d))
}

/// Saves what the etcd process `pid` serving on 127.0.0.1:`port` shows of its memory into
/// `dir/<prefix>-*` (`proxy`: a grpc-proxy, without `/metrics`). A part that cannot be had is
/// skipped with a warning.
pub fn save(dir: &Path, prefix: &str, port: u16, pid: u32, proxy: bool) {
    /// Where a part comes from: an HTTP path on the client URL, or a file of /proc/<pid>/.
    enum From {
        Http(&'static str),
        Proc(&'static str),
    }
    let parts = [
        ("metrics.txt", From::Http("/metrics")),
        ("status.txt", From::Proc("status")),
        ("smaps_rollup.txt", From::Proc("smaps_rollup")),
        (
            "goroutine.txt",
            From::Http("/debug/pprof/goroutine?debug=1"),
        ),
        ("heap.pb.gz", From::Http("/debug/pprof/heap?gc=1")),
        ("heap.txt", From::Http("/debug/pprof/heap?debug=1")),
    ];
    for (what, from) in parts {
        if proxy && what == "metrics.txt" {
            continue;
        }
        let body = match from {
            From::Http(path) => metrics::get(port, path, Duration::from_secs(10)),
            From::Proc(name) => std::fs::read(format!("/proc/{pid}/{name}")).ok(),
        };
        let path = dir.join(format!("{prefix}-{what}"));
        match body {
            Some(body) => {
                if let Err(e) = std::fs::write(&path, body) {
                    eprintln!("bench:   {}: {e}", path.display());
                }
            }
            None => eprintln!("bench:   no {what} from 127.0.0.1:{port} (pid {pid})"),
        }
    }
}

/// A grpc-proxy's own goroutine count and Go heap in use (bytes), from its pprof endpoints
/// (etcd 3.4's proxy serves no metrics of its own: its `/metrics` is a member's).
pub fn proxy_runtime(port: u16) -> (f64, f64) {
    let timeout = Duration::from_secs(10);
    let text = |path: &str| {
        metrics::get(port, path, timeout)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let goroutines = text("/debug/pprof/goroutine?debug=1")
        .lines()
        .find_map(|l| l.strip_prefix("goroutine profile: total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(f64::NAN);
    let heap_inuse = text("/debug/pprof/heap?debug=1")
        .lines()
        .find_map(|l| l.strip_prefix("# HeapInuse = "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(f64::NAN);
    (goroutines, heap_inuse)
}
