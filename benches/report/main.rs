//! etcd-sd performance report: `scripts/bench.sh [--quick]` (= `cargo bench --bench report`).
//!
//! Starts a private etcd (data on tmpfs), runs every scenario through the C ABI, prints a
//! Markdown table with each figure next to its target and writes target/bench-report.json.
//! See docs/performance.md. Not part of `cargo test`.

mod capi;
mod child;
mod cluster;
mod fleet;
mod fleet_fault;
mod metrics;
mod profiles;
mod report;
mod scenarios;
mod server;
mod storm;
mod storm_child;
mod table;
mod util;

use report::Report;
use scenarios::Ctx;
use std::path::{Path, PathBuf};
use std::time::Instant;
use util::J;

const USAGE: &str = "usage: scripts/bench.sh [--quick] [--only N[,N...]]
  --quick   idle-CPU window of the fan-out scenario: 5 s instead of 30 s
  --only    run only these scenarios (0 = footprint, 1-10 as in docs/performance.md;
            `fleet` = 10, `fleet-fault` = 11, `storm` = 9)
environment of the fleet scenario (10):
  ETCD_SD_FLEET_LABEL   names its figures: target/bench-fleet-<label>.json (default current)
  ETCD_SD_FLEET_SIZES   process counts (default 50,100,200)
  ETCD_SD_FLEET_IDLE_S  idle window per size (default 10)
  ETCD_SD_FLEET_BEFORE_BIN  another build of this binary: a first pass with its children, `before`
  ETCD_SD_FLEET_BINS    <label>=<binary>,...: a pass per other build of the children
  ETCD_SD_FLEET_PROXY   <label>,... (1: this build's): those passes again through etcd grpc-proxy
  ETCD_SD_FLEET_PPROF   <dir>: members with --enable-pprof; heap, goroutine, memstats per size
environment of the fleet fault scenario (11: a member SIGKILLed under the fleet):
  ETCD_SD_FLEET_FAULT_N        processes (default 200)
  ETCD_SD_FLEET_FAULT_BOUND_S  bound for every process to see the probes (default 30)
  ETCD_SD_FLEET_FAULT_KILL     `leader`: kill the leader, not the member with most streams";

fn main() {
    if let Ok(mode) = std::env::var(child::MODE_VAR) {
        child::main(&mode);
        return;
    }
    let mut quick = false;
    let mut only: Option<Vec<String>> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => {
                let list = args.next().unwrap_or_default();
                only = Some(
                    list.split(',')
                        .map(|s| match s.trim() {
                            "fleet" => "10".to_string(),
                            "fleet-fault" => "11".to_string(),
                            "storm" => "9".to_string(),
                            other => other.to_string(),
                        })
                        .collect(),
                );
            }
            "--bench" => {} // added by `cargo bench`
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let started = Instant::now();
    let idle_seconds = if quick { 5 } else { 30 };

    let machine = util::machine();
    let etcd_version = server::etcd_version();
    eprintln!("bench: starting etcd ({etcd_version})");
    let etcd = server::Etcd::start();
    eprintln!(
        "bench: etcd {} pid {}, data dir {} on {}",
        etcd.endpoint,
        etcd.pid(),
        etcd.data_dir().display(),
        etcd.data_location
    );
    let data_location = etcd.data_location.clone();
    let ctx = match Ctx::new(&etcd.endpoint, etcd.pid(), idle_seconds) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench: {e}\netcd log:\n{}", etcd.log());
            std::process::exit(1);
        }
    };

    let mut rep = Report::default();
    type Scenario = fn(&Ctx, &mut Report) -> Result<(), String>;
    // The footprint child runs first, on an empty etcd; scenario 1 runs before anything in
    // this process has opened an etcd-sd connection, so its "cold" figure is really cold.
    let plan: [(&str, Scenario); 13] = [
        ("0. footprint", scenarios::footprint),
        ("1. register", scenarios::register),
        ("2. put→callback", scenarios::put_callback),
        ("3. graceful offline", scenarios::graceful_offline),
        ("4. crash offline", scenarios::crash_offline),
        ("5. initial sync", scenarios::initial_sync),
        ("6. fan-out 1,000 + 100", scenarios::fan_out),
        (
            "6b. fan-out, every discovery sees every key",
            scenarios::fan_out_all,
        ),
        ("7. burst", scenarios::burst),
        ("8. service table", table::run),
        ("9. restart storm", storm::restart_storm),
        ("10. fleet", fleet::run),
        ("11. fleet, member killed", fleet_fault::run),
    ];
    for (name, run) in plan {
        let number = name.split('.').next().unwrap_or_default().to_string();
        if only.as_ref().is_some_and(|o| !o.contains(&number)) {
            continue;
        }
        eprintln!("bench: {name} ...");
        let t = Instant::now();
        if let Err(e) = run(&ctx, &mut rep) {
            eprintln!("bench: {name} FAILED: {e}");
            rep.failed(name, &e);
        }
        eprintln!("bench: {name} done in {:.1} s", t.elapsed().as_secs_f64());
    }

    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/report-<hash> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target/release"));
    let so = so_size(&profile_dir.join("libetcd_sd.so"));
    match &so {
        Some((size, stripped)) => rep.info(
            "library",
            "`libetcd_sd.so` size (release profile: lto, strip = symbols)",
            format!(
                "{:.2} MB ({size} bytes; after `strip --strip-all`: {stripped} bytes)",
                *size as f64 / 1048576.0
            ),
        ),
        None => rep.info(
            "library",
            "`libetcd_sd.so` size",
            "not built (target/release/libetcd_sd.so absent)",
        ),
    }
    drop(ctx);
    drop(etcd);

    let total = started.elapsed();
    let table = rep.markdown();
    println!();
    println!(
        "etcd-sd {} · {} · {} × {} · {} MB RAM · etcd data dir on {} · idle window {} s",
        etcd_sd::VERSION,
        etcd_version,
        machine.nproc,
        machine.cpu_model,
        machine.mem_total_mb,
        data_location.as_str(),
        idle_seconds
    );
    println!();
    print!("{table}");
    println!();
    let met = rep.rows.iter().filter(|r| r.met == Some(true)).count();
    let missed = rep.rows.iter().filter(|r| r.met == Some(false)).count();
    println!(
        "targets met: {met}, not met: {missed}; total run time {:.0} s",
        total.as_secs_f64()
    );

    let json = J::obj(vec![
        ("etcd_sd_version", J::str(etcd_sd::VERSION)),
        ("etcd_version", J::str(&etcd_version)),
        ("data_dir", J::str(&data_location)),
        ("quick", J::Bool(quick)),
        ("idle_window_s", J::Num(idle_seconds as f64)),
        (
            "machine",
            J::obj(vec![
                ("nproc", J::Num(machine.nproc as f64)),
                ("cpu_model", J::str(&machine.cpu_model)),
                ("mem_total_mb", J::Num(machine.mem_total_mb as f64)),
                ("kernel", J::str(&machine.kernel)),
            ]),
        ),
        (
            "so_size_bytes",
            so.map(|(s, _)| J::Num(s as f64)).unwrap_or(J::Null),
        ),
        ("total_seconds", J::Num(util::round3(total.as_secs_f64()))),
        ("table", rep.rows_json()),
        ("scenarios", J::Obj(rep.details.clone())),
    ]);
    let mut text = String::new();
    json.write(&mut text, 0);
    text.push('\n');
    let out = profile_dir
        .parent()
        .unwrap_or(Path::new("target"))
        .join("bench-report.json");
    match std::fs::write(&out, text) {
        Ok(()) => println!("JSON: {}", out.display()),
        Err(e) => eprintln!("bench: cannot write {}: {e}", out.display()),
    }
}

/// Size of the .so, and of a copy run through `strip --strip-all` (same when already stripped).
fn so_size(path: &Path) -> Option<(u64, u64)> {
    let size = std::fs::metadata(path).ok()?.len();
    let tmp = std::env::temp_dir().join(format!("etcd-sd-bench-strip-{}.so", std::process::id()));
    let stripped = std::process::Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&tmp)
        .arg(path)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&tmp).ok())
        .map(|m| m.len())
        .unwrap_or(size);
    let _ = std::fs::remove_file(&tmp);
    Some((size, stripped))
}
