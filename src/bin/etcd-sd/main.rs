//! `etcd-sd`: look at and take part in etcd-sd service discovery from a shell.
//!
//!   etcd-sd services [ENDPOINTS] [PREFIX]      services, instances, addresses, lease TTL left
//!   etcd-sd watch [ENDPOINTS] [PREFIX]         online/offline events, live, until Ctrl-C
//!   etcd-sd register [--ttl N] KEY VALUE       keep KEY registered until killed (a sidecar)
//!   etcd-sd check [ENDPOINTS]                  does each endpoint answer, and how fast
//!
//! TLS and auth: `--cacert`, `--cert`, `--key`, `--user`, `--password` (see `security.rs`).
//!
//! Exit codes: 0 success; 1 etcd unreachable or refused the request (for `check`: an endpoint
//! did not answer); 2 bad usage. Errors go to stderr as one line starting with "etcd-sd:".

// Every unsafe block says why it is sound (issue 17).
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

mod args;
mod check;
mod clock;
mod register;
mod security;
mod services;
mod signals;
mod watch;

use args::{parse_args, USAGE};
use std::process::ExitCode;

/// What went wrong, by exit code.
pub(crate) enum Failure {
    Usage(String),
    Etcd(String),
}

pub(crate) type Outcome = Result<(), Failure>;

pub(crate) fn usage(msg: impl Into<String>) -> Failure {
    Failure::Usage(msg.into())
}

pub(crate) fn etcd(msg: impl std::fmt::Display) -> Failure {
    Failure::Etcd(msg.to_string())
}

/// A setting the library refused (endpoints, timeouts, TLS files, user): bad usage.
pub(crate) fn bad_setting(e: etcd_sd::Error) -> Failure {
    match e {
        etcd_sd::Error::InvalidArgument(m) => usage(m),
        other => usage(other.to_string()),
    }
}

fn main() -> ExitCode {
    // SIGINT/SIGTERM are taken with sigwait() by the commands that wait for them; block them
    // before any library thread starts, so every thread inherits the mask.
    let signals = signals::block_signals();
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse_args(raw) {
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Some(mut args)) => match args.command.as_str() {
            "services" => services::services(&mut args),
            "watch" => watch::watch(&mut args, &signals),
            "register" => register::register(&mut args, &signals),
            "check" => check::check(&mut args),
            other => Err(usage(format!("unknown command {other:?}"))),
        },
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("etcd-sd: {m}\n(etcd-sd --help for usage)");
            ExitCode::from(2)
        }
        Err(Failure::Etcd(m)) => {
            eprintln!("etcd-sd: {m}");
            ExitCode::from(1)
        }
    }
}
