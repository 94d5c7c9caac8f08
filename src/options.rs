//! Connection and lease settings shared by registries and discoveries. The C ABI exposes this
//! as the opaque `etcd_sd_options` builder, so fields can be added without breaking the ABI.

use crate::endpoints::parse_endpoints;
use crate::error::{Error, Result};
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            endpoints: Vec::new(),
            ttl_seconds: DEFAULT_TTL_SECONDS,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            wait_for_etcd: false,
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
        Ok(())
    }
}

fn positive(what: &str, d: Duration) -> Result<Duration> {
    if d.is_zero() {
        return Err(Error::invalid(format!("{what} must be > 0")));
    }
    Ok(d)
}
