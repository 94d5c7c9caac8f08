//! The command line: options, the command and its arguments, and what they make of the
//! endpoints and the library's options.

use crate::{usage, Failure};
use etcd_sd::Options;
use std::time::Duration;

pub(crate) const USAGE: &str = "usage: etcd-sd [OPTIONS] COMMAND [ARGS]

Commands:
  services [ENDPOINTS] [PREFIX]   print the services under PREFIX (default /service): each
                                  instance's key, address, weight and lease TTL left
  watch [ENDPOINTS] [PREFIX]      print online/offline events under PREFIX until interrupted
  register [--ttl N] KEY VALUE    put KEY=VALUE under a kept-alive lease (TTL N s, default 3)
                                  and hold it until SIGINT/SIGTERM, then revoke it
  check [ENDPOINTS]               say whether each endpoint answers, how fast, its version

Options:
  -e, --endpoints LIST   etcd endpoints, comma-separated (\"http://10.0.0.1:2379,10.0.0.2:2379\");
                         default $ETCD_SD_ENDPOINTS, else http://127.0.0.1:2379. A positional
                         ENDPOINTS (any argument not starting with '/') does the same.
  -t, --timeout MS       connect/request timeout in milliseconds (default 3000)
      --ttl N            lease TTL in seconds for `register` (default 3)
  -h, --help             this help
  -V, --version          the version

A service is a key up to its last '/': /service/user/instance-1 is an instance of
/service/user. Values: \"host:port\" (optionally \" WEIGHT\" or \" weight=N\"), or Go naming
JSON {\"Addr\":\"host:port\",\"Metadata\":...}.

Exit codes: 0 ok; 1 etcd unreachable or refused; 2 bad usage.";

pub(crate) struct Args {
    pub(crate) command: String,
    pub(crate) endpoints: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) ttl: i64,
    pub(crate) positional: Vec<String>,
}

pub(crate) fn parse_args(raw: Vec<String>) -> Result<Option<Args>, Failure> {
    let mut a = Args {
        command: String::new(),
        endpoints: None,
        timeout: Duration::from_millis(3000),
        ttl: 3,
        positional: vec![],
    };
    let mut it = raw.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-V" | "--version" => {
                println!("etcd-sd {}", etcd_sd::VERSION);
                std::process::exit(0);
            }
            "-e" | "--endpoints" => a.endpoints = Some(value(&arg)?),
            "-t" | "--timeout" => {
                let v = value(&arg)?;
                let ms: u64 =
                    v.parse().ok().filter(|m| *m > 0).ok_or_else(|| {
                        usage(format!("--timeout {v:?}: expected milliseconds > 0"))
                    })?;
                a.timeout = Duration::from_millis(ms);
            }
            "--ttl" => {
                let v = value(&arg)?;
                a.ttl = v
                    .parse()
                    .ok()
                    .filter(|t| *t > 0)
                    .ok_or_else(|| usage(format!("--ttl {v:?}: expected seconds > 0")))?;
            }
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(usage(format!("unknown option {s:?}")))
            }
            _ if a.command.is_empty() => a.command = arg,
            _ => a.positional.push(arg),
        }
    }
    if a.command.is_empty() {
        return Err(usage("no command given"));
    }
    Ok(Some(a))
}

impl Args {
    /// `[ENDPOINTS] [PREFIX]`: an argument starting with '/' is the prefix.
    pub(crate) fn endpoints_and_prefix(
        &mut self,
        default_prefix: &str,
    ) -> Result<(String, String), Failure> {
        let mut prefix = None;
        for p in std::mem::take(&mut self.positional) {
            if p.starts_with('/') && prefix.is_none() {
                prefix = Some(p);
            } else if !p.starts_with('/') && self.endpoints.is_none() {
                self.endpoints = Some(p);
            } else {
                return Err(usage(format!("unexpected argument {p:?}")));
            }
        }
        let prefix = prefix.unwrap_or_else(|| default_prefix.to_string());
        Ok((self.endpoints(), prefix))
    }

    pub(crate) fn endpoints(&self) -> String {
        self.endpoints
            .clone()
            .or_else(|| {
                std::env::var("ETCD_SD_ENDPOINTS")
                    .ok()
                    .filter(|e| !e.is_empty())
            })
            .unwrap_or_else(|| "http://127.0.0.1:2379".into())
    }

    pub(crate) fn options(&self, endpoints: &str) -> Result<Options, Failure> {
        let mut o = Options::new(endpoints).map_err(|e| usage(e.to_string()))?;
        o.set_connect_timeout(self.timeout)
            .map_err(|e| usage(e.to_string()))?;
        o.set_request_timeout(self.timeout)
            .map_err(|e| usage(e.to_string()))?;
        o.set_ttl(self.ttl).map_err(|e| usage(e.to_string()))?;
        Ok(o)
    }
}
