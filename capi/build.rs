//! Gives libetcd_sd.so its SONAME, libetcd_sd.so.<major version>, in every build (cargo's own
//! and CMake's), so the library that `cargo build --release` leaves in target/release is the
//! one CMake installs and packages. Only this crate's cdylib link sees the flag: nothing else
//! is rebuilt for it.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let major =
        std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libetcd_sd.so.{major}");
}
