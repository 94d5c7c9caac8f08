//! Every registry value format against a real etcd (issue 19, part 1): values put as the Go
//! frameworks put them, read by `ServiceTable`; values written by `Registry` in Go's naming
//! format, read back. The formats are listed in docs/formats.md.

mod common;

use common::{opts, wait_until, Etcd};
use etcd_sd::options::{KratosEndpoint, ValueFormat};
use etcd_sd::table::Config;
use etcd_sd::{Registry, ServiceTable};
use std::time::Duration;

/// `key address weight metadata` of each instance of `service`.
fn rows(t: &ServiceTable, service: &str) -> Vec<String> {
    t.instances(service)
        .iter()
        .map(|i| {
            format!(
                "{} {} {} {}",
                i.key(),
                i.address(),
                i.weight(),
                i.metadata().unwrap_or("-")
            )
        })
        .collect()
}

/// A Kratos `ServiceInstance` as its etcd registry puts it.
fn kratos(id: &str, port: u16, weight: &str) -> String {
    format!(
        r#"{{"id":"{id}","name":"helloworld","version":"v2","metadata":{{"weight":"{weight}","zone":"a"}},"endpoints":["http://127.0.0.1:{}","grpc://127.0.0.1:{port}?isSecure=false"]}}"#,
        port - 1000
    )
}

#[test]
fn kratos_instances_by_grpc_endpoint_or_first() {
    let etcd = Etcd::start();
    etcd.put("/microservices/helloworld/i1", &kratos("i1", 9001, "2"));
    etcd.put("/microservices/helloworld/i2", &kratos("i2", 9002, "1"));
    let o = opts(&etcd.endpoint(), 3);
    let t = ServiceTable::new(&o, "/microservices/", Config::default(), &[]).unwrap();
    assert_eq!(t.services(), ["/microservices/helloworld"]);
    assert_eq!(
        rows(&t, "/microservices/helloworld"),
        [
            r#"/microservices/helloworld/i1 127.0.0.1:9001 2 {"id":"i1","version":"v2","weight":"2","zone":"a"}"#,
            r#"/microservices/helloworld/i2 127.0.0.1:9002 1 {"id":"i2","version":"v2","weight":"1","zone":"a"}"#,
        ]
    );
    // One with no grpc:// endpoint (not an instance), then a new one through the watch:
    // events apply in revision order, so once i3 is there i4 was seen and refused.
    etcd.put(
        "/microservices/helloworld/i4",
        r#"{"id":"i4","name":"helloworld","endpoints":["http://127.0.0.1:8004"]}"#,
    );
    etcd.put("/microservices/helloworld/i3", &kratos("i3", 9003, "1"));
    wait_until(Duration::from_secs(5), "i3", || {
        t.instances("/microservices/helloworld").len() == 3
    });

    // The first endpoint, whatever its scheme: the http:// ones, i4 included.
    let mut first = o.clone();
    first.set_kratos_endpoint(KratosEndpoint::First);
    let t = ServiceTable::new(&first, "/microservices/", Config::default(), &[]).unwrap();
    let addrs: Vec<String> = t
        .instances("/microservices/helloworld")
        .iter()
        .map(|i| i.address().to_string())
        .collect();
    assert_eq!(
        addrs,
        [
            "127.0.0.1:8001",
            "127.0.0.1:8002",
            "127.0.0.1:8003",
            "127.0.0.1:8004"
        ]
    );
    assert!(KratosEndpoint::parse("grpc://").is_err());
}

#[test]
fn go_micro_one_node_per_key() {
    let etcd = Etcd::start();
    let node = |id: &str, port: u16| {
        format!(
            r#"{{"name":"greeter","version":"1.0.0","metadata":null,"endpoints":[{{"name":"Greeter.Hello","request":null,"response":null,"metadata":{{"stream":"false"}}}}],"nodes":[{{"id":"{id}","address":"127.0.0.1:{port}","metadata":{{"broker":"http","protocol":"grpc","registry":"etcd","server":"grpc","transport":"grpc"}}}}]}}"#
        )
    };
    etcd.put(
        "/micro/registry/greeter/greeter-1",
        &node("greeter-1", 8081),
    );
    etcd.put(
        "/micro/registry/greeter/greeter-2",
        &node("greeter-2", 8082),
    );
    let t = ServiceTable::new(
        &opts(&etcd.endpoint(), 3),
        "/micro/registry/",
        Config::default(),
        &[],
    )
    .unwrap();
    assert_eq!(t.services(), ["/micro/registry/greeter"]);
    let meta = r#"{"broker":"http","protocol":"grpc","registry":"etcd","server":"grpc","transport":"grpc","version":"1.0.0"}"#;
    assert_eq!(
        rows(&t, "/micro/registry/greeter"),
        [
            format!("/micro/registry/greeter/greeter-1 127.0.0.1:8081 1 {meta}"),
            format!("/micro/registry/greeter/greeter-2 127.0.0.1:8082 1 {meta}"),
        ]
    );
    etcd.del("/micro/registry/greeter/greeter-1");
    wait_until(Duration::from_secs(5), "greeter-1 gone", || {
        t.instances("/micro/registry/greeter").len() == 1
    });
}

#[test]
fn go_zero_keys_without_a_slash_make_one_service() {
    let etcd = Etcd::start();
    // go-zero: `<key>/<lease id>` -> plain host:port, no leading slash.
    etcd.put("user.rpc/7587862355498237445", "127.0.0.1:8080");
    etcd.put("user.rpc/7587862355498237447", "127.0.0.1:8081");
    etcd.put("user.rpc/7587862355498237449", "127.0.0.1:8082");
    let t = ServiceTable::new(
        &opts(&etcd.endpoint(), 3),
        "user.rpc/",
        Config::default(),
        &[],
    )
    .unwrap();
    assert_eq!(t.services(), ["user.rpc"]);
    assert_eq!(t.instances("user.rpc").len(), 3);
    assert_eq!(t.instances("user.rpc/").len(), 3);
    let picked: std::collections::BTreeSet<String> =
        (0..3).map(|_| t.pick("user.rpc", None).unwrap()).collect();
    assert_eq!(picked.len(), 3);
}

#[test]
fn registry_writes_go_naming_json_and_the_table_reads_it_back() {
    let etcd = Etcd::start();
    let mut o = opts(&etcd.endpoint(), 3);
    o.set_value_format(ValueFormat::GoNaming);
    let reg = Registry::new(&o).unwrap();
    reg.register("greeter/1", "127.0.0.1:9001").unwrap();
    reg.register("greeter/2", "127.0.0.1:9002 weight=3")
        .unwrap();
    reg.register(
        "greeter/3",
        r#"{"Addr":"127.0.0.1:9003","Metadata":{"zone":"b"}}"#,
    )
    .unwrap();
    let err = reg
        .register("greeter/4", r#"{"endpoints":["grpc://127.0.0.1:1"]}"#)
        .unwrap_err();
    assert!(matches!(err, etcd_sd::Error::InvalidArgument(_)), "{err}");
    let stored = etcd.get_prefix("greeter/");
    assert_eq!(
        stored.into_iter().collect::<Vec<_>>(),
        [
            (
                "greeter/1",
                r#"{"Op":0,"Addr":"127.0.0.1:9001","Metadata":null}"#
            ),
            (
                "greeter/2",
                r#"{"Op":0,"Addr":"127.0.0.1:9002","Metadata":{"weight":3}}"#
            ),
            (
                "greeter/3",
                r#"{"Addr":"127.0.0.1:9003","Metadata":{"zone":"b"}}"#
            ),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    let t = ServiceTable::new(&o, "greeter/", Config::default(), &[]).unwrap();
    assert_eq!(
        rows(&t, "greeter"),
        [
            "greeter/1 127.0.0.1:9001 1 -",
            r#"greeter/2 127.0.0.1:9002 3 {"weight":3}"#,
            r#"greeter/3 127.0.0.1:9003 1 {"zone":"b"}"#,
        ]
    );
}
