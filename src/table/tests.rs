//! The table core without etcd: events in, picks out.

use super::*;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const SVC: &str = "/service/user";

fn table(policy: Policy) -> Table {
    Table::new(Config {
        policy,
        ..Config::default()
    })
}

fn put(t: &Table, key: &str, value: &str) {
    t.apply(&Event::put(key, value));
}

fn del(t: &Table, key: &str) {
    t.apply(&Event::delete(key, ""));
}

fn with_instances(policy: Policy, n: usize) -> Table {
    let t = table(policy);
    for i in 0..n {
        put(&t, &format!("{SVC}/i{i}"), &format!("10.0.0.{i}:80"));
    }
    t
}

fn counts(t: &Table, picks: usize) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for _ in 0..picks {
        *c.entry(t.pick(SVC, None).unwrap()).or_default() += 1;
    }
    c
}

#[test]
fn service_is_the_key_up_to_its_last_slash() {
    assert_eq!(
        service_of("/service/user_service/instance-1"),
        "/service/user_service"
    );
    assert_eq!(service_of("/a"), "");
    assert_eq!(service_of("x"), "");
}

#[test]
fn round_robin_is_exactly_even_over_whole_cycles() {
    let t = with_instances(Policy::RoundRobin, 7);
    let c = counts(&t, 7 * 1000);
    assert_eq!(c.len(), 7);
    assert!(c.values().all(|&n| n == 1000), "{c:?}");
    // Instances come and go: never an out-of-range index, every pick a live instance.
    del(&t, &format!("{SVC}/i3"));
    let c = counts(&t, 6 * 1000);
    assert!(c.values().all(|&n| n == 1000), "{c:?}");
    assert!(!c.contains_key("10.0.0.3:80"));
}

#[test]
fn no_instance_and_last_instance_leaving() {
    let t = with_instances(Policy::RoundRobin, 1);
    assert_eq!(t.pick("/service/none", None), None);
    del(&t, &format!("{SVC}/i0"));
    assert_eq!(t.pick(SVC, None), None);
    assert!(t.instances(SVC).is_empty());
    assert!(t.services().is_empty());
}

#[test]
fn repeated_put_changes_nothing_and_an_address_change_replaces() {
    let t = with_instances(Policy::RoundRobin, 2);
    let before = t.instances(SVC);
    put(&t, &format!("{SVC}/i0"), "10.0.0.0:80");
    put(&t, &format!("{SVC}/i0"), " 10.0.0.0:80 ");
    let same = t.instances(SVC);
    assert!(
        Arc::ptr_eq(&before.set, &same.set),
        "a repeated PUT made a new snapshot"
    );
    put(&t, &format!("{SVC}/i0"), "10.0.0.9:80");
    let after = t.instances(SVC);
    let addrs: Vec<&str> = after.iter().map(Instance::address).collect();
    assert_eq!(addrs, ["10.0.0.9:80", "10.0.0.1:80"]);
    // Weight-only change keeps the health record; address change does not.
    t.report(SVC, "10.0.0.9:80", false);
    put(&t, &format!("{SVC}/i0"), "10.0.0.9:80 3");
    assert_eq!(t.instances(SVC).get(0).unwrap().consecutive_failures(), 1);
    put(&t, &format!("{SVC}/i0"), "10.0.0.8:80 3");
    assert_eq!(t.instances(SVC).get(0).unwrap().consecutive_failures(), 0);
    // An invalid value removes the instance.
    put(&t, &format!("{SVC}/i0"), "{broken");
    assert_eq!(t.instances(SVC).len(), 1);
}

#[test]
fn declared_filter() {
    let t = table(Policy::RoundRobin);
    put(&t, "/service/a/1", "h:1");
    put(&t, "/service/b/1", "h:2");
    assert_eq!(t.services(), ["/service/a", "/service/b"]);
    t.declare("/service/b/");
    assert_eq!(t.services(), ["/service/b"]);
    assert_eq!(t.pick("/service/a", None), None);
    put(&t, "/service/a/2", "h:3");
    assert_eq!(t.pick("/service/a", None), None);
    // Declaring later makes the instances seen meanwhile available at once.
    t.declare("/service/a");
    assert_eq!(t.instances("/service/a").len(), 2);
    assert_eq!(t.declared().unwrap(), ["/service/a", "/service/b"]);
}

#[test]
fn weighted_round_robin_follows_the_weights() {
    let t = table(Policy::WeightedRoundRobin);
    let weights = [1u32, 2, 3, 4, 10];
    for (i, w) in weights.iter().enumerate() {
        put(
            &t,
            &format!("{SVC}/i{i}"),
            &format!("10.0.0.{i}:80 weight={w}"),
        );
    }
    let total: u32 = weights.iter().sum();
    let c = counts(&t, 100_000);
    for (i, w) in weights.iter().enumerate() {
        let got = c[&format!("10.0.0.{i}:80")] as f64 / 100_000.0;
        let want = *w as f64 / total as f64;
        assert!(
            (got - want).abs() <= 0.02 * want,
            "instance {i}: {got} vs {want}"
        );
    }
}

#[test]
fn consistent_hash_moves_only_the_leaving_instances_keys() {
    let n = 10;
    let t = with_instances(Policy::ConsistentHash, n);
    let keys: Vec<Vec<u8>> = (0..10_000u32)
        .map(|k| format!("user-{k}").into_bytes())
        .collect();
    let before: Vec<String> = keys.iter().map(|k| t.pick(SVC, Some(k)).unwrap()).collect();
    // Stable across picks.
    assert_eq!(t.pick(SVC, Some(&keys[0])).unwrap(), before[0]);
    del(&t, &format!("{SVC}/i4"));
    let gone = "10.0.0.4:80";
    let mut moved = 0;
    for (k, old) in keys.iter().zip(&before) {
        let new = t.pick(SVC, Some(k)).unwrap();
        if new != *old {
            moved += 1;
            assert_eq!(old, gone, "a key of an unaffected instance moved");
        }
    }
    let limit = 10_000 / n + 500;
    assert!(moved <= limit, "{moved} keys moved (limit {limit})");
    assert!(moved > 0);
}

#[test]
fn ejection_and_readmission() {
    let t = with_instances(Policy::RoundRobin, 4);
    let s = 1_000_000_000u64;
    let bad = "10.0.0.1:80";
    let mut now = t.now() + s;
    for _ in 0..4 {
        assert_eq!(t.report_at(SVC, bad, false, now), Some(Outcome::Counted));
    }
    assert_eq!(
        t.report_at(SVC, bad, false, now),
        Some(Outcome::Ejected(Duration::from_secs(30)))
    );
    let picks: Vec<String> = (0..30)
        .map(|_| t.pick_at(SVC, None, now).unwrap())
        .collect();
    assert!(!picks.iter().any(|p| p == bad));
    now += 29 * s;
    assert!(t.pick_at(SVC, None, now).is_some());
    assert!(!(0..8).any(|_| t.pick_at(SVC, None, now).unwrap() == bad));
    now += s; // 30 s later: tried again
    assert!((0..8).any(|_| t.pick_at(SVC, None, now).unwrap() == bad));
    // Fails again: ejected for twice as long.
    for _ in 0..4 {
        t.report_at(SVC, bad, false, now);
    }
    assert_eq!(
        t.report_at(SVC, bad, false, now),
        Some(Outcome::Ejected(Duration::from_secs(60)))
    );
    assert!(!t.report(SVC, "10.9.9.9:1", false));
}

#[test]
fn never_more_than_half_ejected() {
    let t = with_instances(Policy::RoundRobin, 4);
    let now = t.now() + 1_000_000_000;
    let mut outcomes = vec![];
    for i in 0..4 {
        for _ in 0..5 {
            outcomes.push(t.report_at(SVC, &format!("10.0.0.{i}:80"), false, now));
        }
    }
    let ejected = outcomes
        .iter()
        .filter(|o| matches!(o, Some(Outcome::Ejected(_))))
        .count();
    let capped = outcomes
        .iter()
        .filter(|o| matches!(o, Some(Outcome::Capped)))
        .count();
    assert_eq!((ejected, capped), (2, 2));
    let c: std::collections::HashSet<String> =
        (0..8).map(|_| t.pick_at(SVC, None, now).unwrap()).collect();
    assert_eq!(c.len(), 2);
    // Two non-ejected instances leave: 2 of 2 ejected is past the cap, so pick among all.
    del(&t, &format!("{SVC}/i2"));
    del(&t, &format!("{SVC}/i3"));
    let c: std::collections::HashSet<String> =
        (0..8).map(|_| t.pick_at(SVC, None, now).unwrap()).collect();
    assert_eq!(c.len(), 2, "{c:?}");
}

#[test]
fn changed_notification_after_the_swap() {
    let t = Arc::new(with_instances(Policy::RoundRobin, 1));
    let (tx, rx) = std::sync::mpsc::channel::<(String, usize)>();
    let tx = Mutex::new(tx);
    let t2 = t.clone();
    t.set_changed(Some(Box::new(move |s: &Arc<str>| {
        let n = t2.instances(s).len();
        let _ = lock(&tx).send((s.to_string(), n));
    })));
    put(&t, &format!("{SVC}/i1"), "10.0.0.1:80");
    put(&t, &format!("{SVC}/i1"), "10.0.0.1:80"); // no change, no notification
    del(&t, &format!("{SVC}/i0"));
    // The callback runs later, on the pool: it sees at least the snapshot it announces.
    let w = Duration::from_secs(5);
    let (name, n) = rx.recv_timeout(w).unwrap();
    assert_eq!(name, SVC);
    assert!(n == 2 || n == 1);
    assert_eq!(rx.recv_timeout(w).unwrap(), (SVC.to_string(), 1));
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    t.set_changed(None);
}

// --- metadata, selectors, zones, drain, slow start -----------------------------------------

const S: u64 = 1_000_000_000;

fn sel(text: &str, failover: Failover) -> Selector {
    Selector::parse(text, failover).unwrap()
}

/// `picks` picks at `now` with `selector`, counted by address (a missing pick as "none").
fn select_counts(
    t: &Table,
    selector: Option<&Selector>,
    picks: usize,
    now: u64,
) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for _ in 0..picks {
        let a = t
            .pick_select_at(SVC, selector, None, now)
            .unwrap_or_else(|| "none".into());
        *c.entry(a).or_default() += 1;
    }
    c
}

fn expect(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(a, n)| (a.to_string(), *n)).collect()
}

/// Instances i0..: `10.0.0.<i>:80 <meta>`.
fn with_meta(policy: Policy, metas: &[&str]) -> Table {
    let t = table(policy);
    for (i, m) in metas.iter().enumerate() {
        put(&t, &format!("{SVC}/i{i}"), &format!("10.0.0.{i}:80 {m}"));
    }
    t.end_listing();
    t
}

#[test]
fn metadata_pairs_and_drain_flag() {
    let t = with_meta(
        Policy::RoundRobin,
        &["weight=2 zone=a version=v2", "draining=true"],
    );
    let snap = t.instances(SVC);
    let i0 = snap.get(0).unwrap();
    let pairs: Vec<(&str, &str)> = i0.meta_pairs().collect();
    assert_eq!(pairs, [("version", "v2"), ("weight", "2"), ("zone", "a")]);
    assert_eq!(
        (i0.weight(), i0.zone(), i0.meta("nope")),
        (2, Some("a"), None)
    );
    assert!(!i0.is_draining());
    assert!(snap.get(1).unwrap().is_draining());
    let json = r#"{"Addr":"10.0.0.2:80","Metadata":{"draining":1,"zone":"b"}}"#;
    put(&t, &format!("{SVC}/i2"), json);
    let i2 = t.instances(SVC);
    let i2 = i2.get(2).unwrap();
    assert!(i2.is_draining());
    assert_eq!(i2.zone(), Some("b"));
    // "draining=false" (or anything but true/1) is not draining.
    put(&t, &format!("{SVC}/i2"), "10.0.0.2:80 draining=false");
    assert!(!t.instances(SVC).get(2).unwrap().is_draining());
}

#[test]
fn draining_instances_are_never_picked() {
    let t = with_meta(Policy::RoundRobin, &["", "", ""]);
    let now = t.now() + S;
    t.report_at(SVC, "10.0.0.1:80", false, now);
    // The drain mark: a PUT of the same address with draining=true keeps the failure record.
    put(&t, &format!("{SVC}/i1"), "10.0.0.1:80 draining=true");
    let snap = t.instances(SVC);
    assert!(snap.get(1).unwrap().is_draining());
    assert_eq!(snap.get(1).unwrap().consecutive_failures(), 1);
    assert_eq!(
        select_counts(&t, None, 3000, now),
        expect(&[("10.0.0.0:80", 1500), ("10.0.0.2:80", 1500)])
    );
    // Also not by failover ALL, nor by hash key.
    let all = sel("version=v9", Failover::All);
    assert_eq!(
        select_counts(&t, Some(&all), 1000, now),
        expect(&[("10.0.0.0:80", 500), ("10.0.0.2:80", 500)])
    );
    assert!((0..500u32).all(|k| t.pick(SVC, Some(&k.to_le_bytes())).unwrap() != "10.0.0.1:80"));
    // Every instance draining: no instance.
    put(&t, &format!("{SVC}/i0"), "10.0.0.0:80 draining=1");
    put(&t, &format!("{SVC}/i2"), "10.0.0.2:80 draining=true");
    assert_eq!(t.pick(SVC, None), None);
    assert_eq!(t.instances(SVC).len(), 3, "draining instances stay listed");
    // Undrained: picked again.
    put(&t, &format!("{SVC}/i1"), "10.0.0.1:80");
    assert_eq!(t.pick(SVC, None).unwrap(), "10.0.0.1:80");
}

#[test]
fn selector_matches_all_pairs_with_failover() {
    let t = with_meta(
        Policy::RoundRobin,
        &[
            "version=v1",
            "version=v2 canary=false",
            "version=v2 canary=true",
            "zone=x",
        ],
    );
    let now = t.now();
    let v2 = sel("version=v2", Failover::None);
    assert_eq!(
        select_counts(&t, Some(&v2), 1000, now),
        expect(&[("10.0.0.1:80", 500), ("10.0.0.2:80", 500)])
    );
    let stable = sel("version=v2,canary=false", Failover::None);
    assert_eq!(
        select_counts(&t, Some(&stable), 100, now),
        expect(&[("10.0.0.1:80", 100)])
    );
    let v3 = |f| sel("version=v3", f);
    assert_eq!(t.pick_select(SVC, Some(&v3(Failover::None)), None), None);
    assert_eq!(
        select_counts(&t, Some(&v3(Failover::All)), 400, now),
        expect(&[
            ("10.0.0.0:80", 100),
            ("10.0.0.1:80", 100),
            ("10.0.0.2:80", 100),
            ("10.0.0.3:80", 100)
        ])
    );
    assert_eq!(
        select_counts(&t, Some(&v3(Failover::MissingKey)), 100, now),
        expect(&[("10.0.0.3:80", 100)])
    );
    // Missing key means none of the selector's keys: i1 and i2 have "canary"... and
    // "version"; only i3 has neither.
    let two = sel("version=v9,canary=maybe", Failover::MissingKey);
    assert_eq!(
        select_counts(&t, Some(&two), 100, now),
        expect(&[("10.0.0.3:80", 100)])
    );
    // A match that only drains fails over.
    put(
        &t,
        &format!("{SVC}/i0"),
        "10.0.0.0:80 version=v1 draining=true",
    );
    let v1 = sel("version=v1", Failover::MissingKey);
    assert_eq!(
        select_counts(&t, Some(&v1), 100, now),
        expect(&[("10.0.0.3:80", 100)])
    );
    assert_eq!(
        t.pick_select(SVC, Some(&sel("version=v1", Failover::None)), None),
        None
    );
    // Consistent hashing within the selection, stable per key.
    let k = b"user-7";
    let a = t.pick_select(SVC, Some(&v2), Some(k)).unwrap();
    assert!(a == "10.0.0.1:80" || a == "10.0.0.2:80");
    assert!((0..20).all(|_| t.pick_select(SVC, Some(&v2), Some(k)).unwrap() == a));
}

#[test]
fn more_selectors_than_cache_slots_still_pick_right() {
    let t = with_meta(Policy::RoundRobin, &["n=0", "n=1", "n=2"]);
    let sels: Vec<Selector> = (0..select::VIEW_SLOTS + 5)
        .map(|i| sel(&format!("n={}", i % 3), Failover::None))
        .collect();
    for _ in 0..3 {
        for (i, s) in sels.iter().enumerate() {
            let want = format!("10.0.0.{}:80", i % 3);
            assert_eq!(t.pick_select(SVC, Some(s), None).unwrap(), want);
        }
    }
}

#[test]
fn weighted_selection_follows_weights() {
    let t = with_meta(
        Policy::WeightedRoundRobin,
        &["weight=1 v=a", "weight=3 v=a", "weight=5 v=b"],
    );
    let a = sel("v=a", Failover::None);
    assert_eq!(
        select_counts(&t, Some(&a), 400, t.now()),
        expect(&[("10.0.0.0:80", 100), ("10.0.0.1:80", 300)])
    );
}

fn zoned(zone: &str, metas: &[&str]) -> Table {
    let t = with_meta(Policy::RoundRobin, metas);
    t.set_locality(Locality {
        zone: Some(zone.into()),
        ..Locality::default()
    });
    t
}

#[test]
fn local_zone_first_then_spill_over() {
    // i0..i3 in zone a, i4 and i5 in zone b.
    let t = zoned(
        "a",
        &["zone=a", "zone=a", "zone=a", "zone=a", "zone=b", "zone=b"],
    );
    let mut now = t.now() + S;
    assert_eq!(t.locality().min_healthy_percent, 50);
    let local4 = [
        ("10.0.0.0:80", 100),
        ("10.0.0.1:80", 100),
        ("10.0.0.2:80", 100),
        ("10.0.0.3:80", 100),
    ];
    assert_eq!(select_counts(&t, None, 400, now), expect(&local4));
    // Also for plain picks at the table's own time.
    assert!((0..100).all(|_| *t.pick(SVC, None).unwrap() < *"10.0.0.4:80"));
    let eject = |addr: &str, now: u64| {
        for _ in 0..5 {
            t.report_at(SVC, addr, false, now);
        }
    };
    // 2 of 4 local ejected: 50 % healthy is not under 50 %: stay local.
    eject("10.0.0.0:80", now);
    eject("10.0.0.1:80", now);
    // (An ejected instance's turn goes to the next one, as for every pick.)
    assert_eq!(
        select_counts(&t, None, 400, now),
        expect(&[("10.0.0.2:80", 300), ("10.0.0.3:80", 100)])
    );
    // 3 of 4 ejected (25 %): spill over to every zone's healthy instances.
    eject("10.0.0.2:80", now);
    assert_eq!(
        select_counts(&t, None, 600, now),
        expect(&[
            ("10.0.0.3:80", 400),
            ("10.0.0.4:80", 100),
            ("10.0.0.5:80", 100)
        ])
    );
    // The ejections end (30 s): back home.
    now += 30 * S;
    assert_eq!(select_counts(&t, None, 400, now), expect(&local4));
    // A stricter threshold: 80 %. One local instance draining (3 of 4 healthy) spills.
    t.set_locality(Locality {
        zone: Some("a".into()),
        min_healthy_percent: 80,
    });
    put(&t, &format!("{SVC}/i3"), "10.0.0.3:80 zone=a draining=true");
    assert_eq!(
        select_counts(&t, None, 500, now),
        expect(&[
            ("10.0.0.0:80", 100),
            ("10.0.0.1:80", 100),
            ("10.0.0.2:80", 100),
            ("10.0.0.4:80", 100),
            ("10.0.0.5:80", 100)
        ])
    );
    // A zone with no instance: every zone.
    t.set_locality(Locality {
        zone: Some("c".into()),
        ..Locality::default()
    });
    assert_eq!(select_counts(&t, None, 500, now).len(), 5);
    // No zone: no preference.
    t.set_locality(Locality::default());
    assert_eq!(select_counts(&t, None, 500, now).len(), 5);
}

#[test]
fn selector_and_zone_together() {
    let t = zoned(
        "a",
        &[
            "zone=a version=v2",
            "zone=a version=v1",
            "zone=b version=v2",
            "zone=b version=v2",
        ],
    );
    let now = t.now();
    let v2 = sel("version=v2", Failover::None);
    assert_eq!(
        select_counts(&t, Some(&v2), 100, now),
        expect(&[("10.0.0.0:80", 100)])
    );
    let v1 = sel("version=v1", Failover::None);
    assert_eq!(
        select_counts(&t, Some(&v1), 100, now),
        expect(&[("10.0.0.1:80", 100)])
    );
    // The only local v2 drains: its local share is 0 of 1, spill to zone b's v2.
    put(
        &t,
        &format!("{SVC}/i0"),
        "10.0.0.0:80 zone=a version=v2 draining=true",
    );
    assert_eq!(
        select_counts(&t, Some(&v2), 100, now),
        expect(&[("10.0.0.2:80", 50), ("10.0.0.3:80", 50)])
    );
}

fn slow_table(policy: Policy, window_s: u64, floor: u32, n: usize) -> Table {
    let t = Table::new(Config {
        policy,
        slow_start: Some(SlowStart {
            window: Duration::from_secs(window_s),
            floor_percent: floor,
        }),
        ..Config::default()
    });
    for i in 0..n {
        put(&t, &format!("{SVC}/i{i}"), &format!("10.0.0.{i}:80"));
    }
    t.end_listing();
    t
}

#[test]
fn slow_start_ramps_new_instances_only() {
    let t = slow_table(Policy::RoundRobin, 10, 10, 3);
    let t0 = t.now() + S;
    // The first listing is never ramped: exactly even.
    assert_eq!(
        select_counts(&t, None, 300, t0),
        expect(&[
            ("10.0.0.0:80", 100),
            ("10.0.0.1:80", 100),
            ("10.0.0.2:80", 100)
        ])
    );
    t.apply_at(&Event::put(format!("{SVC}/i3"), "10.0.0.3:80"), t0);
    assert_eq!(t.instances(SVC).get(3).unwrap().added_at(), t0);
    // At once: the floor, 10 % of its turns; each refused turn goes to the next instance
    // (i0, as round robin wraps).
    assert_eq!(
        select_counts(&t, None, 4000, t0),
        expect(&[
            ("10.0.0.0:80", 1900),
            ("10.0.0.1:80", 1000),
            ("10.0.0.2:80", 1000),
            ("10.0.0.3:80", 100)
        ])
    );
    // Half way: half its turns.
    assert_eq!(
        select_counts(&t, None, 4000, t0 + 5 * S),
        expect(&[
            ("10.0.0.0:80", 1500),
            ("10.0.0.1:80", 1000),
            ("10.0.0.2:80", 1000),
            ("10.0.0.3:80", 500)
        ])
    );
    // After the window: full share.
    assert_eq!(
        select_counts(&t, None, 4000, t0 + 10 * S),
        expect(&[
            ("10.0.0.0:80", 1000),
            ("10.0.0.1:80", 1000),
            ("10.0.0.2:80", 1000),
            ("10.0.0.3:80", 1000)
        ])
    );
    // A metadata-only change keeps its start; a new address starts again.
    t.apply_at(
        &Event::put(format!("{SVC}/i3"), "10.0.0.3:80 zone=a"),
        t0 + S,
    );
    assert_eq!(t.instances(SVC).get(3).unwrap().added_at(), t0);
    t.apply_at(&Event::put(format!("{SVC}/i3"), "10.0.0.9:80"), t0 + 20 * S);
    assert_eq!(t.instances(SVC).get(3).unwrap().added_at(), t0 + 20 * S);
    // Keyed picks are never ramped.
    let k = (0..10_000u32)
        .find(|k| t.pick(SVC, Some(&k.to_le_bytes())).unwrap() == "10.0.0.9:80")
        .unwrap();
    assert!((0..10).all(|_| {
        t.pick_select_at(SVC, None, Some(&k.to_le_bytes()), t0 + 20 * S)
            .unwrap()
            == "10.0.0.9:80"
    }));
}

#[test]
fn slow_start_with_weights_and_settings() {
    let t = table(Policy::WeightedRoundRobin);
    assert_eq!(
        t.slow_start(),
        SlowStart {
            window: Duration::from_secs(30),
            floor_percent: 10
        }
    );
    assert_eq!(
        table(Policy::RoundRobin).slow_start().window,
        Duration::ZERO
    );
    put(&t, &format!("{SVC}/i0"), "10.0.0.0:80 weight=3");
    t.end_listing();
    let t0 = t.now() + S;
    t.apply_at(&Event::put(format!("{SVC}/i1"), "10.0.0.1:80 weight=1"), t0);
    // 15 s of 30: its one slot in four is taken half the time; refused, the next slot (i0).
    assert_eq!(
        select_counts(&t, None, 4000, t0 + 15 * S),
        expect(&[("10.0.0.0:80", 3500), ("10.0.0.1:80", 500)])
    );
    // Off: full share at once.
    t.set_slow_start(SlowStart::OFF);
    assert_eq!(
        select_counts(&t, None, 4000, t0),
        expect(&[("10.0.0.0:80", 3000), ("10.0.0.1:80", 1000)])
    );
    // A selector pick ramps too.
    t.set_slow_start(SlowStart {
        window: Duration::from_secs(10),
        floor_percent: 20,
    });
    let any = sel("version=v9", Failover::All);
    assert_eq!(
        select_counts(&t, Some(&any), 4000, t0),
        expect(&[("10.0.0.0:80", 3800), ("10.0.0.1:80", 200)])
    );
}
