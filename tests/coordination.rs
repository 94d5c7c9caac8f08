//! Transactions, reads at a revision, locks, elections, members and leases of the general
//! client against a real etcd; and the rule that a lock or a leadership is never taken again
//! behind its owner's back: its loss is reported.

mod common;

use common::{opts, Etcd};
use etcd_sd::election::{current_leader, Election};
use etcd_sd::kv::{Client, PutMode};
use etcd_sd::lock::{Lease, Lock};
use etcd_sd::types::{Compare, CompareOp, CompareTarget, Txn, TxnOp, TxnOpResponse};
use etcd_sd::Error;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn client(etcd: &Etcd) -> Client {
    Client::new(&opts(&etcd.endpoint(), 2)).unwrap()
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn cmp(key: &str, op: CompareOp, target: CompareTarget) -> Compare {
    Compare {
        key: key.into(),
        range_end: Vec::new(),
        op,
        target,
    }
}

fn put(key: &str, value: &str) -> TxnOp {
    TxnOp::Put {
        key: key.into(),
        value: value.into(),
        lease: 0,
        prev_kv: true,
    }
}

fn get(key: &str) -> TxnOp {
    TxnOp::Range {
        key: key.into(),
        range_end: Vec::new(),
        limit: 0,
        revision: 0,
        keys_only: false,
    }
}

/// A sink that forwards each loss to a channel.
fn on_lost() -> (etcd_sd::dispatch::Sink<Error>, mpsc::Receiver<Error>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    (
        Box::new(move |e: &Error| {
            let _ = tx.lock().unwrap().send(e.clone());
        }),
        rx,
    )
}

#[test]
fn transactions_compare_every_field_and_run_one_branch() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    let lease = c.lease_grant(30).unwrap();
    c.put(b"/t/a", b"1", lease, PutMode::Always).unwrap();
    c.put(b"/t/b", b"x", 0, PutMode::Always).unwrap();
    let a = c.get(b"/t/a").unwrap().kvs.remove(0);

    // Every compare holds: the success branch runs (put with prev_kv, range, delete, nested).
    let txn = Txn {
        compare: vec![
            cmp(
                "/t/a",
                CompareOp::Equal,
                CompareTarget::Value(b"1".to_vec()),
            ),
            cmp("/t/a", CompareOp::Equal, CompareTarget::Version(1)),
            cmp(
                "/t/a",
                CompareOp::Equal,
                CompareTarget::CreateRevision(a.create_revision),
            ),
            cmp(
                "/t/a",
                CompareOp::Less,
                CompareTarget::ModRevision(a.mod_revision + 1),
            ),
            cmp("/t/a", CompareOp::Equal, CompareTarget::Lease(lease)),
            cmp(
                "/t/none",
                CompareOp::Equal,
                CompareTarget::CreateRevision(0),
            ),
            cmp(
                "/t/a",
                CompareOp::NotEqual,
                CompareTarget::Value(b"2".to_vec()),
            ),
            cmp("/t/a", CompareOp::Greater, CompareTarget::Version(0)),
        ],
        success: vec![
            put("/t/a", "2"),
            get("/t/a"),
            get("/t/none"),
            TxnOp::Delete {
                key: b"/t/b".to_vec(),
                range_end: Vec::new(),
                prev_kv: true,
            },
            TxnOp::Txn(Txn {
                compare: vec![],
                success: vec![put("/t/nested", "n")],
                failure: vec![],
            }),
        ],
        failure: vec![put("/t/failed", "f")],
    };
    let r = c.txn(&txn).unwrap();
    assert!(r.succeeded);
    assert_eq!(r.responses.len(), 5);
    match &r.responses[0] {
        TxnOpResponse::Put { prev: Some(p) } => assert_eq!(s(&p.value), "1"),
        other => panic!("{other:?}"),
    }
    match &r.responses[1] {
        TxnOpResponse::Range { kvs, count, .. } => {
            assert_eq!((s(&kvs[0].value), *count), ("2".into(), 1))
        }
        other => panic!("{other:?}"),
    }
    match &r.responses[3] {
        TxnOpResponse::Delete { deleted, prev_kvs } => {
            assert_eq!((*deleted, s(&prev_kvs[0].value)), (1, "x".into()))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&r.responses[4], TxnOpResponse::Txn(n) if n.succeeded));
    assert_eq!(s(&c.get(b"/t/nested").unwrap().kvs[0].value), "n");
    assert!(c.get(b"/t/failed").unwrap().kvs.is_empty());

    // The same compares fail now (the value and version changed): the failure branch runs.
    let r = c.txn(&txn).unwrap();
    assert!(!r.succeeded);
    assert_eq!(r.responses.len(), 1);
    assert_eq!(s(&c.get(b"/t/failed").unwrap().kvs[0].value), "f");

    // A compare over a range: every key under /t/ has version > 0.
    let range = Txn {
        compare: vec![Compare {
            key: b"/t/".to_vec(),
            range_end: b"/t0".to_vec(),
            op: CompareOp::Greater,
            target: CompareTarget::Version(0),
        }],
        success: vec![TxnOp::Range {
            key: b"/t/".to_vec(),
            range_end: b"/t0".to_vec(),
            limit: 1,
            revision: 0,
            keys_only: true,
        }],
        failure: vec![],
    };
    let r = c.txn(&range).unwrap();
    assert!(r.succeeded);
    match &r.responses[0] {
        TxnOpResponse::Range { kvs, count, more } => {
            assert_eq!((kvs.len(), *count, *more), (1, 3, true));
            assert!(kvs[0].value.is_empty(), "keys only");
        }
        other => panic!("{other:?}"),
    }

    // Refused shapes: an empty key, a key written twice.
    assert!(matches!(
        c.txn(&Txn {
            success: vec![put("", "x")],
            ..Default::default()
        }),
        Err(Error::InvalidArgument(_))
    ));
    assert!(c
        .txn(&Txn {
            success: vec![put("/t/d", "1"), put("/t/d", "2")],
            ..Default::default()
        })
        .is_err());
}

#[test]
fn reads_at_a_past_revision() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    let r1 = c.put(b"/r/a", b"1", 0, PutMode::Always).unwrap().revision;
    c.put(b"/r/b", b"1", 0, PutMode::Always).unwrap();
    let r3 = c.put(b"/r/a", b"2", 0, PutMode::Always).unwrap().revision;
    assert_eq!(s(&c.get_at(b"/r/a", r1).unwrap().kvs[0].value), "1");
    assert_eq!(s(&c.get_at(b"/r/a", r3).unwrap().kvs[0].value), "2");
    assert_eq!(c.range_at(b"/r/", b"", 0, r1).unwrap().kvs.len(), 1);
    assert_eq!(c.range_at(b"/r/", b"", 0, 0).unwrap().kvs.len(), 2);
    assert_eq!(c.range_at(b"/r/a", b"/r/b", 0, 0).unwrap().kvs.len(), 1);
    etcd.ctl(&["compact", &r3.to_string()]);
    assert!(matches!(
        c.get_at(b"/r/a", r1),
        Err(Error::InvalidArgument(m)) if m.contains("compacted")
    ));
    assert!(matches!(
        c.get_at(b"/r/a", -1),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_lock_excludes_a_second_contender_until_unlocked() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    let first = Lock::acquire(
        &c,
        b"/locks/job",
        Lease::Own(10),
        Duration::from_secs(5),
        None,
    )
    .unwrap();
    assert!(s(first.key()).starts_with("/locks/job/"));
    first.check().unwrap();

    let t = Instant::now();
    let waited = Lock::acquire(
        &c,
        b"/locks/job",
        Lease::Own(10),
        Duration::from_millis(700),
        None,
    );
    assert!(matches!(waited, Err(Error::Timeout(..))), "{waited:?}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    // The timed-out contender left nothing behind: only the holder's key is there.
    let keys = etcd.get_prefix("/locks/job");
    assert_eq!(keys.len(), 1, "{keys:?}");

    let (tx, rx) = mpsc::channel();
    let c2 = c.clone();
    let contender = std::thread::spawn(move || {
        let l = Lock::acquire(
            &c2,
            b"/locks/job",
            Lease::Own(10),
            Duration::from_secs(20),
            None,
        );
        tx.send(()).unwrap();
        l
    });
    let fence = first.revision();
    first.unlock().unwrap();
    assert!(matches!(first.check(), Err(Error::Closed(_))));
    rx.recv_timeout(Duration::from_secs(20))
        .expect("second contender");
    let second = contender.join().unwrap().unwrap();
    assert!(second.revision() > fence, "fencing token grows");
    // Its own lease is revoked on release.
    let lease = second.lease();
    drop(second);
    assert!(!c.leases().unwrap().contains(&lease));
}

#[test]
fn a_lock_whose_lease_is_revoked_is_lost_and_never_taken_again() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    let (sink, lost) = on_lost();
    let lock = Lock::acquire(
        &c,
        b"/locks/rv",
        Lease::Own(10),
        Duration::from_secs(5),
        Some(sink),
    )
    .unwrap();
    etcd.ctl(&["lease", "revoke", &format!("{:x}", lock.lease())]);
    let e = lost.recv_timeout(Duration::from_secs(10)).expect("on_lost");
    assert!(matches!(e, Error::Lost(_)), "{e:?}");
    assert!(matches!(lock.check(), Err(Error::Lost(_))));
    // Nobody put it back: another contender gets it at once.
    let other = Lock::acquire(
        &c,
        b"/locks/rv",
        Lease::Own(10),
        Duration::from_secs(5),
        None,
    )
    .unwrap();
    assert!(matches!(lock.unlock(), Err(Error::Lost(_))));
    assert_eq!(etcd.get_prefix("/locks/rv").len(), 1);
    drop(other);
    assert!(lost.try_recv().is_err(), "reported once");
}

#[test]
fn a_lock_revoked_through_this_process_is_lost_too() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    let lease = c.lease_grant(30).unwrap();
    let (sink, lost) = on_lost();
    let lock = Lock::acquire(
        &c,
        b"/locks/given",
        Lease::Given(lease),
        Duration::from_secs(5),
        Some(sink),
    )
    .unwrap();
    assert_eq!(lock.lease(), lease);
    c.lease_revoke(lease).unwrap();
    lost.recv_timeout(Duration::from_secs(10)).expect("on_lost");
    assert!(matches!(lock.check(), Err(Error::Lost(_))));
    let r = Lock::acquire(
        &c,
        b"/locks/x",
        Lease::Given(lease),
        Duration::from_secs(2),
        None,
    );
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
}

#[test]
fn a_lock_and_a_leadership_end_when_etcd_is_down_past_their_ttl() {
    let mut etcd = Etcd::start();
    let c = client(&etcd);
    let (lock_sink, lock_lost) = on_lost();
    let lock = Lock::acquire(
        &c,
        b"/locks/down",
        Lease::Own(3),
        Duration::from_secs(5),
        Some(lock_sink),
    )
    .unwrap();
    let (lead_sink, lead_lost) = on_lost();
    let leader = Election::campaign(
        &c,
        b"/elect/down",
        b"me",
        Lease::Own(3),
        Duration::from_secs(5),
        Some(lead_sink),
    )
    .unwrap();
    etcd.kill();
    let t = Instant::now();
    lock_lost
        .recv_timeout(Duration::from_secs(10))
        .expect("lock lost while etcd is down");
    lead_lost
        .recv_timeout(Duration::from_secs(10))
        .expect("leadership lost while etcd is down");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert!(matches!(lock.check(), Err(Error::Lost(_))));
    assert!(matches!(leader.check(), Err(Error::Lost(_))));
    assert!(matches!(leader.proclaim(b"still?"), Err(Error::Lost(_))));
    etcd.restart();
    etcd.wait_healthy();
    // Nothing was taken again, and the old lease goes: a new contender gets both.
    let other = Lock::acquire(
        &c,
        b"/locks/down",
        Lease::Own(3),
        Duration::from_secs(15),
        None,
    )
    .unwrap();
    other.check().unwrap();
    let next = Election::campaign(
        &c,
        b"/elect/down",
        b"next",
        Lease::Own(3),
        Duration::from_secs(15),
        None,
    )
    .unwrap();
    assert_eq!(
        s(&current_leader(&c, b"/elect/down").unwrap().value),
        "next"
    );
    drop((lock, leader, other, next));
}

#[test]
fn an_election_hands_over_on_resign_and_reports_its_loss() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    let none = current_leader(&c, b"/elect/e");
    assert!(matches!(none, Err(Error::NotFound(_))), "{none:?}");
    let (sink, lost) = on_lost();
    let first = Election::campaign(
        &c,
        b"/elect/e",
        b"a",
        Lease::Own(10),
        Duration::from_secs(5),
        Some(sink),
    )
    .unwrap();
    assert_eq!(s(&current_leader(&c, b"/elect/e").unwrap().value), "a");
    first.proclaim(b"a2").unwrap();
    assert_eq!(s(&current_leader(&c, b"/elect/e").unwrap().value), "a2");
    assert!(matches!(
        Election::campaign(
            &c,
            b"/elect/e",
            b"b",
            Lease::Own(10),
            Duration::from_millis(700),
            None
        ),
        Err(Error::Timeout(..))
    ));
    let c2 = c.clone();
    let contender = std::thread::spawn(move || {
        Election::campaign(
            &c2,
            b"/elect/e",
            b"b",
            Lease::Own(10),
            Duration::from_secs(20),
            None,
        )
    });
    let fence = first.leader_key().rev;
    first.resign().unwrap();
    let second = contender.join().unwrap().unwrap();
    assert!(second.leader_key().rev > fence);
    assert_eq!(s(&current_leader(&c, b"/elect/e").unwrap().value), "b");
    assert!(lost.try_recv().is_err(), "a resign is no loss");

    // A loss from outside: the leader key deleted.
    let (sink, lost) = on_lost();
    let third = std::thread::spawn({
        let c = c.clone();
        move || {
            Election::campaign(
                &c,
                b"/elect/e",
                b"c",
                Lease::Own(10),
                Duration::from_secs(20),
                Some(sink),
            )
        }
    });
    etcd.del(&s(&second.leader_key().key));
    let third = third.join().unwrap().unwrap();
    assert!(matches!(second.check(), Err(Error::Lost(_))));
    assert!(matches!(second.resign(), Err(Error::Lost(_))));
    third.check().unwrap();
    assert!(lost.try_recv().is_err());
}

#[test]
fn members_and_leases() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    let members = c.members().unwrap();
    assert_eq!(members.len(), 1);
    assert!(!members[0].client_urls.is_empty());
    // A learner does not count for the quorum: adding one keeps the single member writable.
    let port = portpicker::pick_unused_port().unwrap();
    let m = c
        .member_add(&[format!("http://127.0.0.1:{port}")], true)
        .unwrap();
    assert!(m.is_learner);
    assert_eq!(c.members().unwrap().len(), 2);
    c.member_remove(m.id).unwrap();
    assert_eq!(c.members().unwrap().len(), 1);
    assert!(matches!(c.member_remove(m.id), Err(Error::NotFound(_))));
    assert!(matches!(
        c.member_add(&[], false),
        Err(Error::InvalidArgument(_))
    ));

    let lease = c.lease_grant(30).unwrap();
    assert!(c.leases().unwrap().contains(&lease));
}

#[test]
fn a_keep_alive_revoked_by_its_own_process_ends_for_good() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    // Revoked through the client: the keep-alive's check fails, the key is not put back.
    let ka = c.keep_alive(5, 0).unwrap();
    let id = ka.id();
    c.put(b"/ka/a", b"1", id, PutMode::Always).unwrap();
    c.lease_revoke(id).unwrap();
    assert!(matches!(ka.check(), Err(Error::Lost(_))));
    assert!(etcd.get_prefix("/ka/").is_empty());
    assert_eq!(ka.id(), id, "no new lease");

    // Revoked through the keep-alive itself (the compat KeepAlive::Cancel): the same.
    let ka = c.keep_alive(5, 0).unwrap();
    c.put(b"/ka/b", b"1", ka.id(), PutMode::Always).unwrap();
    ka.revoke().unwrap();
    assert!(etcd.get_prefix("/ka/").is_empty());
    assert!(matches!(ka.check(), Err(Error::Lost(_))));
    ka.revoke().unwrap();
}

#[test]
fn binary_keys_and_open_ranges() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    c.put(b"/bin/a\0x", b"\0v", 0, PutMode::Always).unwrap();
    c.put(b"/bin/b", b"2", 0, PutMode::Always).unwrap();
    c.put(b"/bio", b"3", 0, PutMode::Always).unwrap();
    assert!(
        c.get(b"/bin/a").unwrap().kvs.is_empty(),
        "the NUL is part of the key"
    );
    assert_eq!(c.get(b"/bin/a\0x").unwrap().kvs[0].value, b"\0v");
    // "\0" as a range end: every key from the start key on; from "\0": every key.
    assert_eq!(c.range_at(b"/bin/b", b"\0", 0, 0).unwrap().kvs.len(), 2);
    assert_eq!(c.range_at(b"\0", b"\0", 0, 0).unwrap().kvs.len(), 3);
    let deleted = c.delete_range(b"/bin/", b"/bin/b").unwrap();
    assert_eq!(deleted.kvs.len(), 1);
    assert_eq!(c.delete_range(b"\0", b"\0").unwrap().kvs.len(), 2);
    assert!(matches!(
        c.delete_range(b"/x", b""),
        Err(Error::InvalidArgument(_))
    ));
}

/// A cluster that lost its quorum (a voting member added that never starts) still lists its
/// members, as etcdctl and etcd-cpp-apiv3 do: the member list does not require a leader.
#[test]
fn members_are_listed_without_a_leader() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    let port = portpicker::pick_unused_port().unwrap();
    c.member_add(&[format!("http://127.0.0.1:{port}")], false)
        .unwrap();
    // Quorum is now 2 of 2: writes fail with "no leader" once etcd notices...
    let t = Instant::now();
    while c.put(b"/q/x", b"1", 0, PutMode::Always).is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the quorum was not lost"
        );
    }
    // ...and the list still answers, with both members.
    let members = c.members().unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
}
