//! The one error type of the core. Each variant maps to one `etcd_sd_result` code at the C
//! boundary; the message is what `etcd_sd_last_error()` returns.

use std::time::Duration;

/// Everything that can go wrong in etcd-sd, by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The caller passed something unusable (empty, malformed, out of range).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No endpoint answered (refused, unreachable, no leader).
    #[error("etcd unavailable: {0}")]
    Unavailable(String),
    /// An endpoint was reached but did not answer in time.
    #[error("timed out after {0:?}: {1}")]
    Timeout(Duration, String),
    /// etcd answered with an error (permission, lease not found, ...).
    #[error("etcd error: {0}")]
    Etcd(String),
    /// The object was already closed.
    #[error("closed: {0}")]
    Closed(String),
    /// A bug in etcd-sd (a panic caught at the boundary, a poisoned lock).
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// Classifies an `etcd-client` error: transport failures and gRPC `Unavailable` mean "no
    /// etcd to talk to", deadline errors are timeouts, the rest is etcd refusing the request.
    pub(crate) fn from_etcd(context: &str, err: etcd_client::Error) -> Self {
        use etcd_client::Error as E;
        use tonic::Code;
        let msg = format!("{context}: {}", describe(&err));
        match &err {
            E::TransportError(_) | E::IoError(_) => Error::Unavailable(msg),
            E::GRpcStatus(s) => match s.code() {
                Code::Unavailable | Code::Cancelled | Code::Unknown => Error::Unavailable(msg),
                Code::DeadlineExceeded => Error::Timeout(Duration::ZERO, msg),
                Code::InvalidArgument | Code::OutOfRange => Error::InvalidArgument(msg),
                _ => Error::Etcd(msg),
            },
            E::InvalidArgs(_) | E::InvalidUri(_) | E::EndpointError(_) => {
                Error::InvalidArgument(msg)
            }
            _ => Error::Etcd(msg),
        }
    }

    /// True when retrying later may succeed (the registry and discovery loops use this).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::Timeout(..))
    }
}

/// A one-line description of an etcd-client error, with the gRPC message rather than the
/// whole status dump (which includes binary metadata).
fn describe(err: &etcd_client::Error) -> String {
    match err {
        etcd_client::Error::GRpcStatus(s) => {
            format!("{:?}: {}", s.code(), s.message())
        }
        etcd_client::Error::TransportError(t) => {
            // tonic's Display says only "transport error"; the source says why.
            let mut out = t.to_string();
            let mut src = std::error::Error::source(t);
            while let Some(s) = src {
                out.push_str(": ");
                out.push_str(&s.to_string());
                src = s.source();
            }
            out
        }
        other => other.to_string(),
    }
}
