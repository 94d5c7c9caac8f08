//! The committed C header must be exactly what cbindgen generates from src/ffi/.
//! Regenerate with `ETCD_SD_BLESS=1 cargo test --test header`.

use std::path::Path;

#[test]
fn header_matches_the_source() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen failed")
        .write(&mut generated);
    let path = root.join("include/etcd_sd.h");
    if std::env::var_os("ETCD_SD_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write header");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/etcd_sd.h is stale: run `ETCD_SD_BLESS=1 cargo test --test header` and commit it"
    );
}
