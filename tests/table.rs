//! The service table against a real etcd: registration through `Registry`, the table through
//! `ServiceTable`.

mod common;

use common::{opts, wait_until, Etcd};
use etcd_sd::table::{Config, Failover, Locality, Policy, Selector, SlowStart};
use etcd_sd::{Registry, ServiceTable};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SVC: &str = "/service/echo";

fn addrs(t: &ServiceTable, service: &str) -> Vec<String> {
    t.instances(service)
        .iter()
        .map(|i| i.address().to_string())
        .collect()
}

#[test]
fn follows_registrations_and_picks_round_robin() {
    let etcd = Etcd::start();
    let reg = Registry::new(&opts(&etcd.endpoint(), 3)).unwrap();
    reg.register(&format!("{SVC}/a"), "127.0.0.1:1001").unwrap();
    etcd.put("/service/other/x", "127.0.0.1:2000");
    let t = ServiceTable::new(
        &opts(&etcd.endpoint(), 3),
        "/service/",
        Config::default(),
        &[],
    )
    .unwrap();
    // The initial listing is in the table when `new` returns.
    assert_eq!(addrs(&t, SVC), ["127.0.0.1:1001"]);
    assert_eq!(t.services(), ["/service/echo", "/service/other"]);
    reg.register(&format!("{SVC}/b"), "127.0.0.1:1002 weight=2")
        .unwrap();
    reg.register(
        &format!("{SVC}/c"),
        r#"{"Op":0,"Addr":"127.0.0.1:1003","Metadata":null}"#,
    )
    .unwrap();
    wait_until(Duration::from_secs(5), "3 instances", || {
        t.instances(SVC).len() == 3
    });
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..300 {
        *counts.entry(t.pick(SVC, None).unwrap()).or_default() += 1;
    }
    assert_eq!(counts.len(), 3);
    assert!(counts.values().all(|&n| n == 100), "{counts:?}");
    reg.unregister(&format!("{SVC}/a")).unwrap();
    wait_until(Duration::from_secs(5), "a gone", || {
        t.instances(SVC).len() == 2
    });
    assert!((0..10).all(|_| t.pick(SVC, None).unwrap() != "127.0.0.1:1001"));
    reg.close().unwrap();
    wait_until(Duration::from_secs(5), "all gone", || {
        t.pick(SVC, None).is_none()
    });
}

#[test]
fn declared_services_only() {
    let etcd = Etcd::start();
    etcd.put("/service/a/1", "127.0.0.1:1");
    etcd.put("/service/b/1", "127.0.0.1:2");
    let t = ServiceTable::new(
        &opts(&etcd.endpoint(), 3),
        "/service/",
        Config::default(),
        &["/service/b"],
    )
    .unwrap();
    assert_eq!(t.services(), ["/service/b"]);
    assert_eq!(t.pick("/service/a", None), None);
    t.declare("/service/a/");
    assert_eq!(t.pick("/service/a", None).as_deref(), Some("127.0.0.1:1"));
}

/// 8 threads pick for 10 s while a writer adds and removes instances. Each address carries
/// its key's number and a generation that only grows, so a pick can check that the address
/// belongs to the key (no torn read) and that it is not a generation the table had already
/// dropped before the pick started (no instance after its DELETE).
#[test]
fn eight_threads_pick_while_instances_come_and_go() {
    const KEYS: usize = 10;
    let etcd = Etcd::start();
    let t = Arc::new(
        ServiceTable::new(
            &opts(&etcd.endpoint(), 10),
            "/service/",
            Config::default(),
            &[],
        )
        .unwrap(),
    );
    // dead[i]: every generation of key i up to this one is out of the table.
    let dead: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let seen: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; KEYS]));
    let parse = |key: &str, addr: &str| -> (usize, u64) {
        let i: usize = key.rsplit('k').next().unwrap().parse().unwrap();
        // 127.0.<i>.1:<gen>  (gen fits a port: < 65536)
        let mut parts = addr.split([':', '.']);
        let ai: usize = parts.nth(2).unwrap().parse().unwrap();
        assert_eq!(ai, i, "torn read: key {key} with address {addr}");
        let gen: u64 = addr.rsplit(':').next().unwrap().parse().unwrap();
        (i, gen)
    };
    {
        let (t2, dead, seen) = (t.clone(), dead.clone(), seen.clone());
        t.set_changed(Some(Box::new(move |s: &Arc<str>| {
            let snap = t2.instances(s);
            let mut present = [None; KEYS];
            for inst in snap.iter() {
                let (i, g) = parse(inst.key(), inst.address());
                present[i] = Some(g);
            }
            let mut seen = seen.lock().unwrap();
            for i in 0..KEYS {
                let gone = match present[i] {
                    Some(g) => {
                        seen[i] = seen[i].max(g);
                        g - 1
                    }
                    None => seen[i],
                };
                dead[i].fetch_max(gone, Ordering::SeqCst);
            }
        })));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let picks = Arc::new(AtomicUsize::new(0));
    let pickers: Vec<_> = (0..8)
        .map(|n| {
            let (t, dead, stop, picks) = (t.clone(), dead.clone(), stop.clone(), picks.clone());
            std::thread::spawn(move || {
                let mut local = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let before: Vec<u64> = dead.iter().map(|d| d.load(Ordering::SeqCst)).collect();
                    let key = format!("user-{local}");
                    let hash = (n % 2 == 1).then_some(key.as_bytes());
                    let got = t.pick_with(SVC, hash, |inst| {
                        (inst.key().to_string(), inst.address().to_string())
                    });
                    if let Some((k, a)) = got {
                        let (i, g) = parse(&k, &a);
                        assert!(
                            g > before[i],
                            "picked {k} -> {a} (generation {g}) after the table dropped generation {}",
                            before[i]
                        );
                    }
                    local += 1;
                }
                picks.fetch_add(local, Ordering::Relaxed);
            })
        })
        .collect();
    let reg = Registry::new(&opts(&etcd.endpoint(), 10)).unwrap();
    let mut present = [false; KEYS];
    let mut gen = 1000u64;
    let mut changes = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let i = fastrand::usize(..KEYS);
        let key = format!("{SVC}/k{i}");
        if present[i] && fastrand::bool() {
            reg.unregister(&key).unwrap();
            present[i] = false;
        } else {
            gen += 1; // a new address (generation) for the key: an address change or a return
            reg.register(&key, &format!("127.0.{i}.1:{gen}")).unwrap();
            present[i] = true;
        }
        changes += 1;
        assert!(gen < 65_000);
    }
    stop.store(true, Ordering::Relaxed);
    for p in pickers {
        p.join().expect("a picker failed");
    }
    let n = picks.load(Ordering::Relaxed);
    eprintln!("{changes} changes, {n} picks");
    assert!(changes > 100 && n > 10_000);
    t.set_changed(None);
}

#[test]
fn etcd_restart_leaves_the_table_intact() {
    let mut etcd = Etcd::start();
    let reg = Registry::new(&opts(&etcd.endpoint(), 10)).unwrap();
    for i in 0..3 {
        reg.register(&format!("{SVC}/{i}"), &format!("127.0.0.1:{}", 3000 + i))
            .unwrap();
    }
    let t = ServiceTable::new(
        &opts(&etcd.endpoint(), 10),
        "/service/",
        Config::default(),
        &[],
    )
    .unwrap();
    let changes = Arc::new(AtomicUsize::new(0));
    let c = changes.clone();
    t.set_changed(Some(Box::new(move |_s: &Arc<str>| {
        c.fetch_add(1, Ordering::SeqCst);
    })));
    let before: BTreeSet<String> = addrs(&t, SVC).into_iter().collect();
    assert_eq!(before.len(), 3);
    etcd.restart();
    etcd.wait_healthy();
    // After etcd is back, every pick still answers from the table while the watch resumes;
    // a 4th instance, registered now, is the marker that the watch is past the restart.
    assert!(t.pick(SVC, None).is_some());
    reg.register(&format!("{SVC}/3"), "127.0.0.1:3003").unwrap();
    wait_until(Duration::from_secs(10), "a 4th instance", || {
        assert!(t.pick(SVC, None).is_some());
        t.instances(SVC).len() == 4 && changes.load(Ordering::SeqCst) >= 1
    });
    let after: BTreeSet<String> = addrs(&t, SVC).into_iter().collect();
    assert!(before.is_subset(&after), "{before:?} vs {after:?}");
    // The 4th instance is the one change: a flap would have come before it.
    assert_eq!(changes.load(Ordering::SeqCst), 1, "the table flapped");
    t.set_changed(None);
}

#[test]
fn weighted_and_hash_against_etcd() {
    let etcd = Etcd::start();
    for (i, w) in [1, 3].iter().enumerate() {
        etcd.put(
            &format!("{SVC}/{i}"),
            &format!("127.0.0.1:{} {w}", 4000 + i),
        );
    }
    let config = Config {
        policy: Policy::WeightedRoundRobin,
        ..Config::default()
    };
    let t = ServiceTable::new(&opts(&etcd.endpoint(), 3), "/service/", config, &[]).unwrap();
    let heavy = (0..400)
        .filter(|_| t.pick(SVC, None).unwrap() == "127.0.0.1:4001")
        .count();
    assert_eq!(heavy, 300);
    let a = t.pick(SVC, Some(b"user-42")).unwrap();
    assert!((0..20).all(|_| t.pick(SVC, Some(b"user-42")).unwrap() == a));
}

/// Picks `n` times with `selector`, counted by address ("none" for no instance).
fn select_counts(
    t: &ServiceTable,
    service: &str,
    selector: Option<&Selector>,
    n: usize,
) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for _ in 0..n {
        let a = t
            .pick_select(service, selector, None)
            .unwrap_or_else(|| "none".into());
        *c.entry(a).or_default() += 1;
    }
    c
}

fn counted(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(a, n)| (a.to_string(), *n)).collect()
}

#[test]
fn metadata_selector_zone_drain_against_etcd() {
    let etcd = Etcd::start();
    etcd.put(&format!("{SVC}/0"), "127.0.0.1:5000 zone=a version=v1");
    etcd.put(&format!("{SVC}/1"), "127.0.0.1:5001 zone=a version=v2");
    etcd.put(
        &format!("{SVC}/2"),
        r#"{"Addr":"127.0.0.1:5002","Metadata":{"zone":"b","version":"v2"}}"#,
    );
    etcd.put(&format!("{SVC}/3"), "127.0.0.1:5003 zone=b");
    let config = Config {
        locality: Locality {
            zone: Some("a".into()),
            ..Locality::default()
        },
        ..Config::default()
    };
    let t = ServiceTable::new(&opts(&etcd.endpoint(), 3), "/service/", config, &[]).unwrap();
    let snap = t.instances(SVC);
    let pairs: Vec<(&str, &str)> = snap.get(2).unwrap().meta_pairs().collect();
    assert_eq!(pairs, [("version", "v2"), ("zone", "b")]);
    // Zone a first.
    assert_eq!(
        select_counts(&t, SVC, None, 200),
        counted(&[("127.0.0.1:5000", 100), ("127.0.0.1:5001", 100)])
    );
    // A selector and the zone: v2 in zone a.
    let v2 = Selector::parse("version=v2", Failover::None).unwrap();
    assert_eq!(
        select_counts(&t, SVC, Some(&v2), 100),
        counted(&[("127.0.0.1:5001", 100)])
    );
    // It drains: its zone's v2 share is 0 of 1: spill over to zone b's v2.
    etcd.put(
        &format!("{SVC}/1"),
        "127.0.0.1:5001 zone=a version=v2 draining=true",
    );
    wait_until(Duration::from_secs(5), "draining", || {
        t.instances(SVC).get(1).is_some_and(|i| i.is_draining())
    });
    assert_eq!(
        select_counts(&t, SVC, Some(&v2), 100),
        counted(&[("127.0.0.1:5002", 100)])
    );
    // Plain picks: zone a's 50 % healthy is not under 50 %: the other zone-a instance.
    assert_eq!(
        select_counts(&t, SVC, None, 100),
        counted(&[("127.0.0.1:5000", 100)])
    );
    // Failover: v3 matches nothing.
    let v3 = |f| Selector::parse("version=v3", f).unwrap();
    assert_eq!(
        select_counts(&t, SVC, Some(&v3(Failover::None)), 10),
        counted(&[("none", 10)])
    );
    assert_eq!(
        select_counts(&t, SVC, Some(&v3(Failover::MissingKey)), 10),
        counted(&[("127.0.0.1:5003", 10)])
    );
    // The failover to all prefers zone a too; the draining instance never.
    assert_eq!(
        select_counts(&t, SVC, Some(&v3(Failover::All)), 10),
        counted(&[("127.0.0.1:5000", 10)])
    );
}

#[test]
fn slow_start_against_etcd() {
    let etcd = Etcd::start();
    for i in 0..3 {
        etcd.put(&format!("{SVC}/{i}"), &format!("127.0.0.1:{}", 5100 + i));
    }
    let config = Config {
        // An hour from 10 %: a new instance stays at the floor for the whole test.
        slow_start: Some(SlowStart {
            window: Duration::from_secs(3600),
            floor_percent: 10,
        }),
        ..Config::default()
    };
    let t = ServiceTable::new(&opts(&etcd.endpoint(), 3), "/service/", config, &[]).unwrap();
    // The first listing is not ramped.
    assert!(t.instances(SVC).iter().all(|i| i.added_at() == 0));
    assert_eq!(
        select_counts(&t, SVC, None, 300),
        counted(&[
            ("127.0.0.1:5100", 100),
            ("127.0.0.1:5101", 100),
            ("127.0.0.1:5102", 100)
        ])
    );
    etcd.put(&format!("{SVC}/3"), "127.0.0.1:5103");
    wait_until(Duration::from_secs(5), "4 instances", || {
        t.instances(SVC).len() == 4
    });
    assert_ne!(t.instances(SVC).get(3).unwrap().added_at(), 0);
    // Its 1,000 turns: 100 taken, 900 passed on to the next instance (wrapping to 0).
    assert_eq!(
        select_counts(&t, SVC, None, 4000),
        counted(&[
            ("127.0.0.1:5100", 1900),
            ("127.0.0.1:5101", 1000),
            ("127.0.0.1:5102", 1000),
            ("127.0.0.1:5103", 100)
        ])
    );
    // A restart (DELETE, then PUT again) of a listed instance ramps it too.
    etcd.del(&format!("{SVC}/0"));
    etcd.put(&format!("{SVC}/0"), "127.0.0.1:5100");
    wait_until(Duration::from_secs(5), "restarted", || {
        t.instances(SVC).get(0).is_some_and(|i| i.added_at() != 0)
    });
}

/// With inline callbacks the table applies changes on the I/O thread; it follows
/// registrations as without, and its change callback still runs on a callback thread.
#[test]
fn inline_callbacks_table_follows_registrations() {
    let etcd = Etcd::start();
    let mut o = opts(&etcd.endpoint(), 3);
    o.set_inline_callbacks(true);
    let t = ServiceTable::new(&o, "/service/", Config::default(), &[]).unwrap();
    let changed_on: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let c = changed_on.clone();
    t.set_changed(Some(Box::new(move |_service: &Arc<str>| {
        let name = std::thread::current().name().map(str::to_owned);
        c.lock().unwrap().push(name);
    })));
    let reg = Registry::new(&opts(&etcd.endpoint(), 3)).unwrap();
    reg.register(&format!("{SVC}/a"), "127.0.0.1:1001").unwrap();
    wait_until(Duration::from_secs(5), "a in the table", || {
        addrs(&t, SVC) == ["127.0.0.1:1001"]
    });
    reg.unregister(&format!("{SVC}/a")).unwrap();
    wait_until(Duration::from_secs(5), "a gone", || {
        t.pick(SVC, None).is_none()
    });
    wait_until(Duration::from_secs(5), "the change callbacks", || {
        changed_on.lock().unwrap().len() >= 2
    });
    let names = changed_on.lock().unwrap().clone();
    assert!(
        names.iter().all(|n| n.as_deref() == Some("etcd-sd-cb")),
        "{names:?}"
    );
}
