//! The draining mark: how a registry tells watchers "no new calls to this instance" without
//! taking its key away, in each value format the table reads.
//!
//! A draining instance stays in etcd (calls in flight finish; its owner unregisters it when
//! they have) and carries the metadata `draining=true`:
//! - plain text (`host:port [weight] [k=v ...]`): the token ` draining=true` is appended;
//! - Go naming JSON (`{"Addr":..,"Metadata":..}`): `Metadata.draining = true` (a `Metadata`
//!   that is `null` or absent becomes an object; one that is not an object is refused);
//! - Kratos (`{"endpoints":[..],"metadata":{..}}`): `metadata.draining = "true"` (Kratos
//!   metadata is a map of strings);
//! - go-micro (`{"nodes":[{"metadata":{..}},..]}`): each node's `metadata.draining = "true"`.
//!
//! A table ([`crate::table`]) never picks an instance whose metadata says `draining` is
//! `true` (or `1`). Code that reads plain values as bare addresses (etcd-cpp-apiv3 callers
//! that split nothing) would read the appended token as part of the address: such fleets
//! should unregister instead of draining.

use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// The metadata key of the mark.
pub const KEY: &str = "draining";

/// `value` with the draining mark (unchanged if it already has it).
pub fn mark(value: &str) -> Result<String> {
    let text = value.trim();
    if !text.starts_with('{') {
        if text
            .split_whitespace()
            .skip(1)
            .any(|t| t == "draining=true")
        {
            return Ok(value.to_string());
        }
        return Ok(format!("{text} {KEY}=true"));
    }
    let mut v: Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("cannot mark a value as draining: {e}")))?;
    let Some(obj) = v.as_object_mut() else {
        return Err(Error::invalid(
            "cannot mark a JSON value that is not an object",
        ));
    };
    if obj.contains_key("Addr") {
        meta_of(obj, "Metadata")?.insert(KEY.into(), Value::Bool(true));
    } else if obj.get("endpoints").is_some_and(Value::is_array) {
        meta_of(obj, "metadata")?.insert(KEY.into(), "true".into());
    } else if let Some(nodes) = obj.get_mut("nodes").and_then(Value::as_array_mut) {
        for node in nodes {
            let node = node
                .as_object_mut()
                .ok_or_else(|| Error::invalid("a go-micro node is not an object"))?;
            meta_of(node, "metadata")?.insert(KEY.into(), "true".into());
        }
    } else {
        return Err(Error::invalid(
            "cannot mark as draining a JSON value that is neither Go naming (Addr), Kratos \
             (endpoints) nor go-micro (nodes)",
        ));
    }
    Ok(v.to_string())
}

/// The metadata object `name` of `obj`, made an object when it is absent or null.
fn meta_of<'a>(obj: &'a mut Map<String, Value>, name: &str) -> Result<&'a mut Map<String, Value>> {
    let slot = obj.entry(name).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| Error::invalid(format!("cannot mark as draining: {name} is not an object")))
}

/// True when an instance's metadata value for [`KEY`] means draining.
pub fn is_draining(value: &str) -> bool {
    matches!(value.trim(), "true" | "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_every_format_once() {
        assert_eq!(
            mark("10.0.0.5:9000").unwrap(),
            "10.0.0.5:9000 draining=true"
        );
        assert_eq!(
            mark(" h:1 3 zone=a\n").unwrap(),
            "h:1 3 zone=a draining=true"
        );
        assert_eq!(mark("h:1 draining=true").unwrap(), "h:1 draining=true");
        let go = mark(r#"{"Addr":"h:1","Metadata":null}"#).unwrap();
        assert_eq!(go, r#"{"Addr":"h:1","Metadata":{"draining":true}}"#);
        let go = mark(r#"{"Addr":"h:1","Metadata":{"zone":"a"}}"#).unwrap();
        assert_eq!(
            go,
            r#"{"Addr":"h:1","Metadata":{"draining":true,"zone":"a"}}"#
        );
        assert_eq!(mark(&go).unwrap(), go);
        let kratos = mark(r#"{"id":"1","endpoints":["grpc://h:1"]}"#).unwrap();
        assert_eq!(
            kratos,
            r#"{"endpoints":["grpc://h:1"],"id":"1","metadata":{"draining":"true"}}"#
        );
        let micro = mark(r#"{"name":"s","nodes":[{"address":"h:1"}]}"#).unwrap();
        assert_eq!(
            micro,
            r#"{"name":"s","nodes":[{"address":"h:1","metadata":{"draining":"true"}}]}"#
        );
        assert!(mark(r#"{"Addr":"h:1","Metadata":"x"}"#).is_err());
        assert!(mark(r#"{"x":1}"#).is_err());
        assert!(mark("{oops").is_err());
        assert!(is_draining("true") && is_draining("1") && !is_draining("false"));
    }
}
