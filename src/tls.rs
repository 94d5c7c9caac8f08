//! Turning the TLS file settings into rustls configuration (through tonic), reading each file
//! so that a missing, unreadable or non-PEM file is an error that names it.

use crate::error::{Error, Result};
use crate::options::TlsFiles;
use etcd_client::{Certificate, Identity, TlsOptions};
use std::path::Path;

/// The PEM bytes read from the configured files; also what tells two connections apart.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct TlsMaterial {
    ca: Option<Vec<u8>>,
    cert: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
    server_name: Option<String>,
}

impl TlsMaterial {
    pub(crate) fn load(files: &TlsFiles) -> Result<Self> {
        Ok(TlsMaterial {
            ca: files
                .ca_file
                .as_deref()
                .map(|p| read_pem("CA", p))
                .transpose()?,
            cert: files
                .cert_file
                .as_deref()
                .map(|p| read_pem("client certificate", p))
                .transpose()?,
            key: files
                .key_file
                .as_deref()
                .map(|p| read_pem("client key", p))
                .transpose()?,
            server_name: files.server_name.clone(),
        })
    }

    /// The tonic TLS configuration for `https://` endpoints.
    pub(crate) fn config(&self) -> TlsOptions {
        let mut tls = TlsOptions::new();
        tls = match &self.ca {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
            None => tls.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        if let Some(name) = &self.server_name {
            tls = tls.domain_name(name.clone());
        }
        tls
    }
}

fn read_pem(what: &str, path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::invalid(format!("cannot read {what} file {}: {e}", path.display())))?;
    if !bytes.windows(10).any(|w| w == b"-----BEGIN") {
        return Err(Error::invalid(format!(
            "{what} file {} is not PEM",
            path.display()
        )));
    }
    Ok(bytes)
}
