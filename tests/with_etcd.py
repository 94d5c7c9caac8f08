#!/usr/bin/env python3
"""Run one test command against a private, throw-away etcd server.

Usage: with_etcd.py [--etcd PATH] [--etcdctl PATH] [--registry-bin PATH] [--env NAME=VALUE]...
                    [--] COMMAND [ARG...]

Starts `etcd` on two free loopback ports with a temporary data directory, waits until it
answers (at most ~10 s), runs COMMAND with these extra environment variables:

  ETCD_SD_TEST_ENDPOINTS     http://127.0.0.1:<client port>
  ETCD_SD_TEST_REGISTRY_BIN  the registry example (if --registry-bin was given)
  ETCDCTL                    the etcdctl binary (if found)
  ETCDCTL_API                3

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


def healthy(etcdctl, endpoint, port):
    if not tcp_open(port):
        return False
    if etcdctl is None:
        return True
    env = dict(os.environ, ETCDCTL_API="3")
    try:
        r = subprocess.run(
            [etcdctl, "--endpoints", endpoint, "--dial-timeout=1s",
             "--command-timeout=2s", "get", "--prefix", "/etcd-sd-health-probe"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


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
        for attempt in range(3):  # a freshly picked port can be taken by someone else
            client, peer = free_port(), free_port()
            endpoint = "http://127.0.0.1:%d" % client
            peer_url = "http://127.0.0.1:%d" % peer
            data = os.path.join(tmp, "data%d" % attempt)
            with open(etcd_log, "ab") as lf:
                proc = subprocess.Popen(
                    [args.etcd, "--name", "t", "--data-dir", data,
                     "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
                     "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                     "--initial-cluster", "t=" + peer_url,
                     "--initial-cluster-state", "new", "--initial-cluster-token", "etcd-sd-test",
                     "--log-level", "warn"],
                    stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent, close_fds=True)
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline and proc.poll() is None:
                if healthy(args.etcdctl, endpoint, client):
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

        env = dict(os.environ)
        env["ETCD_SD_TEST_ENDPOINTS"] = endpoint
        env["ETCDCTL_API"] = "3"
        if args.etcdctl:
            env["ETCDCTL"] = args.etcdctl
        if args.registry_bin:
            env["ETCD_SD_TEST_REGISTRY_BIN"] = os.path.abspath(args.registry_bin)
        for kv in args.env:
            name, sep, value = kv.partition("=")
            if not sep:
                ap.error("--env wants NAME=VALUE, got %r" % kv)
            env[name] = value

        log("etcd pid %d on %s; running: %s" % (proc.pid, endpoint, " ".join(cmd)))
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
