//! The command line: options, the command and its arguments, and what they make of the
//! endpoints and the library's options.

use crate::security::{Security, SecurityFlags};
use crate::{bad_setting, usage, Failure};
use etcd_sd::kv::Client;
use etcd_sd::options::{KratosEndpoint, ValueFormat};
use etcd_sd::Options;
use std::time::Duration;

pub(crate) const USAGE: &str = "usage: etcd-sd [OPTIONS] COMMAND [ARGS]

Commands:
  services [ENDPOINTS] [PREFIX]   print the services under PREFIX (default /service): each
                                  instance's key, address, weight and lease TTL left; with
                                  --json, one JSON document (with metadata) for scripts
  watch [ENDPOINTS] [PREFIX]      print online/offline events under PREFIX until interrupted
  register [--ttl N] KEY VALUE    put KEY=VALUE under a kept-alive lease (TTL N s, default 3)
                                  and hold it until SIGINT/SIGTERM, then revoke it
  check [ENDPOINTS]               say whether each endpoint answers, how fast, its version

Options:
  -e, --endpoints LIST   etcd endpoints, comma-separated (\"http://10.0.0.1:2379,10.0.0.2:2379\");
                         default $ETCD_SD_ENDPOINTS, else http://127.0.0.1:2379
  -p, --prefix PREFIX    the prefix for `services` and `watch` (or a positional PREFIX)
  -t, --timeout MS       connect/request timeout in milliseconds (default 3000)
      --ttl N            lease TTL in seconds for `register` (default 3)
      --json             `services`: print JSON instead of a table
      --kratos-endpoint SCHEME
                         which URL of a Kratos value is the address: the first with this
                         scheme (default grpc), or `first`: the first of all
      --go-naming        `register`: write VALUE as Go's etcd naming JSON
                         ({\"Op\":0,\"Addr\":\"host:port\",\"Metadata\":null}), for Go's resolver

A positional argument is ENDPOINTS when it contains \"://\" or is a comma-separated list of
host:port (a numeric port), else PREFIX: `services user.rpc` lists the go-zero service
user.rpc, `services 10.0.0.1:2379 /service` lists /service at 10.0.0.1:2379. A prefix that
looks like host:port needs --prefix.
  -h, --help             this help
  -V, --version          the version

TLS and auth (as etcdctl's; each defaults to its variable, an empty one counting as unset):
      --cacert FILE      PEM file of the CA(s) that signed etcd's certificate; default
                         $ETCD_SD_CACERT, else the system's roots. TLS needs https:// endpoints.
      --cert FILE        client certificate (PEM, X.509 v3) for mutual TLS; $ETCD_SD_CERT
      --key FILE         its private key (PEM); $ETCD_SD_KEY. --cert and --key go together.
      --user NAME[:PASSWORD]
                         etcd user, when etcd has auth enabled; $ETCD_SD_USER. Splits at the
                         first ':'; without one the password is --password or $ETCD_SD_PASSWORD
      --password PASSWORD
                         the user's password; with it, --user is the whole name (':' and all).
                         $ETCD_SD_PASSWORD keeps it out of `ps` and the shell history.
A role granted on /service/ does not cover the default PREFIX /service: give /service/.
Options taking a value also take it as --name=VALUE.

A service is a key up to its last '/': /service/user/instance-1 is an instance of
/service/user. Values: \"host:port\" (optionally \" WEIGHT\" or \" weight=N\"), Go naming
JSON {\"Addr\":\"host:port\",\"Metadata\":...}, a Kratos instance (\"endpoints\" URLs) or a
go-micro service (\"nodes\"); see docs/formats.md.

Exit codes: 0 ok; 1 etcd unreachable or refused; 2 bad usage.";

pub(crate) struct Args {
    pub(crate) command: String,
    pub(crate) endpoints: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) ttl: i64,
    pub(crate) positional: Vec<String>,
    pub(crate) security: Security,
    pub(crate) prefix: Option<String>,
    pub(crate) json: bool,
    pub(crate) kratos: KratosEndpoint,
    pub(crate) value_format: ValueFormat,
}

pub(crate) fn parse_args(raw: Vec<String>) -> Result<Option<Args>, Failure> {
    let mut a = Args {
        command: String::new(),
        endpoints: None,
        timeout: Duration::from_millis(3000),
        ttl: 3,
        positional: vec![],
        security: Security::default(),
        prefix: None,
        json: false,
        kratos: KratosEndpoint::default(),
        value_format: ValueFormat::AsGiven,
    };
    let mut security = SecurityFlags::default();
    let mut it = raw.into_iter();
    while let Some(raw_arg) = it.next() {
        // "--name=VALUE" is "--name VALUE".
        let (arg, mut inline) = match raw_arg.split_once('=') {
            Some((name, v)) if name.starts_with("--") => (name.to_string(), Some(v.to_string())),
            _ => (raw_arg, None),
        };
        if inline.is_some()
            && matches!(
                arg.as_str(),
                "--help" | "--version" | "--json" | "--go-naming"
            )
        {
            return Err(usage(format!("{arg} takes no value")));
        }
        let mut value = |name: &str| {
            inline
                .take()
                .or_else(|| it.next())
                .ok_or_else(|| usage(format!("{name} needs a value")))
        };
        // A file or a user name cannot be empty; a password can.
        let mut non_empty = |name: &str| {
            let v = value(name)?;
            if v.is_empty() {
                return Err(usage(format!("{name} needs a value")));
            }
            Ok(Some(v))
        };
        match arg.as_str() {
            "--cacert" => security.cacert = non_empty(&arg)?,
            "--cert" => security.cert = non_empty(&arg)?,
            "--key" => security.key = non_empty(&arg)?,
            "--user" => security.user = non_empty(&arg)?,
            "--password" => security.password = Some(value(&arg)?),
            "-h" | "--help" => return Ok(None),
            "-V" | "--version" => {
                println!("etcd-sd {}", etcd_sd::VERSION);
                std::process::exit(0);
            }
            "-e" | "--endpoints" => a.endpoints = Some(value(&arg)?),
            "-p" | "--prefix" => a.prefix = non_empty(&arg)?,
            "--json" => a.json = true,
            "--go-naming" => a.value_format = ValueFormat::GoNaming,
            "--kratos-endpoint" => {
                let v = value(&arg)?;
                a.kratos = KratosEndpoint::parse(&v).map_err(bad_setting)?;
            }
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
    a.security = security.resolve(|name| std::env::var(name).ok())?;
    Ok(Some(a))
}

impl Args {
    /// `[ENDPOINTS] [PREFIX]`, in either order: an argument that [`looks_like_endpoints`] is
    /// ENDPOINTS, any other is PREFIX. Each may be given once, by option or by position.
    pub(crate) fn endpoints_and_prefix(
        &mut self,
        default_prefix: &str,
    ) -> Result<(String, String), Failure> {
        let from_option = self.prefix.is_some();
        for p in std::mem::take(&mut self.positional) {
            let slot = if looks_like_endpoints(&p) {
                &mut self.endpoints
            } else {
                &mut self.prefix
            };
            if slot.is_some() {
                let hint = if looks_like_endpoints(&p) && !from_option {
                    " (a prefix that looks like host:port needs --prefix)"
                } else {
                    ""
                };
                return Err(usage(format!("unexpected argument {p:?}{hint}")));
            }
            *slot = Some(p);
        }
        let prefix = self
            .prefix
            .clone()
            .unwrap_or_else(|| default_prefix.to_string());
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

    /// The library's options for `endpoints` and the settings of the command line.
    pub(crate) fn options(&self, endpoints: &str) -> Result<Options, Failure> {
        Ok(self.client(endpoints)?.options().clone())
    }

    /// The library's general client for `endpoints` and the settings of the command line.
    pub(crate) fn client(&self, endpoints: &str) -> Result<Client, Failure> {
        let mut o = Options::new(endpoints).map_err(bad_setting)?;
        o.set_connect_timeout(self.timeout).map_err(bad_setting)?;
        o.set_request_timeout(self.timeout).map_err(bad_setting)?;
        o.set_ttl(self.ttl).map_err(bad_setting)?;
        o.set_kratos_endpoint(self.kratos.clone());
        o.set_value_format(self.value_format);
        self.security.apply(&mut o)?;
        // Creating a client does no I/O but reads and checks the TLS files and checks the
        // endpoints against TLS: a missing, unreadable or non-PEM file, an X.509 v1 client
        // certificate or TLS files with http:// endpoints are usage errors, before any
        // connection is tried.
        Client::new(&o).map_err(bad_setting)
    }
}

/// An endpoint list: contains "://", or every comma-separated item is `host:port` with a
/// numeric port (and no '/'). `user.rpc`, `/service`, `svc/` are not.
pub(crate) fn looks_like_endpoints(arg: &str) -> bool {
    if arg.contains("://") {
        return true;
    }
    !arg.is_empty()
        && arg.split(',').all(|item| {
            let item = item.trim();
            !item.contains('/')
                && item.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                })
        })
}

#[cfg(test)]
mod tests {
    use super::looks_like_endpoints;

    #[test]
    fn endpoints_or_prefix() {
        for e in [
            "http://10.0.0.1:2379",
            "10.0.0.1:2379",
            "localhost:2379,10.0.0.2:2379",
            "[::1]:2379",
            "https://etcd",
        ] {
            assert!(looks_like_endpoints(e), "{e}");
        }
        for p in [
            "user.rpc",
            "user.rpc/",
            "/service",
            "svc",
            "a:b",
            "/x:1",
            "",
            "h:",
        ] {
            assert!(!looks_like_endpoints(p), "{p}");
        }
    }
}
