//! Direct etcd-client connections, for the commands that read what the library does not
//! expose (`services`: lease TTLs; `check`: each member's status).

use crate::{etcd, usage, Failure};
use etcd_client::{Client, ConnectOptions};
use std::time::Duration;

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| etcd(format!("cannot start a runtime: {e}")))
}

pub(crate) async fn connect(endpoints: &[String], timeout: Duration) -> Result<Client, Failure> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(timeout)
        .with_timeout(timeout);
    tokio::time::timeout(timeout, Client::connect(endpoints, Some(opts)))
        .await
        .map_err(|_| {
            etcd(format!(
                "no answer from {} within {timeout:?}",
                endpoints.join(",")
            ))
        })?
        .map_err(|e| etcd(format!("cannot reach etcd at {}: {e}", endpoints.join(","))))
}

pub(crate) fn parse_endpoints(list: &str) -> Result<Vec<String>, Failure> {
    etcd_sd::endpoints::parse_endpoints(list).map_err(|e| usage(e.to_string()))
}
