//! The general client (KV, leases, kept leases, raw watches) against a real etcd: the layer
//! under the C client ABI and the etcd-cpp-apiv3 compatibility headers.

mod common;

use common::{opts, wait_until, Etcd};
use etcd_sd::kv::{Client, PutMode};
use etcd_sd::watch::{Batch, RawEvent, Watcher};
use etcd_sd::{Error, EventKind, Registry};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn client(etcd: &Etcd) -> Client {
    Client::new(&opts(&etcd.endpoint(), 2)).unwrap()
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn kv_calls_carry_revisions_and_previous_values() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    let put = c.put(b"/kv/a", b"1", 0, PutMode::Always).unwrap();
    assert!(put.kvs.is_empty() && put.revision > 0);
    let put = c.put(b"/kv/a", b"2", 0, PutMode::Always).unwrap();
    assert_eq!(s(&put.kvs[0].value), "1", "previous value");
    let got = c.get(b"/kv/a").unwrap();
    let kv = &got.kvs[0];
    assert_eq!((s(&kv.value), kv.version), ("2".into(), 2));
    assert!(kv.create_revision < kv.mod_revision);
    assert!(c.get(b"/kv/none").unwrap().kvs.is_empty());

    assert!(matches!(
        c.put(b"/kv/a", b"3", 0, PutMode::IfAbsent),
        Err(Error::Exists(_))
    ));
    assert!(matches!(
        c.put(b"/kv/b", b"3", 0, PutMode::IfPresent),
        Err(Error::NotFound(_))
    ));
    c.put(b"/kv/b", b"x", 0, PutMode::IfAbsent).unwrap();
    let prev = c.put(b"/kv/b", b"y", 0, PutMode::IfPresent).unwrap();
    assert_eq!(s(&prev.kvs[0].value), "x");

    for i in 0..12 {
        c.put(
            format!("/kv/dir/{i:02}").as_bytes(),
            b"v",
            0,
            PutMode::Always,
        )
        .unwrap();
    }
    let all = c.range(b"/kv/dir/", 0).unwrap();
    let keys: Vec<String> = all.kvs.iter().map(|kv| s(&kv.key)).collect();
    assert_eq!(keys.len(), 12);
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "key order");
    assert_eq!(c.range(b"/kv/dir/", 5).unwrap().kvs.len(), 5);

    let deleted = c.delete(b"/kv/dir/", true).unwrap();
    assert_eq!(deleted.kvs.len(), 12);
    assert!(c.range(b"/kv/dir/", 0).unwrap().kvs.is_empty());
    let one = c.delete(b"/kv/a", false).unwrap();
    assert_eq!(s(&one.kvs[0].value), "2");
    assert!(c.delete(b"/kv/a", false).unwrap().kvs.is_empty());
    assert!(matches!(
        c.put(b"", b"v", 0, PutMode::Always),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn leases_grant_revoke_and_time_to_live() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    let id = c.lease_grant(30).unwrap();
    let (left, granted) = c.lease_ttl(id).unwrap();
    assert_eq!(granted, 30);
    assert!(left > 25 && left <= 30);
    c.put(b"/lease/k", b"v", id, PutMode::Always).unwrap();
    assert_eq!(c.get(b"/lease/k").unwrap().kvs[0].lease, id);
    c.lease_revoke(id).unwrap();
    assert!(c.get(b"/lease/k").unwrap().kvs.is_empty(), "revoke deletes");
    assert_eq!(c.lease_ttl(id).unwrap().0, -1);
    assert!(matches!(c.lease_revoke(id), Err(Error::NotFound(_))));
    assert!(matches!(
        c.put(b"/lease/k", b"v", id, PutMode::Always),
        Err(Error::NotFound(_))
    ));
    assert!(c.lease_grant(0).is_err());
}

#[test]
fn lease_and_put_replies_are_etcds() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    // etcd raises a TTL under its minimum (2 s with the default election timeout).
    let g = c.lease_grant_info(1).unwrap();
    assert!(
        g.ttl >= 2 && g.granted_ttl == g.ttl && g.revision > 0,
        "{g:?}"
    );
    let put = c.put(b"/lr/k", b"v", g.id, PutMode::Always).unwrap();
    let t = c.lease_ttl_info(g.id).unwrap();
    assert_eq!((t.id, t.granted_ttl), (g.id, g.ttl));
    assert!(t.revision >= put.revision);
    assert!(c.leases_at().unwrap().1 >= put.revision);
    let r = c.lease_revoke_info(g.id).unwrap();
    assert!(r.revision > put.revision, "the revoke deleted /lr/k");

    // A conditional put refused by its mode is a reply, with what is there for IfAbsent.
    c.put(b"/lr/a", b"first", 0, PutMode::Always).unwrap();
    let refused = c
        .put_reply(b"/lr/a", b"second", 0, PutMode::IfAbsent)
        .unwrap();
    assert!(!refused.applied);
    assert_eq!(refused.kvs.kvs[0].value, b"first");
    let missing = c
        .put_reply(b"/lr/none", b"x", 0, PutMode::IfPresent)
        .unwrap();
    assert!(!missing.applied && missing.kvs.kvs.is_empty());
    assert!(matches!(
        c.put(b"/lr/a", b"second", 0, PutMode::IfAbsent),
        Err(Error::Exists(_))
    ));
    // A missing lease stays an error, told apart from a missing key.
    assert!(matches!(
        c.put_reply(b"/lr/a", b"x", g.id, PutMode::IfPresent),
        Err(Error::NotFound(m)) if m.contains("lease")
    ));
}

#[test]
fn kept_lease_recovers_its_keys_and_answers_to_the_old_id() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    let kept = c.keep_alive(2, 0).unwrap();
    let old = kept.id();
    assert_ne!(old, 0);
    c.put(b"/ka/a", b"1", old, PutMode::Always).unwrap();
    // Kept alive well past the TTL: the scenario, not synchronisation.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(etcd.get_prefix("/ka/").len(), 1);

    // Revoked from outside: a new lease, the key back under it.
    etcd.ctl(&["lease", "revoke", &format!("{old:x}")]);
    wait_until(Duration::from_secs(5), "recovered", || {
        kept.id() != old && !etcd.get_prefix("/ka/").is_empty()
    });
    let new = kept.id();
    assert_eq!(c.get(b"/ka/a").unwrap().kvs[0].lease, new);
    // A put naming the old id goes under the new one, and says so.
    let reply = c.put_reply(b"/ka/b", b"2", old, PutMode::Always).unwrap();
    assert_eq!((reply.applied, reply.lease), (true, new));
    assert_eq!(c.get(b"/ka/b").unwrap().kvs[0].lease, new);
    kept.check().unwrap();
    // A deleted key is not put back by a later recovery.
    c.delete(b"/ka/a", false).unwrap();
    etcd.ctl(&["lease", "revoke", &format!("{new:x}")]);
    wait_until(Duration::from_secs(5), "recovered twice", || {
        kept.id() != new && !etcd.get_prefix("/ka/").is_empty()
    });
    assert_eq!(
        etcd.get_prefix("/ka/").keys().collect::<Vec<_>>(),
        vec!["/ka/b"]
    );
    // Dropping it stops renewals without revoking.
    let last = kept.id();
    drop(kept);
    assert!(c.lease_ttl(last).unwrap().0 > 0);
}

#[test]
fn kept_lease_against_a_dead_etcd_fails_within_the_timeout() {
    let mut etcd = Etcd::start();
    let c = client(&etcd);
    etcd.kill();
    let t = Instant::now();
    let r = c.keep_alive(3, 0);
    assert!(r.is_err(), "no keep-alive of lease 0");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
}

#[test]
fn registries_share_one_lease_and_free_only_their_own_keys() {
    let etcd = Etcd::start();
    let o = opts(&etcd.endpoint(), 3);
    let a = Registry::new(&o).unwrap();
    let b = Registry::new(&o).unwrap();
    assert_eq!(a.lease_id(), b.lease_id(), "one lease per settings and TTL");
    a.register("/shared/a", "1").unwrap();
    b.register("/shared/b", "2").unwrap();
    let mut own = o.clone();
    own.set_own_lease(true);
    let c = Registry::new(&own).unwrap();
    assert_ne!(c.lease_id(), a.lease_id());
    c.register("/shared/c", "3").unwrap();
    assert_eq!(etcd.get_prefix("/shared/").len(), 3);
    drop(a);
    assert_eq!(
        etcd.get_prefix("/shared/").keys().collect::<Vec<_>>(),
        vec!["/shared/b", "/shared/c"]
    );
    // The shared lease survives the first registry's exit and is lost and restored for both.
    let lease = b.lease_id();
    etcd.ctl(&["lease", "revoke", &format!("{lease:x}")]);
    wait_until(Duration::from_secs(5), "restored", || {
        etcd.get_prefix("/shared/").len() == 2 && b.lease_id() != lease
    });
    drop(c);
    assert_eq!(etcd.get_prefix("/shared/").len(), 1);
}

type Seen = Arc<Mutex<Vec<Batch>>>;

fn recording() -> (Seen, etcd_sd::dispatch::Sink<Batch>) {
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    (
        seen,
        Box::new(move |b: &Batch| s2.lock().unwrap().push(b.clone())),
    )
}

/// Waits until `n` events were recorded, and returns them in order.
fn wait_for_events(seen: &Seen, n: usize) -> Vec<RawEvent> {
    let count = || {
        seen.lock()
            .unwrap()
            .iter()
            .map(|b| b.events.len())
            .sum::<usize>()
    };
    wait_until(WAIT, &format!("{n} events"), || count() == n);
    seen.lock()
        .unwrap()
        .iter()
        .flat_map(|b| b.events.clone())
        .collect()
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn watch_delivers_raw_events_with_previous_values() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    c.put(b"/w/a", b"1", 0, PutMode::Always).unwrap();
    let (seen, sink) = recording();
    let _w = Watcher::new(&c, b"/w/", true, 0, sink).unwrap();
    c.put(b"/w/a", b"2", 0, PutMode::Always).unwrap();
    c.delete(b"/w/a", false).unwrap();
    let events = wait_for_events(&seen, 2);
    assert_eq!(events[0].kind, EventKind::Put);
    assert_eq!(s(&events[0].prev.as_ref().unwrap().value), "1");
    assert_eq!(events[1].kind, EventKind::Delete);
    assert_eq!(s(&events[1].prev.as_ref().unwrap().value), "2");
    assert!(events[1].kv.mod_revision > events[0].kv.mod_revision);

    // From a given revision: replays history.
    let (seen2, sink2) = recording();
    let _w2 = Watcher::new(&c, b"/w/a", false, 1, sink2).unwrap();
    wait_until(WAIT, "replay", || {
        seen2
            .lock()
            .unwrap()
            .iter()
            .map(|b| b.events.len())
            .sum::<usize>()
            >= 3
    });
}

#[test]
fn watch_from_a_past_revision_knows_the_previous_values() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    c.put(b"/past/a", b"host-a", 0, PutMode::Always).unwrap();
    let from = c
        .put(b"/past/b", b"host-b", 0, PutMode::Always)
        .unwrap()
        .revision
        + 1;
    c.put(b"/past/a", b"host-a2", 0, PutMode::Always).unwrap();
    c.delete(b"/past/b", false).unwrap();
    // Both changes come after `from`; the values they replaced were set before it.
    let (seen, sink) = recording();
    let _w = Watcher::new(&c, b"/past/", true, from, sink).unwrap();
    let events = wait_for_events(&seen, 2);
    assert_eq!(events[0].kind, EventKind::Put);
    assert_eq!(s(&events[0].prev.as_ref().unwrap().value), "host-a");
    assert_eq!(events[1].kind, EventKind::Delete);
    assert_eq!(s(&events[1].prev.as_ref().unwrap().key), "/past/b");
    assert_eq!(s(&events[1].prev.as_ref().unwrap().value), "host-b");
}

#[test]
fn list_then_watch_loses_nothing_in_between() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    c.put(b"/gap/a", b"1", 0, PutMode::Always).unwrap();
    let listed = c.range(b"/gap/", 0).unwrap();
    assert_eq!(listed.kvs.len(), 1);
    // A change between the listing and the watcher, as in every chat system's Discovery.
    etcd.put("/gap/b", "2");
    let (seen, sink) = recording();
    let _w = Watcher::new(&c, b"/gap/", true, 0, sink).unwrap();
    wait_until(WAIT, "the put made before the watcher", || {
        seen.lock()
            .unwrap()
            .iter()
            .flat_map(|b| b.events.iter())
            .any(|e| e.kv.key == b"/gap/b")
    });
}

#[test]
fn watch_after_compaction_delivers_the_difference() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    c.put(b"/cp/a", b"1", 0, PutMode::Always).unwrap();
    c.put(b"/cp/b", b"1", 0, PutMode::Always).unwrap();
    let start = c.get(b"/cp/a").unwrap().revision + 1;
    // Changes, then compaction past the start revision before the watch starts.
    c.delete(b"/cp/a", false).unwrap();
    c.put(b"/cp/c", b"3", 0, PutMode::Always).unwrap();
    etcd.ctl(&["compact", &etcd.revision().to_string()]);
    let (tx, rx) = mpsc::channel::<Batch>();
    let tx = Mutex::new(tx);
    let _w = Watcher::new(
        &c,
        b"/cp/",
        true,
        start,
        Box::new(move |b: &Batch| {
            let _ = tx.lock().unwrap().send(b.clone());
        }),
    )
    .unwrap();
    let b = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("relisted batch");
    assert!(b.compact_revision > 0, "flagged as compacted: {b:?}");
    // The watch knew nothing (started from a revision): everything present is a put.
    let keys: Vec<_> = b.events.iter().map(|e| (e.kind, s(&e.kv.key))).collect();
    assert_eq!(
        keys,
        vec![
            (EventKind::Put, "/cp/b".into()),
            (EventKind::Put, "/cp/c".into())
        ]
    );
    // And it goes on watching.
    c.put(b"/cp/d", b"4", 0, PutMode::Always).unwrap();
    let b = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("later event");
    assert_eq!(s(&b.events[0].kv.key), "/cp/d");
}

/// A callback that reads its watcher's stats finds them at least as far as its batch (the
/// counters were stored after the batch was handed to the callback thread: 1 run in 9 of
/// tests/c/test_client.c saw them behind).
#[test]
fn watch_stats_are_never_behind_the_batch_being_delivered() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    let watcher: Arc<Mutex<Option<Watcher>>> = Arc::default();
    let behind = Arc::new(Mutex::new(Vec::new()));
    let batches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sink = {
        let (watcher, behind, batches) = (watcher.clone(), behind.clone(), batches.clone());
        Box::new(move |b: &Batch| {
            if let Some(w) = watcher.lock().unwrap().as_ref() {
                let st = w.stats();
                if st.revision < b.revision {
                    behind.lock().unwrap().push((st.revision, b.revision));
                }
            }
            batches.fetch_add(b.events.len(), std::sync::atomic::Ordering::SeqCst);
        })
    };
    *watcher.lock().unwrap() = Some(Watcher::new(&c, b"/st/", true, 0, sink).unwrap());
    for i in 0..300 {
        c.put(b"/st/k", i.to_string().as_bytes(), 0, PutMode::Always)
            .unwrap();
    }
    wait_until(WAIT, "300 events", || {
        batches.load(std::sync::atomic::Ordering::SeqCst) >= 300
    });
    watcher.lock().unwrap().take();
    assert_eq!(*behind.lock().unwrap(), Vec::<(i64, i64)>::new());
}

/// An unregister that fails (etcd down) leaves the key registered, so that a retry deletes it;
/// it used to forget the key first, and the retry answered OK and deleted nothing.
#[test]
fn a_failed_unregister_can_be_retried() {
    let mut etcd = Etcd::start();
    let reg = Registry::new(&opts(&etcd.endpoint(), 30)).unwrap();
    reg.register("/unreg/a", "1").unwrap();
    etcd.kill();
    assert!(reg.unregister("/unreg/a").is_err());
    assert_eq!(reg.key_count(), 1, "still registered");
    etcd.restart();
    etcd.wait_healthy();
    let t = Instant::now();
    loop {
        match reg.unregister("/unreg/a") {
            Ok(()) => break,
            Err(e) => assert!(t.elapsed() < Duration::from_secs(15), "{e}"),
        }
    }
    assert!(etcd.get_prefix("/unreg/").is_empty());
    assert_eq!(reg.key_count(), 0);
}

/// Concurrent registrations of one key reach etcd and the registry's record in the same
/// order: after the lease is lost and restored, etcd holds the value it held before (the
/// record used to be written after the put, unordered, and recovery could restore a value
/// etcd no longer had).
#[test]
fn concurrent_registrations_of_one_key_survive_a_recovery_as_etcd_had_them() {
    let etcd = Etcd::start();
    let reg = Arc::new(Registry::new(&opts(&etcd.endpoint(), 3)).unwrap());
    for round in 0..3 {
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let reg = reg.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        reg.register("/conc/k", &format!("{round}-{t}-{i}"))
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let before = etcd.get_prefix("/conc/")["/conc/k"].clone();
        let lease = reg.lease_id();
        etcd.ctl(&["lease", "revoke", &format!("{lease:x}")]);
        wait_until(WAIT, "restored", || {
            reg.lease_id() != lease && etcd.get_prefix("/conc/").len() == 1
        });
        assert_eq!(
            etcd.get_prefix("/conc/")["/conc/k"],
            before,
            "round {round}"
        );
    }
}
