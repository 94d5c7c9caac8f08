//! Discovery behaviour against a real etcd.

mod common;

use common::{library_threads, opts, try_wait_until, wait_until, Etcd, GrpcProxy, Recorder};
use etcd_sd::{Discovery, Error, EventKind, Options, Registry};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn initial_listing_in_key_order_before_new_returns() {
    let etcd = Etcd::start();
    for k in ["/svc/c", "/svc/a", "/svc/b", "/svcX/z", "/other/x"] {
        etcd.put(k, &format!("v{k}"));
    }
    let rec = Recorder::default();
    let _d = Discovery::new(&opts(&etcd.endpoint(), 3), "/svc", rec.sink()).unwrap();
    let keys: Vec<String> = rec.events().into_iter().map(|(_, k, _)| k).collect();
    // Prefix semantics: "/svc" matches "/svcX/z" too, as etcd's prefix does.
    assert_eq!(keys, ["/svc/a", "/svc/b", "/svc/c", "/svcX/z"]);
}

#[test]
fn put_and_delete_with_the_deleted_value() {
    let etcd = Etcd::start();
    let rec = Recorder::default();
    let _d = Discovery::new(&opts(&etcd.endpoint(), 3), "/service", rec.sink()).unwrap();
    let reg = Registry::new(&opts(&etcd.endpoint(), 3)).unwrap();
    reg.register("/service/user/i1", "10.0.0.5:9000").unwrap();
    rec.wait_event(EventKind::Put, "/service/user/i1", WAIT);
    let t = Instant::now();
    reg.close().unwrap();
    rec.wait_event(EventKind::Delete, "/service/user/i1", WAIT);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "revoke → DELETE took {:?}",
        t.elapsed()
    );
    let del = rec
        .events()
        .into_iter()
        .find(|e| e.0 == EventKind::Delete)
        .unwrap();
    assert_eq!(del.2, "10.0.0.5:9000", "on_del carries the deleted value");
}

#[test]
fn no_event_lost_or_duplicated_between_list_and_watch() {
    let etcd = Etcd::start();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, written, endpoint) = (stop.clone(), written.clone(), etcd.endpoint());
        std::thread::spawn(move || {
            let reg = Registry::new(&opts(&endpoint, 10)).unwrap();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                reg.register(&format!("/gap/k{}", n % 7), &format!("{n:08}"))
                    .unwrap();
                n += 1;
                written.store(n as usize, Ordering::SeqCst);
            }
            std::mem::forget(reg); // keep the keys after the thread ends
        })
    };
    // Writes before the listing, during it, and well after the watch started.
    wait_until(WAIT, "20 writes", || written.load(Ordering::SeqCst) >= 20);
    let rec = Recorder::default();
    let d = Discovery::new(&opts(&etcd.endpoint(), 3), "/gap/", rec.sink()).unwrap();
    let at_new = written.load(Ordering::SeqCst);
    wait_until(WAIT, "50 writes after the listing, some delivered", || {
        written.load(Ordering::SeqCst) >= at_new + 50 && rec.events().len() > 7
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let truth = etcd.get_prefix("/gap/");
    rec.wait_for(WAIT, "table equals etcd", |r| r.table == truth);
    // Values per key strictly increase: nothing delivered twice or out of order.
    let mut last: std::collections::HashMap<String, String> = Default::default();
    for (_, k, v) in rec.events() {
        if let Some(prev) = last.get(&k) {
            assert!(v > *prev, "{k}: {v} after {prev}");
        }
        last.insert(k, v);
    }
    drop(d);
}

#[test]
fn callbacks_never_overlap_and_a_slow_one_does_not_expire_leases() {
    let etcd = Etcd::start();
    let reg = Registry::new(&opts(&etcd.endpoint(), 1)).unwrap();
    reg.register("/slow/held", "x").unwrap();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let rec = Recorder::default();
    let sink = {
        let (f, o, rec) = (in_flight.clone(), overlaps.clone(), rec.clone());
        move |e: &etcd_sd::Event| {
            if f.fetch_add(1, Ordering::SeqCst) > 0 {
                o.fetch_add(1, Ordering::SeqCst);
            }
            if e.key == b"/slow/trigger" {
                // Slow on purpose (three TTLs), not synchronisation.
                std::thread::sleep(Duration::from_secs(3));
            }
            rec.record(e);
            f.fetch_sub(1, Ordering::SeqCst);
        }
    };
    let _d = Discovery::new(&opts(&etcd.endpoint(), 3), "/slow/", sink).unwrap();
    etcd.put("/slow/trigger", "1");
    for i in 0..50 {
        etcd.put(&format!("/slow/n{i}"), "v");
    }
    rec.wait_for(Duration::from_secs(10), "all events", |r| {
        r.events.len() >= 52
    });
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    assert!(
        !rec.events().iter().any(|e| e.0 == EventKind::Delete),
        "a lease expired"
    );
    assert_eq!(etcd.get_prefix("/slow/held").len(), 1);
}

#[test]
fn after_drop_no_callback_runs() {
    let etcd = Etcd::start();
    let fired_after = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let sink = {
        let (f, d) = (fired_after.clone(), dropped.clone());
        move |_e: &etcd_sd::Event| {
            // Slow on purpose, so that events are still queued when the drop comes.
            std::thread::sleep(Duration::from_millis(20));
            if d.load(Ordering::SeqCst) {
                f.store(true, Ordering::SeqCst);
            }
        }
    };
    let disc = Discovery::new(&opts(&etcd.endpoint(), 3), "/after/", sink).unwrap();
    // A second observer of the prefix: the marker that delivery has gone past the last put.
    let marker = Recorder::default();
    let _m = Discovery::new(&opts(&etcd.endpoint(), 3), "/after/", marker.sink()).unwrap();
    for i in 0..20 {
        etcd.put(&format!("/after/{i}"), "v");
    }
    drop(disc);
    dropped.store(true, Ordering::SeqCst);
    etcd.put("/after/late", "v");
    marker.wait_event(EventKind::Put, "/after/late", WAIT);
    assert!(!fired_after.load(Ordering::SeqCst));
}

#[test]
fn drop_from_inside_its_own_callback_returns_and_stops_delivery() {
    let etcd = Etcd::start();
    let slot: Arc<Mutex<Option<Discovery>>> = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let sink = {
        let (slot, calls) = (slot.clone(), calls.clone());
        move |_e: &etcd_sd::Event| {
            calls.fetch_add(1, Ordering::SeqCst);
            // Dropping our own discovery from its callback must not deadlock.
            drop(slot.lock().unwrap().take());
        }
    };
    let d = Discovery::new(&opts(&etcd.endpoint(), 3), "/self/", sink).unwrap();
    *slot.lock().unwrap() = Some(d);
    // A second observer of the prefix: the marker that delivery has gone past the last put.
    let marker = Recorder::default();
    let _m = Discovery::new(&opts(&etcd.endpoint(), 3), "/self/", marker.sink()).unwrap();
    etcd.put("/self/a", "1");
    wait_until(WAIT, "the callback to drop its discovery", || {
        slot.lock().unwrap().is_none()
    });
    etcd.put("/self/b", "2");
    marker.wait_event(EventKind::Put, "/self/b", WAIT);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn bad_arguments_and_dead_endpoint() {
    let rec = Recorder::default();
    let etcd = Etcd::start();
    assert!(matches!(
        Discovery::new(&opts(&etcd.endpoint(), 3), "", rec.sink()),
        Err(Error::InvalidArgument(_))
    ));
    let port = portpicker::pick_unused_port().unwrap();
    let mut o = Options::new(&format!("http://127.0.0.1:{port}")).unwrap();
    o.set_connect_timeout(Duration::from_millis(800)).unwrap();
    let t = Instant::now();
    assert!(matches!(
        Discovery::new(&o, "/x", rec.sink()),
        Err(Error::Unavailable(_))
    ));
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn thread_count_is_fixed_whatever_the_number_of_objects() {
    let etcd = Etcd::start();
    let o = opts(&etcd.endpoint(), 3);
    let _r = Registry::new(&o).unwrap();
    let rec = Recorder::default();
    let _d = Discovery::new(&o, "/t/", rec.sink()).unwrap();
    etcd.put("/t/warm", "1"); // make sure the callback pool has started
    rec.wait_event(EventKind::Put, "/t/warm", WAIT);
    let one = library_threads();
    let regs: Vec<Registry> = (0..100)
        .map(|i| {
            let r = Registry::new(&o).unwrap();
            r.register(&format!("/t/r{i}"), "v").unwrap();
            r
        })
        .collect();
    let recs: Vec<Recorder> = (0..10).map(|_| Recorder::default()).collect();
    let discs: Vec<Discovery> = recs
        .iter()
        .map(|r| Discovery::new(&o, "/t/", r.sink()).unwrap())
        .collect();
    // Every object is at work: each discovery has a live watch that delivered a later put.
    etcd.put("/t/late", "1");
    for r in &recs {
        r.wait_event(EventKind::Put, "/t/late", WAIT);
    }
    let many = library_threads();
    eprintln!("library threads: 1+1 objects: {one:?}; 100+10 objects: {many:?}");
    // The logging thread starts with the first record (another test of this binary may log):
    // it is one, whatever the number of objects.
    let (one, many) = (without_log_thread(one), without_log_thread(many));
    assert!(many.len() <= 3, "{many:?}");
    assert_eq!(one.len(), many.len());
    drop((regs, discs));
}

fn without_log_thread(mut threads: Vec<String>) -> Vec<String> {
    let logging = threads.iter().filter(|t| *t == "etcd-sd-log").count();
    assert!(logging <= 1, "{threads:?}");
    threads.retain(|t| t != "etcd-sd-log");
    threads
}

/// Not a test on its own (ignored, so it shows as such): the registrant process that
/// `crashed_registrant_expires_after_ttl` starts (this same binary, re-executed with
/// `--ignored --exact`) and then SIGKILLs.
#[test]
#[ignore = "the child process of crashed_registrant_expires_after_ttl"]
fn child_registrant() {
    let endpoint = std::env::var("ETCD_SD_CHILD_ENDPOINT")
        .expect("run by crashed_registrant_expires_after_ttl, which sets ETCD_SD_CHILD_ENDPOINT");
    let reg = Registry::new(&opts(&endpoint, 1)).unwrap();
    reg.register("/crash/child", "10.0.0.9:9000").unwrap();
    println!("REGISTERED");
    // Stays alive (keeping the lease) until the parent SIGKILLs it: the scenario, not a wait.
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn crashed_registrant_expires_after_ttl() {
    use std::io::BufRead;
    let etcd = Etcd::start();
    let rec = Recorder::default();
    let _d = Discovery::new(&opts(&etcd.endpoint(), 3), "/crash/", rec.sink()).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_registrant",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ETCD_SD_CHILD_ENDPOINT", etcd.endpoint())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    assert!(out.lines().any(|l| l.unwrap().contains("REGISTERED")));
    rec.wait_event(EventKind::Put, "/crash/child", WAIT);
    child.kill().unwrap(); // SIGKILL: no revoke, the lease must run out
    child.wait().unwrap();
    let took = rec.wait_event(EventKind::Delete, "/crash/child", WAIT);
    eprintln!("crash → on_del after {took:?} (TTL 1 s)");
    assert!(
        took >= Duration::from_millis(500),
        "{took:?}: too early for a lease expiry"
    );
}

#[test]
fn a_large_prefix_is_listed_in_pages() {
    use etcd_client::{Client, Txn, TxnOp};
    let etcd = Etcd::start();
    // 12,000 keys of ~420 bytes: more than two pages, and 5 MB, over a single 4 MiB reply.
    let value = "v".repeat(400);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = Client::connect([etcd.endpoint()], None).await.unwrap();
        for batch in 0..120 {
            let ops: Vec<TxnOp> = (0..100)
                .map(|i| TxnOp::put(format!("/big/k{:05}", batch * 100 + i), value.clone(), None))
                .collect();
            c.txn(Txn::new().and_then(ops)).await.unwrap();
        }
    });
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let t = Instant::now();
    let _d = Discovery::new(
        &opts(&etcd.endpoint(), 3),
        "/big/",
        move |_: &etcd_sd::Event| {
            c.fetch_add(1, Ordering::SeqCst);
        },
    )
    .unwrap();
    eprintln!("12,000-key listing delivered in {:?}", t.elapsed());
    assert_eq!(count.load(Ordering::SeqCst), 12_000);
}

/// The watches of a connection share one gRPC watch stream (issue 20): etcd sees one stream
/// per connection whatever the number of discoveries, each discovery keeps its own events,
/// and dropping some leaves the others served on the same stream.
#[test]
fn discoveries_of_a_connection_share_one_watch_stream() {
    let etcd = Etcd::start();
    let o = opts(&etcd.endpoint(), 5);
    let services = [
        "user", "friend", "message", "file", "speech", "transmit", "gateway",
    ];
    let recs: Vec<Recorder> = services.iter().map(|_| Recorder::default()).collect();
    let mut ds: Vec<Discovery> = services
        .iter()
        .zip(&recs)
        .map(|(s, r)| Discovery::new(&o, &format!("/mux/{s}/"), r.sink()).unwrap())
        .collect();
    let streams = || etcd.metric("etcd_debugging_mvcc_watch_stream_total") as u64;
    wait_until(Duration::from_secs(10), "7 watchers on the member", || {
        etcd.watchers() == 7
    });
    assert_eq!(streams(), 1, "7 discoveries, one connection: one stream");
    for s in services {
        etcd.put(&format!("/mux/{s}/i1"), &format!("{s}:1"));
    }
    for (s, r) in services.iter().zip(&recs) {
        r.wait_event(
            EventKind::Put,
            &format!("/mux/{s}/i1"),
            Duration::from_secs(5),
        );
        assert_eq!(r.events().len(), 1, "{s} sees only its own prefix");
    }
    // Another connection (other settings): a stream of its own.
    let mut other = opts(&etcd.endpoint(), 5);
    other
        .set_request_timeout(Duration::from_millis(4321))
        .unwrap();
    other
        .set_connect_timeout(Duration::from_millis(4321))
        .unwrap();
    let extra = Recorder::default();
    let d = Discovery::new(&other, "/mux/user/", extra.sink()).unwrap();
    wait_until(Duration::from_secs(10), "a second stream", || {
        streams() == 2
    });
    drop(d);
    // Dropping watches cancels them on the stream; the rest go on being served.
    ds.truncate(3);
    wait_until(
        Duration::from_secs(10),
        "3 watchers and one stream left",
        || etcd.watchers() == 3 && streams() == 1,
    );
    etcd.put("/mux/friend/i2", "friend:2");
    recs[1].wait_event(EventKind::Put, "/mux/friend/i2", Duration::from_secs(5));
    drop(ds);
    wait_until(
        Duration::from_secs(10),
        "the stream closed with its last watch",
        || streams() == 0 && etcd.watchers() == 0,
    );
}

/// With inline callbacks, every event after the listing runs on the I/O thread, in revision
/// order; a blocking call made there is refused with a message saying why (instead of
/// stalling the thread that would answer it); the callback may drop its own discovery.
#[test]
fn inline_callbacks_run_on_the_io_thread_and_refuse_to_block() {
    let etcd = Etcd::start();
    let mut o = opts(&etcd.endpoint(), 3);
    o.set_inline_callbacks(true);
    type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;
    let seen: Seen = Arc::default();
    let refused: Arc<Mutex<Option<Error>>> = Arc::default();
    let slot: Arc<Mutex<Option<Discovery>>> = Arc::default();
    let sink = {
        let (seen, refused, slot, o) = (seen.clone(), refused.clone(), slot.clone(), o.clone());
        move |e: &etcd_sd::Event| {
            let key = String::from_utf8_lossy(&e.key).into_owned();
            let thread = std::thread::current().name().map(str::to_owned);
            match key.as_str() {
                "/inl/block" => {
                    let r = Registry::new(&o).and_then(|r| r.register("/elsewhere/x", "v"));
                    *refused.lock().unwrap() = r.err();
                }
                "/inl/drop" => drop(slot.lock().unwrap().take()),
                _ => {}
            }
            seen.lock().unwrap().push((key, thread));
        }
    };
    let d = Discovery::new(&o, "/inl/", sink).unwrap();
    *slot.lock().unwrap() = Some(d);
    let marker = Recorder::default();
    let _m = Discovery::new(&opts(&etcd.endpoint(), 3), "/inl/", marker.sink()).unwrap();

    let reg = Registry::new(&opts(&etcd.endpoint(), 3)).unwrap();
    let keys: Vec<String> = (0..50).map(|i| format!("/inl/k{i:02}")).collect();
    for k in &keys {
        reg.register(k, "v").unwrap();
    }
    wait_until(WAIT, "50 inline callbacks", || {
        seen.lock().unwrap().len() == 50
    });
    {
        let seen = seen.lock().unwrap();
        let got: Vec<&String> = seen.iter().map(|(k, _)| k).collect();
        assert_eq!(got, keys.iter().collect::<Vec<_>>(), "revision order");
        for (k, thread) in seen.iter() {
            assert_eq!(
                thread.as_deref(),
                Some("etcd-sd-io"),
                "{k} ran off the I/O thread"
            );
        }
    }

    reg.register("/inl/block", "v").unwrap();
    wait_until(WAIT, "the blocking call's answer", || {
        refused.lock().unwrap().is_some()
    });
    let err = refused.lock().unwrap().take().unwrap();
    assert!(matches!(err, Error::Internal(_)), "{err:?}");
    assert!(err.to_string().contains("inline callback"), "{err}");

    // The I/O thread was not stalled: events and the registry's own requests go on.
    reg.register("/inl/drop", "v").unwrap();
    wait_until(WAIT, "the callback to drop its discovery", || {
        slot.lock().unwrap().is_none()
    });
    reg.register("/inl/after", "v").unwrap();
    marker.wait_event(EventKind::Put, "/inl/after", WAIT);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.last().map(|(k, _)| k.as_str()), Some("/inl/drop"));
    assert_eq!(seen.len(), 52, "no event after the discovery was dropped");
}

/// Through etcd's gRPC proxy, which numbers a stream's watches itself (from 0, whatever ids
/// were asked for) and never answers a progress request: discoveries sharing the stream each
/// get their own events, one dropped leaves the others served, and the stream is not torn
/// down for silence (it was, every 2 s, by the probe a member would have answered).
#[test]
fn discoveries_through_etcds_grpc_proxy() {
    let etcd = Etcd::start();
    let proxy = GrpcProxy::start(&etcd.endpoint());
    let o = opts(&proxy.endpoint(), 3);
    etcd.put("/px/a/1", "a1");
    let (ra, rb, rc) = (
        Recorder::default(),
        Recorder::default(),
        Recorder::default(),
    );
    let da = Discovery::new(&o, "/px/a/", ra.sink()).unwrap();
    let db = Discovery::new(&o, "/px/b/", rb.sink()).unwrap();
    let dc = Discovery::new(&o, "/px/c/", rc.sink()).unwrap();
    ra.wait_event(EventKind::Put, "/px/a/1", WAIT);
    let reg = Registry::new(&o).unwrap();
    reg.register("/px/b/1", "b1").unwrap();
    reg.register("/px/c/1", "c1").unwrap();
    rb.wait_event(EventKind::Put, "/px/b/1", WAIT);
    rc.wait_event(EventKind::Put, "/px/c/1", WAIT);
    drop(db);
    reg.register("/px/a/2", "a2").unwrap();
    reg.register("/px/c/2", "c2").unwrap();
    ra.wait_event(EventKind::Put, "/px/a/2", WAIT);
    rc.wait_event(EventKind::Put, "/px/c/2", WAIT);
    reg.unregister("/px/c/1").unwrap();
    rc.wait_event(EventKind::Delete, "/px/c/1", WAIT);
    for (rec, prefix) in [(&ra, "/px/a/"), (&rb, "/px/b/"), (&rc, "/px/c/")] {
        let keys: Vec<String> = rec.events().into_iter().map(|(_, k, _)| k).collect();
        assert!(
            keys.iter().all(|k| k.starts_with(prefix)),
            "{prefix}: {keys:?}"
        );
    }
    assert_eq!(
        rb.events().len(),
        1,
        "an event after the discovery was dropped"
    );
    // A fresh stream is probed after 1 s of silence and given up 1 s later when unanswered.
    let resumed = try_wait_until(Duration::from_secs(4), || {
        da.stats().resumes + dc.stats().resumes > 0
    });
    assert!(
        !resumed,
        "the stream through the proxy was torn down; proxy log: {}",
        proxy.log()
    );
    reg.register("/px/a/3", "a3").unwrap();
    ra.wait_event(EventKind::Put, "/px/a/3", WAIT);
}
