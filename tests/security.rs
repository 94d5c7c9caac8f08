//! TLS, mutual TLS and username/password auth against a real secured etcd. Certificates are
//! generated at test time with rcgen.

mod common;

use common::secure::{auth_etcd, s, tls_etcd, write, Pki};
use common::{opts, Etcd, Recorder};
use etcd_sd::{Discovery, Error, EventKind, Options, Registry};
use rcgen::KeyPair;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FAST: Duration = Duration::from_secs(3);

/// A client certificate signed by the test CA the way many openssl recipes make it:
/// `openssl x509 -req` without extensions, i.e. X.509 v1 (rcgen makes only v3). None when the
/// openssl CLI is missing or makes v3 anyway (OpenSSL 3.2+ may add extensions by default).
fn v1_client_cert(dir: &Path, pki: &Pki) -> Option<(PathBuf, PathBuf)> {
    let key = write(
        dir,
        "v1-key.pem",
        KeyPair::generate().unwrap().serialize_pem(),
    );
    let (csr, cert) = (dir.join("v1.csr"), dir.join("v1.pem"));
    let openssl = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    openssl(&[
        "req",
        "-new",
        "-key",
        &s(&key),
        "-subj",
        "/CN=v1",
        "-out",
        &s(&csr),
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&pki.ca),
        "-CAkey",
        &s(&pki.ca_key),
        "-set_serial",
        "42",
        "-days",
        "2",
        "-out",
        &s(&cert),
    ])?;
    let text = openssl(&["x509", "-in", &s(&cert), "-noout", "-text"])?;
    String::from_utf8_lossy(&text.stdout)
        .contains("Version: 1 (0x0)")
        .then_some((cert, key))
}

fn tls_opts(etcd: &Etcd, pki: &Pki) -> Options {
    let mut o = opts(&etcd.endpoint(), 3);
    o.set_ca_file(&s(&pki.ca)).unwrap();
    o
}

/// Registers a key and sees it through a discovery, both with `o`.
fn round_trip(o: &Options, key: &str) {
    let rec = Recorder::default();
    let _d = Discovery::new(o, key, rec.sink()).unwrap();
    let reg = Registry::new(o).unwrap();
    reg.register(key, "10.0.0.1:1").unwrap();
    rec.wait_event(EventKind::Put, key, FAST);
    reg.close().unwrap();
    rec.wait_event(EventKind::Delete, key, FAST);
}

fn expect_fast_err(o: &Options, what: &str, check: impl Fn(&Error) -> bool) -> Error {
    let t = Instant::now();
    let err = Registry::new(o)
        .err()
        .unwrap_or_else(|| panic!("{what}: must fail"));
    assert!(t.elapsed() < FAST, "{what}: took {:?}", t.elapsed());
    assert!(check(&err), "{what}: unexpected {err:?}");
    err
}

#[test]
fn tls_with_ca_works_and_wrong_trust_fails_fast() {
    let (etcd, pki, _dir) = tls_etcd(false);
    round_trip(&tls_opts(&etcd, &pki), "/tls/svc");

    // Server name override: connect by IP, check the certificate against another of its names.
    let mut o = tls_opts(&etcd, &pki);
    o.set_server_name("etcd.test").unwrap();
    round_trip(&o, "/tls/named");
    o.set_server_name("wrong.example").unwrap();
    expect_fast_err(&o, "wrong server name", |e| matches!(e, Error::Tls(_)));

    let mut o = opts(&etcd.endpoint(), 3);
    o.set_ca_file(&s(&pki.other_ca)).unwrap();
    expect_fast_err(&o, "wrong CA", |e| matches!(e, Error::Tls(_)));

    // Plain HTTP to the TLS port.
    let plain = opts(&etcd.endpoint().replace("https://", "http://"), 3);
    expect_fast_err(&plain, "http to a TLS port", |e| {
        matches!(e, Error::Tls(_) | Error::Unavailable(_))
    });
}

#[test]
fn https_to_a_plain_port_fails_fast() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let mut o = opts(&etcd.endpoint().replace("http://", "https://"), 3);
    o.set_ca_file(&s(&pki.ca)).unwrap();
    expect_fast_err(&o, "https to a plain port", |e| matches!(e, Error::Tls(_)));
}

#[test]
fn mutual_tls() {
    let (etcd, pki, dir) = tls_etcd(true);
    let mut o = tls_opts(&etcd, &pki);
    o.set_client_cert(&s(&pki.client_cert), &s(&pki.client_key))
        .unwrap();
    round_trip(&o, "/mtls/svc");

    let no_cert = tls_opts(&etcd, &pki);
    expect_fast_err(&no_cert, "no client certificate", |e| {
        matches!(e, Error::Tls(_))
    });

    let mut expired = tls_opts(&etcd, &pki);
    expired
        .set_client_cert(&s(&pki.expired_cert), &s(&pki.expired_key))
        .unwrap();
    expect_fast_err(&expired, "expired client certificate", |e| {
        matches!(e, Error::Tls(_))
    });

    // X.509 v1: etcd would take it, rustls on our side does not; say so, naming the file.
    match v1_client_cert(dir.path(), &pki) {
        Some((cert, key)) => {
            let mut v1 = tls_opts(&etcd, &pki);
            v1.set_client_cert(&s(&cert), &s(&key)).unwrap();
            let err = expect_fast_err(&v1, "X.509 v1 client certificate", |e| {
                matches!(e, Error::Tls(_))
            });
            let msg = err.to_string();
            assert!(msg.contains(&s(&cert)) && msg.contains("X.509 v1"), "{msg}");
        }
        None => eprintln!("no openssl CLI making v1 certificates: v1 case skipped"),
    }

    let mut mismatched = tls_opts(&etcd, &pki);
    mismatched
        .set_client_cert(&s(&pki.client_cert), &s(&pki.expired_key))
        .unwrap();
    expect_fast_err(&mismatched, "key not matching the certificate", |e| {
        matches!(e, Error::Tls(_) | Error::InvalidArgument(_))
    });

    let mut missing = tls_opts(&etcd, &pki);
    missing
        .set_client_cert(&s(&pki.client_cert), "/nonexistent/key.pem")
        .unwrap();
    let err = expect_fast_err(&missing, "missing key file", |e| {
        matches!(e, Error::InvalidArgument(_))
    });
    assert!(err.to_string().contains("/nonexistent/key.pem"), "{err}");

    let mut not_pem = tls_opts(&etcd, &pki);
    not_pem.set_ca_file("/etc/hostname").unwrap();
    let err = expect_fast_err(&not_pem, "CA file not PEM", |e| {
        matches!(e, Error::InvalidArgument(_))
    });
    assert!(err.to_string().contains("/etc/hostname"), "{err}");
}

fn svc_opts(etcd: &Etcd, password: &str) -> Options {
    let mut o = opts(&etcd.endpoint(), 2);
    o.set_user("svc", password).unwrap();
    o
}

#[test]
fn auth_survives_token_expiry_restart_and_auth_store_changes() {
    let mut etcd = auth_etcd();
    let o = svc_opts(&etcd, "S3cret-pw");
    let rec = Recorder::default();
    let _d = Discovery::new(&o, "/service/", rec.sink()).unwrap();
    let reg = Registry::new(&o).unwrap();
    reg.register("/service/user/i1", "10.0.0.1:1").unwrap();
    rec.wait_event(EventKind::Put, "/service/user/i1", FAST);
    let lease = reg.lease_id();

    // Tokens expire (TTL 2 s) several times over: keep-alive and watch carry on. The wait is
    // the scenario (time for tokens to expire), not synchronisation.
    std::thread::sleep(Duration::from_secs(5));
    reg.register("/service/user/i2", "10.0.0.1:2").unwrap();
    rec.wait_event(EventKind::Put, "/service/user/i2", FAST);
    etcd.put("/service/ext/a", "1");
    rec.wait_event(EventKind::Put, "/service/ext/a", FAST);

    // The auth store changes (a new user): tokens issued before are refused as old.
    etcd.ctl(&["user", "add", "another:pw"]);
    reg.register("/service/user/i3", "10.0.0.1:3").unwrap();
    rec.wait_event(EventKind::Put, "/service/user/i3", FAST);

    // A restart forgets every simple token: the library authenticates again.
    etcd.restart();
    etcd.wait_healthy();
    reg.register("/service/user/i4", "10.0.0.1:4").unwrap();
    etcd.put("/service/ext/b", "2");
    rec.wait_event(EventKind::Put, "/service/ext/b", Duration::from_secs(10));
    assert!(
        !rec.events().iter().any(|e| e.0 == EventKind::Delete),
        "{:?}",
        rec.events()
    );
    assert_eq!(reg.lease_id(), lease, "the lease never lapsed");
}

#[test]
fn auth_failures_are_fast_and_secrets_never_logged() {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = lines.clone();
    etcd_sd::log::set_sink(Some(Arc::new(move |_lvl, msg: &str| {
        l.lock().unwrap().push(msg.to_string())
    })));
    etcd_sd::log::set_level(log::LevelFilter::Debug);

    let etcd = auth_etcd();
    let mut errors = vec![];
    let bad = svc_opts(&etcd, "wrong-Passw0rd");
    errors.push(expect_fast_err(&bad, "wrong password", |e| {
        matches!(e, Error::Auth(_))
    }));

    let good = svc_opts(&etcd, "S3cret-pw");
    let reg = Registry::new(&good).unwrap();
    let t = Instant::now();
    let err = reg.register("/other/x", "v").unwrap_err();
    assert!(
        t.elapsed() < FAST && matches!(err, Error::Auth(_)),
        "{err:?}"
    );
    errors.push(err);
    let rec = Recorder::default();
    let err = Discovery::new(&good, "/other/", rec.sink()).err().unwrap();
    assert!(matches!(err, Error::Auth(_)), "{err:?}");
    errors.push(err);
    reg.register("/service/ok", "v").unwrap();
    drop(reg);

    etcd_sd::log::set_sink(None);
    let logged = lines.lock().unwrap().join("\n");
    for e in &errors {
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains("S3cret-pw") && !text.contains("wrong-Passw0rd"),
            "{text}"
        );
    }
    assert!(
        !logged.contains("S3cret-pw") && !logged.contains("wrong-Passw0rd"),
        "{logged}"
    );
    assert!(!format!("{good:?}").contains("S3cret-pw"));
}

#[test]
fn credentials_before_auth_is_enabled_are_accepted() {
    let etcd = Etcd::start();
    // etcd answers "authentication is not enabled"; like the Go client, carry on without.
    round_trip(&svc_opts(&etcd, "S3cret-pw"), "/service/noauth");
}
