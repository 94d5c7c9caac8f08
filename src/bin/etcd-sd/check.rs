//! `etcd-sd check [ENDPOINTS]`: whether each endpoint answers, how fast, and its status.

use crate::args::Args;
use crate::direct::{runtime, Direct};
use crate::{etcd, usage, Failure, Outcome};
use std::time::Instant;

pub(crate) fn check(args: &mut Args) -> Outcome {
    let positional = std::mem::take(&mut args.positional);
    if positional.len() > 1 {
        return Err(usage(format!("unexpected argument {:?}", positional[1])));
    }
    if let Some(e) = positional.into_iter().next() {
        args.endpoints = Some(e);
    }
    let direct = Direct::new(args, &args.endpoints())?;
    let eps = &direct.endpoints;
    let timeout = args.timeout;
    let rt = runtime()?;
    let mut failed = 0;
    for ep in eps {
        let t = Instant::now();
        let r = rt.block_on(async {
            let mut c = direct.connect(std::slice::from_ref(ep)).await?;
            tokio::time::timeout(timeout, c.status())
                .await
                .map_err(|_| etcd(format!("no answer within {timeout:?}")))?
                .map_err(|e| etcd(direct.describe("status", e)))
        });
        let ms = t.elapsed().as_secs_f64() * 1e3;
        match r {
            Ok(s) => {
                let leader = s.leader();
                let member = s.header().map_or(0, |h| h.member_id());
                println!(
                    "{ep}  ok  {ms:.1} ms  etcd {}  {}  db {} B  raft index {}",
                    s.version(),
                    if leader == member && leader != 0 {
                        "leader".to_string()
                    } else {
                        format!("leader {leader:x}")
                    },
                    s.db_size(),
                    s.raft_index()
                );
            }
            Err(Failure::Etcd(m)) | Err(Failure::Usage(m)) => {
                failed += 1;
                println!("{ep}  FAILED after {ms:.1} ms: {m}");
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
