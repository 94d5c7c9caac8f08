//! Secured etcd servers for the tests: a test PKI generated with rcgen, etcd serving TLS (and
//! requiring client certificates), and etcd with auth enabled.

use super::Etcd;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use std::path::{Path, PathBuf};

/// A CA, a server certificate for 127.0.0.1/localhost, a client certificate, an expired client
/// certificate, and a second, unrelated CA; all PEM files in `dir`.
pub struct Pki {
    pub ca: PathBuf,
    pub ca_key: PathBuf,
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub expired_cert: PathBuf,
    pub expired_key: PathBuf,
}

pub fn write(dir: &Path, name: &str, pem: String) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p
}

fn make_ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    (p.self_signed(&key).unwrap(), key)
}

fn make_leaf(
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    ca: &(rcgen::Certificate, KeyPair),
    expired: bool,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "etcd-sd test");
    p.extended_key_usages = vec![usage];
    if expired {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let cert = p.signed_by(&key, &ca.0, &ca.1).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let ca = make_ca("etcd-sd test CA");
        let other = make_ca("someone else's CA");
        let server = make_leaf(
            &["127.0.0.1", "localhost", "etcd.test"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca,
            false,
        );
        let client = make_leaf(&[], ExtendedKeyUsagePurpose::ClientAuth, &ca, false);
        let expired = make_leaf(&[], ExtendedKeyUsagePurpose::ClientAuth, &ca, true);
        Pki {
            ca: write(dir, "ca.pem", ca.0.pem()),
            ca_key: write(dir, "ca-key.pem", ca.1.serialize_pem()),
            other_ca: write(dir, "other-ca.pem", other.0.pem()),
            server_cert: write(dir, "server.pem", server.0),
            server_key: write(dir, "server-key.pem", server.1),
            client_cert: write(dir, "client.pem", client.0),
            client_key: write(dir, "client-key.pem", client.1),
            expired_cert: write(dir, "expired.pem", expired.0),
            expired_key: write(dir, "expired-key.pem", expired.1),
        }
    }
}

/// A path as a string, for command lines.
pub fn s(p: &Path) -> String {
    p.display().to_string()
}

/// etcd serving TLS (and, with `mtls`, requiring client certificates).
pub fn tls_etcd(mtls: bool) -> (Etcd, Pki, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let mut extra = vec![
        format!("--cert-file={}", s(&pki.server_cert)),
        format!("--key-file={}", s(&pki.server_key)),
    ];
    let mut ctl = vec![format!("--cacert={}", s(&pki.ca))];
    if mtls {
        extra.push("--client-cert-auth".into());
        extra.push(format!("--trusted-ca-file={}", s(&pki.ca)));
        ctl.push(format!("--cert={}", s(&pki.client_cert)));
        ctl.push(format!("--key={}", s(&pki.client_key)));
    }
    (Etcd::start_with("https", extra, ctl), pki, dir)
}

/// etcd with auth on: `root` and `svc` (read/write on `/service/` only); simple tokens that
/// expire after 2 s.
pub fn auth_etcd() -> Etcd {
    let mut etcd = Etcd::start_with(
        "http",
        vec!["--auth-token=simple".into(), "--auth-token-ttl=2".into()],
        vec![],
    );
    for cmd in [
        "user add root:rootpw",
        "role add svc",
        "role grant-permission svc --prefix=true readwrite /service/",
        "user add svc:S3cret-pw",
        "user grant-role svc svc",
        "auth enable",
    ] {
        etcd.ctl(&cmd.split(' ').collect::<Vec<_>>());
    }
    etcd.ctl_args.push("--user=root:rootpw".into());
    etcd
}
