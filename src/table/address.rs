//! What an instance's value says: its address, its weight and any metadata.
//!
//! Accepted values (surrounding whitespace is ignored):
//!
//! - Plain text, as the chat systems write it: `host:port`, optionally followed by whitespace
//!   and a weight, either bare (`10.0.0.5:9000 3`, brpc's "server tag" convention) or named
//!   (`10.0.0.5:9000 weight=3`), then any number of `key=value` metadata tokens
//!   (`10.0.0.5:9000 weight=3 zone=a version=v2`). The address is the first
//!   whitespace-separated token, taken as is (so `unix:/run/x.sock` or `http://h:80` work
//!   too). A bare weight is only accepted right after the address; every later token must be
//!   `key=value` with a non-empty key (the value may be empty), each key once. The
//!   `key=value` tokens, `weight=` included, are the instance's metadata pairs.
//! - JSON, as Go's etcd `naming/endpoints` manager writes it: an object with a string `Addr`
//!   (`{"Addr":"10.0.0.5:9000","Metadata":{...}}`), also the older grpc-naming form with
//!   `"Op":0` (`{"Op":0,"Addr":...,"Metadata":...}`). `Op` other than 0 (a delete record)
//!   means "not an instance". The weight is `Metadata.weight` (or `Metadata.Weight`), a
//!   number or a numeric string, when `Metadata` is an object. `Metadata` is kept as its JSON
//!   text.
//!
//! - JSON of the Go frameworks' own registries, told apart by their members (an object
//!   without `Addr`): go-micro's service with `nodes` ([`gomicro`]), Kratos' instance with
//!   `endpoints` URLs ([`kratos`]). Their metadata is the instance's own members plus some
//!   of the service's (its version...); `metadata` is then the JSON text of that merged
//!   object. The table of every format is in docs/formats.md.
//!
//! Weights are integers from 1 to [`MAX_WEIGHT`]; an absent weight is 1. A weight out of
//! range or not an integer makes the value invalid (the key is then not an instance, and a
//! warning is logged), rather than silently turning a mistake into a weight of 1.

pub mod gomicro;
pub mod kratos;
pub mod record;

use crate::options::KratosEndpoint;

/// The largest weight accepted.
pub const MAX_WEIGHT: u32 = 10_000;

/// A parsed instance value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: String,
    pub weight: u32,
    /// The JSON text of `Metadata` (JSON values only; `null` is dropped).
    pub metadata: Option<String>,
    /// The metadata as key/value pairs, sorted by key (a key appears once): a JSON
    /// `Metadata` object's members, with strings as they are and other values as their JSON
    /// text. Selectors, zones and drain read these.
    pub meta: Vec<(String, String)>,
}

/// Parses an instance value with the default settings and no key; the error says why it is
/// not one.
pub fn parse(value: &[u8]) -> Result<Endpoint, String> {
    parse_with("", value, &KratosEndpoint::default())
}

/// Parses the value of `key` (go-micro's node is chosen by the key), taking a Kratos
/// instance's address from the URL `kratos` names; the error says why it is not one.
pub fn parse_with(key: &str, value: &[u8], kratos: &KratosEndpoint) -> Result<Endpoint, String> {
    let text = std::str::from_utf8(value).map_err(|_| "value is not UTF-8".to_string())?;
    let text = text.trim();
    if text.is_empty() {
        return Err("value is empty".into());
    }
    if text.starts_with('{') {
        parse_json(key, text, kratos)
    } else {
        parse_plain(text)
    }
}

fn parse_plain(text: &str) -> Result<Endpoint, String> {
    let mut parts = text.split_whitespace();
    let addr = parts.next().unwrap_or_default().to_string();
    let mut weight = None;
    let mut meta: Vec<(String, String)> = Vec::new();
    for (n, token) in parts.enumerate() {
        match token.split_once('=') {
            Some(("", _)) => {
                return Err(format!("{token:?} has an empty key (expected key=value)"));
            }
            Some((key, value)) => {
                if meta.iter().any(|(k, _)| k == key) {
                    return Err(format!("key {key:?} is given twice"));
                }
                if key == "weight" {
                    if weight.is_some() {
                        return Err("the weight is given twice".into());
                    }
                    weight = Some(weight_from_str(value)?);
                }
                meta.push((key.to_string(), value.to_string()));
            }
            // A bare weight, brpc's "tag": only right after the address.
            None if n == 0 => weight = Some(weight_from_str(token)?),
            None => {
                return Err(format!(
                    "unexpected {token:?} after the address (expected key=value)"
                ))
            }
        }
    }
    meta.sort();
    Ok(Endpoint {
        addr,
        weight: weight.unwrap_or(1),
        metadata: None,
        meta,
    })
}

fn parse_json(key: &str, text: &str, kratos: &KratosEndpoint) -> Result<Endpoint, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = v.as_object().ok_or("JSON value is not an object")?;
    if !obj.contains_key("Addr") {
        // go-micro's service also has `endpoints` (objects): `nodes` first.
        if obj.contains_key("nodes") {
            return from_record(gomicro::parse(key, obj)?);
        }
        if obj.contains_key("endpoints") {
            return from_record(kratos::parse(obj, kratos)?);
        }
    }
    if let Some(op) = obj.get("Op") {
        if op.as_i64() != Some(0) {
            return Err(format!("Op is {op}, not 0 (add)"));
        }
    }
    let addr = obj
        .get("Addr")
        .and_then(|a| a.as_str())
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or(
            "JSON object has no non-empty string \"Addr\" (Go naming), \"nodes\" (go-micro) \
             or \"endpoints\" (Kratos)",
        )?;
    let meta = obj.get("Metadata").filter(|m| !m.is_null());
    Ok(Endpoint {
        addr: addr.to_string(),
        weight: weight_in(meta)?,
        metadata: meta.map(|m| m.to_string()),
        meta: meta.map(pairs_of).unwrap_or_default(),
    })
}

/// The weight in a metadata object (`weight` or `Weight`, a number or a numeric string).
fn weight_in(meta: Option<&serde_json::Value>) -> Result<u32, String> {
    match meta
        .and_then(|m| m.as_object())
        .and_then(|m| m.get("weight").or_else(|| m.get("Weight")))
    {
        None => Ok(1),
        Some(serde_json::Value::String(s)) => weight_from_str(s),
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(w) => check_weight(w),
            None => Err(format!("weight {n} is not a positive integer")),
        },
        Some(other) => Err(format!("weight {other} is not a number")),
    }
}

/// A Kratos or go-micro instance: the merged metadata is both `metadata` and `meta`.
fn from_record(r: record::Record) -> Result<Endpoint, String> {
    let (addr, merged) = r.merged();
    let merged = (!merged.is_empty()).then_some(serde_json::Value::Object(merged));
    Ok(Endpoint {
        addr,
        weight: weight_in(merged.as_ref())?,
        meta: merged.as_ref().map(pairs_of).unwrap_or_default(),
        metadata: merged.map(|m| m.to_string()),
    })
}

/// A JSON metadata object's members as sorted (key, text) pairs; other JSON values have none.
pub fn pairs_of(meta: &serde_json::Value) -> Vec<(String, String)> {
    let Some(obj) = meta.as_object() else {
        return Vec::new();
    };
    let mut pairs: Vec<(String, String)> = obj
        .iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect();
    pairs.sort();
    pairs
}

fn weight_from_str(s: &str) -> Result<u32, String> {
    let w: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("weight {s:?} is not a positive integer"))?;
    check_weight(w)
}

fn check_weight(w: u64) -> Result<u32, String> {
    if (1..=MAX_WEIGHT as u64).contains(&w) {
        Ok(w as u32)
    } else {
        Err(format!("weight {w} is outside 1..={MAX_WEIGHT}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str) -> Endpoint {
        parse(v.as_bytes()).unwrap_or_else(|e| panic!("{v:?}: {e}"))
    }

    #[test]
    fn plain_address_and_weights() {
        assert_eq!(ok("10.0.0.5:9000").addr, "10.0.0.5:9000");
        assert_eq!(ok(" 10.0.0.5:9000\n").weight, 1);
        assert_eq!(ok("10.0.0.5:9000 3").weight, 3);
        assert_eq!(ok("10.0.0.5:9000 weight=7").weight, 7);
        assert_eq!(ok("[::1]:80").addr, "[::1]:80");
        assert!(parse(b"").is_err());
        assert!(parse(b"  ").is_err());
        assert!(parse(b"h:1 0").is_err());
        assert!(parse(b"h:1 x").is_err());
        assert!(parse(b"h:1 2 3").is_err());
        assert!(parse(b"h:1 10001").is_err());
        assert!(parse(b"\xff").is_err());
    }

    #[test]
    fn plain_metadata_tokens() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let e = ok("10.0.0.5:9000 weight=3 zone=a version=v2");
        assert_eq!((e.addr.as_str(), e.weight), ("10.0.0.5:9000", 3));
        assert_eq!(
            e.meta,
            pairs(&[("version", "v2"), ("weight", "3"), ("zone", "a")])
        );
        assert_eq!(e.metadata, None);
        let e = ok("h:1 2 zone=b canary= x=a=b");
        assert_eq!(e.weight, 2);
        assert_eq!(
            e.meta,
            pairs(&[("canary", ""), ("x", "a=b"), ("zone", "b")])
        );
        assert_eq!(ok("h:1 zone=a").weight, 1);
        assert_eq!(ok("h:1").meta, pairs(&[]));
        let err = |v: &str| parse(v.as_bytes()).unwrap_err();
        assert!(
            err("h:1 zone=a 3").contains("\"3\""),
            "{}",
            err("h:1 zone=a 3")
        );
        assert!(err("h:1 =a").contains("empty key"));
        assert!(err("h:1 zone=a zone=b").contains("twice"));
        assert!(err("h:1 3 weight=4").contains("twice"));
        assert!(err("h:1 weight=0 zone=a").contains("weight"));
        assert!(err("h:1 zone=a junk").contains("junk"));
    }

    #[test]
    fn go_naming_json() {
        let e = ok(r#"{"Op":0,"Addr":"10.0.0.5:9000","Metadata":null}"#);
        assert_eq!(
            (e.addr.as_str(), e.weight, e.metadata),
            ("10.0.0.5:9000", 1, None)
        );
        let e = ok(r#"{"Addr":"h:1","Metadata":{"weight":4,"zone":"a"}}"#);
        assert_eq!(e.weight, 4);
        assert_eq!(e.metadata.as_deref(), Some(r#"{"weight":4,"zone":"a"}"#));
        let pairs = [("weight", "4"), ("zone", "a")].map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(e.meta, pairs);
        let e = ok(r#"{"Addr":"h:1","Metadata":{"canary":false,"v":"2","n":null}}"#);
        assert_eq!(
            e.meta,
            [("canary", "false"), ("n", "null"), ("v", "2")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(ok(r#"{"Addr":"h:1","Metadata":{"Weight":"5"}}"#).weight, 5);
        assert_eq!(ok(r#"{"Addr":"h:1","Metadata":"x"}"#).weight, 1);
        assert!(parse(br#"{"Op":1,"Addr":"h:1"}"#).is_err());
        assert!(parse(br#"{"Addr":""}"#).is_err());
        assert!(parse(br#"{"addr":"h:1"}"#).is_err());
        assert!(parse(br#"{"Addr":"h:1""#).is_err());
        assert!(parse(br#"{"Addr":"h:1","Metadata":{"weight":-1}}"#).is_err());
        assert!(parse(br#"{"Addr":"h:1","Metadata":{"weight":1.5}}"#).is_err());
    }

    #[test]
    fn kratos_and_go_micro_told_apart_by_their_members() {
        let kratos = r#"{"id":"i1","name":"helloworld","version":"v2","metadata":{"weight":"3"},
            "endpoints":["http://10.0.0.5:8000","grpc://10.0.0.5:9000?isSecure=false"]}"#;
        let e = ok(kratos);
        assert_eq!((e.addr.as_str(), e.weight), ("10.0.0.5:9000", 3));
        assert_eq!(
            e.metadata.as_deref(),
            Some(r#"{"id":"i1","version":"v2","weight":"3"}"#)
        );
        assert_eq!(
            e.meta,
            [("id", "i1"), ("version", "v2"), ("weight", "3")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let first = parse_with("", kratos.as_bytes(), &KratosEndpoint::First).unwrap();
        assert_eq!(first.addr, "10.0.0.5:8000");
        let micro = r#"{"name":"greeter","version":"latest","metadata":null,
            "endpoints":[{"name":"Greeter.Hello"}],
            "nodes":[{"id":"greeter-1","address":"10.0.0.7:8080","metadata":{"weight":2}}]}"#;
        let e = ok(micro);
        assert_eq!((e.addr.as_str(), e.weight), ("10.0.0.7:8080", 2));
        assert_eq!(
            e.meta,
            [("version", "latest"), ("weight", "2")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        // No metadata at all: none, as for the other formats.
        let e = ok(r#"{"endpoints":["grpc://h:1"]}"#);
        assert_eq!((e.metadata, e.meta.len()), (None, 0));
        assert!(parse(br#"{"endpoints":["grpc://h:1"],"metadata":{"weight":0}}"#).is_err());
        assert!(parse(br#"{"name":"x"}"#)
            .unwrap_err()
            .contains("\"nodes\" (go-micro)"));
    }
}
