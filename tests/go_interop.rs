//! Interop with Go's own etcd naming code (issue 19, part 8): Go registers with etcd's
//! `naming/endpoints` manager and our table finds the instances; we register with
//! `ValueFormat::GoNaming` and etcd's gRPC resolver (`naming/resolver`) finds ours; both write
//! the same bytes for the same address.
//!
//! The Go side (tests/go/gonaming/main.go) builds offline in GOPATH mode against Debian's
//! packages: `apt-get install golang-go golang-etcd-server-dev` (etcd 3.4.23's client, with
//! the 3.5-style `naming/endpoints` and `naming/resolver`). Without them the test prints a
//! SKIP line and passes: neither CI nor scripts/test.sh needs Go.

mod common;

use common::{opts, wait_until, Etcd};
use etcd_sd::options::ValueFormat;
use etcd_sd::table::Config;
use etcd_sd::{Registry, ServiceTable};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where Debian's golang-etcd-server-dev puts etcd's Go sources.
const GOCODE: &str = "/usr/share/gocode";

/// A line on the real stderr (libtest captures `eprintln!` of a passing test, not this).
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Builds tests/go/gonaming, or says why it cannot.
fn build_gonaming() -> Result<PathBuf, String> {
    let resolver = Path::new(GOCODE).join("src/go.etcd.io/etcd/clientv3/naming/resolver");
    if !resolver.is_dir() {
        return Err(format!(
            "{} is missing (apt-get install golang-etcd-server-dev)",
            resolver.display()
        ));
    }
    let go = std::env::var("GO").unwrap_or_else(|_| "go".into());
    match Command::new(&go).arg("version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Err(format!("{go:?} does not run (apt-get install golang-go)")),
    }
    // A GOPATH whose src/gonaming is our source: GOPATH mode needs no module download.
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-interop");
    let src = work.join("gopath/src");
    std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    let link = src.join("gonaming");
    let _ = std::fs::remove_file(&link);
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/gonaming");
    std::os::unix::fs::symlink(&ours, &link).map_err(|e| e.to_string())?;
    let bin = work.join("gonaming");
    let gopath = format!("{}:{GOCODE}", work.join("gopath").display());
    let out = Command::new(&go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg("gonaming")
        .current_dir(&work)
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", work.join("cache"))
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        // Go and the sources are there: a failed build is a failure, not a skip.
        panic!(
            "go build of tests/go/gonaming failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(bin)
}

fn gonaming(bin: &Path, etcd: &Etcd, args: &[&str]) -> String {
    let out = Command::new(bin)
        .arg(etcd.endpoint())
        .args(args)
        .output()
        .expect("run gonaming");
    assert!(
        out.status.success(),
        "gonaming {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn go_naming_both_ways() {
    let bin = match build_gonaming() {
        Ok(b) => b,
        Err(why) => return say(&format!("SKIP go_interop: {why}")),
    };
    let etcd = Etcd::start();

    // Go registers, we discover. Go's keys have no leading slash: TARGET/NAME.
    gonaming(&bin, &etcd, &["add", "go/greeter", "a", "127.0.0.1:7001"]);
    gonaming(&bin, &etcd, &["add", "go/greeter", "b", "127.0.0.1:7002"]);
    let t = ServiceTable::new(&opts(&etcd.endpoint(), 3), "go/", Config::default(), &[]).unwrap();
    assert_eq!(t.services(), ["go/greeter"]);
    let found: Vec<String> = t
        .instances("go/greeter")
        .iter()
        .map(|i| format!("{} {} {}", i.key(), i.address(), i.weight()))
        .collect();
    assert_eq!(
        found,
        [
            "go/greeter/a 127.0.0.1:7001 1",
            "go/greeter/b 127.0.0.1:7002 1"
        ]
    );
    gonaming(&bin, &etcd, &["add", "go/greeter", "c", "127.0.0.1:7003"]);
    wait_until(Duration::from_secs(5), "Go's third endpoint", || {
        t.instances("go/greeter").len() == 3
    });

    // We register in Go's format, Go's gRPC resolver discovers.
    let mut o = opts(&etcd.endpoint(), 3);
    o.set_value_format(ValueFormat::GoNaming);
    let reg = Registry::new(&o).unwrap();
    reg.register("cpp/echo/1", "127.0.0.1:8001").unwrap();
    reg.register("cpp/echo/2", "127.0.0.1:8002 3").unwrap();
    let resolved = gonaming(&bin, &etcd, &["resolve", "cpp/echo", "2"]);
    assert_eq!(resolved, "127.0.0.1:8001\n127.0.0.1:8002\n");

    // The same bytes: what Go's manager wrote for 127.0.0.1:7001 is what we write for it.
    let go_written = etcd.get_prefix("go/greeter/a");
    assert_eq!(
        go_written["go/greeter/a"],
        etcd_sd::registry::go_naming_value("127.0.0.1:7001").unwrap()
    );
    assert_eq!(
        etcd.get_prefix("cpp/echo/1")["cpp/echo/1"],
        r#"{"Op":0,"Addr":"127.0.0.1:8001","Metadata":null}"#
    );
    say("go_interop: Go registered -> etcd-sd table, etcd-sd registered -> Go resolver: ok");
}
