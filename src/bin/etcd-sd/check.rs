//! `etcd-sd check [ENDPOINTS]`: whether each endpoint answers, how fast, and its status.

use crate::args::Args;
use crate::{bad_setting, etcd, usage, Outcome};
use etcd_sd::kv::Client;
use std::time::Instant;

pub(crate) fn check(args: &mut Args) -> Outcome {
    let positional = std::mem::take(&mut args.positional);
    if positional.len() > 1 {
        return Err(usage(format!("unexpected argument {:?}", positional[1])));
    }
    if let Some(e) = positional.into_iter().next() {
        args.endpoints = Some(e);
    }
    // Every setting is checked (a usage error) before anything connects; then each endpoint
    // gets a client of its own, so that its status is its own and not the next member's.
    let all = args.client(&args.endpoints())?;
    let eps = all.options().endpoints();
    let mut failed = 0;
    for ep in eps {
        let mut opts = all.options().clone();
        opts.set_endpoints(ep).map_err(bad_setting)?;
        let client = Client::new(&opts).map_err(bad_setting)?;
        let t = Instant::now();
        let r = client.status();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        match r {
            Ok(s) => {
                println!(
                    "{ep}  ok  {ms:.1} ms  etcd {}  {}  db {} B  raft index {}",
                    s.version,
                    if s.leader == s.member_id && s.leader != 0 {
                        "leader".to_string()
                    } else {
                        format!("leader {:x}", s.leader)
                    },
                    s.db_size,
                    s.raft_index
                );
            }
            Err(e) => {
                failed += 1;
                println!("{ep}  FAILED after {ms:.1} ms: {e}");
            }
        }
    }
    if failed > 0 {
        return Err(etcd(format!(
            "{failed} of {} endpoint(s) did not answer",
            eps.len()
        )));
    }
    Ok(())
}
