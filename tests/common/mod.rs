//! Test support: real etcd servers (Debian's `etcd-server`) on free loopback ports with
//! temporary data directories, killed by PID when dropped; and an event recorder. Secured
//! servers (TLS, auth) are in [`secure`].
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod secure;

use etcd_sd::{Event, EventKind, EventSink};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// One etcd member. Dropping it kills the process and removes its data directory.
pub struct Etcd {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    initial_cluster: String,
    dir: TempDir,
    child: Option<Child>,
    /// "http" or "https" for the client URL.
    pub scheme: &'static str,
    /// Extra `etcd` flags (TLS files, auth token settings).
    pub extra: Vec<String>,
    /// Extra `etcdctl` flags (certificates, `--user`).
    pub ctl_args: Vec<String>,
}

fn etcd_bin() -> String {
    std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into())
}

fn free_port() -> u16 {
    portpicker::pick_unused_port().expect("no free port")
}

/// A port picked as free can be taken by another process before etcd binds it (a busy
/// machine running other suites or benchmarks): etcd then exits at once, and the start is
/// tried again on new ports, this many times.
const PORT_ATTEMPTS: usize = 5;

/// `etcdctl` against `endpoint`, with `extra` flags (certificates, user) before `args`.
fn etcdctl_at(
    endpoint: &str,
    extra: &[String],
    args: &[&str],
) -> std::io::Result<std::process::Output> {
    Command::new(std::env::var("ETCDCTL_BIN").unwrap_or_else(|_| "etcdctl".into()))
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(extra)
        .args(args)
        .output()
}

/// Whether `endpoint` (a member or a proxy) serves a linearizable read now.
fn answers(endpoint: &str, extra: &[String]) -> bool {
    etcdctl_at(
        endpoint,
        extra,
        &["--command-timeout=1s", "endpoint", "health"],
    )
    .map(|o| o.status.success())
    .unwrap_or(false)
}

/// Whether an etcd (or proxy) log says it could not bind its port.
fn port_taken(log: &str) -> bool {
    log.contains("address already in use")
}

impl Etcd {
    /// Starts a single-member etcd and waits until it answers.
    pub fn start() -> Etcd {
        Self::start_with("http", vec![], vec![])
    }

    /// Starts a single-member etcd with extra flags for etcd and for etcdctl.
    pub fn start_with(scheme: &'static str, extra: Vec<String>, ctl_args: Vec<String>) -> Etcd {
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let (client_port, peer_port) = (free_port(), free_port());
            let name = "solo".to_string();
            let initial_cluster = format!("{name}=http://127.0.0.1:{peer_port}");
            let mut e = Etcd {
                name,
                client_port,
                peer_port,
                initial_cluster,
                dir: tempfile::tempdir().expect("tempdir"),
                child: None,
                scheme,
                extra: extra.clone(),
                ctl_args: ctl_args.clone(),
            };
            e.spawn("new");
            match e.wait_started() {
                Ok(()) => return e,
                Err(log) if port_taken(&log) => last = log, // picked free, taken since: again
                Err(log) => panic!("etcd {} did not become healthy; log: {log}", e.name),
            }
        }
        panic!("etcd: every port picked was taken before etcd bound it; last log: {last}");
    }

    /// Waits until the member serves a linearizable read; `Err(its log)` if its process
    /// exits first (it could not start) or after 20 s.
    fn wait_started(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.exited() {
                return Err(self.log());
            }
            if self.healthy() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100)); // the poll interval of a bounded wait
        }
        Err(self.log())
    }

    /// Whether the member's process has ended.
    fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            None => true,
            Some(c) => !matches!(c.try_wait(), Ok(None)),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.client_port)
    }

    /// A directory that lives as long as this server (for certificates and such).
    pub fn scratch(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self, state: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("etcd log");
        let child = Command::new(etcd_bin())
            .args(["--name", &self.name])
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen-client-urls", &self.endpoint()])
            .args(["--advertise-client-urls", &self.endpoint()])
            .args([
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{}", self.peer_port),
            ])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{}", self.peer_port),
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", "etcd-sd-test"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start etcd: install Debian's etcd-server (scripts/test.sh does)");
        self.child = Some(child);
    }

    /// Waits until the member serves a linearizable read.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.healthy() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100)); // the poll interval of a bounded wait
        }
        panic!(
            "etcd {} did not become healthy; log: {}",
            self.name,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    /// SIGKILLs the member (the data directory stays for `restart`).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the member again on the same data directory and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn("existing");
    }

    /// Stops the member, deletes its data and starts a fresh, empty one on the same ports (an
    /// etcd wiped and recreated by an operator: revisions start again low). Does not wait.
    pub fn wipe(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(self.data_dir());
        self.spawn("new");
    }

    pub fn etcdctl(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        etcdctl_at(&self.endpoint(), &self.ctl_args, args)
    }

    /// Whether the member serves a linearizable read now.
    fn healthy(&self) -> bool {
        answers(&self.endpoint(), &self.ctl_args)
    }

    /// Every key under `prefix`, or `None` when etcdctl fails (e.g. no leader for a moment
    /// after a member was killed).
    pub fn try_get_prefix(&self, prefix: &str) -> Option<BTreeMap<String, String>> {
        let o = self.etcdctl(&["get", "--prefix", prefix]).ok()?;
        if !o.status.success() {
            return None;
        }
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let lines: Vec<&str> = out.lines().collect();
        Some(
            lines
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (c[0].to_string(), c[1].to_string()))
                .collect(),
        )
    }

    /// `etcdctl` that must succeed; returns its stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let o = self.etcdctl(args).expect("run etcdctl");
        assert!(
            o.status.success(),
            "etcdctl {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Every key and value under `prefix`, as etcd has them now.
    pub fn get_prefix(&self, prefix: &str) -> BTreeMap<String, String> {
        let out = self.ctl(&["get", "--prefix", prefix]);
        let lines: Vec<&str> = out.lines().collect();
        lines
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].to_string(), c[1].to_string()))
            .collect()
    }

    pub fn put(&self, key: &str, value: &str) {
        self.ctl(&["put", key, value]);
    }

    pub fn del(&self, key: &str) {
        self.ctl(&["del", key]);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// etcd's gRPC proxy (`etcd grpc-proxy start`) in front of `endpoints`, on a free loopback
/// port; killed on drop.
pub struct GrpcProxy {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl GrpcProxy {
    pub fn start(endpoints: &str) -> GrpcProxy {
        for _ in 0..PORT_ATTEMPTS - 1 {
            if let Some(p) = Self::try_start(endpoints) {
                return p;
            }
        }
        Self::try_start(endpoints).expect("grpc-proxy: every port picked was taken")
    }

    /// `None` when the port picked was taken before the proxy bound it.
    fn try_start(endpoints: &str) -> Option<GrpcProxy> {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let log = std::fs::File::create(dir.path().join("proxy.log")).expect("proxy log");
        let child = Command::new(etcd_bin())
            .args(["grpc-proxy", "start", "--endpoints", endpoints])
            .args(["--listen-addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start etcd grpc-proxy");
        let mut p = GrpcProxy {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let exited = p
                .child
                .as_mut()
                .is_some_and(|c| !matches!(c.try_wait(), Ok(None)));
            if exited && port_taken(&p.log()) {
                return None;
            }
            if answers(&p.endpoint(), &[]) {
                return Some(p);
            }
            std::thread::sleep(Duration::from_millis(100)); // the poll interval of a bounded wait
        }
        panic!("grpc-proxy did not answer; log: {}", p.log());
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for GrpcProxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Three members on loopback.
pub struct Cluster {
    pub members: Vec<Etcd>,
}

impl Cluster {
    pub fn start() -> Cluster {
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            match Self::try_start() {
                Ok(c) => return c,
                Err(log) if port_taken(&log) => last = log, // picked free, taken since: again
                Err(log) => panic!("cluster did not become healthy; a member's log: {log}"),
            }
        }
        panic!("cluster: every port picked was taken before etcd bound it; last log: {last}");
    }

    /// Starts three members; `Err(a member's log)` when one exits or is not healthy in time
    /// (the members started are killed on return).
    fn try_start() -> Result<Cluster, String> {
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, p))| format!("m{i}=http://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members: Vec<Etcd> = ports
            .iter()
            .enumerate()
            .map(|(i, (c, p))| Etcd {
                name: format!("m{i}"),
                client_port: *c,
                peer_port: *p,
                initial_cluster: initial_cluster.clone(),
                dir: tempfile::tempdir().expect("tempdir"),
                child: None,
                scheme: "http",
                extra: vec![],
                ctl_args: vec![],
            })
            .collect();
        for m in &mut members {
            m.spawn("new");
        }
        // One member that cannot bind leaves the others without quorum: look at every one.
        for i in 0..members.len() {
            if let Err(log) = members[i].wait_started() {
                let taken = members.iter_mut().map(|m| m.log()).find(|l| port_taken(l));
                return Err(taken.unwrap_or(log));
            }
        }
        Ok(Cluster { members })
    }

    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(Etcd::endpoint)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Records a discovery's events and keeps the table they announce.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<(Mutex<Recorded>, Condvar)>,
}

#[derive(Default)]
pub struct Recorded {
    pub events: Vec<(EventKind, String, String)>,
    pub table: BTreeMap<String, String>,
}

impl Recorder {
    pub fn sink(&self) -> impl EventSink {
        let me = self.clone();
        move |e: &Event| me.record(e)
    }

    pub fn record(&self, e: &Event) {
        let (m, cv) = &*self.inner;
        let mut r = m.lock().unwrap();
        let key = String::from_utf8_lossy(&e.key).into_owned();
        let value = String::from_utf8_lossy(&e.value).into_owned();
        match e.kind {
            EventKind::Put => r.table.insert(key.clone(), value.clone()),
            EventKind::Delete => r.table.remove(&key),
        };
        r.events.push((e.kind, key, value));
        cv.notify_all();
    }

    pub fn events(&self) -> Vec<(EventKind, String, String)> {
        self.inner.0.lock().unwrap().events.clone()
    }

    pub fn table(&self) -> BTreeMap<String, String> {
        self.inner.0.lock().unwrap().table.clone()
    }

    /// Waits until `pred` holds for what was recorded, or panics after `limit`.
    pub fn wait_for(&self, limit: Duration, what: &str, pred: impl Fn(&Recorded) -> bool) {
        let (m, cv) = &*self.inner;
        let deadline = Instant::now() + limit;
        let mut r = m.lock().unwrap();
        while !pred(&r) {
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out waiting for {what}; events: {:?}",
                r.events
            );
            r = cv.wait_timeout(r, deadline - now).unwrap().0;
        }
    }

    /// Waits until `pred` holds for what was recorded; false (no panic) if it did not within
    /// `limit`.
    pub fn try_wait_for(&self, limit: Duration, pred: impl Fn(&Recorded) -> bool) -> bool {
        let (m, cv) = &*self.inner;
        let deadline = Instant::now() + limit;
        let mut r = m.lock().unwrap();
        while !pred(&r) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            r = cv.wait_timeout(r, deadline - now).unwrap().0;
        }
        true
    }

    /// Waits for an event of `kind` on `key` and returns how long it took.
    pub fn wait_event(&self, kind: EventKind, key: &str, limit: Duration) -> Duration {
        let t = Instant::now();
        self.wait_for(limit, &format!("{kind:?} {key}"), |r| {
            r.events.iter().any(|(k, kk, _)| *k == kind && kk == key)
        });
        t.elapsed()
    }
}

/// Polls `pred` until it holds (true) or `limit` passes (false), every 5 ms at first, then
/// less often up to every 50 ms (many predicates run etcdctl). The one waiting loop of the
/// Rust tests: everything that waits for a condition goes through it.
pub fn try_wait_until(limit: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    let mut interval = Duration::from_millis(5);
    loop {
        if pred() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(interval); // the poll interval of a bounded wait
        interval = (interval * 2).min(Duration::from_millis(50));
    }
}

/// Waits until `pred` holds; panics naming `what` after `limit`. Returns how long it took.
pub fn wait_until(limit: Duration, what: &str, pred: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    assert!(
        try_wait_until(limit, pred),
        "timed out after {limit:?} waiting for {what}"
    );
    t.elapsed()
}

/// Options for `endpoint` with short timeouts, as tests want.
pub fn opts(endpoint: &str, ttl: i64) -> etcd_sd::Options {
    let mut o = etcd_sd::Options::new(endpoint).unwrap();
    o.set_ttl(ttl).unwrap();
    o.set_connect_timeout(Duration::from_secs(2)).unwrap();
    o.set_request_timeout(Duration::from_secs(2)).unwrap();
    o
}

/// Names of this process's threads that etcd-sd started.
pub fn library_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| s.starts_with("etcd-sd"))
        .collect()
}

impl Etcd {
    /// The store's current revision.
    pub fn revision(&self) -> i64 {
        let out = self.ctl(&["get", "/", "-w", "json"]);
        let at = out.find("\"revision\":").expect("revision in header") + 11;
        out[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    }

    /// True when this member is the cluster's leader.
    pub fn is_leader(&self) -> bool {
        let out = self.ctl(&["endpoint", "status", "-w", "json"]);
        let field = |name: &str| -> String {
            let at = out.find(&format!("\"{name}\":")).unwrap() + name.len() + 3;
            out[at..].chars().take_while(char::is_ascii_digit).collect()
        };
        field("member_id") == field("leader")
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`): the member keeps its sockets open but answers
    /// nothing, like a black-holed host.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let sig = if frozen { "-STOP" } else { "-CONT" };
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// Watchers the member serves now (its `etcd_debugging_mvcc_watcher_total` gauge, from
    /// /metrics on the client port; plain http only).
    pub fn watchers(&self) -> u64 {
        self.metric("etcd_debugging_mvcc_watcher_total") as u64
    }

    /// One unlabelled gauge or counter of the member's /metrics (client port; plain http only).
    pub fn metric(&self, name: &str) -> f64 {
        self.metric_sum(&format!("{name} "))
    }

    /// The sum of the member's /metrics samples whose line starts with `start` (a name with
    /// some of its labels, e.g. `grpc_server_started_total{grpc_method="Watch"`).
    pub fn metric_sum(&self, start: &str) -> f64 {
        use std::io::{Read, Write};
        assert_eq!(self.scheme, "http", "metrics over plain http only");
        let mut c = std::net::TcpStream::connect(("127.0.0.1", self.client_port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            c,
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        c.read_to_string(&mut body).expect("read /metrics");
        let values: Vec<f64> = body
            .lines()
            .filter(|l| l.starts_with(start))
            .map(|l| l.rsplit(' ').next().unwrap().trim().parse::<f64>().unwrap())
            .collect();
        assert!(!values.is_empty(), "no {start} in /metrics");
        values.iter().sum()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}
