//! go-micro's etcd registry values: the JSON of its `registry.Service`
//! (`{"name","version","metadata":{..},"endpoints":[..],"nodes":[{"id","address","metadata"}]}`)
//! under `/micro/registry/<service>/<node id>`. go-micro puts one key per node, each holding
//! the service with that one node in `nodes`.
//!
//! - The node: the one whose `id` is the key's last segment, else the first.
//! - Address: the node's `address` (`10.0.0.5:8080`); go-micro v1 kept the port apart
//!   (`"address":"10.0.0.5","port":8080`), which is joined.
//! - Metadata: the node's `metadata` members, then (where the key is absent) the service's
//!   `version` and its `metadata` members; the weight is the `weight` member, if any.

use super::record::{non_empty_str, object, Record};
use serde_json::{Map, Value};
use std::net::Ipv6Addr;

/// Reads a go-micro node from the service value at `key`.
pub fn parse(key: &str, obj: &Map<String, Value>) -> Result<Record, String> {
    let nodes = obj
        .get("nodes")
        .and_then(Value::as_array)
        .ok_or("go-micro \"nodes\" is not an array")?;
    let id = key.rsplit('/').next().unwrap_or_default();
    let node = nodes
        .iter()
        .find(|n| n.get("id").and_then(Value::as_str) == Some(id))
        .or_else(|| nodes.first())
        .ok_or("go-micro service has no nodes")?
        .as_object()
        .ok_or("a go-micro node is not an object")?;
    let address =
        non_empty_str(node, "address").ok_or("go-micro node has no non-empty \"address\"")?;
    let addr = match node.get("port").and_then(Value::as_u64).filter(|p| *p != 0) {
        Some(port) if address.parse::<Ipv6Addr>().is_ok() => format!("[{address}]:{port}"),
        Some(port) if !address.contains(':') => format!("{address}:{port}"),
        _ => address.to_string(),
    };
    let mut inherited = Vec::new();
    if let Some(v) = non_empty_str(obj, "version") {
        inherited.push(("version".to_string(), Value::String(v.to_string())));
    }
    inherited.extend(object(obj, "metadata"));
    Ok(Record {
        addr,
        metadata: object(node, "metadata"),
        inherited,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: &str) -> Map<String, Value> {
        serde_json::from_str(v).unwrap()
    }

    #[test]
    fn takes_the_node_named_by_the_key() {
        let v = obj(
            r#"{"name":"greeter","version":"1.0","metadata":{"team":"x","zone":"s"},
            "endpoints":[{"name":"Greeter.Hello","metadata":{}}],
            "nodes":[{"id":"greeter-1","address":"10.0.0.5:8080","metadata":{"zone":"a"}},
                     {"id":"greeter-2","address":"10.0.0.6:8080","metadata":null}]}"#,
        );
        let r = parse("/micro/registry/greeter/greeter-2", &v).unwrap();
        assert_eq!(r.addr, "10.0.0.6:8080");
        let (_, m) = r.merged();
        assert_eq!([&m["version"], &m["team"], &m["zone"]], ["1.0", "x", "s"]);
        let (addr, m) = parse("/micro/registry/greeter/other", &v).unwrap().merged();
        assert_eq!(
            (addr.as_str(), m["zone"].as_str()),
            ("10.0.0.5:8080", Some("a"))
        );
    }

    #[test]
    fn old_nodes_with_a_port_apart_and_bad_nodes() {
        let r = parse(
            "k",
            &obj(r#"{"nodes":[{"id":"n","address":"10.0.0.5","port":8080}]}"#),
        );
        assert_eq!(r.unwrap().addr, "10.0.0.5:8080");
        let r = parse("k", &obj(r#"{"nodes":[{"address":"::1","port":80}]}"#));
        assert_eq!(r.unwrap().addr, "[::1]:80");
        let r = parse("k", &obj(r#"{"nodes":[{"address":"h:1","port":80}]}"#));
        assert_eq!(r.unwrap().addr, "h:1");
        assert!(parse("k", &obj(r#"{"nodes":[]}"#)).is_err());
        assert!(parse("k", &obj(r#"{"nodes":[{"id":"k"}]}"#)).is_err());
        assert!(parse("k", &obj(r#"{"nodes":["h:1"]}"#)).is_err());
    }
}
