//! `etcd-sd services [ENDPOINTS] [PREFIX]`: the services under a prefix, their instances,
//! addresses, weights and lease TTL left.

use crate::args::Args;
use crate::{etcd, Outcome};
use etcd_sd::table::{address, service_of};
use std::collections::BTreeMap;
use std::io::Write;

struct Row {
    valid: bool,
    key: String,
    address: String,
    weight: String,
    ttl: String,
}

pub(crate) fn services(args: &mut Args) -> Outcome {
    let (endpoints, prefix) = args.endpoints_and_prefix("/service")?;
    let client = args.client(&endpoints)?;
    let listing = client
        .range(prefix.as_bytes(), 0)
        .map_err(|e| etcd(format!("listing {prefix:?} at {endpoints}: {e}")))?;
    let revision = listing.revision;
    let mut ttls: BTreeMap<i64, String> = BTreeMap::new();
    let mut rows: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for kv in listing.kvs {
        let key = String::from_utf8_lossy(&kv.key).into_owned();
        let ttl = match kv.lease {
            0 => "no lease".to_string(),
            lease => ttls
                .entry(lease)
                .or_insert_with(|| match client.lease_ttl(lease) {
                    Ok((left, _)) if left >= 0 => format!("{left} s"),
                    Ok(_) => "expired".into(),
                    Err(e) => format!("? ({e})"),
                })
                .clone(),
        };
        let (valid, address, weight) = match address::parse(&kv.value) {
            Ok(e) => (true, e.addr, e.weight.to_string()),
            Err(why) => (false, format!("(not an instance: {why})"), "-".into()),
        };
        rows.entry(service_of(&key).to_string())
            .or_default()
            .push(Row {
                valid,
                key,
                address,
                weight,
                ttl,
            });
    }
    let width = |f: &dyn Fn(&Row) -> usize, title: usize| {
        rows.values().flatten().map(f).max().unwrap_or(0).max(title)
    };
    let ws = rows.keys().map(String::len).max().unwrap_or(0).max(7);
    let wk = width(&|r| r.key.len(), 8);
    let wa = width(&|r| r.address.len(), 7);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:ws$}  {:wk$}  {:wa$}  {:>6}  TTL LEFT",
        "SERVICE", "INSTANCE", "ADDRESS", "WEIGHT"
    );
    let mut instances = 0;
    for (service, list) in &rows {
        for (i, r) in list.iter().enumerate() {
            let name = if i == 0 { service.as_str() } else { "" };
            let _ = writeln!(
                out,
                "{name:ws$}  {:wk$}  {:wa$}  {:>6}  {}",
                r.key, r.address, r.weight, r.ttl
            );
            instances += usize::from(r.valid);
        }
    }
    let _ = writeln!(
        out,
        "{} service(s), {instances} instance(s) under {prefix} at revision {revision}",
        rows.len()
    );
    Ok(())
}
