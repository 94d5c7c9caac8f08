//! The request rate etcd saw, from its Prometheus `/metrics` on each member's client port:
//! `grpc_server_handled_total` (unary calls, and streams when they end) summed over the
//! members, sampled every 100 ms by a thread. A member's counters start again from 0 when it
//! restarts (`process_start_time_seconds` changes): what it counted since is then the delta.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PERIOD: Duration = Duration::from_millis(100);

/// One member's counters at one moment.
#[derive(Clone, Default)]
struct Scrape {
    start_time: f64,
    handled: f64,
    handled_err: f64,
    received: f64,
    sent: f64,
    by_method: BTreeMap<String, f64>,
}

/// Cumulative figures over every member since the sampler started, at one moment.
#[derive(Clone, Default)]
pub struct Sample {
    pub at: Option<Instant>,
    /// `grpc_server_handled_total`, every code.
    pub handled: f64,
    /// … with a code other than OK.
    pub handled_err: f64,
    /// `grpc_server_msg_received_total` (stream messages included: keep-alives, watch creates).
    pub received: f64,
    /// `grpc_server_msg_sent_total` (stream messages included: watch responses).
    pub sent: f64,
    pub by_method: BTreeMap<String, f64>,
    /// Members that answered this scrape.
    pub members_up: usize,
}

#[derive(Default)]
struct State {
    samples: Vec<Sample>,
    last: Vec<Option<Scrape>>,
    total: Sample,
}

pub struct Sampler {
    state: Arc<Mutex<State>>,
    ports: Arc<Mutex<Vec<u16>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn get_metrics(port: u16) -> Option<String> {
    fetch(port, Duration::from_millis(500))
}

/// The body of `GET /metrics` on 127.0.0.1:`port`; `read_timeout` per read.
pub fn fetch(port: u16, read_timeout: Duration) -> Option<String> {
    let body = get(port, "/metrics", read_timeout)?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

/// The body of `GET <path>` on 127.0.0.1:`port` (HTTP/1.0, so the body runs to the end of the
/// connection) if the answer is 200; `read_timeout` per read.
pub fn get(port: u16, path: &str, read_timeout: Duration) -> Option<Vec<u8>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(read_timeout)).ok()?;
    s.set_write_timeout(Some(Duration::from_millis(200))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = Vec::with_capacity(256 * 1024);
    s.read_to_end(&mut buf).ok()?;
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    head.starts_with("HTTP/1.")
        .then_some(())
        .filter(|_| head.lines().next().is_some_and(|l| l.contains(" 200")))?;
    Some(buf.split_off(end + 4))
}

/// `name{labels} value` -> the value of label `label`.
fn label<'a>(labels: &'a str, label: &str) -> Option<&'a str> {
    let at = labels.find(&format!("{label}=\""))? + label.len() + 2;
    let rest = &labels[at..];
    Some(&rest[..rest.find('"')?])
}

fn parse(body: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in body.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((name_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = name_labels.split_once('{').unwrap_or((name_labels, ""));
        match name {
            "grpc_server_handled_total" => {
                s.handled += v;
                if label(labels, "grpc_code") != Some("OK") {
                    s.handled_err += v;
                }
                if v > 0.0 {
                    let method = label(labels, "grpc_method").unwrap_or("?").to_string();
                    *s.by_method.entry(method).or_default() += v;
                }
            }
            "grpc_server_msg_received_total" => s.received += v,
            "grpc_server_msg_sent_total" => s.sent += v,
            "process_start_time_seconds" => s.start_time = v,
            _ => {}
        }
    }
    s
}

/// The values of the unlabelled series `names` (gauges such as `go_goroutines`) in a
/// `/metrics` body, in the same order; None for a series the body lacks.
pub fn gauges(body: &str, names: &[&str]) -> Vec<Option<f64>> {
    let mut out = vec![None; names.len()];
    for line in body.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        if let Some(i) = names.iter().position(|n| *n == name) {
            out[i] = value.parse::<f64>().ok();
        }
    }
    out
}

/// What `now` adds to `before` (all of it when the member restarted in between).
fn delta(before: &Option<Scrape>, now: &Scrape) -> Scrape {
    let Some(b) = before.as_ref().filter(|b| b.start_time == now.start_time) else {
        return now.clone();
    };
    let d = |x: f64, y: f64| (x - y).max(0.0);
    let mut by_method = BTreeMap::new();
    for (m, v) in &now.by_method {
        let dv = d(*v, b.by_method.get(m).copied().unwrap_or(0.0));
        if dv > 0.0 {
            by_method.insert(m.clone(), dv);
        }
    }
    Scrape {
        start_time: now.start_time,
        handled: d(now.handled, b.handled),
        handled_err: d(now.handled_err, b.handled_err),
        received: d(now.received, b.received),
        sent: d(now.sent, b.sent),
        by_method,
    }
}

impl Sampler {
    /// Starts sampling the members listening on `ports` (change them with `set_ports`).
    pub fn start(ports: Vec<u16>) -> Sampler {
        let state = Arc::new(Mutex::new(State {
            last: vec![None; ports.len()],
            ..Default::default()
        }));
        let ports = Arc::new(Mutex::new(ports));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, pt, sp) = (state.clone(), ports.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("bench-metrics".into())
            .spawn(move || {
                let mut next = Instant::now();
                while !sp.load(Ordering::Relaxed) {
                    let ports = pt.lock().map(|p| p.clone()).unwrap_or_default();
                    let scrapes: Vec<Option<Scrape>> = ports
                        .iter()
                        .map(|p| get_metrics(*p).map(|b| parse(&b)))
                        .collect();
                    let at = Instant::now();
                    if let Ok(mut s) = st.lock() {
                        let s = &mut *s;
                        let mut up = 0;
                        for (i, scrape) in scrapes.into_iter().enumerate() {
                            let Some(now) = scrape else { continue };
                            up += 1;
                            let d = delta(&s.last[i], &now);
                            s.total.handled += d.handled;
                            s.total.handled_err += d.handled_err;
                            s.total.received += d.received;
                            s.total.sent += d.sent;
                            for (m, v) in d.by_method {
                                *s.total.by_method.entry(m).or_default() += v;
                            }
                            s.last[i] = Some(now);
                        }
                        let mut sample = s.total.clone();
                        sample.at = Some(at);
                        sample.members_up = up;
                        s.samples.push(sample);
                    }
                    next += PERIOD;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        next = now;
                    }
                }
            })
            .expect("metrics thread");
        Sampler {
            state,
            ports,
            stop,
            thread: Some(thread),
        }
    }

    /// The members now listen on `ports` (same order).
    pub fn set_ports(&self, ports: Vec<u16>) {
        if let Ok(mut p) = self.ports.lock() {
            *p = ports;
        }
    }

    /// Every sample so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.state
            .lock()
            .map(|s| s.samples.clone())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The sample taken last at or before `t` (the first one if none).
pub fn at_or_before(samples: &[Sample], t: Instant) -> Option<&Sample> {
    samples
        .iter()
        .take_while(|s| s.at.is_some_and(|a| a <= t))
        .last()
        .or(samples.first())
}

/// Requests handled per second over each 1 s window ending at a sample in `[from, to]`:
/// (end of the window, rate, failed per second).
pub fn per_second(samples: &[Sample], from: Instant, to: Instant) -> Vec<(Instant, f64, f64)> {
    let mut out = vec![];
    for (k, s) in samples.iter().enumerate() {
        let Some(at) = s.at else { continue };
        if at < from || at > to {
            continue;
        }
        // The sample about 1 s earlier.
        let Some(j) = samples[..k].iter().rposition(|p| {
            p.at.is_some_and(|pa| at.duration_since(pa) >= Duration::from_millis(950))
        }) else {
            continue;
        };
        let p = &samples[j];
        let dt = at.duration_since(p.at.expect("sampled")).as_secs_f64();
        out.push((
            at,
            (s.handled - p.handled) / dt,
            (s.handled_err - p.handled_err) / dt,
        ));
    }
    out
}

/// Handled requests per method between two samples.
pub fn methods_between(a: &Sample, b: &Sample) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (m, v) in &b.by_method {
        let d = v - a.by_method.get(m).copied().unwrap_or(0.0);
        if d > 0.0 {
            out.insert(m.clone(), d);
        }
    }
    out
}
