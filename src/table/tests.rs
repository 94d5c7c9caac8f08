//! The table core without etcd: events in, picks out.

use super::*;
use std::collections::HashMap;
use std::time::Duration;

const SVC: &str = "/service/user";

fn table(policy: Policy) -> Table {
    Table::new(Config {
        policy,
        ejection: Ejection::default(),
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
