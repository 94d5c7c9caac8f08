//! libetcd_sd.so and libetcd_sd.a: the etcd-sd crate's C ABI (its `ffi` module, declared in
//! include/etcd_sd.h) as a C library. The `#[no_mangle]` functions live in the core crate; a
//! cdylib or staticlib exports those of the crates it links, so this crate only has to link
//! the core. See the workspace's Cargo.toml for why it is a separate package.

pub use etcd_sd_core::ffi;
