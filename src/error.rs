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
    #[error("timed out after {}: {}", crate::human::human(*.0), .1)]
    Timeout(Duration, String),
    /// etcd answered with an error (permission, lease not found, ...).
    #[error("etcd error: {0}")]
    Etcd(String),
    /// etcd refused the credentials, or the user lacks permission on the key or prefix.
    #[error("etcd auth: {0}")]
    Auth(String),
    /// TLS failed: certificate not trusted, expired or mismatched, or TLS spoken to a plain
    /// port.
    #[error("TLS: {0}")]
    Tls(String),
    /// The object was already closed.
    #[error("closed: {0}")]
    Closed(String),
    /// A bug in etcd-sd (a panic caught at the boundary, a poisoned lock).
    #[error("internal error: {0}")]
    Internal(String),
    /// The key or lease does not exist (a conditional put on a missing key, an unknown lease).
    #[error("not found: {0}")]
    NotFound(String),
    /// The key exists already (a put that must create it).
    #[error("exists: {0}")]
    Exists(String),
    /// A lock or a leadership is lost, or a kept lease ended: its lease expired, was revoked
    /// (by another process or by this one), or its key was deleted. It is never taken again
    /// behind its owner's back.
    #[error("lost: {0}")]
    Lost(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// Classifies an `etcd-client` error: transport failures and gRPC `Unavailable` mean "no
    /// etcd to talk to", deadline errors are timeouts, the rest is etcd refusing the request.
    /// The message is one line: the gRPC message and the causes, no metadata dump.
    pub(crate) fn from_etcd(context: &str, err: etcd_client::Error) -> Self {
        use etcd_client::Error as E;
        use tonic::Code;
        let msg = format!("{context}: {}", describe(&err));
        if let E::GRpcStatus(s) = &err {
            if is_auth_message(s.message()) || s.code() == Code::PermissionDenied {
                return Error::Auth(msg);
            }
        }
        if looks_like_tls_failure(&msg) {
            return Error::Tls(msg);
        }
        match &err {
            E::TransportError(_) | E::IoError(_) => Error::Unavailable(msg),
            E::GRpcStatus(s) => match s.code() {
                Code::Unauthenticated => Error::Auth(msg),
                // etcd's lock and election services pass etcd's refusals on with code
                // Unknown: a missing lease, an election nobody leads, a proclaim by a
                // candidate that no longer leads. Those are answers, not outages: not retried,
                // no failover ("election: no leader" is not raft's "etcdserver: no leader").
                Code::Unknown
                    if s.message().contains("lease not found")
                        || s.message().contains("election: no leader") =>
                {
                    Error::NotFound(msg)
                }
                Code::Unknown if s.message().contains("election: not leader") => Error::Etcd(msg),
                Code::Unavailable | Code::Cancelled | Code::Unknown => Error::Unavailable(msg),
                Code::DeadlineExceeded => Error::Timeout(Duration::ZERO, msg),
                // etcd: a lease or member that does not exist.
                Code::NotFound => Error::NotFound(msg),
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

    /// The message without the variant's prefix.
    pub(crate) fn detail(&self) -> &str {
        match self {
            Error::InvalidArgument(m)
            | Error::Unavailable(m)
            | Error::Timeout(_, m)
            | Error::Etcd(m)
            | Error::Auth(m)
            | Error::Tls(m)
            | Error::Closed(m)
            | Error::Internal(m)
            | Error::NotFound(m)
            | Error::Exists(m)
            | Error::Lost(m) => m,
        }
    }

    /// The connection was dropped by the server (reset, broken pipe, closed): with TLS 1.3 also
    /// what a rejected client certificate can look like.
    pub(crate) fn is_dropped(&self) -> bool {
        matches!(self, Error::Unavailable(m)
            if ["broken pipe", "reset", "closed"].iter().any(|p| m.contains(p)))
    }

    /// etcd answered that auth is not enabled (credentials were configured before it was).
    pub(crate) fn is_auth_not_enabled(&self) -> bool {
        self.to_string().contains("authentication is not enabled")
    }

    /// The revision asked for was compacted.
    pub(crate) fn is_compacted(&self) -> bool {
        matches!(self, Error::InvalidArgument(m) | Error::Etcd(m) if m.contains("compacted"))
    }

    /// etcd's election service says the candidate named does not lead (any more).
    pub(crate) fn is_not_leader(&self) -> bool {
        matches!(self, Error::Etcd(m) if m.contains("election: not leader"))
    }

    /// A lease named in the request does not exist (expired or revoked).
    pub(crate) fn is_lease_not_found(&self) -> bool {
        matches!(self, Error::NotFound(m) | Error::Etcd(m) if m.contains("lease not found"))
    }

    /// True when the auth token is no longer accepted (expired, or issued before the auth
    /// store changed): authenticating again and retrying will succeed.
    pub(crate) fn is_stale_token(&self) -> bool {
        matches!(self, Error::Auth(m) if m.contains("invalid auth token")
            || m.contains("revision of auth store is old"))
    }
}

/// etcd's messages for refused credentials, stale tokens and missing permissions.
fn is_auth_message(m: &str) -> bool {
    [
        "authentication failed",
        "invalid auth token",
        "revision of auth store is old",
        "permission denied",
        "user name is empty",
        "user name not found",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// What rustls and h2 say when the TLS handshake fails or one side does not speak TLS.
fn looks_like_tls_failure(m: &str) -> bool {
    [
        "certificate",
        "Certificate",
        "handshake",
        "received corrupt message",
        "InvalidContentType",
        "peer is incompatible",
        "peer misbehaved",
        "tls",
        "TLS",
        "alert",
        "KeyMismatch",
        "private key",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// A one-line description of an etcd-client error, with the gRPC message rather than the
/// whole status dump (which includes binary metadata).
fn describe(err: &etcd_client::Error) -> String {
    match err {
        etcd_client::Error::GRpcStatus(s) => {
            format!("{:?}: {}{}", s.code(), s.message(), causes(s))
        }
        // tonic's Display says only "transport error"; the sources say why.
        etcd_client::Error::TransportError(t) => format!("{t}{}", causes(t)),
        other => other.to_string(),
    }
}

/// ": cause: its cause..." for an error's source chain, skipping repeats.
fn causes(err: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut src = err.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = s.source();
    }
    out
}

/// What sort of failure an error is, as far as the log is concerned: a change of kind during
/// an outage is news, another failure of the same kind is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The endpoint refused the TCP connection (nothing listens there).
    Refused,
    /// No answer in time.
    TimedOut,
    /// A member answered that it has no leader.
    NoLeader,
    /// Any other "no etcd to talk to" (reset, closed, unreachable).
    Unavailable,
    Tls,
    Auth,
    /// etcd answered with an error (or anything else).
    Other,
}

impl FailureKind {
    pub(crate) fn of(err: &Error) -> FailureKind {
        match err {
            Error::Timeout(..) => FailureKind::TimedOut,
            Error::Unavailable(m) if is_refused_message(m) => FailureKind::Refused,
            Error::Unavailable(m) if m.contains("no leader") => FailureKind::NoLeader,
            Error::Unavailable(_) => FailureKind::Unavailable,
            Error::Tls(_) => FailureKind::Tls,
            Error::Auth(_) => FailureKind::Auth,
            _ => FailureKind::Other,
        }
    }
}

/// True when an error message says the TCP connection was refused. Matched on the errno that
/// Rust's `io::Error` always prints (`(os error 111)`), not on the text before it, which
/// `strerror` may translate when the program set a locale.
pub(crate) fn is_refused_message(msg: &str) -> bool {
    msg.contains(&format!("(os error {})", libc::ECONNREFUSED))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What a refused connection looks like (shared with outage.rs's tests).
    pub(crate) fn refused() -> Error {
        Error::Unavailable(format!(
            "lease grant: tcp connect error: Connection refused (os error {})",
            libc::ECONNREFUSED
        ))
    }

    #[test]
    fn refusals_with_code_unknown() {
        // v3lock / v3election pass etcdserver's error through as code Unknown.
        let status = tonic::Status::new(
            tonic::Code::Unknown,
            "etcdserver: requested lease not found",
        );
        let e = Error::from_etcd("lock", etcd_client::Error::GRpcStatus(status));
        assert!(matches!(e, Error::NotFound(_)), "{e:?}");
        assert!(e.is_lease_not_found() && !e.is_transient());
        let status = tonic::Status::new(tonic::Code::Unknown, "election: no leader");
        let e = Error::from_etcd("leader", etcd_client::Error::GRpcStatus(status));
        assert!(matches!(e, Error::NotFound(_)), "{e:?}");
        assert_ne!(FailureKind::of(&e), FailureKind::NoLeader);
        let status = tonic::Status::new(tonic::Code::Unknown, "election: not leader");
        let e = Error::from_etcd("proclaim", etcd_client::Error::GRpcStatus(status));
        assert!(matches!(e, Error::Etcd(_)), "{e:?}");
        let other = tonic::Status::new(tonic::Code::Unknown, "transport: broken");
        let e = Error::from_etcd("lock", etcd_client::Error::GRpcStatus(other));
        assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    }

    #[test]
    fn kinds() {
        assert_eq!(FailureKind::of(&refused()), FailureKind::Refused);
        let no_leader = Error::Unavailable("put: Unavailable: etcdserver: no leader".into());
        assert_eq!(FailureKind::of(&no_leader), FailureKind::NoLeader);
        let reset = Error::Unavailable("watch: connection reset by peer".into());
        assert_eq!(FailureKind::of(&reset), FailureKind::Unavailable);
        assert_eq!(
            FailureKind::of(&Error::Timeout(Duration::ZERO, "x".into())),
            FailureKind::TimedOut
        );
        assert_eq!(FailureKind::of(&Error::Tls("x".into())), FailureKind::Tls);
        assert_eq!(FailureKind::of(&Error::Auth("x".into())), FailureKind::Auth);
        assert_eq!(
            FailureKind::of(&Error::Etcd("x".into())),
            FailureKind::Other
        );
        // The number, not the (translatable) words.
        assert!(!is_refused_message("Connection refused"));
        assert!(is_refused_message(&format!(
            "Verbindungsaufbau abgelehnt (os error {})",
            libc::ECONNREFUSED
        )));
    }
}
