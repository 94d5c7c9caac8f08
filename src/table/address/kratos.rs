//! Kratos' etcd registry values: `{"id","name","version","metadata":{..},"endpoints":[URL..]}`
//! under `/microservices/<name>/<id>` (go-kratos/kratos, `contrib/registry/etcd`, which puts
//! the JSON of its `ServiceInstance`).
//!
//! - Address: `host:port` of one `endpoints` URL (`grpc://10.0.0.5:9000?isSecure=false` gives
//!   `10.0.0.5:9000`): the first whose scheme is the chosen one (`grpc` by default), or the
//!   first of all ([`KratosEndpoint`]). An instance without such a URL is not an instance.
//! - Metadata: the `metadata` members, plus `version` and `id` from the top level where
//!   `metadata` lacks those keys; the weight is the `weight` member, if any.

use super::record::{non_empty_str, object, Record};
use crate::options::KratosEndpoint;
use serde_json::{Map, Value};

/// Reads a Kratos instance; the error says why it is not one.
pub fn parse(obj: &Map<String, Value>, which: &KratosEndpoint) -> Result<Record, String> {
    let urls = obj
        .get("endpoints")
        .and_then(Value::as_array)
        .ok_or("Kratos \"endpoints\" is not an array")?
        .iter()
        .map(|u| u.as_str().ok_or("a Kratos endpoint is not a string"))
        .collect::<Result<Vec<&str>, _>>()?;
    let url = match which {
        KratosEndpoint::First => urls.first(),
        KratosEndpoint::Scheme(s) => urls
            .iter()
            .find(|u| scheme_of(u).is_some_and(|us| us.eq_ignore_ascii_case(s))),
    };
    let url = url.ok_or_else(|| match which {
        KratosEndpoint::First => "Kratos instance has no endpoints".to_string(),
        KratosEndpoint::Scheme(s) => format!("Kratos instance has no {s}:// endpoint in {urls:?}"),
    })?;
    let addr = host_port(url).ok_or_else(|| format!("Kratos endpoint {url:?} has no host"))?;
    let mut inherited = Vec::new();
    for name in ["version", "id"] {
        if let Some(v) = non_empty_str(obj, name) {
            inherited.push((name.to_string(), Value::String(v.to_string())));
        }
    }
    Ok(Record {
        addr: addr.to_string(),
        metadata: object(obj, "metadata"),
        inherited,
    })
}

fn scheme_of(url: &str) -> Option<&str> {
    url.split_once("://").map(|(s, _)| s)
}

/// The authority of `scheme://authority/path?query`, without any `user@`.
fn host_port(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: &str) -> Map<String, Value> {
        serde_json::from_str(v).unwrap()
    }

    #[test]
    fn chooses_the_endpoint_by_scheme_or_first() {
        let v = obj(
            r#"{"id":"i1","name":"helloworld","version":"v2","metadata":{"zone":"a"},
            "endpoints":["http://10.0.0.5:8000","grpc://10.0.0.5:9000?isSecure=false"]}"#,
        );
        let grpc = KratosEndpoint::default();
        let r = parse(&v, &grpc).unwrap();
        assert_eq!(r.addr, "10.0.0.5:9000");
        let (_, m) = r.merged();
        assert_eq!(m["version"], "v2");
        assert_eq!(m["id"], "i1");
        assert_eq!(m["zone"], "a");
        assert_eq!(
            parse(&v, &KratosEndpoint::First).unwrap().addr,
            "10.0.0.5:8000"
        );
        let http = KratosEndpoint::parse("HTTP").unwrap();
        assert_eq!(parse(&v, &http).unwrap().addr, "10.0.0.5:8000");
        let none = KratosEndpoint::parse("quic").unwrap();
        assert!(parse(&v, &none).unwrap_err().contains("no quic://"));
        assert!(parse(&obj(r#"{"endpoints":[]}"#), &KratosEndpoint::First).is_err());
        assert!(parse(&obj(r#"{"endpoints":[1]}"#), &grpc).is_err());
        assert!(parse(&obj(r#"{"endpoints":"grpc://h:1"}"#), &grpc).is_err());
        assert!(parse(&obj(r#"{"endpoints":["grpc://"]}"#), &grpc).is_err());
    }

    #[test]
    fn host_port_of_urls() {
        assert_eq!(host_port("grpc://h:1?isSecure=false"), Some("h:1"));
        assert_eq!(host_port("http://u:p@[::1]:80/x#y"), Some("[::1]:80"));
        assert_eq!(host_port("grpc://"), None);
    }
}
