//! Parsing the endpoint list the caller gives: `"http://127.0.0.1:2379"`, `"127.0.0.1:2379"`,
//! or several of either separated by commas.

use crate::error::{Error, Result};
use url::Url;

/// Parses a comma-separated endpoint list into normalized `scheme://host:port` URLs.
///
/// Every part must have a host and an explicit port; only `http` and `https` are accepted.
/// The error message names the offending part.
pub fn parse_endpoints(list: &str) -> Result<Vec<String>> {
    if list.trim().is_empty() {
        return Err(Error::invalid("endpoints are empty"));
    }
    list.split(',').map(|part| parse_one(part.trim())).collect()
}

fn parse_one(part: &str) -> Result<String> {
    let bad = |why: &str| Error::invalid(format!("bad endpoint {part:?}: {why}"));
    if part.is_empty() {
        return Err(bad("empty entry in the list"));
    }
    let with_scheme = if part.contains("://") {
        part.to_owned()
    } else {
        format!("http://{part}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(bad(&format!("scheme {other:?} is not http or https"))),
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    // `Url::port()` is None for a default port too ("http://h:80"); read the text instead.
    let port = url
        .port_or_known_default()
        .filter(|_| has_explicit_port(part))
        .ok_or_else(|| bad("no port (etcd has no default port; write host:2379)"))?;
    if port == 0 {
        return Err(bad("port 0"));
    }
    if !(url.path().is_empty() || url.path() == "/") || url.query().is_some() {
        return Err(bad("a path or query is not allowed"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials belong in the options, not the URL"));
    }
    Ok(format!("{}://{}:{}", url.scheme(), host, port))
}

/// True when the authority part of `part` ends in `:digits` (so a port was written).
fn has_explicit_port(part: &str) -> bool {
    let rest = part.split_once("://").map_or(part, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    match authority.rsplit_once(':') {
        Some((host, port)) => {
            !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_urls_and_host_ports() {
        assert_eq!(
            parse_endpoints("http://127.0.0.1:2379").unwrap(),
            vec!["http://127.0.0.1:2379"]
        );
        assert_eq!(
            parse_endpoints("127.0.0.1:2379, localhost:22379,https://[::1]:3").unwrap(),
            vec![
                "http://127.0.0.1:2379",
                "http://localhost:22379",
                "https://[::1]:3"
            ]
        );
    }

    #[test]
    fn rejects_bad_parts_by_name() {
        for bad in [
            "",
            " ",
            "http://",
            "127.0.0.1",
            "127.0.0.1:notaport",
            "ftp://x:1",
            "http://h:1/path",
            "http://h:99999",
            "a:1,,b:2",
            "http://u:p@h:1",
            "h:0",
        ] {
            let err = parse_endpoints(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err}");
        }
        let msg = parse_endpoints("127.0.0.1:2379,bad:port")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("bad:port"), "{msg}");
    }
}
