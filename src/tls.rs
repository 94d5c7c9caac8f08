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
        .and_then(|m| {
            if let (Some(pem), Some(path)) = (&m.cert, &files.cert_file) {
                check_client_cert(pem, path)?;
            }
            Ok(m)
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

/// Refuses, naming the file, a client certificate that rustls would refuse later with only
/// "invalid peer certificate: UnsupportedCertVersion" (a message that sends people looking at
/// the server): an X.509 v1 or v2 certificate. rustls checks, when it loads our identity, that
/// the key matches the certificate, parsing it with webpki, which accepts only v3. (etcd, in
/// Go, would accept a v1 client certificate; the refusal is ours.) `openssl x509 -req` without
/// `-extfile` makes such certificates: any extension makes it v3.
fn check_client_cert(pem: &[u8], path: &Path) -> Result<()> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let first = CertificateDer::pem_slice_iter(pem).next();
    let der = match first {
        Some(Ok(der)) => der,
        // No certificate, or a broken one: rustls says what is wrong when it loads it.
        _ => return Ok(()),
    };
    match x509_version(&der) {
        Some(v) if v < 3 => Err(Error::Tls(format!(
            "client certificate file {} is an X.509 v{v} certificate; etcd-sd's TLS library \
             (rustls) accepts only v3 client certificates. Re-issue it as v3: `openssl x509 -req` \
             makes v1 unless given extensions, so add e.g. `-extfile client.ext` with the line \
             `extendedKeyUsage = clientAuth` (or sign it with `openssl ca`)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// The version (1, 2 or 3) of a DER certificate, None if it does not parse that far.
///
/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { version [0] EXPLICIT INTEGER DEFAULT v1,
/// serialNumber INTEGER, ... }, ... }: an absent `[0]` means v1.
fn x509_version(der: &[u8]) -> Option<u8> {
    let (tag, cert, _) = der_tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = der_tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, first, _) = der_tlv(tbs)?;
    match tag {
        0x02 => Some(1), // the serial number: no version field
        0xa0 => match der_tlv(first)? {
            (0x02, [v], _) if *v < 3 => Some(v + 1),
            _ => None,
        },
        _ => None,
    }
}

/// One DER tag-length-value: (tag, value, the rest). Definite lengths only, as DER requires.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((tag, value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of a certificate: SEQUENCE { SEQUENCE { <first> ... } }.
    fn cert_starting_with(first: &[u8]) -> Vec<u8> {
        let mut tbs = first.to_vec();
        tbs.extend_from_slice(&[0x02, 0x01, 0x07]); // what follows: any TLV
        let mut inner = vec![0x30, tbs.len() as u8];
        inner.extend_from_slice(&tbs);
        let mut outer = vec![0x30, 0x81, inner.len() as u8]; // a long-form length too
        outer.extend_from_slice(&inner);
        outer
    }

    #[test]
    fn reads_the_version() {
        assert_eq!(
            x509_version(&cert_starting_with(&[0x02, 0x02, 0x10, 0x00])),
            Some(1)
        );
        assert_eq!(
            x509_version(&cert_starting_with(&[0xa0, 0x03, 0x02, 0x01, 0x00])),
            Some(1)
        );
        assert_eq!(
            x509_version(&cert_starting_with(&[0xa0, 0x03, 0x02, 0x01, 0x02])),
            Some(3)
        );
        assert_eq!(x509_version(&[0x30, 0x05, 0x30]), None);
        assert_eq!(x509_version(&[]), None);
        assert_eq!(x509_version(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
