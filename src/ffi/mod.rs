//! The C ABI: a thin unsafe layer over the core. Every exported function runs its body inside
//! [`ffi_boundary!`](crate::ffi_boundary) (no panic crosses into C), checks each pointer and
//! string with the helpers in [`args`], and reports failures as an [`etcd_sd_result`] plus a
//! per-thread message (`etcd_sd_last_error`).
//!
//! The header `include/etcd_sd.h` is generated from these files by cbindgen; the doc comments
//! here are the C documentation.

#![allow(non_camel_case_types)]
// These functions are called from C, where `unsafe` means nothing; every pointer they take is
// checked by the `args` helpers before use, and the contract is written in the header.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

#[macro_use]
pub mod boundary;
pub mod args;
pub mod client;
pub mod cluster;
pub mod discovery;
pub mod election;
pub mod keepalive;
pub mod kvs;
pub mod lock;
pub mod log;
pub mod options;
pub mod registry;
pub mod replies;
pub mod result;
pub mod stats;
pub mod txn;
pub mod watch;

pub use client::*;
pub use cluster::*;
pub use discovery::*;
pub use election::*;
pub use keepalive::*;
pub use kvs::*;
pub use lock::*;
pub use log::*;
pub use options::*;
pub use registry::*;
pub use replies::*;
pub use result::*;
pub use stats::*;
pub use txn::*;
pub use watch::*;

// Service table (issue 10).
pub mod table;
pub use table::*;
