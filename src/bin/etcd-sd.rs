//! `etcd-sd`: look at and take part in etcd-sd service discovery from a shell.
//!
//!   etcd-sd services [ENDPOINTS] [PREFIX]      services, instances, addresses, lease TTL left
//!   etcd-sd watch [ENDPOINTS] [PREFIX]         online/offline events, live, until Ctrl-C
//!   etcd-sd register [--ttl N] KEY VALUE       keep KEY registered until killed (a sidecar)
//!   etcd-sd check [ENDPOINTS]                  does each endpoint answer, and how fast
//!
//! Exit codes: 0 success; 1 etcd unreachable or refused the request (for `check`: an endpoint
//! did not answer); 2 bad usage. Errors go to stderr as one line starting with "etcd-sd:".

use etcd_client::{Client, ConnectOptions, GetOptions};
use etcd_sd::table::{address, service_of};
use etcd_sd::{Discovery, Event, EventKind, Options, Registry, Status};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: etcd-sd [OPTIONS] COMMAND [ARGS]

Commands:
  services [ENDPOINTS] [PREFIX]   print the services under PREFIX (default /service): each
                                  instance's key, address, weight and lease TTL left
  watch [ENDPOINTS] [PREFIX]      print online/offline events under PREFIX until interrupted
  register [--ttl N] KEY VALUE    put KEY=VALUE under a kept-alive lease (TTL N s, default 3)
                                  and hold it until SIGINT/SIGTERM, then revoke it
  check [ENDPOINTS]               say whether each endpoint answers, how fast, its version

Options:
  -e, --endpoints LIST   etcd endpoints, comma-separated (\"http://10.0.0.1:2379,10.0.0.2:2379\");
                         default $ETCD_SD_ENDPOINTS, else http://127.0.0.1:2379. A positional
                         ENDPOINTS (any argument not starting with '/') does the same.
  -t, --timeout MS       connect/request timeout in milliseconds (default 3000)
      --ttl N            lease TTL in seconds for `register` (default 3)
  -h, --help             this help
  -V, --version          the version

A service is a key up to its last '/': /service/user/instance-1 is an instance of
/service/user. Values: \"host:port\" (optionally \" WEIGHT\" or \" weight=N\"), or Go naming
JSON {\"Addr\":\"host:port\",\"Metadata\":...}.

Exit codes: 0 ok; 1 etcd unreachable or refused; 2 bad usage.";

/// What went wrong, by exit code.
enum Failure {
    Usage(String),
    Etcd(String),
}

type Outcome = Result<(), Failure>;

fn usage(msg: impl Into<String>) -> Failure {
    Failure::Usage(msg.into())
}

fn etcd(msg: impl std::fmt::Display) -> Failure {
    Failure::Etcd(msg.to_string())
}

struct Args {
    command: String,
    endpoints: Option<String>,
    timeout: Duration,
    ttl: i64,
    positional: Vec<String>,
}

fn parse_args(raw: Vec<String>) -> Result<Option<Args>, Failure> {
    let mut a = Args {
        command: String::new(),
        endpoints: None,
        timeout: Duration::from_millis(3000),
        ttl: 3,
        positional: vec![],
    };
    let mut it = raw.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-V" | "--version" => {
                println!("etcd-sd {}", etcd_sd::VERSION);
                std::process::exit(0);
            }
            "-e" | "--endpoints" => a.endpoints = Some(value(&arg)?),
            "-t" | "--timeout" => {
                let v = value(&arg)?;
                let ms: u64 =
                    v.parse().ok().filter(|m| *m > 0).ok_or_else(|| {
                        usage(format!("--timeout {v:?}: expected milliseconds > 0"))
                    })?;
                a.timeout = Duration::from_millis(ms);
            }
            "--ttl" => {
                let v = value(&arg)?;
                a.ttl = v
                    .parse()
                    .ok()
                    .filter(|t| *t > 0)
                    .ok_or_else(|| usage(format!("--ttl {v:?}: expected seconds > 0")))?;
            }
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(usage(format!("unknown option {s:?}")))
            }
            _ if a.command.is_empty() => a.command = arg,
            _ => a.positional.push(arg),
        }
    }
    if a.command.is_empty() {
        return Err(usage("no command given"));
    }
    Ok(Some(a))
}

impl Args {
    /// `[ENDPOINTS] [PREFIX]`: an argument starting with '/' is the prefix.
    fn endpoints_and_prefix(&mut self, default_prefix: &str) -> Result<(String, String), Failure> {
        let mut prefix = None;
        for p in std::mem::take(&mut self.positional) {
            if p.starts_with('/') && prefix.is_none() {
                prefix = Some(p);
            } else if !p.starts_with('/') && self.endpoints.is_none() {
                self.endpoints = Some(p);
            } else {
                return Err(usage(format!("unexpected argument {p:?}")));
            }
        }
        let prefix = prefix.unwrap_or_else(|| default_prefix.to_string());
        Ok((self.endpoints(), prefix))
    }

    fn endpoints(&self) -> String {
        self.endpoints
            .clone()
            .or_else(|| {
                std::env::var("ETCD_SD_ENDPOINTS")
                    .ok()
                    .filter(|e| !e.is_empty())
            })
            .unwrap_or_else(|| "http://127.0.0.1:2379".into())
    }

    fn options(&self, endpoints: &str) -> Result<Options, Failure> {
        let mut o = Options::new(endpoints).map_err(|e| usage(e.to_string()))?;
        o.set_connect_timeout(self.timeout)
            .map_err(|e| usage(e.to_string()))?;
        o.set_request_timeout(self.timeout)
            .map_err(|e| usage(e.to_string()))?;
        o.set_ttl(self.ttl).map_err(|e| usage(e.to_string()))?;
        Ok(o)
    }
}

fn main() -> ExitCode {
    // SIGINT/SIGTERM are taken with sigwait() by the commands that wait for them; block them
    // before any library thread starts, so every thread inherits the mask.
    let signals = block_signals();
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse_args(raw) {
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Some(mut args)) => match args.command.as_str() {
            "services" => services(&mut args),
            "watch" => watch(&mut args, &signals),
            "register" => register(&mut args, &signals),
            "check" => check(&mut args),
            other => Err(usage(format!("unknown command {other:?}"))),
        },
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("etcd-sd: {m}\n(etcd-sd --help for usage)");
            ExitCode::from(2)
        }
        Err(Failure::Etcd(m)) => {
            eprintln!("etcd-sd: {m}");
            ExitCode::from(1)
        }
    }
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a local, zero-initialised signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for SIGINT or SIGTERM; returns its name.
fn wait_for_signal(set: &libc::sigset_t) -> &'static str {
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is a valid signal set blocked in this thread; `sig` is written by sigwait.
    unsafe { libc::sigwait(set, &mut sig) };
    if sig == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| etcd(format!("cannot start a runtime: {e}")))
}

async fn connect(endpoints: &[String], timeout: Duration) -> Result<Client, Failure> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(timeout)
        .with_timeout(timeout);
    tokio::time::timeout(timeout, Client::connect(endpoints, Some(opts)))
        .await
        .map_err(|_| {
            etcd(format!(
                "no answer from {} within {timeout:?}",
                endpoints.join(",")
            ))
        })?
        .map_err(|e| etcd(format!("cannot reach etcd at {}: {e}", endpoints.join(","))))
}

fn parse_endpoints(list: &str) -> Result<Vec<String>, Failure> {
    etcd_sd::endpoints::parse_endpoints(list).map_err(|e| usage(e.to_string()))
}

// --- services -------------------------------------------------------------------------------

struct Row {
    valid: bool,
    key: String,
    address: String,
    weight: String,
    ttl: String,
}

fn services(args: &mut Args) -> Outcome {
    let (endpoints, prefix) = args.endpoints_and_prefix("/service")?;
    let eps = parse_endpoints(&endpoints)?;
    let timeout = args.timeout;
    let rt = runtime()?;
    let (revision, rows) = rt.block_on(async {
        let mut c = connect(&eps, timeout).await?;
        let resp = c
            .get(prefix.as_bytes(), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(|e| etcd(format!("listing {prefix:?} at {endpoints}: {e}")))?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let mut ttls: BTreeMap<i64, String> = BTreeMap::new();
        let mut rows: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let lease = kv.lease();
            if lease != 0 && !ttls.contains_key(&lease) {
                let ttl = match c.lease_time_to_live(lease, None).await {
                    Ok(t) if t.ttl() >= 0 => format!("{} s", t.ttl()),
                    Ok(_) => "expired".into(),
                    Err(e) => format!("? ({e})"),
                };
                ttls.insert(lease, ttl);
            }
            let ttl = if lease == 0 {
                "no lease".to_string()
            } else {
                ttls[&lease].clone()
            };
            let (valid, address, weight) = match address::parse(kv.value()) {
                Ok(e) => (true, e.addr, e.weight.to_string()),
                Err(why) => (false, format!("(not an instance: {why})"), "-".into()),
            };
            rows.entry(service_of(&key).to_string())
                .or_default()
                .push(Row {
                    valid,
                    key,
                    address,
                    weight,
                    ttl,
                });
        }
        Ok::<_, Failure>((revision, rows))
    })?;
    let width = |f: &dyn Fn(&Row) -> usize, title: usize| {
        rows.values().flatten().map(f).max().unwrap_or(0).max(title)
    };
    let ws = rows.keys().map(String::len).max().unwrap_or(0).max(7);
    let wk = width(&|r| r.key.len(), 8);
    let wa = width(&|r| r.address.len(), 7);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:ws$}  {:wk$}  {:wa$}  {:>6}  TTL LEFT",
        "SERVICE", "INSTANCE", "ADDRESS", "WEIGHT"
    );
    let mut instances = 0;
    for (service, list) in &rows {
        for (i, r) in list.iter().enumerate() {
            let name = if i == 0 { service.as_str() } else { "" };
            let _ = writeln!(
                out,
                "{name:ws$}  {:wk$}  {:wa$}  {:>6}  {}",
                r.key, r.address, r.weight, r.ttl
            );
            instances += usize::from(r.valid);
        }
    }
    let _ = writeln!(
        out,
        "{} service(s), {instances} instance(s) under {prefix} at revision {revision}",
        rows.len()
    );
    Ok(())
}

// --- watch ----------------------------------------------------------------------------------

/// UTC wall-clock time of day, "HH:MM:SS.mmm".
fn clock() -> String {
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

fn watch(args: &mut Args, signals: &libc::sigset_t) -> Outcome {
    let (endpoints, prefix) = args.endpoints_and_prefix("/service")?;
    let opts = args.options(&endpoints)?;
    let print = |e: &Event| {
        let key = String::from_utf8_lossy(&e.key);
        let value = String::from_utf8_lossy(&e.value);
        let line = match e.kind {
            EventKind::Put => format!("{} online  {key} -> {value}\n", clock()),
            EventKind::Delete => format!("{} offline {key} (was {value})\n", clock()),
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    };
    let d = Discovery::new(&opts, &prefix, print)
        .map_err(|e| etcd(format!("watching {prefix:?} at {endpoints}: {e}")))?;
    println!(
        "{} watching {prefix} at {endpoints} (Ctrl-C to stop)",
        clock()
    );
    let _ = std::io::stdout().flush();
    wait_for_signal(signals);
    drop(d);
    Ok(())
}

// --- register -------------------------------------------------------------------------------

fn register(args: &mut Args, signals: &libc::sigset_t) -> Outcome {
    let [key, value]: [String; 2] = std::mem::take(&mut args.positional)
        .try_into()
        .map_err(|_| usage("register needs KEY and VALUE"))?;
    if !key.starts_with('/') {
        eprintln!("etcd-sd: note: {key:?} does not start with '/'");
    }
    if let Err(why) = address::parse(value.as_bytes()) {
        eprintln!("etcd-sd: note: service tables will not take {value:?} as an instance ({why})");
    }
    let endpoints = args.endpoints();
    let opts = args.options(&endpoints)?;
    let reg = Registry::new(&opts).map_err(|e| etcd(format!("etcd at {endpoints}: {e}")))?;
    reg.register(&key, &value)
        .map_err(|e| etcd(format!("registering {key:?}: {e}")))?;
    println!(
        "{} registered {key} -> {value} (lease {:x}, TTL {} s); SIGINT/SIGTERM to unregister",
        clock(),
        reg.lease_id(),
        args.ttl
    );
    let _ = std::io::stdout().flush();
    let k = key.clone();
    reg.set_status_sink(Some(Box::new(move |s: &Status| {
        match s {
            Status::Lost => println!("{} lost {k}: the lease expired; registering again", clock()),
            Status::Restored => println!("{} restored {k}", clock()),
        }
        let _ = std::io::stdout().flush();
    })));
    let sig = wait_for_signal(signals);
    let t = Instant::now();
    let closed = reg.close();
    match closed {
        Ok(()) => {
            println!(
                "{} {sig}: unregistered {key} (lease revoked in {:.1} ms)",
                clock(),
                t.elapsed().as_secs_f64() * 1e3
            );
            Ok(())
        }
        Err(e) => Err(etcd(format!(
            "{sig}: revoking the lease of {key:?}: {e} (the key expires after the TTL)"
        ))),
    }
}

// --- check ----------------------------------------------------------------------------------

fn check(args: &mut Args) -> Outcome {
    let positional = std::mem::take(&mut args.positional);
    if positional.len() > 1 {
        return Err(usage(format!("unexpected argument {:?}", positional[1])));
    }
    if let Some(e) = positional.into_iter().next() {
        args.endpoints = Some(e);
    }
    let eps = parse_endpoints(&args.endpoints())?;
    let timeout = args.timeout;
    let rt = runtime()?;
    let mut failed = 0;
    for ep in &eps {
        let t = Instant::now();
        let r = rt.block_on(async {
            let mut c = connect(std::slice::from_ref(ep), timeout).await?;
            tokio::time::timeout(timeout, c.status())
                .await
                .map_err(|_| etcd(format!("no answer within {timeout:?}")))?
                .map_err(etcd)
        });
        let ms = t.elapsed().as_secs_f64() * 1e3;
        match r {
            Ok(s) => {
                let leader = s.leader();
                let member = s.header().map_or(0, |h| h.member_id());
                println!(
                    "{ep}  ok  {ms:.1} ms  etcd {}  {}  db {} B  raft index {}",
                    s.version(),
                    if leader == member && leader != 0 {
                        "leader".to_string()
                    } else {
                        format!("leader {leader:x}")
                    },
                    s.db_size(),
                    s.raft_index()
                );
            }
            Err(Failure::Etcd(m)) | Err(Failure::Usage(m)) => {
                failed += 1;
                println!("{ep}  FAILED after {ms:.1} ms: {m}");
            }
        }
    }
    if failed > 0 {
        return Err(etcd(format!(
            "{failed} of {} endpoint(s) did not answer",
            eps.len()
        )));
    }
    Ok(())
}
