//! Connection and lease settings shared by registries and discoveries. The C ABI exposes this
//! as the opaque `etcd_sd_options` builder, so fields can be added without breaking the ABI.

use crate::endpoints::parse_endpoints;
use crate::error::{Error, Result};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Default lease TTL in seconds (the chat system's `Registry` uses 3).
pub const DEFAULT_TTL_SECONDS: i64 = 3;
/// How long `_new` waits for etcd to answer before failing with `Unavailable`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on each unary request (put, delete, revoke), hence on `_free` when etcd is gone.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Settings for a registry or a discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub(crate) endpoints: Vec<String>,
    pub(crate) ttl_seconds: i64,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    /// When true, `_new` succeeds while etcd is down and the object connects in the background.
    pub(crate) wait_for_etcd: bool,
    pub(crate) tls: TlsFiles,
    pub(crate) user: Option<Credentials>,
    /// A registry with its own lease instead of the process's shared one.
    pub(crate) own_lease: bool,
    /// Service tables: the file of their last-known snapshot (`crate::table::snapshot`).
    pub(crate) snapshot_file: Option<PathBuf>,
    /// Start on the first endpoint (instead of a random one) and fail over in list order.
    pub(crate) prefer_first_member: bool,
    /// Discoveries and watches run their callbacks on the I/O thread (`crate::dispatch`).
    pub(crate) inline_callbacks: bool,
    /// How a registry writes its values.
    pub(crate) value_format: ValueFormat,
    /// Which endpoint of a Kratos value a service table takes.
    pub(crate) kratos_endpoint: KratosEndpoint,
}

/// How a registry writes the value of each key it registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValueFormat {
    /// The value as given (the default).
    #[default]
    AsGiven,
    /// The JSON of Go's etcd `naming/endpoints` (`{"Op":0,"Addr":"host:port","Metadata":null}`),
    /// so that Go programs resolving through etcd's gRPC naming find the instance. A value
    /// `host:port` or `host:port WEIGHT` is converted (a weight other than 1 becomes
    /// `"Metadata":{"weight":WEIGHT}`); a JSON object with an `Addr` is written as given.
    GoNaming,
}

/// Which of a Kratos instance's `endpoints` URLs gives its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KratosEndpoint {
    /// The first URL with this scheme (lower case, without `://`); the default is `grpc`. An
    /// instance without one is not an instance for the table.
    Scheme(String),
    /// The first URL, whatever its scheme.
    First,
}

impl Default for KratosEndpoint {
    fn default() -> Self {
        KratosEndpoint::Scheme("grpc".into())
    }
}

impl KratosEndpoint {
    /// `first`, or a URL scheme (`grpc`, `http`, ...; letters, digits, `+`, `-`, `.`, starting
    /// with a letter; case is ignored).
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim().to_ascii_lowercase();
        if t == "first" {
            return Ok(KratosEndpoint::First);
        }
        let valid = t.starts_with(|c: char| c.is_ascii_alphabetic())
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid {
            return Err(Error::invalid(format!(
                "Kratos endpoint {text:?}: expected a URL scheme (grpc, http, ...) or \"first\""
            )));
        }
        Ok(KratosEndpoint::Scheme(t))
    }
}

/// Where the TLS material lives; read when an object connects, so errors name the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsFiles {
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) cert_file: Option<PathBuf>,
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) server_name: Option<String>,
}

impl TlsFiles {
    pub(crate) fn is_set(&self) -> bool {
        *self != TlsFiles::default()
    }
}

/// A user name and password. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({:?}, <redacted>)", self.user)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            endpoints: Vec::new(),
            ttl_seconds: DEFAULT_TTL_SECONDS,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            wait_for_etcd: false,
            tls: TlsFiles::default(),
            user: None,
            own_lease: false,
            snapshot_file: None,
            prefer_first_member: false,
            inline_callbacks: false,
            value_format: ValueFormat::AsGiven,
            kratos_endpoint: KratosEndpoint::default(),
        }
    }
}

impl Options {
    /// Options for the given endpoint list (see [`parse_endpoints`]), defaults elsewhere.
    pub fn new(endpoints: &str) -> Result<Self> {
        let mut opts = Options::default();
        opts.set_endpoints(endpoints)?;
        Ok(opts)
    }

    pub fn set_endpoints(&mut self, endpoints: &str) -> Result<()> {
        self.endpoints = parse_endpoints(endpoints)?;
        Ok(())
    }

    /// Lease TTL for registries; must be positive.
    pub fn set_ttl(&mut self, ttl_seconds: i64) -> Result<()> {
        if ttl_seconds <= 0 {
            return Err(Error::invalid(format!(
                "ttl must be > 0 seconds, got {ttl_seconds}"
            )));
        }
        self.ttl_seconds = ttl_seconds;
        Ok(())
    }

    pub fn set_connect_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.connect_timeout = positive("connect timeout", timeout)?;
        Ok(())
    }

    pub fn set_request_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.request_timeout = positive("request timeout", timeout)?;
        Ok(())
    }

    /// Off (the default): `_new` fails fast when etcd does not answer. On: `_new` succeeds at
    /// once when etcd is unreachable; a registry grants its lease and puts the keys registered
    /// meanwhile when etcd comes up, a discovery delivers its initial listing then (through the
    /// callback pool, like any later event). Services then need no wait-for-etcd wrapper.
    pub fn set_wait_for_etcd(&mut self, wait: bool) {
        self.wait_for_etcd = wait;
    }

    /// Off (the default): a new connection starts on a random member of the endpoint list, so
    /// that a fleet of processes given the same list spreads its watch and keep-alive streams
    /// over the members. On: it starts on the first endpoint (a local member listed first, say)
    /// and comes back to it only by failing over in list order.
    pub fn set_prefer_first_member(&mut self, first: bool) {
        self.prefer_first_member = first;
    }

    /// Off (the default): discoveries and watches made with these options run their callbacks
    /// on the library's callback threads, so a callback may block. On: they run on the I/O
    /// thread itself as each event arrives, saving the hand-off to a callback thread (a
    /// wake-up; see docs/performance.md), under one rule: the callback must not block. While
    /// it runs no keep-alive, watch or request of the process makes progress, so it must not
    /// sleep, wait for a lock held across slow work, do I/O, call a blocking etcd-sd function
    /// (refused with an error there) or free another object whose callbacks run on the
    /// callback threads (freeing its own discovery or watch is fine). Hand slow work to a
    /// thread of your own. Order and exclusivity are as without it. The initial listing of a
    /// discovery still runs on the thread calling `new`.
    pub fn set_inline_callbacks(&mut self, inline: bool) {
        self.inline_callbacks = inline;
    }

    /// Service tables only: keep the table's last-known snapshot in `path` (written
    /// atomically after changes, at most once a second) and start from it when etcd does not
    /// answer the first listing; see [`crate::table::snapshot`]. `None` (the default): no
    /// snapshot.
    pub fn set_snapshot_file(&mut self, path: Option<&str>) -> Result<()> {
        self.snapshot_file = match path {
            None => None,
            Some(p) => Some(non_empty_path("snapshot file", p)?),
        };
        Ok(())
    }

    /// PEM file of the CA(s) that signed etcd's server certificate (default: the system's
    /// roots). Needs `https://` endpoints.
    pub fn set_ca_file(&mut self, path: &str) -> Result<()> {
        self.tls.ca_file = Some(non_empty_path("CA file", path)?);
        Ok(())
    }

    /// PEM files of the client certificate and its private key, for mutual TLS.
    pub fn set_client_cert(&mut self, cert_path: &str, key_path: &str) -> Result<()> {
        let cert = non_empty_path("client certificate file", cert_path)?;
        let key = non_empty_path("client key file", key_path)?;
        self.tls.cert_file = Some(cert);
        self.tls.key_file = Some(key);
        Ok(())
    }

    /// The name to check etcd's certificate against, when it differs from the endpoint host.
    pub fn set_server_name(&mut self, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::invalid("server name is empty"));
        }
        self.tls.server_name = Some(name.to_owned());
        Ok(())
    }

    /// etcd user and password (auth enabled). The token is refreshed by the library.
    pub fn set_user(&mut self, user: &str, password: &str) -> Result<()> {
        if user.is_empty() {
            return Err(Error::invalid("user name is empty"));
        }
        self.user = Some(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        });
        Ok(())
    }

    /// Off (the default): every registry of the process with the same connection settings
    /// and TTL shares one lease, kept alive once; freeing a registry deletes its own keys. On:
    /// the registry grants a lease of its own (one more keep-alive), revoked when it is freed.
    pub fn set_own_lease(&mut self, own: bool) {
        self.own_lease = own;
    }

    /// How registries made with these options write their values (default: as given).
    pub fn set_value_format(&mut self, format: ValueFormat) {
        self.value_format = format;
    }

    pub fn value_format(&self) -> ValueFormat {
        self.value_format
    }

    /// Which URL of a Kratos value's `endpoints` gives the address, for service tables made
    /// with these options (default: the first `grpc://` one).
    pub fn set_kratos_endpoint(&mut self, which: KratosEndpoint) {
        self.kratos_endpoint = which;
    }

    pub fn kratos_endpoint(&self) -> &KratosEndpoint {
        &self.kratos_endpoint
    }

    /// Applies the settings a program cannot pass in code (a legacy program built against
    /// the compat headers) from the environment, each only when set:
    /// `ETCD_SD_CONNECT_TIMEOUT_MS`, `ETCD_SD_REQUEST_TIMEOUT_MS`, `ETCD_SD_TTL` (seconds),
    /// `ETCD_SD_WAIT_FOR_ETCD` (1/0, true/false, yes/no). A bad value is an error naming the
    /// variable. (`ETCD_SD_LOG` sets the log level, read when the library starts.)
    pub fn apply_env(&mut self) -> Result<()> {
        self.apply_vars(|name| std::env::var(name).ok())
    }

    pub(crate) fn apply_vars(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<()> {
        let mut copy = self.clone();
        let num = |name: &str| -> Result<Option<u64>> {
            match var(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| Error::invalid(format!("{name}={v:?} is not a whole number"))),
            }
        };
        if let Some(ms) = num("ETCD_SD_CONNECT_TIMEOUT_MS")? {
            copy.set_connect_timeout(Duration::from_millis(ms))?;
        }
        if let Some(ms) = num("ETCD_SD_REQUEST_TIMEOUT_MS")? {
            copy.set_request_timeout(Duration::from_millis(ms))?;
        }
        if let Some(ttl) = num("ETCD_SD_TTL")? {
            copy.set_ttl(ttl.min(i64::MAX as u64) as i64)?;
        }
        if let Some(v) = var("ETCD_SD_WAIT_FOR_ETCD") {
            let on = match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" | "" => false,
                _ => {
                    return Err(Error::invalid(format!(
                        "ETCD_SD_WAIT_FOR_ETCD={v:?}: use 1 or 0"
                    )))
                }
            };
            copy.set_wait_for_etcd(on);
        }
        *self = copy;
        Ok(())
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    /// Checks what `_new` needs and the setters cannot know: that endpoints were set.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.endpoints.is_empty() {
            return Err(Error::invalid("no endpoints set in the options"));
        }
        let https = self
            .endpoints
            .iter()
            .filter(|e| e.starts_with("https://"))
            .count();
        if https != 0 && https != self.endpoints.len() {
            return Err(Error::invalid("endpoints mix http:// and https://"));
        }
        if https == 0 && self.tls.is_set() {
            return Err(Error::invalid(
                "TLS settings are given but the endpoints are http://; use https://",
            ));
        }
        Ok(())
    }
}

fn non_empty_path(what: &str, path: &str) -> Result<PathBuf> {
    if path.is_empty() {
        return Err(Error::invalid(format!("{what} path is empty")));
    }
    Ok(PathBuf::from(path))
}

fn positive(what: &str, d: Duration) -> Result<Duration> {
    if d.is_zero() {
        return Err(Error::invalid(format!("{what} must be > 0")));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_and_rejects_bad_values() {
        let mut o = Options::default();
        o.apply_vars(|n| match n {
            "ETCD_SD_CONNECT_TIMEOUT_MS" => Some("250".into()),
            "ETCD_SD_WAIT_FOR_ETCD" => Some("yes".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(o.connect_timeout, Duration::from_millis(250));
        assert!(o.wait_for_etcd);
        let before = o.clone();
        let err = o
            .apply_vars(|n| (n == "ETCD_SD_REQUEST_TIMEOUT_MS").then(|| "soon".into()))
            .unwrap_err();
        assert!(err.to_string().contains("ETCD_SD_REQUEST_TIMEOUT_MS"));
        assert_eq!(o, before);
    }
}
