//! The bench's private etcd: one member on free loopback ports, data on tmpfs when possible,
//! killed when dropped (and by the kernel if the bench dies first).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub struct Etcd {
    child: Child,
    dir: TempDir,
    pub endpoint: String,
    /// Where the data directory lives, e.g. "/dev/shm (tmpfs)".
    pub data_location: String,
}

pub fn etcd_bin() -> String {
    std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into())
}

/// `etcd --version`'s first line, e.g. "etcd Version: 3.4.23".
pub fn etcd_version() -> String {
    Command::new(etcd_bin())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn is_tmpfs(p: &Path) -> bool {
    let Ok(cpath) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes into the zeroed struct we own; cpath is NUL-terminated.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        libc::statfs(cpath.as_ptr(), &mut s) == 0 && s.f_type as i64 == 0x0102_1994
    }
}

/// A temp dir for etcd's data: /dev/shm when it exists and is writable, else $TMPDIR.
pub fn data_dir() -> (TempDir, String) {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new()
            .prefix("etcd-sd-bench-")
            .tempdir_in(shm)
        {
            let kind = if is_tmpfs(shm) { "tmpfs" } else { "not tmpfs" };
            return (d, format!("/dev/shm ({kind})"));
        }
    }
    let d = tempfile::Builder::new()
        .prefix("etcd-sd-bench-")
        .tempdir()
        .expect("cannot create a temp dir for etcd");
    let kind = if is_tmpfs(d.path()) {
        "tmpfs"
    } else {
        "NOT tmpfs: /dev/shm unusable"
    };
    let parent = d.path().parent().unwrap_or(Path::new("/tmp")).to_path_buf();
    (d, format!("{} ({kind})", parent.display()))
}

/// Makes the kernel SIGKILL the child when the bench (the spawning thread) dies.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

impl Etcd {
    /// Starts etcd (default heartbeat/election settings) and waits until it serves reads.
    pub fn start() -> Etcd {
        let (dir, data_location) = data_dir();
        let log_path = dir.path().join("etcd.log");
        for _attempt in 0..3 {
            let client_port = portpicker::pick_unused_port().expect("no free port");
            let peer_port = portpicker::pick_unused_port().expect("no free port");
            let endpoint = format!("http://127.0.0.1:{client_port}");
            let peer = format!("http://127.0.0.1:{peer_port}");
            let data = dir.path().join("data");
            let _ = std::fs::remove_dir_all(&data);
            let log = std::fs::File::create(&log_path).expect("etcd log");
            let mut cmd = Command::new(etcd_bin());
            cmd.args(["--name", "bench"])
                .arg("--data-dir")
                .arg(&data)
                .args(["--listen-client-urls", &endpoint])
                .args(["--advertise-client-urls", &endpoint])
                .args(["--listen-peer-urls", &peer])
                .args(["--initial-advertise-peer-urls", &peer])
                .args(["--initial-cluster", &format!("bench={peer}")])
                .args(["--initial-cluster-token", "etcd-sd-bench"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            die_with_parent(&mut cmd);
            let mut child = cmd
                .spawn()
                .expect("cannot start etcd (install Debian's etcd-server; scripts/bench.sh does)");
            if wait_healthy(&mut child, &endpoint, Duration::from_secs(20)) {
                return Etcd {
                    child,
                    dir,
                    endpoint,
                    data_location,
                };
            }
            eprintln!(
                "bench: etcd did not start; log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("etcd failed to start 3 times");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_healthy(child: &mut Child, endpoint: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let ok = Command::new(std::env::var("ETCDCTL_BIN").unwrap_or_else(|_| "etcdctl".into()))
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoint}"))
            .args([
                "--dial-timeout=1s",
                "--command-timeout=1s",
                "endpoint",
                "health",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
