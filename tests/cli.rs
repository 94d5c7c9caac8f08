//! The `etcd-sd` command-line tool against a real etcd.

mod common;

use common::Etcd;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_etcd-sd");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("ETCD_SD_ENDPOINTS")
        .output()
        .expect("run etcd-sd")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Starts a long-running command; its stdout lines come through the returned reader.
fn spawn(args: &[&str]) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(args)
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
