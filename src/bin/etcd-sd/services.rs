//! `etcd-sd services [ENDPOINTS] [PREFIX] [--json]`: the services under a prefix, their
//! instances, addresses, weights and lease TTL left; with `--json`, one JSON document for
//! scripts (metadata included).

use crate::args::Args;
use crate::{etcd, Outcome};
use etcd_sd::table::{address, service_of, Endpoint};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Write;

struct Row {
    key: String,
    lease: i64,
    /// Seconds left, or `None` without a lease (or when the lookup failed: `ttl` says why).
    ttl_left: Option<i64>,
    ttl: String,
    parsed: Result<Endpoint, String>,
}

pub(crate) fn services(args: &mut Args) -> Outcome {
    let (endpoints, prefix) = args.endpoints_and_prefix("/service")?;
    let client = args.client(&endpoints)?;
    let listing = client
        .range(prefix.as_bytes(), 0)
        .map_err(|e| etcd(format!("listing {prefix:?} at {endpoints}: {e}")))?;
    let revision = listing.revision;
    let mut ttls: BTreeMap<i64, (Option<i64>, String)> = BTreeMap::new();
    let mut rows: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for kv in listing.kvs {
        let key = String::from_utf8_lossy(&kv.key).into_owned();
        let (ttl_left, ttl) = match kv.lease {
            0 => (None, "no lease".to_string()),
            lease => ttls
                .entry(lease)
                .or_insert_with(|| match client.lease_ttl(lease) {
                    Ok((left, _)) if left >= 0 => (Some(left), format!("{left} s")),
                    Ok(_) => (Some(0), "expired".into()),
                    Err(e) => (None, format!("? ({e})")),
                })
                .clone(),
        };
        let parsed = address::parse_with(&key, &kv.value, &args.kratos);
        rows.entry(service_of(&key).to_string())
            .or_default()
            .push(Row {
                key,
                lease: kv.lease,
                ttl_left,
                ttl,
                parsed,
            });
    }
    if args.json {
        print_json(&prefix, revision, &rows);
    } else {
        print_table(&prefix, revision, &rows);
    }
    Ok(())
}

/// `{"prefix","revision","services":[{"service","instances":[{"key","address","weight",
/// "metadata":{..},"lease","ttl_left"}],"invalid":[{"key","error"}]}]}`: services sorted by
/// name, instances by key; `metadata` holds the instance's metadata pairs (strings), `lease`
/// is 0 and `ttl_left` null without a lease.
fn print_json(prefix: &str, revision: i64, rows: &BTreeMap<String, Vec<Row>>) {
    let services: Vec<Value> = rows
        .iter()
        .map(|(service, list)| {
            let mut instances = Vec::new();
            let mut invalid = Vec::new();
            for r in list {
                match &r.parsed {
                    Ok(e) => {
                        let meta: Map<String, Value> = e
                            .meta
                            .iter()
                            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                            .collect();
                        instances.push(json!({
                            "key": r.key,
                            "address": e.addr,
                            "weight": e.weight,
                            "metadata": meta,
                            "lease": r.lease,
                            "ttl_left": r.ttl_left,
                        }));
                    }
                    Err(why) => invalid.push(json!({ "key": r.key, "error": why })),
                }
            }
            json!({ "service": service, "instances": instances, "invalid": invalid })
        })
        .collect();
    let doc = json!({ "prefix": prefix, "revision": revision, "services": services });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    );
}

fn print_table(prefix: &str, revision: i64, rows: &BTreeMap<String, Vec<Row>>) {
    let cells = |r: &Row| match &r.parsed {
        Ok(e) => (e.addr.clone(), e.weight.to_string()),
        Err(why) => (format!("(not an instance: {why})"), "-".into()),
    };
    let width = |f: &dyn Fn(&Row) -> usize, title: usize| {
        rows.values().flatten().map(f).max().unwrap_or(0).max(title)
    };
    let ws = rows.keys().map(String::len).max().unwrap_or(0).max(7);
    let wk = width(&|r| r.key.len(), 8);
    let wa = width(&|r| cells(r).0.len(), 7);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:ws$}  {:wk$}  {:wa$}  {:>6}  TTL LEFT",
        "SERVICE", "INSTANCE", "ADDRESS", "WEIGHT"
    );
    let mut instances = 0;
    for (service, list) in rows {
        for (i, r) in list.iter().enumerate() {
            let name = if i == 0 { service.as_str() } else { "" };
            let (address, weight) = cells(r);
            let _ = writeln!(
                out,
                "{name:ws$}  {:wk$}  {address:wa$}  {weight:>6}  {}",
                r.key, r.ttl
            );
            instances += usize::from(r.parsed.is_ok());
        }
    }
    let _ = writeln!(
        out,
        "{} service(s), {instances} instance(s) under {prefix} at revision {revision}",
        rows.len()
    );
}
