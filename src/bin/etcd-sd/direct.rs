//! Direct etcd-client connections, for the commands that read what the library does not
//! expose (`services`: lease TTLs; `check`: each member's status). Same endpoints, TLS and
//! user as the library would use, checked by it first.

use crate::args::Args;
use crate::{etcd, Failure};
use etcd_client::{Client, ConnectOptions};
use std::time::Duration;

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| etcd(format!("cannot start a runtime: {e}")))
}

/// How to connect directly to the endpoints of one command.
pub(crate) struct Direct {
    /// The endpoints, parsed and normalised by the library.
    pub(crate) endpoints: Vec<String>,
    options: ConnectOptions,
    /// The same without the user, when one is set.
    without_user: Option<ConnectOptions>,
    timeout: Duration,
    https: bool,
}

impl Direct {
    /// For `endpoints` (a list as the user gave it) and the TLS and auth settings of `args`;
    /// any bad setting is a usage error here, before anything connects.
    pub(crate) fn new(args: &Args, endpoints: &str) -> Result<Direct, Failure> {
        let opts = args.options(endpoints)?;
        let endpoints = opts.endpoints().to_vec();
        let https = endpoints.iter().any(|e| e.starts_with("https://"));
        let base = ConnectOptions::new()
            .with_connect_timeout(args.timeout)
            .with_timeout(args.timeout);
        let (options, without_user) = args.security.connect_options(base, https)?;
        Ok(Direct {
            endpoints,
            options,
            without_user,
            timeout: args.timeout,
            https,
        })
    }

    /// A client for `endpoints` (some of [`Self::endpoints`]). Without a user nothing is sent
    /// yet (the first request dials); with one, this authenticates.
    pub(crate) async fn connect(&self, endpoints: &[String]) -> Result<Client, Failure> {
        let list = endpoints.join(",");
        let timeout = self.timeout;
        let attempt = |o: &ConnectOptions| {
            tokio::time::timeout(timeout, Client::connect(endpoints, Some(o.clone())))
        };
        let no_answer = |_| etcd(format!("no answer from {list} within {timeout:?}"));
        let mut connected = attempt(&self.options).await.map_err(no_answer)?;
        if let (Err(e), Some(plain)) = (&connected, &self.without_user) {
            if e.to_string().contains("authentication is not enabled") {
                connected = attempt(plain).await.map_err(no_answer)?;
            }
        }
        connected.map_err(|e| etcd(format!("etcd at {list}: {}", self.describe("connect", e))))
    }

    /// One line saying what kind of failure `e` is (TLS, auth, unavailable...) and why.
    pub(crate) fn describe(&self, context: &str, e: etcd_client::Error) -> String {
        use etcd_sd::Error;
        match Error::from_etcd(context, e) {
            // With TLS 1.3 a server that refuses our client certificate does so after the
            // handshake: all we see is the connection dropped. Say what that likely means, as
            // the library does for its objects' first request.
            Error::Unavailable(m)
                if self.https
                    && ["broken pipe", "reset", "closed"]
                        .iter()
                        .any(|p| m.contains(p)) =>
            {
                Error::Tls(format!(
                    "{m}: the server dropped the TLS connection; does it require a client \
                     certificate, and is ours valid and signed by a CA it trusts?"
                ))
                .to_string()
            }
            other => other.to_string(),
        }
    }
}
