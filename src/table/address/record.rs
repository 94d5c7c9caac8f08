//! What a structured registry value (Kratos, go-micro) says about one instance, before the
//! weight and the metadata pairs are taken from it the same way for every format.

use serde_json::{Map, Value};

/// One instance read from a structured value.
#[derive(Debug, Default)]
pub struct Record {
    /// `host:port`.
    pub addr: String,
    /// The instance's own metadata members.
    pub metadata: Map<String, Value>,
    /// Members added where `metadata` lacks the key (the first one given wins): the
    /// service's version, id, its service-wide metadata.
    pub inherited: Vec<(String, Value)>,
}

impl Record {
    /// `metadata` with `inherited` added where the key is absent.
    pub fn merged(self) -> (String, Map<String, Value>) {
        let mut m = self.metadata;
        for (k, v) in self.inherited {
            m.entry(k).or_insert(v);
        }
        (self.addr, m)
    }
}

/// `obj[name]` when it is a non-empty string.
pub fn non_empty_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    obj.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `obj[name]`'s members when it is an object; `null`, absent or another type count as none
/// (the Go writers marshal a nil map as `null`).
pub fn object(obj: &Map<String, Value>, name: &str) -> Map<String, Value> {
    obj.get(name)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}
