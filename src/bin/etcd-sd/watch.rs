//! `etcd-sd watch [ENDPOINTS] [PREFIX]`: online/offline events, live, until interrupted.

use crate::args::Args;
use crate::clock::clock;
use crate::signals::wait_for_signal;
use crate::{etcd, Outcome};
use etcd_sd::{Discovery, Event, EventKind};
use std::io::Write;

pub(crate) fn watch(args: &mut Args, signals: &libc::sigset_t) -> Outcome {
    let (endpoints, prefix) = args.endpoints_and_prefix("/service")?;
    let opts = args.options(&endpoints)?;
    let print = |e: &Event| {
        let key = String::from_utf8_lossy(&e.key);
        let value = String::from_utf8_lossy(&e.value);
        let line = match e.kind {
            EventKind::Put => format!("{} online  {key} -> {value}\n", clock()),
            EventKind::Delete => format!("{} offline {key} (was {value})\n", clock()),
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    };
    let d = Discovery::new(&opts, &prefix, print)
        .map_err(|e| etcd(format!("watching {prefix:?} at {endpoints}: {e}")))?;
    println!(
        "{} watching {prefix} at {endpoints} (Ctrl-C to stop)",
        clock()
    );
    let _ = std::io::stdout().flush();
    wait_for_signal(signals);
    drop(d);
    Ok(())
}
