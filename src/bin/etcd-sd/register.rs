//! `etcd-sd register [--ttl N] [--go-naming] KEY VALUE`: keep KEY registered until
//! SIGINT/SIGTERM (a sidecar), then revoke its lease. With `--go-naming` the value is written
//! as Go's etcd naming JSON (keys then usually have no leading '/': `TARGET/NAME`).

use crate::args::Args;
use crate::clock::clock;
use crate::signals::wait_for_signal;
use crate::{etcd, usage, Outcome};
use etcd_sd::options::ValueFormat;
use etcd_sd::registry::go_naming_value;
use etcd_sd::table::address;
use etcd_sd::{Registry, Status};
use std::io::Write;
use std::time::Instant;

pub(crate) fn register(args: &mut Args, signals: &libc::sigset_t) -> Outcome {
    let [key, value]: [String; 2] = std::mem::take(&mut args.positional)
        .try_into()
        .map_err(|_| usage("register needs KEY and VALUE"))?;
    let go_naming = args.value_format == ValueFormat::GoNaming;
    if !key.starts_with('/') && !go_naming {
        eprintln!("etcd-sd: note: {key:?} does not start with '/'");
    }
    if let Err(why) = address::parse(value.as_bytes()) {
        eprintln!("etcd-sd: note: service tables will not take {value:?} as an instance ({why})");
    }
    let endpoints = args.endpoints();
    let opts = args.options(&endpoints)?;
    let reg = Registry::new(&opts).map_err(|e| etcd(format!("etcd at {endpoints}: {e}")))?;
    reg.register(&key, &value).map_err(|e| match e {
        etcd_sd::Error::InvalidArgument(m) => usage(m),
        e => etcd(format!("registering {key:?}: {e}")),
    })?;
    let value = match go_naming {
        true => go_naming_value(&value).unwrap_or(value),
        false => value,
    };
    println!(
        "{} registered {key} -> {value} (lease {:x}, TTL {} s); SIGINT/SIGTERM to unregister",
        clock(),
        reg.lease_id(),
        args.ttl
    );
    let _ = std::io::stdout().flush();
    let k = key.clone();
    reg.set_status_sink(Some(Box::new(move |s: &Status| {
        match s {
            Status::Lost => println!("{} lost {k}: the lease expired; registering again", clock()),
            Status::Restored => println!("{} restored {k}", clock()),
        }
        let _ = std::io::stdout().flush();
    })));
    let sig = wait_for_signal(signals);
    let t = Instant::now();
    let closed = reg.close();
    match closed {
        Ok(()) => {
            println!(
                "{} {sig}: unregistered {key} (lease revoked in {:.1} ms)",
                clock(),
                t.elapsed().as_secs_f64() * 1e3
            );
            Ok(())
        }
        Err(e) => Err(etcd(format!(
            "{sig}: revoking the lease of {key:?}: {e} (the key expires after the TTL)"
        ))),
    }
}
