//! etcd-sd: service registration and discovery over etcd, for C and C++ programs.
//!
//! The async core ([`Registry`], [`Discovery`]) is plain Rust and testable without pointers;
//! the C ABI in [`ffi`] is a thin layer over it. One internal runtime ([`runtime`]) drives all
//! network I/O; user callbacks run on a small fixed pool ([`dispatch`]).

// Layers, each importing only those below it (scripts/check-layers.py checks it; the README's
// "Architecture" draws them):
//   foundation  types, error, human, outage, backoff, stats, event, endpoints, options, tls,
//               log, runtime, dispatch
//   transport   connections, members, failover, retry
//   requests    typed etcd calls: kv, range, lease, txn, lock, election, cluster
//   session     per-connection state: kept leases and their keeper, watch engine, listings
//   products    Registry, Discovery, the service table, the general client and Watcher,
//               Lock and Election (on `held`)
//   ffi         the C ABI
// Every unsafe block and impl says why it is sound (`// SAFETY:`), and the body of an
// `unsafe fn` is no exception: its unsafe operations sit in commented blocks too (issue 17).
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]
mod backoff;
pub mod dispatch;
pub mod endpoints;
pub mod error;
pub mod event;
mod human;
pub mod log;
pub mod options;
mod outage;
pub mod runtime;
pub mod stats;
mod tls;
pub mod types;

mod transport;

mod requests;

mod session;

pub mod discovery;
pub mod drain;
pub mod election;
mod held;
pub mod kv;
pub mod lock;
pub mod registry;
/// The service table with load balancing (issue 10).
pub mod table;
pub mod watch;

pub mod ffi;

/// Leases kept alive by the library (the general client's keep-alives).
pub mod lease {
    pub use crate::session::kept::{GaveUp, KeptLease};
    pub use crate::types::Status;
}

pub use discovery::Discovery;
pub use error::{Error, Result};
pub use event::{Event, EventKind, EventSink};
pub use options::Options;
pub use registry::{Registry, Status};

/// Connections, members and kept leases of the whole process, and requests retried.
pub fn process_stats() -> stats::ProcessStats {
    session::process_stats()
}

/// The crate version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub use table::{ServiceTable, Table};
