//! `etcd_sd_metrics_text` (issue 19): the Prometheus text is read back with a real parser
//! (Python's `prometheus_client`, installed by `scripts/test.sh deps`), and its figures are
//! the process's: registries, draining, keys, watches and table instances.

mod common;

use common::{opts, wait_until, Etcd};
use etcd_sd::ffi::{etcd_sd_metrics_text, etcd_sd_result};
use etcd_sd::table::{Config, ServiceTable};
use etcd_sd::{Discovery, Registry};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// The text through the C function, asking the length first as a C caller would.
fn metrics_text() -> String {
    let mut len = 0usize;
    assert_eq!(
        etcd_sd_metrics_text(std::ptr::null_mut(), 0, &mut len),
        etcd_sd_result::ETCD_SD_OK
    );
    let mut buf = vec![0u8; len + 1024];
    let mut got = 0usize;
    assert_eq!(
        etcd_sd_metrics_text(buf.as_mut_ptr().cast(), buf.len(), &mut got),
        etcd_sd_result::ETCD_SD_OK
    );
    assert!(
        got < buf.len(),
        "cut: {got} bytes for a buffer of {}",
        buf.len()
    );
    assert_eq!(buf[got], 0, "NUL-terminated");
    // Cut as snprintf: the length of the whole text, NUL-terminated within the buffer.
    let mut small = [1u8; 8];
    let mut whole = 0usize;
    assert_eq!(
        etcd_sd_metrics_text(small.as_mut_ptr().cast(), small.len(), &mut whole),
        etcd_sd_result::ETCD_SD_OK
    );
    assert!(whole >= small.len() && small[7] == 0);
    assert_eq!(
        etcd_sd_metrics_text(std::ptr::null_mut(), 1, &mut whole),
        etcd_sd_result::ETCD_SD_INVALID_ARGUMENT
    );
    assert_eq!(
        etcd_sd_metrics_text(std::ptr::null_mut(), 0, std::ptr::null_mut()),
        etcd_sd_result::ETCD_SD_INVALID_ARGUMENT
    );
    String::from_utf8(buf[..got].to_vec()).unwrap()
}

/// One parsed sample: its labels and value.
type Samples = Vec<(BTreeMap<String, String>, f64)>;

/// Parses `text` with prometheus_client: family name -> (type, samples).
fn parse(text: &str) -> BTreeMap<String, (String, Samples)> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = [f.type, [[s.labels, s.value, s.name] for s in f.samples]]
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("No module named 'prometheus_client'"),
        "the Python package prometheus_client is missing: run `scripts/test.sh deps` or \
         `python3 -m pip install prometheus_client`"
    );
    assert!(
        out.status.success(),
        "the parser refused the text: {err}\n{text}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut families = BTreeMap::new();
    for (name, f) in v.as_object().unwrap() {
        let kind = f[0].as_str().unwrap().to_string();
        let samples = f[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = s[0]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                (labels, s[1].as_f64().unwrap())
            })
            .collect();
        families.insert(name.clone(), (kind, samples));
    }
    families
}

/// The value of the one sample of `family` whose labels include `labels`.
fn value(f: &BTreeMap<String, (String, Samples)>, family: &str, labels: &[(&str, &str)]) -> f64 {
    let (_, samples) = f
        .get(family)
        .unwrap_or_else(|| panic!("no family {family}"));
    let hits: Vec<f64> = samples
        .iter()
        .filter(|(l, _)| {
            labels
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(hits.len(), 1, "{family} {labels:?}: {samples:?}");
    hits[0]
}

#[test]
fn metrics_text_parses_and_counts_the_process() {
    let etcd = Etcd::start();
    let o = opts(&etcd.endpoint(), 5);
    let a = Registry::new(&o).unwrap();
    let b = Registry::new(&o).unwrap();
    for i in 0..3 {
        a.register(&format!("/m/echo/a{i}"), &format!("127.0.0.1:{}", 7000 + i))
            .unwrap();
    }
    b.register("/m/user/b0", "127.0.0.1:8000").unwrap();
    b.register("/m/user/b1", "127.0.0.1:8001").unwrap();
    b.drain().unwrap();
    let table = ServiceTable::new(&o, "/m/", Config::default(), &[]).unwrap();
    let discovery = Discovery::new(&o, "/m/echo/", |_: &etcd_sd::Event| {}).unwrap();
    wait_until(Duration::from_secs(5), "the table holds /m/echo", || {
        table.instances("/m/echo").len() == 3
    });

    a.register("/m/echo/a3", "127.0.0.1:7003").unwrap();
    wait_until(
        Duration::from_secs(5),
        "the discovery sees the new key",
        || discovery.stats().keys == 4 && table.instances("/m/echo").len() == 4,
    );

    wait_until(Duration::from_secs(5), "the drained instances", || {
        table
            .instances("/m/user")
            .iter()
            .filter(|i| i.is_draining())
            .count()
            == 2
    });
    for _ in 0..10 {
        table.pick("/m/echo", None).unwrap();
    }
    assert!(
        table.pick("/m/user", None).is_none(),
        "every /m/user instance drains"
    );
    table.report("/m/echo", "127.0.0.1:7000", false);
    table.report("/m/echo", "127.0.0.1:7001", true);

    let text = metrics_text();
    let f = parse(&text);
    for (name, (kind, _)) in &f {
        assert!(name.starts_with("etcd_sd_"), "{name}");
        assert!(kind == "gauge" || kind == "counter", "{name}: {kind}");
    }
    assert_eq!(value(&f, "etcd_sd_registries", &[]), 2.0);
    assert_eq!(value(&f, "etcd_sd_registries_draining", &[]), 1.0);
    assert_eq!(value(&f, "etcd_sd_registered_keys", &[]), 6.0);
    assert_eq!(value(&f, "etcd_sd_connections", &[]), 1.0);
    assert!(value(&f, "etcd_sd_leases_kept", &[]) >= 1.0);
    assert_eq!(value(&f, "etcd_sd_lease_losses", &[]), 0.0);
    assert_eq!(
        value(
            &f,
            "etcd_sd_table_instances",
            &[("prefix", "/m/"), ("service", "/m/echo")]
        ),
        4.0
    );
    assert_eq!(
        value(
            &f,
            "etcd_sd_table_instances_ejected",
            &[("service", "/m/echo")]
        ),
        0.0
    );
    assert_eq!(
        value(&f, "etcd_sd_watch_keys", &[("prefix", "/m/echo/")]),
        4.0
    );
    // The watch's own events: the one put after the initial listing of 3.
    let echo = [("prefix", "/m/echo/")];
    assert_eq!(value(&f, "etcd_sd_watch_events", &echo), 1.0);
    assert_eq!(discovery.stats().events, 4);

    // Freed objects leave the text; the counters stay.
    drop(discovery);
    drop(table);
    b.close().unwrap();
    let f = parse(&metrics_text());
    assert_eq!(value(&f, "etcd_sd_registries", &[]), 1.0);
    assert_eq!(value(&f, "etcd_sd_registries_draining", &[]), 0.0);
    assert_eq!(value(&f, "etcd_sd_registered_keys", &[]), 4.0);
    assert!(!f.contains_key("etcd_sd_table_instances"));
    assert!(!f.contains_key("etcd_sd_watch_keys"));
}
