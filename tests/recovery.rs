//! Self-healing against a real etcd: restarts, lost leases, compaction, a dead cluster member,
//! and starting before etcd. After every fault the invariant is checked: what the callbacks
//! announced equals what a fresh prefix get returns.

mod common;

use common::{opts, try_wait_until, wait_until, Cluster, Etcd, Recorder};
use etcd_sd::{Discovery, EventKind, Registry, Status};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(10);

/// Waits until the discovery's table equals etcd's view of `prefix`; returns how long it took.
fn assert_converges(rec: &Recorder, etcd: &Etcd, prefix: &str) -> Duration {
    let t = Instant::now();
    let mut truth = Default::default();
    let converged = try_wait_until(CONVERGE, || {
        truth = etcd.get_prefix(prefix);
        rec.table() == truth
    });
    assert!(
        converged,
        "diverged: announced {:?} vs etcd {truth:?}",
        rec.table()
    );
    t.elapsed()
}

fn status_log(reg: &Registry) -> Arc<Mutex<Vec<Status>>> {
    let log: Arc<Mutex<Vec<Status>>> = Arc::default();
    let l = log.clone();
    reg.set_status_sink(Some(Box::new(move |s: &Status| l.lock().unwrap().push(*s))));
    log
}

#[test]
fn etcd_restart_loses_nothing() {
    let mut etcd = Etcd::start();
    let reg = Registry::new(&opts(&etcd.endpoint(), 3)).unwrap();
    reg.register("/rs/svc/a", "1").unwrap();
    let rec = Recorder::default();
    let _d = Discovery::new(&opts(&etcd.endpoint(), 3), "/rs/", rec.sink()).unwrap();
    let lease = reg.lease_id();
    for outage in [Duration::from_millis(500), Duration::from_secs(4)] {
        etcd.kill();
        std::thread::sleep(outage); // the outage's length: the scenario, not synchronisation
        etcd.restart();
        etcd.wait_healthy();
        let back = Instant::now();
        etcd.put("/rs/after", &format!("{outage:?}"));
        rec.wait_for(CONVERGE, "post-restart put", |r| {
            r.table.get("/rs/after").map(String::as_str) == Some(&format!("{outage:?}"))
        });
        eprintln!(
            "outage {outage:?}: watch delivered a new put {:?} after etcd was back",
            back.elapsed()
        );
        assert_converges(&rec, &etcd, "/rs/");
    }
    // etcd extends leases when it restarts, so the registration never lapsed.
    assert!(
        !rec.events().iter().any(|e| e.0 == EventKind::Delete),
        "{:?}",
        rec.events()
    );
    assert_eq!(reg.lease_id(), lease);
    reg.register("/rs/svc/b", "2").unwrap();
    assert_converges(&rec, &etcd, "/rs/");
}

#[test]
fn revoked_lease_is_reported_and_restored() {
    let etcd = Etcd::start();
    let reg = Registry::new(&opts(&etcd.endpoint(), 3)).unwrap();
    let statuses = status_log(&reg);
    for i in 0..20 {
        reg.register(&format!("/rl/k{i}"), "v").unwrap();
    }
    let old = reg.lease_id();
    let t = Instant::now();
    etcd.ctl(&["lease", "revoke", &format!("{old:x}")]);
    wait_until(Duration::from_secs(3), "the 20 keys restored", || {
        etcd.get_prefix("/rl/").len() == 20
    });
    eprintln!("lease revoked → all 20 keys back in {:?}", t.elapsed());
    // The statuses are reported after the keys are back.
    wait_until(CONVERGE, "two statuses", || {
        statuses.lock().unwrap().len() >= 2
    });
    assert_eq!(*statuses.lock().unwrap(), [Status::Lost, Status::Restored]);
    assert_ne!(reg.lease_id(), old);
}

#[test]
fn compaction_past_a_paused_watcher_relists_and_diffs() {
    let etcd = Etcd::start();
    for (k, v) in [("/cp/a", "1"), ("/cp/b", "2"), ("/cp/c", "3")] {
        etcd.put(k, v);
    }
    let rec = Recorder::default();
    let d = Discovery::new(&opts(&etcd.endpoint(), 3), "/cp/", rec.sink()).unwrap();
    d.pause_watch_for_test(true);
    // The pause closes the stream asynchronously: wait until etcd has no watcher left.
    wait_until(CONVERGE, "the watch stream closed", || etcd.watchers() == 0);
    etcd.del("/cp/a");
    etcd.put("/cp/b", "22");
    etcd.put("/cp/d", "4");
    etcd.put("/cp/d", "44");
    etcd.ctl(&["compact", &etcd.revision().to_string()]);
    d.pause_watch_for_test(false);
    assert_converges(&rec, &etcd, "/cp/");
    // A later put, delivered after anything the relist could still announce: the marker.
    etcd.put("/cp/e", "5");
    rec.wait_event(EventKind::Put, "/cp/e", CONVERGE);
    let after: Vec<_> = rec.events().into_iter().skip(3).collect();
    assert_eq!(
        after,
        [
            (EventKind::Delete, "/cp/a".into(), "1".into()),
            (EventKind::Put, "/cp/b".into(), "22".into()),
            (EventKind::Put, "/cp/d".into(), "44".into()),
            (EventKind::Put, "/cp/e".into(), "5".into()),
        ],
        "only the differences, deletes with their last known value, then the watch goes on"
    );
}

#[test]
fn starts_before_etcd_when_asked() {
    let mut etcd = Etcd::start();
    etcd.kill();
    let mut o = opts(&etcd.endpoint(), 3);
    o.set_wait_for_etcd(true);
    let t = Instant::now();
    let reg = Registry::new(&o).unwrap();
    let statuses = status_log(&reg);
    reg.register("/early/svc", "10.0.0.1:1").unwrap();
    let rec = Recorder::default();
    let _d = Discovery::new(&o, "/early/", rec.sink()).unwrap();
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    assert!(rec.events().is_empty());
    etcd.restart();
    rec.wait_event(EventKind::Put, "/early/svc", CONVERGE);
    // The lease id and the status are published just after the keys are put.
    wait_until(CONVERGE, "the lease id and a status", || {
        reg.lease_id() != 0 && !statuses.lock().unwrap().is_empty()
    });
    assert_eq!(*statuses.lock().unwrap(), [Status::Restored]);
    // The default stays fail-fast.
    etcd.kill();
    let mut o = opts(&etcd.endpoint(), 3);
    o.set_connect_timeout(Duration::from_millis(500)).unwrap();
    assert!(Registry::new(&o).is_err());
}

#[test]
fn cluster_member_loss_keeps_leases_calls_and_watches() {
    let mut cluster = Cluster::start();
    let endpoints = cluster.endpoints();
    // Calls made while the cluster elects a new leader wait for it (about a second or two).
    let mut o = opts(&endpoints, 2);
    o.set_request_timeout(Duration::from_secs(6)).unwrap();
    let reg = Registry::new(&o).unwrap();
    reg.register("/cl/svc/base", "b").unwrap();
    let lease = reg.lease_id();
    let rec = Recorder::default();
    let _d = Discovery::new(&opts(&endpoints, 2), "/cl/", rec.sink()).unwrap();
    // Kill the leader first, then each other member, one at a time.
    let mut order: Vec<usize> = (0..3).collect();
    order.sort_by_key(|&i| !cluster.members[i].is_leader());
    for (round, &victim) in order.iter().enumerate() {
        cluster.members[victim].kill();
        let t = Instant::now();
        reg.register(&format!("/cl/svc/r{round}"), "v").unwrap();
        let register_took = t.elapsed();
        let live = &cluster.members[(victim + 1) % 3];
        live.put(&format!("/cl/ext/{round}"), "x");
        let took = rec.wait_event(EventKind::Put, &format!("/cl/ext/{round}"), CONVERGE);
        eprintln!(
            "member m{victim} down: register {register_took:?}, watch event {took:?} after the put"
        );
        // Longer than the TTL (2 s): the scenario (a lease must survive it), not synchronisation.
        std::thread::sleep(Duration::from_secs(3));
        assert_converges(&rec, live, "/cl/");
        cluster.members[victim].restart();
        cluster.members[victim].wait_healthy();
    }
    assert!(
        !rec.events().iter().any(|e| e.0 == EventKind::Delete),
        "{:?}",
        rec.events()
    );
    assert_eq!(reg.lease_id(), lease, "no lease expired");
}

/// Restarts, member kills, puts and deletes interleaved at random; the invariant is checked
/// after each step. `ETCD_SD_FAULT_SECONDS` makes it run longer than the default 40 s.
#[test]
fn randomized_faults_never_diverge() {
    let seconds: u64 = std::env::var("ETCD_SD_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let seed = fastrand::u64(..);
    eprintln!("randomized_faults: seed {seed}, {seconds} s");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut cluster = Cluster::start();
    let endpoints = cluster.endpoints();
    let reg = Registry::new(&opts(&endpoints, 2)).unwrap();
    let recs: Vec<Recorder> = (0..2).map(|_| Recorder::default()).collect();
    let _ds: Vec<Discovery> = recs
        .iter()
        .map(|r| Discovery::new(&opts(&endpoints, 2), "/fz/", r.sink()).unwrap())
        .collect();
    let mut registered = std::collections::BTreeSet::new();
    let (mut steps, mut faults, mut divergences) = (0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        steps += 1;
        let live: Vec<usize> = (0..3)
            .filter(|&i| cluster.members[i].is_running())
            .collect();
        let via = &cluster.members[live[rng.usize(..live.len())]];
        match rng.u8(..10) {
            0..=3 => via.put(
                &format!("/fz/ext/{}", rng.u8(..8)),
                &rng.u32(..).to_string(),
            ),
            4 => via.del(&format!("/fz/ext/{}", rng.u8(..8))),
            5 | 6 => {
                let k = format!("/fz/reg/{}", rng.u8(..6));
                if registered.contains(&k) && rng.bool() {
                    reg.unregister(&k).unwrap();
                    registered.remove(&k);
                } else {
                    reg.register(&k, &rng.u32(..).to_string()).unwrap();
                    registered.insert(k);
                }
            }
            _ => {
                faults += 1;
                // Kill one member (never two: the cluster must keep its quorum) or restart it.
                if live.len() == 3 {
                    let victim = rng.usize(..3);
                    cluster.members[victim].kill();
                } else {
                    let down = (0..3).find(|&i| !cluster.members[i].is_running()).unwrap();
                    cluster.members[down].restart();
                    cluster.members[down].wait_healthy();
                }
                let live = (0..3).find(|&i| cluster.members[i].is_running()).unwrap();
                for r in &recs {
                    // etcdctl itself may time out while the cluster elects a leader.
                    let mut truth = None;
                    let converged = try_wait_until(CONVERGE, || {
                        truth = cluster.members[live]
                            .try_get_prefix("/fz/")
                            .or(truth.take());
                        truth.as_ref() == Some(&r.table())
                    });
                    let truth = truth.expect("etcd did not answer etcdctl");
                    if !converged {
                        divergences += 1;
                        eprintln!("divergence: {:?} vs {truth:?}", r.table());
                    }
                }
            }
        }
    }
    let live = (0..3).find(|&i| cluster.members[i].is_running()).unwrap();
    for r in &recs {
        assert_converges(r, &cluster.members[live], "/fz/");
    }
    let in_etcd = cluster.members[live].get_prefix("/fz/reg/");
    assert_eq!(
        in_etcd
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        registered
    );
    eprintln!("randomized_faults: {steps} steps, {faults} faults, {divergences} divergences");
    assert_eq!(divergences, 0);
}

/// A member that stops answering but keeps its connections open (SIGSTOP) is noticed by the
/// HTTP/2 keep-alive pings (10 s + 5 s) or the keep-alive answer deadline, and the watch and
/// the lease move to a live member: events arrive late but none is lost, no lease expires.
#[test]
fn black_holed_member_is_detected_in_bounded_time() {
    let cluster = Cluster::start();
    let endpoints = cluster.endpoints();
    let reg = Registry::new(&opts(&endpoints, 5)).unwrap();
    reg.register("/bh/svc", "v").unwrap();
    let lease = reg.lease_id();
    let rec = Recorder::default();
    let _d = Discovery::new(&opts(&endpoints, 5), "/bh/", rec.sink()).unwrap();
    for victim in 0..3 {
        cluster.members[victim].freeze(true);
        let live = &cluster.members[(victim + 1) % 3];
        let key = format!("/bh/ext/{victim}");
        // The cluster may be electing a new leader: retry the put until it lands.
        let t = Instant::now();
        while !live
            .etcdctl(&["--command-timeout=2s", "put", &key, "x"])
            .is_ok_and(|o| o.status.success())
        {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "cluster did not accept a put"
            );
        }
        let took = rec.wait_event(EventKind::Put, &key, Duration::from_secs(25));
        eprintln!("m{victim} frozen: event delivered {took:?} after the put");
        cluster.members[victim].freeze(false);
        cluster.members[victim].wait_healthy();
    }
    assert_converges(&rec, &cluster.members[0], "/bh/");
    assert!(
        !rec.events().iter().any(|e| e.0 == EventKind::Delete),
        "{:?}",
        rec.events()
    );
    assert_eq!(reg.lease_id(), lease);
}

/// The registry's 20 keys are back and the discovery's table equals etcd within `limit` of a
/// replaced etcd answering; returns how long it took.
fn assert_back_after_replace(rec: &Recorder, etcd: &Etcd, limit: Duration) -> Duration {
    let back = Instant::now();
    let (mut truth, mut registered) = (Default::default(), 0);
    let ok = try_wait_until(limit, || {
        truth = etcd.get_prefix("/rp/");
        registered = truth.keys().filter(|k| k.starts_with("/rp/reg/")).count();
        registered == 20 && rec.table() == truth
    });
    assert!(
        ok,
        "not back: {registered}/20 keys; announced {:?} vs etcd {truth:?}",
        rec.table()
    );
    back.elapsed()
}

#[test]
fn replaced_etcd_gets_the_keys_back_and_the_table_follows() {
    let mut etcd = Etcd::start();
    let reg = Registry::new(&opts(&etcd.endpoint(), 3)).unwrap();
    for i in 0..20 {
        reg.register(&format!("/rp/reg/{i:02}"), "10.0.0.1:9000")
            .unwrap();
    }
    // History, so the old revision is well above what the fresh etcd will have.
    for i in 0..30 {
        etcd.put("/rp/churn", &i.to_string());
    }
    let rec = Recorder::default();
    let _d = Discovery::new(&opts(&etcd.endpoint(), 3), "/rp/", rec.sink()).unwrap();
    // Wiped and recreated on the same addresses, holding other keys.
    etcd.wipe();
    etcd.wait_healthy();
    etcd.put("/rp/other/x", "1");
    let took = assert_back_after_replace(&rec, &etcd, Duration::from_secs(2));
    eprintln!("replaced etcd: keys and table back {took:?} after it answered");
    assert!(
        !rec.table().contains_key("/rp/churn"),
        "stale key announced"
    );
}

#[test]
fn replaced_cluster_gets_the_keys_back_and_the_table_follows() {
    let mut cluster = Cluster::start();
    let eps = cluster.endpoints();
    let reg = Registry::new(&opts(&eps, 3)).unwrap();
    for i in 0..20 {
        reg.register(&format!("/rp/reg/{i:02}"), "10.0.0.1:9000")
            .unwrap();
    }
    for i in 0..30 {
        cluster.members[0].put("/rp/churn", &i.to_string());
    }
    let rec = Recorder::default();
    let _d = Discovery::new(&opts(&eps, 3), "/rp/", rec.sink()).unwrap();
    for m in &mut cluster.members {
        m.kill();
    }
    for m in &mut cluster.members {
        m.wipe();
    }
    for m in &cluster.members {
        m.wait_healthy();
    }
    cluster.members[1].put("/rp/other/y", "2");
    let took = assert_back_after_replace(&rec, &cluster.members[0], Duration::from_secs(2));
    eprintln!("replaced cluster: keys and table back {took:?} after it answered");
}
