//! The process's counters in the Prometheus text exposition format (version 0.0.4), for an
//! operator's scrape: serve [`text`] at `/metrics` (brpc's builtin services, an HTTP handler).
//!
//! Names and labels are stable (a rename is a breaking change):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `etcd_sd_connections` | gauge | |
//! | `etcd_sd_members_connected` | gauge | |
//! | `etcd_sd_leases_kept` | gauge | |
//! | `etcd_sd_requests_retried_total` | counter | |
//! | `etcd_sd_log_records_dropped_total` | counter | |
//! | `etcd_sd_outages_total`, `etcd_sd_outages_ongoing` | counter, gauge | |
//! | `etcd_sd_registries`, `etcd_sd_registries_draining` | gauge | |
//! | `etcd_sd_registered_keys` | gauge | |
//! | `etcd_sd_lease_losses_total`, `etcd_sd_lease_recoveries_total` | counter | |
//! | `etcd_sd_watch_keys`, `etcd_sd_watch_revision` | gauge | `watch`, `prefix` |
//! | `etcd_sd_watch_events_total`, `_resumes_total`, `_relists_total` | counter | `watch`, `prefix` |
//! | `etcd_sd_watch_last_event_age_seconds` | gauge | `watch`, `prefix` (absent before the first event) |
//!
//! | `etcd_sd_table_instances`, `_instances_ejected`, `_instances_draining` | gauge | `table`, `prefix`, `service` |
//! | `etcd_sd_table_picks_total`, `etcd_sd_table_failures_reported_total` | counter | `table`, `prefix`, `service` |
//!
//! `watch` is a process-unique number telling apart two watches of one prefix (a discovery
//! and a table's discovery count as watches); `table` likewise for tables.

use crate::prometheus::{Writer, COUNTER, GAUGE};
use crate::stats::{self, live_watches};
use std::sync::atomic::Ordering;

/// The whole text: process, registries, watches, then the service tables.
pub fn text() -> String {
    let mut w = Writer::new();
    let p = crate::session::process_stats();
    let n = |v: u64| v as f64;
    let i = |v: i64| v.max(0) as f64;
    w.sample(
        "etcd_sd_connections",
        GAUGE,
        "Distinct connection settings in use (one set of member connections each).",
        &[],
        n(p.connections),
    );
    w.sample(
        "etcd_sd_members_connected",
        GAUGE,
        "etcd member connections established.",
        &[],
        n(p.members_connected),
    );
    w.sample(
        "etcd_sd_leases_kept",
        GAUGE,
        "Leases kept alive by this process.",
        &[],
        n(p.leases_kept),
    );
    w.sample(
        "etcd_sd_requests_retried_total",
        COUNTER,
        "Requests sent again after a failure.",
        &[],
        n(p.requests_retried),
    );
    w.sample(
        "etcd_sd_log_records_dropped_total",
        COUNTER,
        "Log records dropped because the log queue was full.",
        &[],
        n(crate::log::dropped()),
    );
    w.sample(
        "etcd_sd_outages_total",
        COUNTER,
        "Outages begun: a connection, lease or watch failing until it succeeds again.",
        &[],
        n(stats::OUTAGES.load(Ordering::Relaxed)),
    );
    w.sample(
        "etcd_sd_outages_ongoing",
        GAUGE,
        "Outages going on now.",
        &[],
        i(stats::OUTAGES_ONGOING.load(Ordering::Relaxed)),
    );
    w.sample(
        "etcd_sd_registries",
        GAUGE,
        "Registries alive.",
        &[],
        i(stats::REGISTRIES.load(Ordering::Relaxed)),
    );
    w.sample(
        "etcd_sd_registries_draining",
        GAUGE,
        "Registries whose keys carry the draining mark.",
        &[],
        i(stats::REGISTRIES_DRAINING.load(Ordering::Relaxed)),
    );
    w.sample(
        "etcd_sd_registered_keys",
        GAUGE,
        "Keys the registries alive keep registered.",
        &[],
        i(stats::REGISTERED_KEYS.load(Ordering::Relaxed)),
    );
    w.sample(
        "etcd_sd_lease_losses_total",
        COUNTER,
        "Kept leases lost (expired or revoked while held).",
        &[],
        n(stats::LEASE_LOSSES.load(Ordering::Relaxed)),
    );
    w.sample(
        "etcd_sd_lease_recoveries_total",
        COUNTER,
        "Lost leases replaced by a new one with every key put back.",
        &[],
        n(stats::LEASE_RESTORES.load(Ordering::Relaxed)),
    );
    let watches = live_watches();
    let snaps: Vec<_> = watches
        .iter()
        .map(|c| {
            (
                c.id.to_string(),
                c.subject.as_str(),
                c.snapshot(String::new()),
            )
        })
        .collect();
    type Get = fn(&stats::DiscoveryStats) -> Option<f64>;
    let families: [(&'static str, &'static str, &'static str, Get); 6] = [
        (
            "etcd_sd_watch_keys",
            GAUGE,
            "Keys a watch holds (a discovery's table).",
            |s| Some(s.keys as f64),
        ),
        (
            "etcd_sd_watch_revision",
            GAUGE,
            "The store revision a watch has reached.",
            |s| Some(s.revision.max(0) as f64),
        ),
        (
            "etcd_sd_watch_events_total",
            COUNTER,
            "Events a watch delivered after its initial listing.",
            |s| Some(s.events as f64),
        ),
        (
            "etcd_sd_watch_resumes_total",
            COUNTER,
            "Broken watch streams resumed.",
            |s| Some(s.resumes as f64),
        ),
        (
            "etcd_sd_watch_relists_total",
            COUNTER,
            "Prefixes read again by a watch.",
            |s| Some(s.relists as f64),
        ),
        (
            "etcd_sd_watch_last_event_age_seconds",
            GAUGE,
            "Seconds since a watch delivered its last event.",
            |s| s.since_last_event.map(|d| d.as_secs_f64()),
        ),
    ];
    for (name, kind, help, get) in families {
        for (id, prefix, s) in &snaps {
            if let Some(v) = get(s) {
                w.sample(name, kind, help, &[("watch", id), ("prefix", prefix)], v);
            }
        }
    }
    tables(&mut w);
    w.finish()
}

/// Per table and service: instances, instances ejected now and draining, picks and failures
/// reported. Labels: `table` (a number telling apart two tables of one prefix), `prefix`,
/// `service`.
fn tables(w: &mut Writer) {
    struct Row {
        id: String,
        prefix: String,
        service: String,
        counts: [u64; 5],
    }
    let mut rows = Vec::new();
    for (id, prefix, table) in crate::table::live_tables() {
        let id = id.to_string();
        for service in table.services() {
            let inst = table.instances(&service);
            let ejected = (0..inst.len()).filter(|i| inst.is_ejected(*i)).count() as u64;
            let draining = inst.iter().filter(|i| i.is_draining()).count() as u64;
            let (picks, failures) = table.service_counts(&service);
            rows.push(Row {
                id: id.clone(),
                prefix: prefix.clone(),
                service,
                counts: [inst.len() as u64, ejected, draining, picks, failures],
            });
        }
    }
    let families: [(&'static str, &'static str, &'static str); 5] = [
        (
            "etcd_sd_table_instances",
            GAUGE,
            "Instances a service table holds.",
        ),
        (
            "etcd_sd_table_instances_ejected",
            GAUGE,
            "Instances ejected now after consecutive reported failures.",
        ),
        (
            "etcd_sd_table_instances_draining",
            GAUGE,
            "Instances marked draining (never picked for a new call).",
        ),
        (
            "etcd_sd_table_picks_total",
            COUNTER,
            "Picks that returned an instance.",
        ),
        (
            "etcd_sd_table_failures_reported_total",
            COUNTER,
            "Failed calls reported to the table.",
        ),
    ];
    for (n, (name, kind, help)) in families.into_iter().enumerate() {
        for r in &rows {
            let labels = [
                ("table", r.id.as_str()),
                ("prefix", r.prefix.as_str()),
                ("service", r.service.as_str()),
            ];
            w.sample(name, kind, help, &labels, r.counts[n] as f64);
        }
    }
}
