//! etcd-sd: service registration and discovery over etcd, for C and C++ programs.
//!
//! The async core ([`Registry`], [`Discovery`]) is plain Rust and testable without pointers;
//! the C ABI in [`ffi`] is a thin layer over it. One internal runtime ([`runtime`]) drives all
//! network I/O; user callbacks run on a small fixed pool ([`dispatch`]).

mod backoff;
mod client;
pub mod discovery;
pub mod dispatch;
pub mod endpoints;
pub mod error;
pub mod event;
pub mod ffi;
pub mod kv;
pub mod lease;
mod listing;
pub mod log;
pub mod options;
pub mod registry;
pub mod runtime;
pub mod stats;
mod tls;
pub mod watch;

pub use discovery::Discovery;
pub use error::{Error, Result};
pub use event::{Event, EventKind, EventSink};
pub use options::Options;
pub use registry::{Registry, Status};

/// Connections, members and kept leases of the whole process, and requests retried.
pub fn process_stats() -> stats::ProcessStats {
    client::process_stats()
}

/// The crate version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
mod outage;

/// The service table with load balancing (issue 10).
pub mod table;
pub use table::{ServiceTable, Table};
