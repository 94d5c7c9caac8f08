#!/usr/bin/env python3
"""Run one test command against a private, throw-away etcd server.

Usage: with_etcd.py [--etcd PATH] [--etcdctl PATH] [--registry-bin PATH] [--env NAME=VALUE]...
                    [--tls | --mtls] [--auth] [--] COMMAND [ARG...]

Starts `etcd` on two free loopback ports with a temporary data directory, waits until it
answers (at most ~10 s), runs COMMAND with these extra environment variables:

  ETCD_SD_TEST_ENDPOINTS     http://127.0.0.1:<client port> (https:// with --tls/--mtls)
  ETCD_SD_TEST_MODE          "plain", or the security modes joined by commas: "tls",
                             "mtls", "auth", "tls,auth", ...
  ETCD_SD_TEST_REGISTRY_BIN  the registry example (if --registry-bin was given)
  ETCDCTL                    the etcdctl binary (if found)
  ETCDCTL_API                3

Security modes (they need the `openssl` CLI; --auth also needs etcdctl):

  --tls    etcd serves TLS on its client URL (https://), with a server certificate for
           IP:127.0.0.1, DNS:localhost and DNS:etcd.test (serverAuth) signed by a test CA.
  --mtls   like --tls, and etcd requires a client certificate signed by that CA
           (--client-cert-auth --trusted-ca-file).
  --auth   etcd with auth enabled and simple tokens that expire after 2 s
           (--auth-token=simple --auth-token-ttl=2): user root (password "rootpw") and user
           svc (password "S3cret-pw", role svc: readwrite on the prefix /service/ only).

With any of them a throw-away PKI is generated with `openssl` in the temporary directory and
passed on (PEM files; keys are unencrypted PKCS#8):

  ETCD_SD_TEST_CA            the CA that signed every certificate below
  ETCD_SD_TEST_OTHER_CA      a second, unrelated CA (signed nothing here)
  ETCD_SD_TEST_SERVER_CERT, ETCD_SD_TEST_SERVER_KEY     etcd's certificate (as above)
  ETCD_SD_TEST_CLIENT_CERT, ETCD_SD_TEST_CLIENT_KEY     a client certificate (clientAuth)
  ETCD_SD_TEST_EXPIRED_CERT, ETCD_SD_TEST_EXPIRED_KEY   a client certificate that expired in
                                                        2001 (valid 2000-01-01..2001-01-01)
  ETCD_SD_TEST_V1_CERT, ETCD_SD_TEST_V1_KEY             a valid client certificate that is
                                                        X.509 v1 (`openssl x509 -req` without
                                                        extensions); not set if this openssl
                                                        adds extensions by default

and with --auth also ETCD_SD_TEST_USER=svc, ETCD_SD_TEST_PASSWORD=S3cret-pw,
ETCD_SD_TEST_ROOT_USER=root, ETCD_SD_TEST_ROOT_PASSWORD=rootpw. The matching etcdctl
settings are exported as ETCDCTL_CACERT, ETCDCTL_CERT, ETCDCTL_KEY and ETCDCTL_USER
(root:rootpw), so a plain `etcdctl --endpoints=$ETCD_SD_TEST_ENDPOINTS ...` in the test works
(do not pass those flags as well: etcdctl 3.4 refuses a flag that shadows its variable).

then stops etcd by PID (SIGTERM, then SIGKILL), removes the directory and exits with
COMMAND's exit code (128 + N if it was killed by signal N). If etcd cannot be started the
exit code is 2 and etcd's log is printed. Python 3 standard library only; Linux.
"""

import argparse
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

START_TIMEOUT_S = 10.0

# --auth: the users created, and the one prefix the service user may read and write.
ROOT_USER, ROOT_PASSWORD = "root", "rootpw"
SVC_USER, SVC_PASSWORD = "svc", "S3cret-pw"
SVC_PREFIX = "/service/"

# A minimal `openssl ca` configuration: `openssl x509` cannot back-date a certificate, but
# `openssl ca -startdate/-enddate` can (the expired client certificate), and faketime is not
# needed. Paths are relative to the PKI directory (openssl runs there).
CA_CONFIG = """\
[ ca ]
default_ca = test_ca

[ test_ca ]
dir = .
database = $dir/%(name)s-index.txt
serial = $dir/%(name)s-serial
new_certs_dir = $dir/%(name)s-issued
certificate = $dir/%(name)s.pem
private_key = $dir/%(name)s-key.pem
default_md = sha256
default_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no

[ policy_any ]
commonName = supplied

[ req ]
distinguished_name = req_dn
prompt = no

[ req_dn ]
CN = unused

[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:etcd.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def log(msg):
    sys.stderr.write("with_etcd: %s\n" % msg)
    sys.stderr.flush()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now (bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """In a child (etcd, the test): get SIGKILL if this driver dies (e.g. a CTest timeout)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # not Linux, or no prctl: best effort only
        pass


def tcp_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def ctl_env():
    """The environment for our own etcdctl runs: only our flags, no ETCDCTL_* from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"
    return env


def healthy(etcdctl, endpoint, port, ctl_flags):
    if not tcp_open(port):
        return False
    if etcdctl is None:
        return True
    try:
        r = subprocess.run(
            [etcdctl, "--endpoints", endpoint, "--dial-timeout=1s",
             "--command-timeout=2s"] + ctl_flags + ["get", "--prefix", "/etcd-sd-health-probe"],
            env=ctl_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def etcdctl_must(etcdctl, endpoint, ctl_flags, args):
    """Runs etcdctl with `args`; raises RuntimeError with its output if it fails."""
    cmd = [etcdctl, "--endpoints", endpoint, "--dial-timeout=2s",
           "--command-timeout=5s"] + ctl_flags + args
    r = subprocess.run(cmd, env=ctl_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=15)
    if r.returncode != 0:
        raise RuntimeError("etcdctl %s failed (exit %d): %s"
                           % (" ".join(args), r.returncode,
                              r.stdout.decode("utf-8", "replace").strip()))


def openssl(pki, *args):
    """Runs `openssl ARGS` in the PKI directory; raises RuntimeError with its output."""
    r = subprocess.run(["openssl"] + list(args), cwd=pki, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed (exit %d): %s"
                           % (" ".join(args), r.returncode,
                              r.stdout.decode("utf-8", "replace").strip()))


def make_pki(pki):
    """Generates the test PKI in the directory `pki` (see the module docstring); returns the
    PEM paths by name."""
    os.makedirs(pki)

    def key(name):
        openssl(pki, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", name + "-key.pem")

    def ca(name, cn):
        with open(os.path.join(pki, name + ".cnf"), "w") as f:
            f.write(CA_CONFIG % {"name": name})
        open(os.path.join(pki, name + "-index.txt"), "w").close()
        with open(os.path.join(pki, name + "-serial"), "w") as f:
            f.write("1000\n")
        os.makedirs(os.path.join(pki, name + "-issued"))
        key(name)
        openssl(pki, "req", "-config", name + ".cnf", "-new", "-x509", "-key", name + "-key.pem",
                "-subj", "/CN=" + cn, "-days", "30", "-sha256", "-extensions", "ca_ext",
                "-out", name + ".pem")

    def leaf(ca_name, name, cn, ext, dates):
        key(name)
        openssl(pki, "req", "-config", ca_name + ".cnf", "-new", "-key", name + "-key.pem",
                "-subj", "/CN=" + cn, "-out", name + ".csr")
        openssl(pki, "ca", "-batch", "-notext", "-config", ca_name + ".cnf", "-extensions", ext,
                "-in", name + ".csr", "-out", name + ".pem", *dates)

    ca("ca", "etcd-sd test CA")
    ca("other-ca", "someone else's CA")
    leaf("ca", "server", "etcd-sd test server", "server_ext", ["-days", "30"])
    leaf("ca", "client", "etcd-sd test client", "client_ext", ["-days", "30"])
    leaf("ca", "expired", "etcd-sd expired client", "client_ext",
         ["-startdate", "20000101000000Z", "-enddate", "20010101000000Z"])
    # The X.509 v1 client certificate the way many recipes make it: no extensions at all.
    key("client-v1")
    openssl(pki, "req", "-config", "ca.cnf", "-new", "-key", "client-v1-key.pem",
            "-subj", "/CN=etcd-sd v1 client", "-out", "client-v1.csr")
    openssl(pki, "x509", "-req", "-in", "client-v1.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
            "-set_serial", "4242", "-days", "30", "-sha256", "-out", "client-v1.pem")
    text = subprocess.run(["openssl", "x509", "-in", "client-v1.pem", "-noout", "-text"],
                          cwd=pki, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    is_v1 = b"Version: 1 (0x0)" in text
    if not is_v1:
        log("this openssl made client-v1.pem as v3: no ETCD_SD_TEST_V1_CERT")
    path = lambda name: os.path.join(pki, name)  # noqa: E731
    v1 = {"V1_CERT": path("client-v1.pem"), "V1_KEY": path("client-v1-key.pem")} if is_v1 else {}
    return dict(v1, **{
        "CA": path("ca.pem"),
        "OTHER_CA": path("other-ca.pem"),
        "SERVER_CERT": path("server.pem"),
        "SERVER_KEY": path("server-key.pem"),
        "CLIENT_CERT": path("client.pem"),
        "CLIENT_KEY": path("client-key.pem"),
        "EXPIRED_CERT": path("expired.pem"),
        "EXPIRED_KEY": path("expired-key.pem"),
    })


def enable_auth(etcdctl, endpoint, ctl_flags):
    """Creates root and svc (readwrite on SVC_PREFIX only) and turns auth on."""
    for args in (["user", "add", "%s:%s" % (ROOT_USER, ROOT_PASSWORD)],
                 ["role", "add", "svc"],
                 ["role", "grant-permission", "svc", "--prefix=true", "readwrite", SVC_PREFIX],
                 ["user", "add", "%s:%s" % (SVC_USER, SVC_PASSWORD)],
                 ["user", "grant-role", SVC_USER, "svc"],
                 ["auth", "enable"]):
        etcdctl_must(etcdctl, endpoint, ctl_flags, args)


def print_log(path):
    try:
        with open(path, "r", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return
    sys.stderr.write("---- etcd log (last 40 lines) ----\n")
    sys.stderr.writelines(lines[-40:])
    sys.stderr.write("---- end of etcd log ----\n")


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--etcd", default=os.environ.get("ETCD_BIN") or shutil.which("etcd"))
    ap.add_argument("--etcdctl", default=os.environ.get("ETCDCTL") or shutil.which("etcdctl"))
    ap.add_argument("--registry-bin", default=None)
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--tls", action="store_true", help="serve TLS on the client URL")
    ap.add_argument("--mtls", action="store_true", help="TLS and require client certificates")
    ap.add_argument("--auth", action="store_true", help="enable auth (users root and svc)")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        ap.error("no test command given")
    if not args.etcd:
        log("etcd not found (install etcd-server or set ETCD_BIN)")
        return 2
    tls = args.tls or args.mtls
    modes = (["mtls"] if args.mtls else ["tls"] if args.tls else []) + (["auth"] if args.auth else [])
    if modes and not shutil.which("openssl"):
        log("the openssl CLI is needed for --tls/--mtls/--auth (apt install openssl)")
        return 2
    if args.auth and not args.etcdctl:
        log("etcdctl is needed for --auth (install etcd-client or set ETCDCTL)")
        return 2

    # A data directory on tmpfs when there is one: etcd fsyncs every write.
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix="etcd-sd-test-", dir=base)
    etcd_log = os.path.join(tmp, "etcd.log")
    proc = None

    # Stop etcd and clean up when CTest (or a user) stops us with SIGTERM/SIGINT/SIGHUP.
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    try:
        pki = {}
        etcd_flags = []  # extra etcd flags for the security modes
        ctl_flags = []   # the etcdctl flags that go with them (health checks, auth setup)
        if modes:
            try:
                pki = make_pki(os.path.join(tmp, "pki"))
            except (OSError, RuntimeError) as e:
                log("cannot generate the test certificates: %s" % e)
                return 2
        if tls:
            etcd_flags += ["--cert-file", pki["SERVER_CERT"], "--key-file", pki["SERVER_KEY"]]
            ctl_flags += ["--cacert", pki["CA"]]
        if args.mtls:
            etcd_flags += ["--client-cert-auth", "--trusted-ca-file", pki["CA"]]
            ctl_flags += ["--cert", pki["CLIENT_CERT"], "--key", pki["CLIENT_KEY"]]
        if args.auth:
            etcd_flags += ["--auth-token=simple", "--auth-token-ttl=2"]
        scheme = "https" if tls else "http"

        for attempt in range(3):  # a freshly picked port can be taken by someone else
            client, peer = free_port(), free_port()
            endpoint = "%s://127.0.0.1:%d" % (scheme, client)
            peer_url = "http://127.0.0.1:%d" % peer
            data = os.path.join(tmp, "data%d" % attempt)
            with open(etcd_log, "ab") as lf:
                proc = subprocess.Popen(
                    [args.etcd, "--name", "t", "--data-dir", data,
                     "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
                     "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                     "--initial-cluster", "t=" + peer_url,
                     "--initial-cluster-state", "new", "--initial-cluster-token", "etcd-sd-test",
                     "--log-level", "warn"] + etcd_flags,
                    stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent, close_fds=True)
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline and proc.poll() is None:
                if healthy(args.etcdctl, endpoint, client, ctl_flags):
                    break
                time.sleep(0.05)
            else:
                stop(proc)
                proc = None
                log("etcd did not become healthy on %s (attempt %d)" % (endpoint, attempt + 1))
                continue
            break
        if proc is None:
            print_log(etcd_log)
            return 2

        if args.auth:
            try:
                enable_auth(args.etcdctl, endpoint, ctl_flags)
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
                log("cannot enable auth: %s" % e)
                print_log(etcd_log)
                return 2
            ctl_flags += ["--user", "%s:%s" % (ROOT_USER, ROOT_PASSWORD)]
            if not healthy(args.etcdctl, endpoint, client, ctl_flags):
                log("etcd does not answer root after auth enable")
                print_log(etcd_log)
                return 2

        env = dict(os.environ)
        env["ETCD_SD_TEST_ENDPOINTS"] = endpoint
        env["ETCD_SD_TEST_MODE"] = ",".join(modes) or "plain"
        env["ETCDCTL_API"] = "3"
        for name in ("ETCDCTL_CACERT", "ETCDCTL_CERT", "ETCDCTL_KEY", "ETCDCTL_USER"):
            env.pop(name, None)
        if args.etcdctl:
            env["ETCDCTL"] = args.etcdctl
        if args.registry_bin:
            env["ETCD_SD_TEST_REGISTRY_BIN"] = os.path.abspath(args.registry_bin)
        for name, path in pki.items():
            env["ETCD_SD_TEST_" + name] = path
        if tls:
            env["ETCDCTL_CACERT"] = pki["CA"]
        if args.mtls:
            env["ETCDCTL_CERT"] = pki["CLIENT_CERT"]
            env["ETCDCTL_KEY"] = pki["CLIENT_KEY"]
        if args.auth:
            env["ETCD_SD_TEST_USER"] = SVC_USER
            env["ETCD_SD_TEST_PASSWORD"] = SVC_PASSWORD
            env["ETCD_SD_TEST_ROOT_USER"] = ROOT_USER
            env["ETCD_SD_TEST_ROOT_PASSWORD"] = ROOT_PASSWORD
            env["ETCDCTL_USER"] = "%s:%s" % (ROOT_USER, ROOT_PASSWORD)
        for kv in args.env:
            name, sep, value = kv.partition("=")
            if not sep:
                ap.error("--env wants NAME=VALUE, got %r" % kv)
            env[name] = value

        log("etcd pid %d on %s (%s); running: %s"
            % (proc.pid, endpoint, env["ETCD_SD_TEST_MODE"], " ".join(cmd)))
        t0 = time.monotonic()
        test = subprocess.Popen(cmd, env=env, preexec_fn=die_with_parent)
        try:
            rc = test.wait()
        except BaseException:
            test.kill()
            test.wait()
            raise
        log("test exited with %d after %.1f s" % (rc, time.monotonic() - t0))
        if rc < 0:
            rc = 128 - rc
        if rc != 0 and proc.poll() is not None:
            log("etcd died during the test (exit %s)" % proc.returncode)
            print_log(etcd_log)
        return rc
    finally:
        stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
