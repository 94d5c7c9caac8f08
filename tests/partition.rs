//! Network partitions (issue 17): a member cut off from its peers while the client can still
//! reach it, which is what a real partition or a bad switch port does. etcd then answers
//! "no leader" on that member and a watch there goes quiet; etcd-sd must move away from it
//! and lose nothing.
//!
//! The test builds its own network: one network namespace per etcd member (10.77.0.11-13),
//! one for the client (10.77.0.20), joined by a bridge that lives in a namespace of its own,
//! so nothing touches the host's network. The test thread enters the client namespace (with
//! `setns`, before the library starts its threads, which inherit it), so the client is this
//! process, using the library directly. A cut is a pair of `blackhole` routes (cut member →
//! peer, peer → cut member) inside the namespaces: no packet crosses between the cut member
//! and its peers, while the client still reaches every member. Healing deletes the routes.
//! Nothing beyond iproute2's `ip` is needed.
//!
//! Scenarios (TTL 3 s; each with healing, section 3 of the issue):
//!   1. the client's member (a follower) cut off for 2 × TTL;
//!   2. the leader cut off for 2 × TTL, the client on a follower;
//!   4. a minority cut off for longer than 3 × TTL: the client's member, which is the leader;
//!   5. the same as 4 through the C ABI's keep-alive and raw watch (`etcd_sd_keepalive_*`,
//!      `etcd_sd_watch_*`), on which the compat `etcd::KeepAlive` and `etcd::Watcher` stand,
//!      used as they use them (grant + keep-alive, put under the lease, list, watch from the
//!      listing's revision + 1), with the client's member a follower.
//!
//! Each scenario proves its cut is real (a linearizable read on the cut member fails while a
//! serializable one, from the client's namespace, still answers), compares the client's
//! table with the majority's view (etcdctl get --prefix against a majority member) during the
//! cut, at its end and after healing, and checks that no own key was lost: each is in the
//! majority after healing, with the value, the create revision (never deleted and re-made)
//! and the lease it had, and the client never saw it deleted.
//!
//! Figures printed per scenario: divergences, own keys lost, lease changes, events seen; how
//! long the cut took to show, when the client's table matched the majority's during the cut;
//! after healing, when a put through the majority reached the client and when its table
//! equalled the majority's view. The latter waits out an election: etcd 3.4 runs without
//! pre-vote, so the cut member campaigned alone, and its higher term (printed) deposes the
//! leader when it rejoins; linearizable reads of the majority wait for the new one.
//!
//! Runs as root (as CI does). Where network namespaces cannot be made, or with
//! `ETCD_SD_SKIP_PARTITION=1`, it prints a SKIP line saying why and passes.

mod common;

use common::{opts, Recorder};
use etcd_sd::ffi::{
    etcd_sd_client, etcd_sd_client_free, etcd_sd_client_new, etcd_sd_client_put,
    etcd_sd_client_range, etcd_sd_discovery_stats, etcd_sd_keepalive, etcd_sd_keepalive_check,
    etcd_sd_keepalive_free, etcd_sd_keepalive_lease, etcd_sd_keepalive_new, etcd_sd_kv,
    etcd_sd_kvs, etcd_sd_kvs_at, etcd_sd_kvs_free, etcd_sd_kvs_revision, etcd_sd_last_error,
    etcd_sd_options, etcd_sd_options_free, etcd_sd_options_new,
    etcd_sd_options_set_connect_timeout_ms, etcd_sd_options_set_endpoints,
    etcd_sd_options_set_prefer_first_member, etcd_sd_options_set_request_timeout_ms,
    etcd_sd_result, etcd_sd_watch, etcd_sd_watch_event, etcd_sd_watch_event_type,
    etcd_sd_watch_free, etcd_sd_watch_new, etcd_sd_watch_stats_get,
};
use etcd_sd::{Discovery, Event, EventKind, Registry};
use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::raw::c_void;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The lease TTL of every scenario's registrations, in seconds.
const TTL: i64 = 3;
/// Cut durations: the scenario's definition, so a timed hold.
const HOLD_SHORT: Duration = Duration::from_secs(2 * TTL as u64);
const HOLD_LONG: Duration = Duration::from_secs(3 * TTL as u64 + 1);
/// Bound on the client's table reaching the majority's view.
const CONVERGE: Duration = Duration::from_secs(20);
/// Bound on the cluster electing a leader, a member rejoining, an etcdctl write landing.
const SETTLE: Duration = Duration::from_secs(20);

const MEMBERS: usize = 3;
const CLIENT_ADDR: &str = "10.77.0.20";

fn member_addr(i: usize) -> String {
    format!("10.77.0.{}", 11 + i)
}

/// A line on the real stderr: libtest captures `eprintln!` of a passing test, not this, so
/// the SKIP line and the figures show in a plain `cargo test`.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

// ------------------------------------------------------------------------------------------
// The network: namespaces, bridge, veths, routes
// ------------------------------------------------------------------------------------------

fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

fn ip_ok(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("{e}");
    }
}

/// The namespaces of one test process, named after its PID so that parallel runs never share
/// one. Dropping it deletes them (their veths go with them).
struct Net {
    prefix: String,
    made: Vec<String>,
    /// The thread's own network namespace, to go back to when dropped.
    home: Option<File>,
}

impl Net {
    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// Builds the bridge and the four nodes. `Err` (a reason to skip) when the first namespace
    /// cannot be made; any later failure panics.
    fn build() -> Result<Net, String> {
        let mut net = Net {
            prefix: format!("esdp{}", std::process::id()),
            made: Vec::new(),
            home: None,
        };
        remove_stale_namespaces();
        let br = net.ns("br");
        ip(&["netns", "add", &br])?;
        net.made.push(br.clone());
        ip_ok(&["-n", &br, "link", "add", "br0", "type", "bridge"]);
        ip_ok(&["-n", &br, "link", "set", "br0", "up"]);
        let nodes: Vec<(String, String)> = (0..MEMBERS)
            .map(|i| (format!("m{i}"), member_addr(i)))
            .chain([("c".to_string(), CLIENT_ADDR.to_string())])
            .collect();
        for (role, addr) in &nodes {
            let ns = net.ns(role);
            ip_ok(&["netns", "add", &ns]);
            net.made.push(ns.clone());
            let port = format!("p{role}");
            ip_ok(&["-n", &ns, "link", "set", "lo", "up"]);
            // Made inside the node's namespace, its peer moved straight into the bridge's: the
            // host's namespace never holds either end.
            ip_ok(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                &br,
            ]);
            ip_ok(&["-n", &br, "link", "set", &port, "master", "br0"]);
            ip_ok(&["-n", &br, "link", "set", &port, "up"]);
            ip_ok(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip_ok(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        Ok(net)
    }

    /// Moves the calling thread into namespace `role`; threads and processes it starts from
    /// then on are there too.
    fn enter(&mut self, role: &str) -> Result<(), String> {
        let home = File::open("/proc/thread-self/ns/net")
            .map_err(|e| format!("open /proc/thread-self/ns/net: {e}"))?;
        let target = netns_file(&self.ns(role))?;
        setns(&target)?;
        self.home.get_or_insert(home);
        Ok(())
    }

    /// Cuts member `victim` off from its peers (both directions); the client still reaches it.
    fn cut(&self, victim: usize) {
        self.routes("add", victim);
    }

    fn heal(&self, victim: usize) {
        self.routes("del", victim);
    }

    fn routes(&self, op: &str, victim: usize) {
        for peer in (0..MEMBERS).filter(|&p| p != victim) {
            let to_peer = format!("{}/32", member_addr(peer));
            let to_victim = format!("{}/32", member_addr(victim));
            ip_ok(&[
                "-n",
                &self.ns(&format!("m{victim}")),
                "route",
                op,
                "blackhole",
                &to_peer,
            ]);
            ip_ok(&[
                "-n",
                &self.ns(&format!("m{peer}")),
                "route",
                op,
                "blackhole",
                &to_victim,
            ]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            let _ = setns(&home);
        }
        for ns in self.made.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

fn netns_file(name: &str) -> Result<File, String> {
    File::open(format!("/run/netns/{name}")).map_err(|e| format!("open /run/netns/{name}: {e}"))
}

fn setns(ns: &File) -> Result<(), String> {
    // SAFETY: `ns` is an open namespace file; setns only reads the descriptor.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(format!("setns: {}", std::io::Error::last_os_error()))
    }
}

/// Namespaces left by an earlier run of this test that was killed before its cleanup
/// (`esdp<pid>-*` whose process is gone).
fn remove_stale_namespaces() {
    let Ok(o) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("esdp") else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

// ------------------------------------------------------------------------------------------
// The cluster: three etcd members, one per namespace
// ------------------------------------------------------------------------------------------

struct Member {
    name: String,
    addr: String,
    dir: TempDir,
    child: Option<Child>,
}

impl Member {
    fn endpoint(&self) -> String {
        format!("http://{}:2379", self.addr)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

/// The network and the members on it. Dropping it kills the members (by their PIDs), then
/// deletes the namespaces (also on a panic: this is dropped while unwinding).
struct Lab {
    members: Vec<Member>,
    net: Net,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // `net` is dropped after this: the namespaces go once nothing runs in them.
    }
}

fn etcdctl(endpoint: &str, args: &[&str]) -> Output {
    Command::new(std::env::var("ETCDCTL_BIN").unwrap_or_else(|_| "etcdctl".into()))
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(["--dial-timeout=1s", "--command-timeout=2s"])
        .args(args)
        .output()
        .expect("run etcdctl")
}

fn parse_pairs(out: &[u8]) -> BTreeMap<String, String> {
    let out = String::from_utf8_lossy(out).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    lines
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[0].to_string(), c[1].to_string()))
        .collect()
}

impl Lab {
    fn start(net: Net) -> Lab {
        let initial_cluster = (0..MEMBERS)
            .map(|i| format!("m{i}=http://{}:2380", member_addr(i)))
            .collect::<Vec<_>>()
            .join(",");
        let mut lab = Lab {
            members: Vec::new(),
            net,
        };
        for i in 0..MEMBERS {
            let m = Member {
                name: format!("m{i}"),
                addr: member_addr(i),
                dir: tempfile::tempdir().expect("tempdir"),
                child: None,
            };
            let ns = netns_file(&lab.net.ns(&m.name)).unwrap();
            let fd = ns.as_raw_fd();
            let log = File::create(m.dir.path().join("etcd.log")).expect("etcd log");
            let client = m.endpoint();
            let peer = format!("http://{}:2380", m.addr);
            let mut cmd = Command::new(std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into()));
            cmd.args(["--name", &m.name])
                .arg("--data-dir")
                .arg(m.dir.path().join("data"))
                .args(["--listen-client-urls", &client])
                .args(["--advertise-client-urls", &client])
                .args(["--listen-peer-urls", &peer])
                .args(["--initial-advertise-peer-urls", &peer])
                .args(["--initial-cluster", &initial_cluster])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "etcd-sd-partition"])
                .stdout(Stdio::null())
                .stderr(log);
            // SAFETY: between fork and exec the closure only calls setns(2), which is
            // async-signal-safe, on a descriptor that stays open until spawn returns.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
            let child = cmd
                .spawn()
                .expect("cannot start etcd: install Debian's etcd-server (scripts/test.sh does)");
            drop(ns);
            lab.members.push(Member {
                child: Some(child),
                ..m
            });
        }
        for i in 0..MEMBERS {
            if let Err(e) = lab.wait_serving(i) {
                panic!("{e}; log of m{i}:\n{}", lab.members[i].log());
            }
        }
        lab
    }

    fn ep(&self, i: usize) -> String {
        self.members[i].endpoint()
    }

    /// The client's endpoint list, `first` first (etcd-sd starts on the first endpoint).
    fn endpoints(&self, first: usize) -> String {
        std::iter::once(first)
            .chain((0..MEMBERS).filter(|&i| i != first))
            .map(|i| self.ep(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A linearizable read (etcdctl's default) on member `i`: Ok, or etcdctl's error.
    fn linearizable_read(&self, i: usize) -> Result<(), String> {
        let o = etcdctl(&self.ep(i), &["get", "/partition-probe"]);
        if o.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
        }
    }

    fn serializable_read(&self, i: usize) -> bool {
        etcdctl(&self.ep(i), &["get", "--consistency=s", "/partition-probe"])
            .status
            .success()
    }

    /// Waits until member `i` serves linearizable reads (it has a leader and a quorum).
    fn wait_serving(&self, i: usize) -> Result<Duration, String> {
        let t = Instant::now();
        loop {
            match self.linearizable_read(i) {
                Ok(()) => return Ok(t.elapsed()),
                Err(e) if t.elapsed() > SETTLE => {
                    return Err(format!("m{i} does not serve linearizable reads: {e}"))
                }
                Err(_) => {}
            }
        }
    }

    /// Proves that member `victim` is cut off from the quorum but reachable from the client:
    /// a linearizable read on it fails (waited for, bounded) while a serializable read, from
    /// the client's namespace, answers. Returns how long the failure took to show (each read
    /// is bounded by etcdctl's 2 s command timeout), the reads it took, and etcdctl's error.
    fn prove_cut(&self, victim: usize) -> (Duration, usize, String) {
        let t = Instant::now();
        let mut attempts = 0;
        let err = loop {
            attempts += 1;
            match self.linearizable_read(victim) {
                Err(e) => break e,
                Ok(()) => assert!(
                    t.elapsed() < SETTLE,
                    "cut not real: m{victim} still serves linearizable reads"
                ),
            }
        };
        assert!(
            self.serializable_read(victim),
            "m{victim} must stay reachable from the client during the cut"
        );
        let err = err.lines().last().unwrap_or("").to_string();
        (t.elapsed(), attempts, err)
    }

    /// Panics, with its log, if a member has exited.
    fn assert_running(&mut self) {
        for m in &mut self.members {
            if let Some(status) = m.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("{} exited ({status}); log:\n{}", m.name, m.log());
            }
        }
    }

    /// Member `i`'s raft term (bounded retries).
    fn raft_term(&self, i: usize) -> u64 {
        let t = Instant::now();
        loop {
            let o = etcdctl(&self.ep(i), &["endpoint", "status", "-w", "json"]);
            let v: Option<serde_json::Value> = serde_json::from_slice(&o.stdout).ok();
            if let Some(term) = v.as_ref().and_then(|v| v[0]["Status"]["raftTerm"].as_u64()) {
                return term;
            }
            assert!(t.elapsed() < SETTLE, "m{i} did not report its raft term");
        }
    }

    /// The leader's index, once the members agree on one (bounded).
    fn leader(&self) -> usize {
        let t = Instant::now();
        loop {
            let ids: Vec<Option<(u64, u64)>> = (0..MEMBERS)
                .map(|i| {
                    let o = etcdctl(&self.ep(i), &["endpoint", "status", "-w", "json"]);
                    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
                    let s = &v[0]["Status"];
                    Some((s["header"]["member_id"].as_u64()?, s["leader"].as_u64()?))
                })
                .collect();
            if let Some(Some((_, leader))) = ids.first() {
                let agreed = ids.iter().all(|x| matches!(x, Some((_, l)) if l == leader));
                let at = ids
                    .iter()
                    .position(|x| matches!(x, Some((me, _)) if me == leader));
                if let (true, Some(at)) = (agreed, at) {
                    return at;
                }
            }
            assert!(t.elapsed() < SETTLE, "no agreed leader: {ids:?}");
        }
    }

    /// Every key under `prefix` on member `i` (linearizable), retried while it elects a
    /// leader (bounded).
    fn view(&self, i: usize, prefix: &str) -> BTreeMap<String, String> {
        let t = Instant::now();
        loop {
            let o = etcdctl(&self.ep(i), &["get", "--prefix", prefix]);
            if o.status.success() {
                return parse_pairs(&o.stdout);
            }
            assert!(
                t.elapsed() < SETTLE,
                "m{i} did not answer a get: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }

    /// A key's create revision and lease on member `i`, `None` when it is absent.
    fn key_meta(&self, i: usize, key: &str) -> Option<(i64, i64)> {
        let t = Instant::now();
        let o = loop {
            let o = etcdctl(&self.ep(i), &["get", key, "-w", "json"]);
            if o.status.success() {
                break o;
            }
            assert!(t.elapsed() < SETTLE, "m{i} did not answer a get");
        };
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let kv = v["kvs"].get(0)?;
        Some((
            kv["create_revision"].as_i64()?,
            kv["lease"].as_i64().unwrap_or(0),
        ))
    }

    /// A write through member `i` (put, or del without a value), retried while the cluster
    /// elects a leader (bounded; both are idempotent).
    fn write(&self, i: usize, key: &str, value: Option<&str>) {
        let t = Instant::now();
        loop {
            let o = match value {
                Some(v) => etcdctl(&self.ep(i), &["put", key, v]),
                None => etcdctl(&self.ep(i), &["del", key]),
            };
            if o.status.success() {
                return;
            }
            assert!(
                t.elapsed() < SETTLE,
                "write of {key} through m{i} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// The client's side, through the Rust API or the C ABI
// ------------------------------------------------------------------------------------------

/// What a scenario's client does; the scenario code is the same for both faces.
trait Client {
    /// Registers (or re-puts) an own key.
    fn register(&self, key: &str, value: &str);
    /// The member the client's watch uses now.
    fn watch_member(&self) -> String;
    /// The lease holding the own keys.
    fn lease_id(&self) -> i64;
    /// Times the lease was lost (and granted again).
    fn lease_losses(&self) -> u64;
}

struct Native {
    reg: Registry,
    disc: Discovery,
}

/// The connect timeout of scenario `n`'s client: 2 s plus `n` ms. The library shares
/// connections (and their current member) among objects of equal settings, and a lease among
/// registries; a setting of its own keeps each scenario's client apart from the last one's.
fn connect_ms(n: usize) -> u64 {
    2000 + n as u64
}

impl Native {
    fn new(endpoints: &str, prefix: &str, rec: &Recorder, n: usize) -> Native {
        let mut o = opts(endpoints, TTL);
        o.set_connect_timeout(Duration::from_millis(connect_ms(n)))
            .unwrap();
        // A call made while the cluster elects a leader waits for it.
        o.set_request_timeout(Duration::from_secs(6)).unwrap();
        // The scenario puts the client on a chosen member: the first endpoint.
        o.set_prefer_first_member(true);
        let reg = Registry::new(&o).unwrap();
        let disc = Discovery::new(&o, prefix, rec.sink()).unwrap();
        Native { reg, disc }
    }
}

impl Client for Native {
    fn register(&self, key: &str, value: &str) {
        self.reg.register(key, value).unwrap();
    }
    fn watch_member(&self) -> String {
        self.disc.stats().member
    }
    fn lease_id(&self) -> i64 {
        self.reg.lease_id()
    }
    fn lease_losses(&self) -> u64 {
        self.reg.stats().lease_losses
    }
}

/// The C ABI as the compat `etcd::KeepAlive` and `etcd::Watcher` use it: a client, a
/// keep-alive that granted the lease, puts under it, a listing, and a watch of the prefix
/// from the listing's revision + 1 (etcd-cpp-apiv3's `ls` then `Watcher(index + 1)`).
struct CAbi {
    client: *mut etcd_sd_client,
    keepalive: *mut etcd_sd_keepalive,
    watch: *mut etcd_sd_watch,
    recorder: *mut Recorder,
}

fn check(rc: etcd_sd_result, what: &str) {
    if rc != etcd_sd_result::ETCD_SD_OK {
        // SAFETY: etcd_sd_last_error never returns NULL and the string lives until the next
        // failure on this thread.
        let msg = unsafe { CStr::from_ptr(etcd_sd_last_error()) };
        panic!("{what}: {rc:?}: {}", msg.to_string_lossy());
    }
}

fn kv_bytes(kv: &etcd_sd_kv) -> (Vec<u8>, Vec<u8>) {
    // SAFETY: the library's views point to `key_len` / `value_len` readable bytes while the
    // call (or the kvs) they come from lasts.
    unsafe {
        (
            std::slice::from_raw_parts(kv.key.cast::<u8>(), kv.key_len).to_vec(),
            std::slice::from_raw_parts(kv.value.cast::<u8>(), kv.value_len).to_vec(),
        )
    }
}

unsafe extern "C" fn on_events(
    user_data: *mut c_void,
    events: *const etcd_sd_watch_event,
    n_events: usize,
    _revision: i64,
    _compact_revision: i64,
) {
    // SAFETY: user_data is the Recorder leaked in CAbi::new, freed after the watch is;
    // `events` points to `n_events` events during this call.
    let (rec, events) = unsafe {
        (
            &*(user_data as *const Recorder),
            std::slice::from_raw_parts(events, n_events),
        )
    };
    for e in events {
        let (key, value) = kv_bytes(&e.kv);
        match e.r#type {
            etcd_sd_watch_event_type::ETCD_SD_WATCH_PUT => rec.record(&Event::put(key, value)),
            etcd_sd_watch_event_type::ETCD_SD_WATCH_DELETE => {
                let (_, prev) = kv_bytes(&e.prev_kv);
                rec.record(&Event::delete(key, prev));
            }
        }
    }
}

impl CAbi {
    fn new(endpoints: &str, prefix: &str, rec: &Recorder, n: usize) -> CAbi {
        let mut o: *mut etcd_sd_options = std::ptr::null_mut();
        check(etcd_sd_options_new(&mut o), "options");
        let eps = CString::new(endpoints).unwrap();
        check(etcd_sd_options_set_endpoints(o, eps.as_ptr()), "endpoints");
        check(
            etcd_sd_options_set_connect_timeout_ms(o, connect_ms(n)),
            "timeout",
        );
        check(etcd_sd_options_set_request_timeout_ms(o, 6000), "timeout");
        check(
            etcd_sd_options_set_prefer_first_member(o, true),
            "first member",
        );
        let mut client = std::ptr::null_mut();
        check(etcd_sd_client_new(o, &mut client), "client");
        etcd_sd_options_free(o);
        let mut keepalive = std::ptr::null_mut();
        check(
            etcd_sd_keepalive_new(client, TTL, 0, None, std::ptr::null_mut(), &mut keepalive),
            "keepalive",
        );
        let recorder = Box::into_raw(Box::new(rec.clone()));
        let mut me = CAbi {
            client,
            keepalive,
            watch: std::ptr::null_mut(),
            recorder,
        };
        // The listing, reported as puts, then the watch from just after it.
        let p = CString::new(prefix).unwrap();
        let mut kvs: *mut etcd_sd_kvs = std::ptr::null_mut();
        check(
            etcd_sd_client_range(client, p.as_ptr(), 0, &mut kvs),
            "range",
        );
        let revision = etcd_sd_kvs_revision(kvs);
        let mut kv = std::mem::MaybeUninit::<etcd_sd_kv>::uninit();
        let mut i = 0;
        while etcd_sd_kvs_at(kvs, i, kv.as_mut_ptr()) {
            // SAFETY: etcd_sd_kvs_at returned true, so it wrote `kv`.
            let (k, v) = kv_bytes(unsafe { kv.assume_init_ref() });
            rec.record(&Event::put(k, v));
            i += 1;
        }
        etcd_sd_kvs_free(kvs);
        check(
            etcd_sd_watch_new(
                client,
                p.as_ptr(),
                true,
                revision + 1,
                Some(on_events),
                recorder.cast(),
                &mut me.watch,
            ),
            "watch",
        );
        me
    }
}

impl Client for CAbi {
    fn register(&self, key: &str, value: &str) {
        let k = CString::new(key).unwrap();
        let lease = etcd_sd_keepalive_lease(self.keepalive);
        check(
            etcd_sd_client_put(
                self.client,
                k.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                lease,
                0, // ETCD_SD_PUT_ALWAYS
                std::ptr::null_mut(),
            ),
            "put",
        );
    }
    fn watch_member(&self) -> String {
        // SAFETY: an all-zero etcd_sd_discovery_stats is valid (integers and a char array).
        let mut s: etcd_sd_discovery_stats = unsafe { std::mem::zeroed() };
        s.size = std::mem::size_of::<etcd_sd_discovery_stats>();
        check(etcd_sd_watch_stats_get(self.watch, &mut s), "watch stats");
        // SAFETY: the library writes a NUL-terminated string into `member`.
        unsafe { CStr::from_ptr(s.member.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }
    fn lease_id(&self) -> i64 {
        etcd_sd_keepalive_lease(self.keepalive)
    }
    fn lease_losses(&self) -> u64 {
        // A loss shows as a new lease id; the keep-alive must not have given up either.
        check(etcd_sd_keepalive_check(self.keepalive), "keepalive check");
        0
    }
}

impl Drop for CAbi {
    fn drop(&mut self) {
        etcd_sd_watch_free(self.watch);
        etcd_sd_keepalive_free(self.keepalive);
        etcd_sd_client_free(self.client);
        // SAFETY: made by Box::into_raw in new; no callback runs once the watch is freed.
        drop(unsafe { Box::from_raw(self.recorder) });
    }
}

// ------------------------------------------------------------------------------------------
// Scenarios
// ------------------------------------------------------------------------------------------

struct Scenario {
    name: &'static str,
    prefix: &'static str,
    /// From the current leader: the member the client starts on, and the one cut off.
    pick: fn(usize) -> (usize, usize),
    hold: Duration,
    c_abi: bool,
}

#[derive(Debug)]
struct Figures {
    divergences: usize,
    comparisons: usize,
    own_lost: usize,
    own: usize,
    lease_changes: u64,
    events: usize,
    cut_shown: Duration,
    cut_reads: usize,
    cut_error: String,
    put_after_heal: Duration,
    marker_seen: Option<Duration>,
    terms: (u64, u64),
    converge_in_cut: Option<Duration>,
    converge_after_heal: Option<Duration>,
    rejoined: Duration,
}

/// Waits until the client's table equals the majority's view of `prefix` (read through member
/// `via`); the time it took, or `None` (a divergence) after `CONVERGE`. Waits on the
/// recorder's condition; the view is read again before it counts as equal, so a change in
/// etcd meanwhile (a lease expiring) is not missed.
fn converge(lab: &Lab, rec: &Recorder, via: usize, prefix: &str) -> Option<Duration> {
    let t = Instant::now();
    loop {
        let truth = lab.view(via, prefix);
        let left = CONVERGE.saturating_sub(t.elapsed());
        if rec.try_wait_for(left.min(Duration::from_secs(2)), |r| r.table == truth)
            && lab.view(via, prefix) == truth
        {
            return Some(t.elapsed());
        }
        if t.elapsed() >= CONVERGE {
            say(&format!(
                "DIVERGENCE: client {:?} vs majority {truth:?}",
                rec.table()
            ));
            return None;
        }
    }
}

fn run(lab: &mut Lab, s: &Scenario, n: usize) -> Figures {
    // Leadership moves between scenarios (a healed member comes back with a higher term).
    let leader = lab.leader();
    let (client_on, victim) = (s.pick)(leader);
    let maj = (0..MEMBERS).find(|&i| i != victim).unwrap();
    let p = s.prefix;
    let rec = Recorder::default();
    let endpoints = lab.endpoints(client_on);
    let client: Box<dyn Client> = if s.c_abi {
        Box::new(CAbi::new(&endpoints, p, &rec, n))
    } else {
        Box::new(Native::new(&endpoints, p, &rec, n))
    };
    let mut own: BTreeMap<String, String> = (0..3)
        .map(|i| (format!("{p}own/{i}"), format!("10.0.0.{i}:9000")))
        .collect();
    for (k, v) in &own {
        client.register(k, v);
    }
    let lease = client.lease_id();
    lab.write(maj, &format!("{p}ext/before"), Some("1"));
    lab.write(maj, &format!("{p}ext/gone"), Some("1"));
    let mut divergences = 0;
    let mut comparisons = 0;
    let mut compare = |what: &str| {
        comparisons += 1;
        let r = converge(lab, &rec, maj, p);
        if r.is_none() {
            divergences += 1;
            say(&format!("  {}: diverged {what}", s.name));
        }
        r
    };
    compare("before the cut");
    let member = client.watch_member();
    assert!(
        member.contains(&lab.members[client_on].addr),
        "the client should start on m{}, its watch is on {member}",
        client_on
    );
    let term_before = lab.raft_term(maj);
    let created: BTreeMap<String, Option<(i64, i64)>> = own
        .keys()
        .map(|k| (k.clone(), lab.key_meta(maj, k)))
        .collect();

    // The cut.
    let t_cut = Instant::now();
    lab.net.cut(victim);
    let (cut_shown, cut_reads, cut_error) = lab.prove_cut(victim);
    lab.wait_serving(maj).unwrap();
    // Changes during the cut, by the client and by others through the majority.
    let during = format!("{p}own/during");
    client.register(&during, "10.0.0.9:9000");
    own.insert(during.clone(), "10.0.0.9:9000".into());
    lab.write(maj, &format!("{p}ext/during"), Some("2"));
    lab.write(maj, &format!("{p}ext/gone"), None);
    let mut created = created;
    created.insert(during.clone(), lab.key_meta(maj, &during));
    let converge_in_cut = compare("during the cut");
    if let Some(rest) = s.hold.checked_sub(t_cut.elapsed()) {
        std::thread::sleep(rest); // the cut's duration is the scenario's definition
    }
    // Still cut at its end: the hold proved nothing otherwise.
    assert!(
        lab.linearizable_read(victim).is_err(),
        "m{} served a linearizable read at the end of its cut",
        victim
    );
    compare("at the end of the cut");
    let watch_member_in_cut = client.watch_member();
    let held = t_cut.elapsed();

    // Healing.
    lab.net.heal(victim);
    let t_heal = Instant::now();
    let marker = format!("{p}ext/healed");
    lab.write(maj, &marker, Some("3"));
    let put_after_heal = t_heal.elapsed();
    let marker_seen = rec
        .try_wait_for(CONVERGE, |r| {
            r.table.get(&marker).map(String::as_str) == Some("3")
        })
        .then(|| t_heal.elapsed());
    let converge_after_heal = compare("after healing").map(|_| t_heal.elapsed());
    if let Err(e) = lab.wait_serving(victim) {
        panic!("{e}; log:\n{}", lab.members[victim].log());
    }
    let rejoined = t_heal.elapsed();
    let term_after = lab.raft_term(maj);
    // The healed member agrees too.
    if converge(lab, &rec, victim, p).is_none() {
        divergences += 1;
        say(&format!("  {}: diverged from the healed member", s.name));
    }
    comparisons += 1;

    // No own key lost: in the majority with its value, never deleted and re-made (same create
    // revision and lease), never reported deleted to the client.
    let view = lab.view(maj, p);
    let deleted: Vec<String> = rec
        .events()
        .into_iter()
        .filter(|(k, key, _)| *k == EventKind::Delete && own.contains_key(key))
        .map(|(_, key, _)| key)
        .collect();
    let mut own_lost = 0;
    for (k, v) in &own {
        let now = lab.key_meta(maj, k);
        let ok = view.get(k) == Some(v) && now == created[k] && !deleted.contains(k);
        if !ok {
            own_lost += 1;
            say(&format!(
                "  {}: own key {k} lost: value {:?}, created/lease {:?} → {now:?}, deleted {}",
                s.name,
                view.get(k),
                created[k],
                deleted.contains(k)
            ));
        }
    }
    let f = Figures {
        divergences,
        comparisons,
        own_lost,
        own: own.len(),
        lease_changes: client.lease_losses() + u64::from(client.lease_id() != lease),
        events: rec.events().len(),
        cut_shown,
        cut_reads,
        cut_error,
        put_after_heal,
        marker_seen,
        terms: (term_before, term_after),
        converge_in_cut,
        converge_after_heal,
        rejoined,
    };
    let opt = |d: Option<Duration>| d.map_or("never".to_string(), secs);
    say(&format!(
        "partition {}\n  \
         figures: divergences {}/{} comparisons, own keys lost {}/{}, lease changes {}, \
         events seen {}\n  \
         cut: m{victim} for {} (TTL {TTL} s); proven: linearizable read on m{victim} failed \
         (read {} of it, {} after the cut: {}), serializable read from the client answered\n  \
         client: watch on {member} before the cut, {watch_member_in_cut} at its end; table \
         equal to the majority's {} into the cut\n  \
         heal: a put through the majority landed {} after healing, the client saw it after \
         {}, its table equal to the majority's after {}; m{victim} serving linearizable reads \
         again after {}; raft term {} before the cut, {} after healing",
        s.name,
        f.divergences,
        f.comparisons,
        f.own_lost,
        f.own,
        f.lease_changes,
        f.events,
        secs(held),
        f.cut_reads,
        secs(f.cut_shown),
        f.cut_error,
        opt(f.converge_in_cut),
        secs(f.put_after_heal),
        opt(f.marker_seen),
        opt(f.converge_after_heal),
        secs(f.rejoined),
        f.terms.0,
        f.terms.1,
    ));
    drop(client);
    lab.assert_running();
    f
}

fn skip(why: &str) {
    say(&format!("SKIP partition: {why}"));
}

#[test]
fn partitions_lose_nothing() {
    if std::env::var_os("ETCD_SD_SKIP_PARTITION").is_some() {
        return skip("ETCD_SD_SKIP_PARTITION is set");
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("not root: network namespaces need CAP_SYS_ADMIN (CI runs as root)");
    }
    let mut net = match Net::build() {
        Ok(n) => n,
        Err(e) => return skip(&format!("cannot create network namespaces: {e}")),
    };
    // This thread, and so the library's threads it starts and etcdctl, live in the client's
    // namespace from here on.
    if let Err(e) = net.enter("c") {
        return skip(&format!("cannot enter a network namespace: {e}"));
    }
    let t = Instant::now();
    let mut lab = Lab::start(net);
    say(&format!(
        "partition: cluster up in {} in namespaces {}-*",
        secs(t.elapsed()),
        lab.net.prefix
    ));
    let scenarios = [
        Scenario {
            name: "1 client's member (a follower) cut, healed",
            prefix: "/p1/",
            pick: |l| ((l + 1) % MEMBERS, (l + 1) % MEMBERS),
            hold: HOLD_SHORT,
            c_abi: false,
        },
        Scenario {
            name: "2 leader cut (client on a follower), healed",
            prefix: "/p2/",
            pick: |l| ((l + 1) % MEMBERS, l),
            hold: HOLD_SHORT,
            c_abi: false,
        },
        Scenario {
            name: "4 minority (the client's member, the leader) cut > 3 TTL, healed",
            prefix: "/p4/",
            pick: |l| (l, l),
            hold: HOLD_LONG,
            c_abi: false,
        },
        Scenario {
            name: "5 C ABI keep-alive + watch (compat bases): client's member (a follower) cut > 3 TTL, healed",
            prefix: "/p5/",
            pick: |l| ((l + 1) % MEMBERS, (l + 1) % MEMBERS),
            hold: HOLD_LONG,
            c_abi: true,
        },
    ];
    let mut all = Vec::new();
    for (n, s) in scenarios.iter().enumerate() {
        all.push((s.name, run(&mut lab, s, n)));
    }
    say(&format!(
        "partition: {} scenarios in {}",
        all.len(),
        secs(t.elapsed())
    ));
    for (name, f) in &all {
        assert_eq!(f.divergences, 0, "{name}: {f:?}");
        assert_eq!(f.own_lost, 0, "{name}: {f:?}");
        assert_eq!(f.lease_changes, 0, "{name}: {f:?}");
    }
}
