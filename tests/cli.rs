//! The `etcd-sd` command-line tool against a real etcd.

mod common;

use common::secure::{auth_etcd, s, tls_etcd, Pki};
use common::Etcd;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_etcd-sd");

/// The variables the tool reads; the tests set them explicitly or not at all.
const VARS: [&str; 6] = [
    "ETCD_SD_ENDPOINTS",
    "ETCD_SD_CACERT",
    "ETCD_SD_CERT",
    "ETCD_SD_KEY",
    "ETCD_SD_USER",
    "ETCD_SD_PASSWORD",
];

/// Variables to set, as (name, value).
type Env<'a> = &'a [(&'a str, &'a str)];

/// `etcd-sd` with only the given ones of [`VARS`] set.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args);
    for v in VARS {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    c
}

fn run(args: &[&str]) -> Output {
    run_env(args, &[])
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args, env).output().expect("run etcd-sd")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Starts a long-running command; its stdout lines come through the returned reader.
fn spawn(args: &[&str]) -> (Child, std::sync::mpsc::Receiver<String>) {
    spawn_env(args, &[])
}

fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = command(args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn etcd-sd");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn expect_line(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return l,
            Ok(_) => continue,
            Err(_) => panic!("no line containing {needle:?}"),
        }
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn help_and_usage_errors() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    for cmd in ["services", "watch", "register", "check"] {
        assert!(stdout(&o).contains(cmd));
    }
    for opt in [
        "--cacert",
        "--cert",
        "--key",
        "--user",
        "--password",
        "$ETCD_SD_USER",
    ] {
        assert!(stdout(&o).contains(opt), "{opt}");
    }
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no command"));
    let o = run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["register", "/only-key"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("KEY and VALUE"));
    let o = run(&["services", "-t", "zero"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["check", "ftp://127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn unreachable_etcd_is_exit_code_1() {
    let port = portpicker::pick_unused_port().unwrap().to_string();
    let ep = format!("127.0.0.1:{port}");
    for args in [
        vec!["check", ep.as_str()],
        vec!["services", "-t", "1000", ep.as_str()],
        vec![
            "-t",
            "1000",
            "-e",
            ep.as_str(),
            "register",
            "/service/x/1",
            "h:1",
        ],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).starts_with("etcd-sd: "), "{}", stderr(&o));
    }
}

#[test]
fn check_services_watch_register() {
    let etcd = Etcd::start();
    let ep = etcd.endpoint();

    let o = run(&["check", &ep]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(" ok "), "{}", stdout(&o));

    let (mut watch, wrx) = spawn(&["watch", &ep, "/service"]);
    expect_line(&wrx, "watching /service");

    let (mut reg, rrx) = spawn(&[
        "-e",
        &ep,
        "register",
        "--ttl",
        "5",
        "/service/user/i1",
        "127.0.0.1:9001 2",
    ]);
    expect_line(&rrx, "registered /service/user/i1");
    expect_line(&wrx, "online  /service/user/i1 -> 127.0.0.1:9001 2");
    etcd.put(
        "/service/chat/c1",
        r#"{"Op":0,"Addr":"127.0.0.1:9100","Metadata":null}"#,
    );
    expect_line(&wrx, "online  /service/chat/c1");

    let o = run(&["services", &ep]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let user = text
        .lines()
        .find(|l| l.contains("/service/user/i1"))
        .expect(&text);
    assert!(user.starts_with("/service/user "), "{user}");
    assert!(
        user.contains("127.0.0.1:9001") && user.contains(" 2 "),
        "{user}"
    );
    let ttl: i64 = user
        .split_whitespace()
        .rev()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .expect(user);
    assert!((1..=5).contains(&ttl), "{user}");
    let chat = text
        .lines()
        .find(|l| l.contains("/service/chat/c1"))
        .expect(&text);
    assert!(
        chat.contains("127.0.0.1:9100") && chat.contains("no lease"),
        "{chat}"
    );
    assert!(text.contains("2 service(s), 2 instance(s)"), "{text}");

    // SIGTERM: the sidecar revokes its lease, the watcher sees the key go at once.
    signal(&reg, "-TERM");
    expect_line(&rrx, "unregistered /service/user/i1");
    assert!(reg.wait().unwrap().success());
    expect_line(&wrx, "offline /service/user/i1");

    signal(&watch, "-INT");
    assert!(watch.wait().unwrap().success());
}

/// `services --json` parsed.
fn services_json(args: &[&str]) -> serde_json::Value {
    let o = run(&with(&["services", "--json"], args));
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)))
}

#[test]
fn prefixes_without_a_slash_formats_and_json() {
    let etcd = Etcd::start();
    let ep = etcd.endpoint();
    // go-zero: `<key>/<lease id>`, no leading slash.
    for (id, port) in [("7587862355498237445", 8080), ("7587862355498237447", 8081)] {
        etcd.put(&format!("user.rpc/{id}"), &format!("127.0.0.1:{port}"));
    }
    etcd.put("user.rpc/7587862355498237449", "not an address at all");
    etcd.put(
        "/microservices/helloworld/i1",
        r#"{"id":"i1","name":"helloworld","version":"v2","metadata":{"zone":"a"},"endpoints":["http://127.0.0.1:8001","grpc://127.0.0.1:9001?isSecure=false"]}"#,
    );
    etcd.put(
        "/micro/registry/greeter/n1",
        r#"{"name":"greeter","version":"1.0","nodes":[{"id":"n1","address":"127.0.0.1:7001","metadata":{"weight":"4"}}]}"#,
    );

    // The prefix by position without a slash (either order), or by option.
    for args in [
        vec!["services", "-e", &ep, "user.rpc"],
        vec!["services", "user.rpc", &ep],
        vec!["services", &ep, "--prefix", "user.rpc"],
        vec!["-p", "user.rpc", "services", &ep],
    ] {
        let o = run(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let text = stdout(&o);
        assert!(
            text.contains("1 service(s), 2 instance(s) under user.rpc"),
            "{args:?}: {text}"
        );
        assert!(text.contains("(not an instance:"), "{text}");
    }

    let doc = services_json(&[&ep, "user.rpc/"]);
    assert_eq!(doc["prefix"], "user.rpc/");
    assert!(doc["revision"].as_i64().unwrap() > 0);
    let svcs = doc["services"].as_array().unwrap();
    assert_eq!(svcs.len(), 1, "{doc}");
    assert_eq!(svcs[0]["service"], "user.rpc");
    let inst = svcs[0]["instances"].as_array().unwrap();
    assert_eq!(inst.len(), 2);
    assert_eq!(inst[0]["key"], "user.rpc/7587862355498237445");
    assert_eq!(inst[0]["address"], "127.0.0.1:8080");
    assert_eq!(inst[0]["weight"], 1);
    assert_eq!(inst[0]["lease"], 0);
    assert!(inst[0]["ttl_left"].is_null());
    assert_eq!(svcs[0]["invalid"][0]["key"], "user.rpc/7587862355498237449");

    // Kratos: the grpc:// endpoint by default, the first with --kratos-endpoint first.
    let doc = services_json(&[&ep, "/microservices/"]);
    let i = &doc["services"][0]["instances"][0];
    assert_eq!(i["address"], "127.0.0.1:9001");
    assert_eq!(i["metadata"]["version"], "v2");
    assert_eq!(i["metadata"]["zone"], "a");
    let doc = services_json(&["--kratos-endpoint", "first", &ep, "/microservices/"]);
    assert_eq!(
        doc["services"][0]["instances"][0]["address"],
        "127.0.0.1:8001"
    );
    // go-micro: the node's address and metadata.
    let doc = services_json(&[&ep, "/micro/"]);
    let i = &doc["services"][0]["instances"][0];
    assert_eq!(doc["services"][0]["service"], "/micro/registry/greeter");
    assert_eq!(
        (&i["address"], &i["weight"]),
        (&"127.0.0.1:7001".into(), &4.into())
    );

    // What stays ambiguous is refused, with the way out.
    expect_usage(
        &run(&["services", "-e", &ep, "10.0.0.1:2379"]),
        "second endpoints",
        "needs --prefix",
    );
    expect_usage(
        &run(&["services", "--prefix", "a", &ep, "b"]),
        "two prefixes",
        "unexpected argument \"b\"",
    );
    expect_usage(
        &run(&["services", "--kratos-endpoint", "grpc://", &ep]),
        "bad scheme",
        "Kratos endpoint",
    );
    expect_usage(
        &run(&["services", "--json=yes", &ep]),
        "--json=",
        "no value",
    );

    // A sidecar registering in Go's naming format, found by `services`.
    let (mut reg, rrx) = spawn(&[
        "-e",
        &ep,
        "register",
        "--go-naming",
        "greeter/1",
        "127.0.0.1:7101 2",
    ]);
    let line = expect_line(&rrx, "registered greeter/1");
    let go = r#"{"Op":0,"Addr":"127.0.0.1:7101","Metadata":{"weight":2}}"#;
    assert!(line.contains(go), "{line}");
    assert_eq!(etcd.get_prefix("greeter/")["greeter/1"], go);
    let doc = services_json(&[&ep, "greeter"]);
    let i = &doc["services"][0]["instances"][0];
    assert_eq!(
        (&i["address"], &i["weight"]),
        (&"127.0.0.1:7101".into(), &2.into())
    );
    signal(&reg, "-TERM");
    assert!(reg.wait().unwrap().success());
    expect_usage(
        &run(&["-e", &ep, "register", "--go-naming", "greeter/2", "h:1 0"]),
        "bad value",
        "Go naming format",
    );
}

/// Exit code 1 (etcd refused or unreachable), an `etcd-sd:` line on stderr, and `needle` in
/// what was said (`check` says why on stdout, per endpoint). Returns stdout and stderr.
fn expect_refused(o: &Output, what: &str, needle: &str) -> String {
    let said = format!("{}{}", stdout(o), stderr(o));
    assert_eq!(o.status.code(), Some(1), "{what}: {said}");
    assert!(stderr(o).starts_with("etcd-sd: "), "{what}: {said}");
    assert!(said.contains(needle), "{what}: {said}");
    said
}

/// Exit code 2 (bad usage), the message naming `needle`.
fn expect_usage(o: &Output, what: &str, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{what}: {err}");
    assert!(err.contains(needle), "{what}: {err}");
}

/// `extra` (TLS or auth options), then `args`.
fn with<'a>(extra: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
    extra.iter().chain(args).copied().collect()
}

/// Registers `key` with `register`, sees it come and go with `watch` and listed with a lease
/// by `services`, all with the same extra options and environment.
fn round_trip(ep: &str, key: &str, extra: &[&str], env: &[(&str, &str)]) {
    let (mut watch, wrx) = spawn_env(&with(extra, &["watch", ep, "/service/"]), env);
    expect_line(&wrx, "watching /service/");
    let (mut reg, rrx) = spawn_env(
        &with(extra, &["-e", ep, "register", key, "127.0.0.1:9001"]),
        env,
    );
    expect_line(&rrx, &format!("registered {key}"));
    expect_line(&wrx, &format!("online  {key} -> 127.0.0.1:9001"));

    let o = run_env(&with(extra, &["services", ep, "/service/"]), env);
    assert!(o.status.success(), "services: {}", stderr(&o));
    let text = stdout(&o);
    let row = text.lines().find(|l| l.contains(key)).expect(&text);
    assert!(
        row.contains("127.0.0.1:9001") && row.ends_with(" s"),
        "{row}"
    );

    signal(&reg, "-TERM");
    expect_line(&rrx, &format!("unregistered {key}"));
    assert!(reg.wait().unwrap().success());
    expect_line(&wrx, &format!("offline {key}"));
    signal(&watch, "-INT");
    assert!(watch.wait().unwrap().success());
}

#[test]
fn mutual_tls_by_options_and_by_environment() {
    let (etcd, pki, _dir) = tls_etcd(true);
    let ep = etcd.endpoint();
    let (ca, cert, key) = (s(&pki.ca), s(&pki.client_cert), s(&pki.client_key));
    let tls = ["--cacert", &ca, "--cert", &cert, "--key", &key];

    let o = run(&with(&tls, &["check", &ep]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(" ok "), "{}", stdout(&o));
    etcd.put("/service/ext/e1", "10.0.0.2:80");
    let o = run(&with(&tls, &["services", &ep]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("/service/ext/e1"), "{}", stdout(&o));

    round_trip(&ep, "/service/user/flags", &tls, &[]);
    let (ca_eq, cert_eq, key_eq) = (
        format!("--cacert={ca}"),
        format!("--cert={cert}"),
        format!("--key={key}"),
    );
    round_trip(&ep, "/service/user/eq", &[&ca_eq, &cert_eq, &key_eq], &[]);
    let env = [
        ("ETCD_SD_CACERT", ca.as_str()),
        ("ETCD_SD_CERT", cert.as_str()),
        ("ETCD_SD_KEY", key.as_str()),
        ("ETCD_SD_ENDPOINTS", ep.as_str()),
    ];
    round_trip(&ep, "/service/user/env", &[], &env);
    let o = run_env(&["check"], &env);
    assert!(o.status.success(), "check with ETCD_SD_*: {}", stderr(&o));

    // etcd refuses, or we refuse etcd: exit code 1, saying it is TLS.
    for cmd in ["check", "services"] {
        let o = run(&[cmd, "--cacert", &ca, &ep]);
        expect_refused(&o, &format!("{cmd} without a client certificate"), "TLS");
        let other = s(&pki.other_ca);
        let o = run(&with(
            &["--cacert", &other, "--cert", &cert, "--key", &key],
            &[cmd, &ep],
        ));
        expect_refused(&o, &format!("{cmd} trusting another CA"), "TLS");
        let o = run(&[cmd, &ep.replace("https://", "http://")]);
        assert_eq!(o.status.code(), Some(1), "{cmd} over http: {}", stderr(&o));
    }
    let (expired, expired_key) = (s(&pki.expired_cert), s(&pki.expired_key));
    let o = run(&[
        "--cacert",
        &ca,
        "--cert",
        &expired,
        "--key",
        &expired_key,
        "-t",
        "2000",
        "-e",
        &ep,
        "register",
        "/service/x/1",
        "h:1",
    ]);
    expect_refused(&o, "register with an expired certificate", "TLS");
    let o = run(&["--cacert", &ca, "-t", "2000", "watch", &ep]);
    expect_refused(&o, "watch without a client certificate", "TLS");
}

#[test]
fn bad_tls_and_auth_settings_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let (ca, cert, key) = (s(&pki.ca), s(&pki.client_cert), s(&pki.client_key));
    // Nothing listens there: every case must fail before connecting.
    let port = portpicker::pick_unused_port().unwrap();
    let ep = format!("https://127.0.0.1:{port}");
    let http = format!("http://127.0.0.1:{port}");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "just text\n").unwrap();
    let not_pem = s(&not_pem);
    for cmd in ["services", "watch", "check", "register"] {
        let tail: Vec<&str> = if cmd == "register" {
            vec!["-e", &ep, "register", "/service/x/1", "h:1"]
        } else {
            vec![cmd, &ep]
        };
        let case = |what: &str, opts: &[&str], env: &[(&str, &str)], needle: &str| {
            let o = run_env(&with(opts, &tail), env);
            expect_usage(&o, &format!("{cmd}: {what}"), needle);
            assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        };
        case(
            "missing CA file",
            &["--cacert", "/nonexistent/ca.pem"],
            &[],
            "/nonexistent/ca.pem",
        );
        case("CA not PEM", &["--cacert", &not_pem], &[], "not PEM");
        case("certificate without key", &["--cert", &cert], &[], "--key");
        case(
            "key without certificate",
            &[],
            &[("ETCD_SD_KEY", &key)],
            "--cert",
        );
        case(
            "missing key file",
            &[
                "--cacert",
                &ca,
                "--cert",
                &cert,
                "--key",
                "/nonexistent/key.pem",
            ],
            &[],
            "/nonexistent/key.pem",
        );
        case(
            "key not PEM",
            &["--cert", &cert, "--key", &not_pem],
            &[],
            &not_pem,
        );
        case(
            "empty --cacert",
            &["--cacert="],
            &[],
            "--cacert needs a value",
        );
        case(
            "user without password",
            &["--user", "svc"],
            &[],
            "ETCD_SD_PASSWORD",
        );
        case(
            "password without user",
            &["--password", "pw"],
            &[],
            "--user",
        );
        case(
            "empty user name",
            &["--user", ":pw"],
            &[],
            "user name is empty",
        );
        expect_usage(&run(&with(&tail, &["--key"])), cmd, "--key needs a value");
        let http_tail: Vec<&str> = tail
            .iter()
            .map(|a| if *a == ep { http.as_str() } else { a })
            .collect();
        let o = run(&with(&["--cacert", &ca], &http_tail));
        expect_usage(&o, &format!("{cmd}: TLS with http://"), "https://");
    }
}

#[test]
fn auth_by_options_and_by_environment() {
    let etcd = auth_etcd();
    let ep = etcd.endpoint();
    etcd.put("/service/ext/e1", "10.0.0.2:80");

    let forms: [(&[&str], Env); 4] = [
        (&["--user", "svc:S3cret-pw"], &[]),
        (&["--user", "svc", "--password", "S3cret-pw"], &[]),
        (&["--user=svc", "--password=S3cret-pw"], &[]),
        (
            &[],
            &[("ETCD_SD_USER", "svc"), ("ETCD_SD_PASSWORD", "S3cret-pw")],
        ),
    ];
    for (opts, env) in forms {
        // A role on /service/ does not cover the default prefix /service.
        let o = run_env(&with(opts, &["services", &ep, "/service/"]), env);
        assert!(o.status.success(), "{opts:?} {env:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("/service/ext/e1"), "{}", stdout(&o));
        let o = run_env(&with(opts, &["check", &ep]), env);
        assert!(o.status.success(), "{opts:?} {env:?}: {}", stderr(&o));
    }
    round_trip(&ep, "/service/user/a1", &["--user", "svc:S3cret-pw"], &[]);
    round_trip(
        &ep,
        "/service/user/a2",
        &[],
        &[("ETCD_SD_USER", "svc:S3cret-pw")],
    );

    // Refused: exit code 1, an auth error, and never the password.
    let wrong = ["--user", "svc:wrong-Passw0rd"];
    for (what, args) in [
        ("services", with(&wrong, &["services", &ep, "/service/"])),
        ("check", with(&wrong, &["check", &ep])),
        ("watch", with(&wrong, &["-t", "2000", "watch", &ep])),
        (
            "register",
            with(
                &wrong,
                &["-t", "2000", "-e", &ep, "register", "/service/x/1", "h:1"],
            ),
        ),
    ] {
        let err = expect_refused(&run(&args), &format!("{what}, wrong password"), "auth");
        assert!(!err.contains("wrong-Passw0rd"), "{err}");
    }
    let err = expect_refused(
        &run(&["services", &ep, "/service/"]),
        "services, no user",
        "auth",
    );
    assert!(err.contains("user name is empty"), "{err}");
    // svc may not touch /other.
    let err = expect_refused(
        &run(&["--user", "svc:S3cret-pw", "services", &ep, "/other"]),
        "services outside the role's prefix",
        "permission denied",
    );
    assert!(!err.contains("S3cret-pw"), "{err}");
}

#[test]
fn credentials_before_auth_is_enabled_are_accepted() {
    // Like etcdctl (and the library): etcd says auth is not enabled, carry on without.
    let etcd = Etcd::start();
    let ep = etcd.endpoint();
    for cmd in ["services", "check"] {
        let o = run(&["--user", "svc:pw", cmd, &ep]);
        assert!(o.status.success(), "{cmd}: {}", stderr(&o));
    }
    round_trip(&ep, "/service/user/noauth", &["--user", "svc:pw"], &[]);
}
