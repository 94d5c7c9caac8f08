//! The service table's last-known snapshot (issue 19): written after changes, used when etcd
//! does not answer the first listing (the table is then stale), replaced by etcd's listing
//! as soon as etcd answers; corrupt or foreign files are refused, never a crash.

mod common;

use common::{opts, wait_until, Etcd};
use etcd_sd::table::{snapshot, Config, ServiceTable};
use etcd_sd::Error;
use std::time::Duration;

fn addrs(t: &ServiceTable, service: &str) -> Vec<String> {
    let inst = t.instances(service);
    let mut v: Vec<String> = inst.iter().map(|i| i.address().to_string()).collect();
    v.sort();
    v
}

#[test]
fn a_table_starts_from_its_snapshot_while_etcd_is_down() {
    let mut etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("echo.snapshot");
    let mut o = opts(&etcd.endpoint(), 5);
    o.set_snapshot_file(Some(file.to_str().unwrap())).unwrap();
    for (k, a) in [
        ("a", "127.0.0.1:1"),
        ("b", "127.0.0.1:2"),
        ("c", "127.0.0.1:3"),
    ] {
        etcd.put(&format!("/sn/echo/{k}"), a);
    }
    {
        let t = ServiceTable::new(&o, "/sn/", Config::default(), &[]).unwrap();
        assert!(!t.is_stale());
        etcd.put("/sn/echo/c", "127.0.0.1:33"); // a change after the listing is written too
        wait_until(
            Duration::from_secs(10),
            "the snapshot holds the change",
            || {
                snapshot::load(&file, "/sn/")
                    .is_ok_and(|rows| rows.iter().any(|(_, v)| v.as_slice() == b"127.0.0.1:33"))
            },
        );
    }
    // Meanwhile the fleet changes, and then etcd goes away.
    etcd.del("/sn/echo/b");
    etcd.put("/sn/echo/d", "127.0.0.1:4");
    etcd.kill();

    let t = ServiceTable::new(&o, "/sn/", Config::default(), &[]).unwrap();
    assert!(t.is_stale());
    assert_eq!(
        addrs(&t, "/sn/echo"),
        ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:33"]
    );
    assert!(
        t.pick("/sn/echo", None).is_some(),
        "a stale table still picks"
    );

    // etcd answers: its listing replaces the snapshot's keys.
    etcd.restart();
    wait_until(Duration::from_secs(20), "the table listed etcd", || {
        !t.is_stale() && addrs(&t, "/sn/echo") == ["127.0.0.1:1", "127.0.0.1:33", "127.0.0.1:4"]
    });
    drop(t);
    let rows = snapshot::load(&file, "/sn/").unwrap();
    assert_eq!(rows.len(), 3, "written again on drop: {rows:?}");
}

#[test]
fn corrupt_or_foreign_snapshots_are_refused_not_used() {
    let mut etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.snapshot");
    let mut o = opts(&etcd.endpoint(), 5);
    o.set_snapshot_file(Some(file.to_str().unwrap())).unwrap();
    etcd.kill();
    for text in [
        "not json".to_string(),
        r#"{"etcd_sd_snapshot":1,"prefix":"/other/","keys":[["/other/s/a","h:1"]]}"#.into(),
        r#"{"etcd_sd_snapshot":2,"prefix":"/sn/","keys":[]}"#.into(),
        "\u{0}\u{ff}".into(),
    ] {
        std::fs::write(&file, text).unwrap();
        match ServiceTable::new(&o, "/sn/", Config::default(), &[]) {
            Err(Error::Unavailable(_)) => {}
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(_) => panic!("started from a bad snapshot"),
        }
    }
    // A missing file: the same.
    std::fs::remove_file(&file).unwrap();
    assert!(matches!(
        ServiceTable::new(&o, "/sn/", Config::default(), &[]),
        Err(Error::Unavailable(_))
    ));
    assert!(o.set_snapshot_file(Some("")).is_err());
}
