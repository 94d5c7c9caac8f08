//! The private etcd cluster of the restart storm and the fleet: three members on loopback, data on tmpfs when
//! possible, which can be SIGKILLed and started again on the same data directories (on their
//! usual client ports, or on other ones so that no client reaches them); and an `etcd grpc-proxy`
//! in front of it for the fleet.

use crate::server::{data_dir, die_with_parent, etcd_bin, wait_healthy};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

struct Member {
    name: String,
    /// The client port the clients are given.
    client_port: u16,
    peer_port: u16,
    /// The client port the member listens on now (another one while hidden).
    listening: u16,
    child: Option<Child>,
}

pub struct Cluster {
    dir: TempDir,
    members: Vec<Member>,
    initial_cluster: String,
    /// Where the data directories live, e.g. "/dev/shm (tmpfs)".
    pub data_location: String,
    /// Names the cluster token and the logs kept on drop: target/bench-<tag>-<member>.log.
    tag: &'static str,
    /// More flags for every member (each start and restart), e.g. `--enable-pprof`.
    extra_args: Vec<String>,
}

fn free_port() -> u16 {
    portpicker::pick_unused_port().expect("no free port")
}

impl Cluster {
    /// Starts three members (default heartbeat/election settings) and waits until each
    /// serves reads.
    pub fn start() -> Result<Cluster, String> {
        Cluster::start_tagged("storm")
    }

    /// As [`Cluster::start`]; `tag` names its token and kept logs (target/bench-<tag>-m0.log).
    pub fn start_tagged(tag: &'static str) -> Result<Cluster, String> {
        Cluster::start_with(tag, &[])
    }

    /// As [`Cluster::start_tagged`], every member also given `extra_args`.
    pub fn start_with(tag: &'static str, extra_args: &[&str]) -> Result<Cluster, String> {
        let (dir, data_location) = data_dir();
        let members: Vec<Member> = (0..3)
            .map(|i| {
                let client_port = free_port();
                Member {
                    name: format!("m{i}"),
                    client_port,
                    peer_port: free_port(),
                    listening: client_port,
                    child: None,
                }
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = Cluster {
            dir,
            members,
            initial_cluster,
            data_location,
            tag,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
        };
        for i in 0..3 {
            c.spawn(i, "new")?;
        }
        c.wait_healthy(Duration::from_secs(30))?;
        Ok(c)
    }

    fn spawn(&mut self, i: usize, state: &str) -> Result<(), String> {
        let m = &self.members[i];
        let data = self.dir.path().join(&m.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", m.name)))
            .map_err(|e| format!("etcd log: {e}"))?;
        let client = format!("http://127.0.0.1:{}", m.listening);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let token = format!("etcd-sd-bench-{}", self.tag);
        let mut cmd = Command::new(etcd_bin());
        cmd.args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", &token])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start etcd {}: {e}", m.name))?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// Waits until every member serves reads on the port it listens on now.
    pub fn wait_healthy(&mut self, limit: Duration) -> Result<(), String> {
        for i in 0..self.members.len() {
            let endpoint = format!("http://127.0.0.1:{}", self.members[i].listening);
            let child = self.members[i].child.as_mut().ok_or("member not running")?;
            if !wait_healthy(child, &endpoint, limit) {
                return Err(format!(
                    "etcd {} did not become healthy; log:\n{}",
                    self.members[i].name,
                    self.log(i)
                ));
            }
        }
        Ok(())
    }

    pub fn log(&self, i: usize) -> String {
        let path = self
            .dir
            .path()
            .join(format!("{}.log", self.members[i].name));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        // The end is what tells why it stopped.
        let start = text.len().saturating_sub(4000);
        let cut = (start..=text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[cut..].to_string()
    }

    /// The cluster's temporary directory (data directories and logs), removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Lines of every member's log (all its runs) that contain `what`.
    pub fn log_lines_with(&self, what: &str) -> usize {
        self.members
            .iter()
            .map(|m| {
                let path = self.dir.path().join(format!("{}.log", m.name));
                std::fs::read_to_string(path)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains(what))
                    .count()
            })
            .sum()
    }

    /// The clients' endpoint list: "http://127.0.0.1:a,http://127.0.0.1:b,...".
    pub fn endpoints(&self) -> String {
        self.client_urls().join(",")
    }

    /// Each member's usual client URL.
    pub fn client_urls(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// The client port each member listens on now.
    pub fn listening_ports(&self) -> Vec<u16> {
        self.members.iter().map(|m| m.listening).collect()
    }

    pub fn pids(&self) -> Vec<u32> {
        self.members
            .iter()
            .filter_map(|m| m.child.as_ref().map(Child::id))
            .collect()
    }

    /// SIGKILLs every member, one right after the other.
    pub fn kill_all(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// SIGKILLs member `i` (and reaps it); the others run on.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data directory and usual client port, and waits until
    /// it serves reads (false: not within `limit`).
    pub fn restart(&mut self, i: usize, limit: Duration) -> Result<bool, String> {
        self.kill(i);
        self.members[i].listening = self.members[i].client_port;
        self.spawn(i, "existing")?;
        let endpoint = format!("http://127.0.0.1:{}", self.members[i].listening);
        let child = self.members[i].child.as_mut().ok_or("member not running")?;
        Ok(wait_healthy(child, &endpoint, limit))
    }

    /// Starts every member again on its data directory; `hidden`: on fresh client ports
    /// that no client knows, so the cluster runs but its clients cannot reach it.
    pub fn restart_all(&mut self, hidden: bool) -> Result<(), String> {
        self.kill_all();
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            m.listening = if hidden { free_port() } else { m.client_port };
            self.spawn(i, "existing")?;
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
        // Keep the members' logs for a look afterwards: target/bench-<tag>-<member>.log.
        for m in &self.members {
            let from = self.dir.path().join(format!("{}.log", m.name));
            let to = format!("target/bench-{}-{}.log", self.tag, m.name);
            let _ = std::fs::copy(from, to);
        }
    }
}

/// `etcd grpc-proxy start` in front of a cluster (the fleet's `ETCD_SD_FLEET_PROXY`): its
/// clients talk to it alone, and it holds its own few connections to the members, coalescing
/// the watches of the same range and multiplexing the lease keep-alives. Killed when dropped.
pub struct Proxy {
    child: Child,
    pub port: u16,
}

impl Proxy {
    /// Starts a proxy on a free loopback port for the members at `endpoints` (comma-separated
    /// URLs), with `extra_args` (e.g. `--enable-pprof`), logging to `log`, and waits until it
    /// serves reads.
    pub fn start(endpoints: &str, extra_args: &[&str], log: &Path) -> Result<Proxy, String> {
        let port = free_port();
        let log_file = std::fs::File::create(log).map_err(|e| format!("proxy log: {e}"))?;
        let mut cmd = Command::new(etcd_bin());
        cmd.args(["grpc-proxy", "start"])
            .arg(format!("--endpoints={endpoints}"))
            .arg(format!("--listen-addr=127.0.0.1:{port}"))
            .arg(format!("--advertise-client-url=127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(log.with_extension("data"))
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start etcd grpc-proxy: {e}"))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        if !wait_healthy(&mut child, &endpoint, Duration::from_secs(30)) {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("etcd grpc-proxy did not serve; log:\n{text}"));
        }
        Ok(Proxy { child, port })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
