//! TLS and auth settings: `--cacert`, `--cert`, `--key`, `--user` and `--password`, with
//! etcdctl's names and meanings, each defaulting to its `ETCD_SD_*` variable (as `--endpoints`
//! defaults to `$ETCD_SD_ENDPOINTS`). They go into the library's options, which every command
//! connects with: the library reads the files, speaks TLS and authenticates.

use crate::{bad_setting, usage, Failure};
use etcd_sd::Options;

/// The variables read when the matching option is not given; an empty one counts as unset.
pub(crate) const CACERT_VAR: &str = "ETCD_SD_CACERT";
pub(crate) const CERT_VAR: &str = "ETCD_SD_CERT";
pub(crate) const KEY_VAR: &str = "ETCD_SD_KEY";
pub(crate) const USER_VAR: &str = "ETCD_SD_USER";
pub(crate) const PASSWORD_VAR: &str = "ETCD_SD_PASSWORD";

/// What the command line said, before the environment fills the gaps.
#[derive(Default)]
pub(crate) struct SecurityFlags {
    pub(crate) cacert: Option<String>,
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
}

/// The settings in force, checked for consistency (not yet for the files' contents).
#[derive(Default)]
pub(crate) struct Security {
    cacert: Option<String>,
    cert_and_key: Option<(String, String)>,
    user: Option<(String, String)>,
}

impl SecurityFlags {
    /// Completes the flags from the environment (`var` looks a variable up) and checks them.
    ///
    /// As in etcdctl: `--user NAME:PASSWORD` splits at the first ':'; with `--password` the
    /// whole `--user` is the name (so a name may hold ':'). Without either, the password comes
    /// from `$ETCD_SD_PASSWORD`.
    pub(crate) fn resolve(self, var: impl Fn(&str) -> Option<String>) -> Result<Security, Failure> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let pick = |flag: Option<String>, name: &str| flag.or_else(|| var(name));
        let cacert = pick(self.cacert, CACERT_VAR);
        let cert_and_key = match (pick(self.cert, CERT_VAR), pick(self.key, KEY_VAR)) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(c), None) => {
                return Err(usage(format!(
                    "client certificate {c:?} without its key: give --key FILE (or ${KEY_VAR})"
                )))
            }
            (None, Some(k)) => {
                return Err(usage(format!(
                    "client key {k:?} without its certificate: give --cert FILE (or ${CERT_VAR})"
                )))
            }
        };
        let user = match (pick(self.user, USER_VAR), self.password) {
            (None, None) if var(PASSWORD_VAR).is_none() => None,
            (None, _) => {
                return Err(usage(format!(
                    "a password without a user: give --user NAME (or ${USER_VAR})"
                )))
            }
            (Some(name), Some(password)) => Some((name, password)),
            (Some(user), None) => match user.split_once(':') {
                Some((name, password)) => Some((name.to_string(), password.to_string())),
                None => match var(PASSWORD_VAR) {
                    Some(password) => Some((user, password)),
                    None => {
                        return Err(usage(format!(
                            "user {user:?} has no password: give --user {user}:PASSWORD, \
                             --password PASSWORD or ${PASSWORD_VAR}"
                        )))
                    }
                },
            },
        };
        Ok(Security {
            cacert,
            cert_and_key,
            user,
        })
    }
}

impl Security {
    /// Puts the settings into the library's options (which check names and TLS against the
    /// endpoints; the files are read when something connects).
    pub(crate) fn apply(&self, o: &mut Options) -> Result<(), Failure> {
        if let Some(ca) = &self.cacert {
            o.set_ca_file(ca).map_err(bad_setting)?;
        }
        if let Some((cert, key)) = &self.cert_and_key {
            o.set_client_cert(cert, key).map_err(bad_setting)?;
        }
        if let Some((name, password)) = &self.user {
            o.set_user(name, password).map_err(bad_setting)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flags: SecurityFlags, env: &[(&str, &str)]) -> Result<Security, String> {
        flags
            .resolve(|n| {
                env.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            })
            .map_err(|f| match f {
                Failure::Usage(m) | Failure::Etcd(m) => m,
            })
    }

    fn user(
        flag: Option<&str>,
        password: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<Option<(String, String)>, String> {
        let flags = SecurityFlags {
            user: flag.map(str::to_string),
            password: password.map(str::to_string),
            ..Default::default()
        };
        resolve(flags, env).map(|s| s.user)
    }

    fn pair(a: &str, b: &str) -> Option<(String, String)> {
        Some((a.to_string(), b.to_string()))
    }

    #[test]
    fn user_and_password_as_etcdctl_takes_them() {
        assert_eq!(user(None, None, &[]), Ok(None));
        assert_eq!(user(Some("svc:pw:x"), None, &[]), Ok(pair("svc", "pw:x")));
        assert_eq!(user(Some("svc:"), None, &[]), Ok(pair("svc", "")));
        assert_eq!(user(Some("a:b"), Some("pw"), &[]), Ok(pair("a:b", "pw")));
        assert_eq!(
            user(Some("svc"), None, &[(PASSWORD_VAR, "env")]),
            Ok(pair("svc", "env"))
        );
        // The flag wins over the variable, for the user and for the password.
        let env = [(USER_VAR, "other:x"), (PASSWORD_VAR, "env")];
        assert_eq!(user(Some("svc"), Some("pw"), &env), Ok(pair("svc", "pw")));
        assert_eq!(user(None, None, &env), Ok(pair("other", "x")));
        assert_eq!(user(Some("svc:pw"), None, &env), Ok(pair("svc", "pw")));
        // An empty variable is unset.
        assert_eq!(user(None, None, &[(USER_VAR, "")]), Ok(None));

        let e = user(Some("svc"), None, &[]).unwrap_err();
        assert!(e.contains("no password") && e.contains(PASSWORD_VAR), "{e}");
        let e = user(None, Some("pw"), &[]).unwrap_err();
        assert!(e.contains("without a user"), "{e}");
        let e = user(None, None, &[(PASSWORD_VAR, "pw")]).unwrap_err();
        assert!(e.contains("without a user"), "{e}");
        assert!(!e.contains("pw\""), "the password is not echoed: {e}");
    }

    #[test]
    fn certificate_and_key_come_together() {
        let flags = |cert: Option<&str>, key: Option<&str>| SecurityFlags {
            cert: cert.map(str::to_string),
            key: key.map(str::to_string),
            ..Default::default()
        };
        let e = resolve(flags(Some("c.pem"), None), &[]).err().unwrap();
        assert!(e.contains("without its key") && e.contains("--key"), "{e}");
        let e = resolve(flags(None, Some("k.pem")), &[]).err().unwrap();
        assert!(
            e.contains("without its certificate") && e.contains("--cert"),
            "{e}"
        );
        let s = resolve(flags(Some("c.pem"), None), &[(KEY_VAR, "k.pem")]).unwrap();
        assert_eq!(s.cert_and_key, pair("c.pem", "k.pem"));
        let s = resolve(flags(None, None), &[(CACERT_VAR, "ca.pem")]).unwrap();
        assert_eq!(s.cacert.as_deref(), Some("ca.pem"));
    }
}
