//! Registry behaviour against a real etcd.

mod common;

use common::{opts, wait_until, Etcd};
use etcd_sd::{Error, Options, Registry};
use std::time::{Duration, Instant};

#[test]
fn registers_updates_and_holds_several_keys() {
    let etcd = Etcd::start();
    let reg = Registry::new(&opts(&etcd.endpoint(), 3)).unwrap();
    assert_ne!(reg.lease_id(), 0);
    reg.register("/service/user/i1", "10.0.0.5:9000").unwrap();
    reg.register("/service/friend/i1", "10.0.0.6:9000").unwrap();
    reg.register("/service/user/i1", "10.0.0.5:9001").unwrap();
    let kv = etcd.get_prefix("/service/");
    assert_eq!(kv["/service/user/i1"], "10.0.0.5:9001");
    assert_eq!(kv["/service/friend/i1"], "10.0.0.6:9000");
    // Both keys are on our lease.
    let ttl = etcd.ctl(&[
        "lease",
        "timetolive",
        &format!("{:x}", reg.lease_id()),
        "--keys",
    ]);
    assert!(
        ttl.contains("/service/user/i1") && ttl.contains("/service/friend/i1"),
        "{ttl}"
    );
    reg.unregister("/service/friend/i1").unwrap();
    assert!(!etcd
        .get_prefix("/service/")
        .contains_key("/service/friend/i1"));
}

#[test]
fn keep_alive_outlives_many_ttls() {
    let etcd = Etcd::start();
    let reg = Registry::new(&opts(&etcd.endpoint(), 1)).unwrap();
    reg.register("/ka/k", "v").unwrap();
    let lease = reg.lease_id();
    // Several TTLs (1 s) pass: the scenario (the lease must survive them), not synchronisation.
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(
        etcd.get_prefix("/ka/").get("/ka/k").map(String::as_str),
        Some("v")
    );
    assert_eq!(
        reg.lease_id(),
        lease,
        "the lease was never lost, so never replaced"
    );
}

#[test]
fn close_revokes_at_once() {
    let etcd = Etcd::start();
    let reg = Registry::new(&opts(&etcd.endpoint(), 30)).unwrap();
    reg.register("/rv/k", "v").unwrap();
    reg.close().unwrap();
    assert!(
        etcd.get_prefix("/rv/").is_empty(),
        "key must go with the lease"
    );
}

#[test]
fn new_fails_fast_on_a_dead_endpoint() {
    let port = portpicker::pick_unused_port().unwrap();
    let mut o = Options::new(&format!("127.0.0.1:{port}")).unwrap();
    o.set_connect_timeout(Duration::from_millis(800)).unwrap();
    let t = Instant::now();
    let err = Registry::new(&o).err().expect("must fail");
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

#[test]
fn close_is_bounded_when_etcd_is_gone() {
    let mut etcd = Etcd::start();
    let mut o = opts(&etcd.endpoint(), 5);
    o.set_request_timeout(Duration::from_millis(700)).unwrap();
    let reg = Registry::new(&o).unwrap();
    reg.register("/gone/k", "v").unwrap();
    etcd.kill();
    let t = Instant::now();
    let _ = reg.close();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn bad_arguments_are_rejected() {
    let etcd = Etcd::start();
    let mut o = opts(&etcd.endpoint(), 3);
    assert!(matches!(o.set_ttl(0), Err(Error::InvalidArgument(_))));
    assert!(matches!(o.set_ttl(-1), Err(Error::InvalidArgument(_))));
    assert!(matches!(Options::new(""), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        Registry::new(&Options::default()),
        Err(Error::InvalidArgument(_))
    ));
    let reg = Registry::new(&o).unwrap();
    assert!(matches!(
        reg.register("", "v"),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn lease_revoked_from_outside_is_replaced_and_keys_put_again() {
    let etcd = Etcd::start();
    let reg = Registry::new(&opts(&etcd.endpoint(), 2)).unwrap();
    reg.register("/lost/a", "1").unwrap();
    reg.register("/lost/b", "2").unwrap();
    let old = reg.lease_id();
    etcd.ctl(&["lease", "revoke", &format!("{old:x}")]);
    wait_until(Duration::from_secs(3), "keys restored", || {
        etcd.get_prefix("/lost/").len() == 2
    });
    assert_ne!(reg.lease_id(), old);
}

#[test]
fn blocking_call_inside_an_async_runtime_is_an_error_not_a_panic() {
    let etcd = Etcd::start();
    let o = opts(&etcd.endpoint(), 3);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = rt.block_on(async { Registry::new(&o).map(|_| ()) });
    assert!(matches!(r, Err(Error::Internal(_))), "{r:?}");
}

#[test]
fn close_revokes_at_once_with_a_dead_member_in_the_list() {
    let etcd = Etcd::start();
    let dead = portpicker::pick_unused_port().unwrap();
    let endpoints = format!("http://127.0.0.1:{dead},{}", etcd.endpoint());
    for i in 0..5 {
        let reg = Registry::new(&opts(&endpoints, 30)).unwrap();
        let key = format!("/dm/k{i}");
        reg.register(&key, "v").unwrap();
        reg.close().unwrap();
        assert!(
            etcd.get_prefix(&key).is_empty(),
            "round {i}: key outlived close"
        );
    }
}

/// Drain marks every key of the registry in its own format, keeps the mark for keys
/// registered later and across a lost lease, and undrain puts the values back as registered.
#[test]
fn drain_marks_every_key_and_undrain_restores_them() {
    let etcd = Etcd::start();
    let reg = Registry::new(&opts(&etcd.endpoint(), 2)).unwrap();
    let other = Registry::new(&opts(&etcd.endpoint(), 2)).unwrap();
    reg.register("/dr/plain", "10.0.0.5:9000 3").unwrap();
    reg.register(
        "/dr/go",
        r#"{"Addr":"10.0.0.6:9000","Metadata":{"zone":"a"}}"#,
    )
    .unwrap();
    other.register("/dr/other", "10.0.0.7:9000").unwrap();
    assert!(!reg.is_draining());
    reg.drain().unwrap();
    assert!(reg.is_draining());
    reg.register("/dr/late", "10.0.0.8:9000").unwrap();
    let marked = |kv: &std::collections::BTreeMap<String, String>| {
        assert_eq!(kv["/dr/plain"], "10.0.0.5:9000 3 draining=true");
        assert_eq!(
            kv["/dr/go"],
            r#"{"Addr":"10.0.0.6:9000","Metadata":{"draining":true,"zone":"a"}}"#
        );
        assert_eq!(kv["/dr/late"], "10.0.0.8:9000 draining=true");
        assert_eq!(kv["/dr/other"], "10.0.0.7:9000", "another registry's key");
    };
    marked(&etcd.get_prefix("/dr/"));
    // Lost and recovered while draining: the keys come back marked.
    let old = reg.lease_id();
    etcd.ctl(&["lease", "revoke", &format!("{old:x}")]);
    wait_until(Duration::from_secs(5), "keys restored", || {
        reg.lease_id() != old && etcd.get_prefix("/dr/").len() == 4
    });
    marked(&etcd.get_prefix("/dr/"));
    reg.undrain().unwrap();
    let kv = etcd.get_prefix("/dr/");
    assert_eq!(kv["/dr/plain"], "10.0.0.5:9000 3");
    assert_eq!(
        kv["/dr/go"],
        r#"{"Addr":"10.0.0.6:9000","Metadata":{"zone":"a"}}"#
    );
    assert_eq!(kv["/dr/late"], "10.0.0.8:9000");
    // A value the mark cannot go into is refused before anything changes.
    reg.register("/dr/odd", r#"{"x":1}"#).unwrap();
    assert!(matches!(reg.drain(), Err(Error::InvalidArgument(_))));
    assert!(!reg.is_draining());
    assert_eq!(etcd.get_prefix("/dr/")["/dr/plain"], "10.0.0.5:9000 3");
    // Unregistered keys are not put back by a later drain.
    reg.unregister("/dr/odd").unwrap();
    reg.unregister("/dr/late").unwrap();
    reg.drain().unwrap();
    assert!(!etcd.get_prefix("/dr/").contains_key("/dr/late"));
}

/// Registries with their own lease share the connection and its one keep-alive stream with
/// every other object of the same settings (issue 20): ten of them open no second stream.
#[test]
fn own_lease_registries_share_the_connection_and_keep_alive_stream() {
    let etcd = Etcd::start();
    let mut o = opts(&etcd.endpoint(), 5);
    let shared = Registry::new(&o).unwrap();
    shared.register("/own/shared", "127.0.0.1:1").unwrap();
    let streams =
        || etcd.metric_sum("grpc_server_started_total{grpc_method=\"LeaseKeepAlive\"") as u64;
    wait_until(Duration::from_secs(5), "the keep-alive stream", || {
        streams() == 1
    });
    o.set_own_lease(true);
    let own: Vec<Registry> = (0..10)
        .map(|i| {
            let r = Registry::new(&o).unwrap();
            r.register(&format!("/own/{i}"), "127.0.0.1:2").unwrap();
            r
        })
        .collect();
    let leases: std::collections::BTreeSet<i64> = own.iter().map(Registry::lease_id).collect();
    assert_eq!(leases.len(), 10, "ten leases of their own");
    assert!(!leases.contains(&shared.lease_id()));
    // Renewed (each lease at TTL/3) on the same stream: still one stream started.
    wait_until(
        Duration::from_secs(5),
        "a renewal of each own lease",
        || own.iter().all(|r| r.stats().lease_ttl_left.is_some()),
    );
    assert_eq!(streams(), 1, "one keep-alive stream for the connection");
    assert_eq!(
        etcd.metric_sum("grpc_server_started_total{grpc_method=\"Watch\"") as u64,
        0
    );
}
