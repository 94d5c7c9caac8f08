//! Fail fast, and say what happened: a refused connection is a definite answer (the call fails
//! at once with `Unavailable`), a timeout is not (retried within the connect timeout); the
//! error names every endpoint with what it last did, and the time really spent.
//!
//! The bounds here are generous functional checks (a refused endpoint must not cost the connect
//! timeout), not performance figures.

mod common;

use common::{Etcd, Recorder};
use etcd_sd::{Discovery, Error, Options, Registry};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Far below the connect timeout used below (5 s), far above what a refusal takes (ms).
const AT_ONCE: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A loopback port nobody listens on (bound, then released).
fn refused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback port that accepts TCP connections (the kernel completes them) and never
/// answers, like a black-holed or frozen member. Keep the listener alive while it is used.
fn silent_port() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn options(endpoints: &str) -> Options {
    let mut o = Options::new(endpoints).unwrap();
    o.set_connect_timeout(CONNECT_TIMEOUT).unwrap();
    o.set_request_timeout(Duration::from_secs(3)).unwrap();
    o
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

#[test]
fn a_refused_endpoint_fails_at_once_and_says_so() {
    let port = refused_port();
    let o = options(&format!("127.0.0.1:{port}"));

    let (r, took) = timed(|| Registry::new(&o));
    let err = r.err().expect("nothing listens there");
    eprintln!("registry: {took:?}: {err}");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(took < AT_ONCE, "a refused connection took {took:?}: {err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{port} refused the connection")),
        "{msg}"
    );
    assert!(
        !msg.contains("within 5"),
        "no timeout was waited for: {msg}"
    );

    let rec = Recorder::default();
    let (d, took) = timed(|| Discovery::new(&o, "/ff/", rec.sink()));
    let err = d.err().expect("nothing listens there");
    eprintln!("discovery: {took:?}: {err}");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(took < AT_ONCE, "a refused connection took {took:?}: {err}");
}

#[test]
fn every_endpoint_refused_fails_at_once_naming_each() {
    let (a, b, c) = (refused_port(), refused_port(), refused_port());
    let o = options(&format!("127.0.0.1:{a},127.0.0.1:{b},http://127.0.0.1:{c}"));
    let (r, took) = timed(|| Registry::new(&o));
    let err = r.err().expect("nothing listens there");
    eprintln!("{took:?}: {err}");
    assert!(took < AT_ONCE, "took {took:?}: {err}");
    let msg = err.to_string();
    for p in [a, b, c] {
        assert!(
            msg.contains(&format!("127.0.0.1:{p} refused the connection")),
            "{msg}"
        );
    }
}

#[test]
fn a_refused_endpoint_is_skipped_at_once_when_another_answers() {
    let etcd = Etcd::start();
    let live = etcd.endpoint();
    for list in [
        format!("127.0.0.1:{},{live}", refused_port()),
        format!(
            "127.0.0.1:{},127.0.0.1:{},{live}",
            refused_port(),
            refused_port()
        ),
        format!("{live},127.0.0.1:{}", refused_port()),
    ] {
        let o = options(&list);
        let (r, took) = timed(|| Registry::new(&o));
        let reg = r.unwrap_or_else(|e| panic!("{list}: {e}"));
        assert!(took < AT_ONCE, "{list}: took {took:?}");
        reg.register("/ff/mixed", "1").unwrap();
        reg.close().unwrap();
    }
}

#[test]
fn refused_and_silent_endpoints_wait_for_the_silent_one_and_report_both() {
    let (_hold, silent) = silent_port();
    let refused = refused_port();
    let mut o = options(&format!("127.0.0.1:{refused},127.0.0.1:{silent}"));
    o.set_connect_timeout(Duration::from_secs(2)).unwrap();
    let (r, took) = timed(|| Registry::new(&o));
    let err = r.err().expect("nobody answers");
    eprintln!("{took:?}: {err}");
    // A timeout is not a definite answer: retried until the connect timeout, not beyond.
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(4),
        "took {took:?}: {err}"
    );
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{refused} refused the connection")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("127.0.0.1:{silent} timed out")),
        "{msg}"
    );
    // The real time spent, rounded to a tenth ("2.0 s", more on a busy machine), never the
    // per-attempt share or a Debug duration.
    let within: f64 = msg
        .split("within ")
        .nth(1)
        .and_then(|rest| rest.split(" s:").next())
        .filter(|n| {
            n.split_once('.')
                .is_some_and(|(_, tenths)| tenths.len() == 1)
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no \"within N.N s:\" in {msg}"));
    assert!(
        within >= 1.9 && within <= took.as_secs_f64() + 0.05,
        "{within} s reported, {took:?} spent: {msg}"
    );
}

#[test]
fn wait_for_etcd_returns_at_once_when_the_endpoint_refuses() {
    let mut o = options(&format!("127.0.0.1:{}", refused_port()));
    o.set_wait_for_etcd(true);
    let (r, took) = timed(|| Registry::new(&o));
    r.expect("wait_for_etcd: the registry connects later");
    assert!(took < AT_ONCE, "registry took {took:?}");
    let rec = Recorder::default();
    let (d, took) = timed(|| Discovery::new(&o, "/ff/", rec.sink()));
    d.expect("wait_for_etcd: the discovery connects later");
    assert!(took < AT_ONCE, "discovery took {took:?}");
}

#[test]
fn a_call_after_etcd_stopped_fails_at_once() {
    let mut etcd = Etcd::start();
    let o = options(&etcd.endpoint());
    let reg = Registry::new(&o).unwrap();
    reg.register("/ff/a", "1").unwrap();
    etcd.kill();
    let (r, took) = timed(|| reg.register("/ff/b", "2"));
    let err = r.expect_err("etcd is gone");
    eprintln!("{took:?}: {err}");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(took < AT_ONCE, "took {took:?}: {err}");
    assert!(err.to_string().contains("refused the connection"), "{err}");
}

/// Registries made at once by several threads while etcd does not answer each wait at most
/// their own connect timeout: the grant of the shared lease is not made under a process-wide
/// lock (it was, and the fourth thread waited four connect timeouts).
#[test]
fn registries_made_together_against_a_silent_etcd_each_fail_within_the_connect_timeout() {
    let (_l, port) = silent_port();
    let mut o = options(&format!("127.0.0.1:{port}"));
    o.set_connect_timeout(Duration::from_secs(1)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let o = o.clone();
            std::thread::spawn(move || timed(|| Registry::new(&o).err()))
        })
        .collect();
    for t in threads {
        let (err, took) = t.join().unwrap();
        let err = err.expect("nothing answers");
        assert!(err.is_transient(), "{err:?}");
        assert!(took < Duration::from_millis(2500), "took {took:?}: {err}");
    }
}

/// A first connection slower than a third of the connect timeout (but within it) succeeds:
/// `retry` used to cut it at max(limit / 3, 1 s) and start again on a new connection, failing
/// every time. With auth, connecting includes authenticating, through the slow path.
#[test]
fn a_slow_first_connection_within_the_connect_timeout_succeeds() {
    let etcd = common::secure::auth_etcd();
    let target = etcd.endpoint().trim_start_matches("http://").to_owned();
    // A proxy that holds each new connection 1.5 s before passing bytes both ways: a slow
    // network or a busy TLS terminator in front of etcd.
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = proxy.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in proxy.incoming().flatten() {
            let target = target.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(1500)); // the slow network: the scenario
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    return;
                };
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut c, mut s) = (client, server);
                std::thread::spawn(move || std::io::copy(&mut c2, &mut s2));
                let _ = std::io::copy(&mut s, &mut c);
            });
        }
    });
    let mut o = options(&format!("127.0.0.1:{port}"));
    o.set_connect_timeout(Duration::from_secs(4)).unwrap();
    o.set_user("svc", "S3cret-pw").unwrap();
    let (r, took) = timed(|| Registry::new(&o));
    assert!(r.is_ok(), "{:?} after {took:?}", r.err());
    assert!(took < Duration::from_secs(4), "{took:?}");
}
