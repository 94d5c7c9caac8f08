#!/usr/bin/env python3
"""Runs the etcd-cpp-apiv3-style programs of tests/compat/ against a private etcd that this
driver starts, kills and restarts itself (tests/with_etcd.py cannot restart its etcd).

Usage: faults.py --etcd ETCD --etcdctl ETCDCTL --only samples|faults|all
                 --registry_sample BIN --discovery_sample BIN --template_app BIN
                 --sync_user BIN --then_user BIN --keepalive_handler BIN

samples: each program once, as its users run it (registry + discovery samples, the
         template Registry/Discovery, the SyncClient and .then() users, the hand-made
         KeepAlive with a handler).
faults:  the long-running ones under faults, checking what issue 9 asks:
  restart   etcd SIGKILLed, restarted after more than the TTL (3 s): every registered key is
            back (the template Registry's within 1 s of etcd answering), the Discoveries see
            every later change, KeepAlive::Lease() is the new lease, a put naming the old
            lease id goes under the new one, no handler runs;
  revoke    the lease revoked from outside: the key comes back, Discovery sees it go and return;
  compact   a Discovery paused while etcd restarts, changes are made and compacted: on resume
            it reports the difference (online/offline) and keeps watching;
  dead      etcd gone: destructors return in bounded time; every program pointed at a dead
            endpoint fails within the connect timeout (no hang, no "lease 0").
Prints the measured figures ("figure: ..."). Python 3 standard library only; Linux.
"""

import argparse
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import with_etcd  # noqa: E402  (free_port, tcp_open, die_with_parent, ctl_env)

TIMEOUT = 10.0
TTL = 3
CONNECT_TIMEOUT_MS = 1500  # for the programs (ETCD_SD_CONNECT_TIMEOUT_MS)
REQUEST_TIMEOUT_MS = 1000  # for the programs pointed at a dead endpoint (ETCD_SD_REQUEST_TIMEOUT_MS)


def log(msg):
    sys.stderr.write("faults: %s\n" % msg)
    sys.stderr.flush()


def fail(msg):
    log("FAILED: " + msg)
    raise SystemExit(1)


def figure(msg):
    print("figure: " + msg, flush=True)


class Etcd:
    """A single-member etcd with fixed ports and data directory, so it can be restarted."""

    def __init__(self, etcd, etcdctl, tmp):
        self.etcd, self.etcdctl, self.tmp = etcd, etcdctl, tmp
        self.client, self.peer = with_etcd.free_port(), with_etcd.free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.client
        self.data = os.path.join(tmp, "data")
        self.log = os.path.join(tmp, "etcd.log")
        self.proc = None

    def start(self, token="etcd-sd-compat"):
        """Starts etcd; returns the monotonic time at which it first answered a request."""
        peer_url = "http://127.0.0.1:%d" % self.peer
        with open(self.log, "ab") as lf:
            self.proc = subprocess.Popen(
                [self.etcd, "--name", "t", "--data-dir", self.data,
                 "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
                 "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                 "--initial-cluster", "t=" + peer_url, "--initial-cluster-state", "new",
                 "--initial-cluster-token", token, "--log-level", "warn"],
                stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                preexec_fn=with_etcd.die_with_parent, close_fds=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if with_etcd.tcp_open(self.client) and self.try_ctl("get", "/etcd-sd-probe") is not None:
                return time.monotonic()
            time.sleep(0.02)
        with_etcd.print_log(self.log)
        fail("etcd did not start on %s" % self.endpoint)

    def wipe(self):
        """Removes the data directory: the next start() is a new, empty etcd."""
        shutil.rmtree(self.data, ignore_errors=True)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self):
        with_etcd.stop(self.proc)
        self.proc = None

    def try_ctl(self, *args):
        try:
            r = subprocess.run([self.etcdctl, "--endpoints", self.endpoint, "--dial-timeout=1s",
                                "--command-timeout=2s"] + list(args),
                               env=with_etcd.ctl_env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.decode() if r.returncode == 0 else None

    def ctl(self, *args):
        out = self.try_ctl(*args)
        if out is None:
            fail("etcdctl %s failed" % " ".join(args))
        return out

    def get_json(self, key):
        return json.loads(self.ctl("get", key, "-w", "json"))

    def kv(self, key):
        """(value, lease) of `key`, or None."""
        kvs = self.get_json(key).get("kvs") or []
        if not kvs:
            return None
        import base64
        return base64.b64decode(kvs[0].get("value", "")).decode(), int(kvs[0].get("lease", 0))

    def revision(self):
        return int(self.get_json("/etcd-sd-probe")["header"]["revision"])


class Proc:
    """A program whose stdout lines are collected by a reader thread."""

    def __init__(self, name, argv, env=None, stdin=subprocess.PIPE):
        self.name = name
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1, env=env,
                                  preexec_fn=with_etcd.die_with_parent)
        self.lines = queue.Queue()
        self.seen = []
        self.err = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def _read_err(self):
        for line in self.p.stderr:
            self.err.append(line.rstrip("\n"))

    def expect(self, pattern, timeout=TIMEOUT):
        """Waits for a line matching the regular expression; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                fail("%s: no line matching %r within %.0f s; got %r; stderr %r"
                     % (self.name, pattern, timeout, self.seen[-20:], self.err[-10:]))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            m = rx.search(line)
            if m:
                return m

    def expect_all(self, patterns, timeout=TIMEOUT):
        """Waits until a line matching each regular expression was seen, in any order."""
        want = {p: re.compile(p) for p in patterns}
        deadline = time.monotonic() + timeout
        while want:
            left = deadline - time.monotonic()
            if left <= 0:
                fail("%s: no line matching %r within %.0f s; got %r; stderr %r"
                     % (self.name, sorted(want), timeout, self.seen[-20:], self.err[-10:]))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            for p, rx in list(want.items()):
                if rx.search(line):
                    del want[p]
                    break

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def wait(self, timeout=TIMEOUT):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            fail("%s did not exit within %.0f s" % (self.name, timeout))

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def env_for(request_timeout_ms=None):
    env = dict(os.environ)
    env["ETCD_SD_CONNECT_TIMEOUT_MS"] = str(CONNECT_TIMEOUT_MS)
    if request_timeout_ms is not None:
        env["ETCD_SD_REQUEST_TIMEOUT_MS"] = str(request_timeout_ms)
    return env


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    fail("%s: not within %.1f s" % (what, timeout))


# --- samples -------------------------------------------------------------------------------

def run_samples(b, etcd):
    ep = etcd.endpoint
    env = env_for()
    reg = Proc("registry_sample", [b.registry_sample, ep, "/s/reg/a", "10.0.0.1:8080"], env)
    lease = int(reg.expect(r"^registered /s/reg/a lease (\d+)$").group(1))
    if lease == 0:
        fail("registry_sample registered under lease 0")
    kv = etcd.kv("/s/reg/a")
    if kv is None or kv[1] != lease:
        fail("/s/reg/a in etcd: %r, expected lease %d" % (kv, lease))

    disc = Proc("discovery_sample", [b.discovery_sample, ep, "/s/reg"], env)
    disc.expect(r"^initial: /s/reg/a -> 10\.0\.0\.1:8080$")
    disc.expect(r"^watching /s/reg$")

    tmpl = Proc("template_app", [b.template_app, ep, "/s/reg/", "/s/reg/t", "10.0.0.2:9000"], env)
    tmpl.expect(r"^online: /s/reg/a -> 10\.0\.0\.1:8080$")
    # its own key, through the watch (the callback thread may print before main does)
    tmpl.expect_all([r"^registered /s/reg/t lease [1-9]\d*$", r"^online: /s/reg/t -> 10\.0\.0\.2:9000$"])
    disc.expect(r"^online: /s/reg/t -> 10\.0\.0\.2:9000$")

    reg.send("")  # the getchar() wait
    reg.expect(r"^revoked$")
    if reg.wait() != 0:
        fail("registry_sample exit code %s" % reg.p.returncode)
    disc.expect(r"^offline: /s/reg/a \(was 10\.0\.0\.1:8080\)$")
    tmpl.expect(r"^offline: /s/reg/a \(was 10\.0\.0\.1:8080\)$")
    if etcd.kv("/s/reg/a") is not None:
        fail("/s/reg/a still in etcd after leaserevoke")

    ka = Proc("keepalive_handler", [b.keepalive_handler, ep, "/s/ka", "x"], env)
    ka_lease = int(ka.expect(r"^registered /s/ka lease (\d+)$").group(1))
    ka.send("check")
    ka.expect(r"^lease %d check ok$" % ka_lease)
    ka.close_stdin()
    if ka.wait() != 0:
        fail("keepalive_handler exit code %s" % ka.p.returncode)

    for name, binary in (("sync_user", b.sync_user), ("then_user", b.then_user)):
        p = Proc(name, [binary, ep, "/s/" + name], env, stdin=subprocess.DEVNULL)
        p.expect(r"^%s OK$" % name)
        if p.wait() != 0:
            fail("%s exit code %s" % (name, p.p.returncode))

    tmpl.send("quit")
    if tmpl.wait() != 0:
        fail("template_app exit code %s" % tmpl.p.returncode)
    disc.expect(r"^offline: /s/reg/t \(was 10\.0\.0\.2:9000\)$", timeout=TTL + 5)
    disc.kill()
    log("samples OK")


# --- faults --------------------------------------------------------------------------------

def run_faults(b, etcd):
    ep = etcd.endpoint
    env = env_for()
    tmpl = Proc("template_app", [b.template_app, ep, "/f/svc/", "/f/svc/t", "10.1.0.1:9000"], env)
    t_lease = int(tmpl.expect(r"^registered /f/svc/t lease (\d+)$").group(1))
    reg = Proc("registry_sample", [b.registry_sample, ep, "/f/svc/r", "10.1.0.2:9000"], env)
    r_lease = int(reg.expect(r"^registered /f/svc/r lease (\d+)$").group(1))
    ka = Proc("keepalive_handler", [b.keepalive_handler, ep, "/f/svc/k", "10.1.0.3:9000"], env)
    k_lease = int(ka.expect(r"^registered /f/svc/k lease (\d+)$").group(1))
    disc = Proc("discovery_sample", [b.discovery_sample, ep, "/f/svc"], env)
    disc.expect(r"^watching /f/svc$")
    tmpl.expect(r"^online: /f/svc/k -> ")

    keys = {"/f/svc/t": "10.1.0.1:9000", "/f/svc/r": "10.1.0.2:9000", "/f/svc/k": "10.1.0.3:9000"}

    def measure_back(t_up, what):
        back = {}
        deadline = t_up + 15
        while len(back) < len(keys) and time.monotonic() < deadline:
            for k in keys:
                if k not in back:
                    kv = etcd.kv(k)
                    if kv is not None and kv[0] == keys[k]:
                        back[k] = (time.monotonic() - t_up, kv[1])
            time.sleep(0.02)
        for k in keys:
            if k not in back:
                fail("%s: %s not back within 15 s of etcd answering" % (what, k))
            figure("%s: %s present %.2f s after etcd answered (lease %d)"
                   % (what, k, back[k][0], back[k][1]))
        if back["/f/svc/t"][0] > 1.0:
            fail("%s: the template Registry's key came back %.2f s after etcd answered (> 1 s)"
                 % (what, back["/f/svc/t"][0]))
        return back

    def later_changes(what, n):
        etcd.ctl("put", "/f/svc/new%d" % n, "n%d" % n)
        tmpl.expect(r"^online: /f/svc/new%d -> n%d$" % (n, n))
        disc.expect(r"^online: /f/svc/new%d -> n%d$" % (n, n))
        etcd.ctl("del", "/f/svc/new%d" % n)
        tmpl.expect(r"^offline: /f/svc/new%d \(was n%d\)$" % (n, n))
        disc.expect(r"^offline: /f/svc/new%d \(was n%d\)$" % (n, n))
        log("%s: the Discoveries saw the later changes" % what)

    # --- restart past the TTL, same data (etcd restores the leases with a fresh TTL)
    etcd.kill()
    log("etcd SIGKILLed; restarting it after %d s (TTL %d s)" % (TTL + 2, TTL))
    time.sleep(TTL + 2)
    measure_back(etcd.start(), "restart")
    later_changes("restart", 1)
    log("restart OK")

    # --- etcd replaced by an empty one (data lost) after more than the TTL: every lease and
    # key is gone, the revisions start again from 1
    etcd.kill()
    etcd.wipe()
    log("etcd SIGKILLed and its data wiped; starting an empty one after %d s" % (TTL + 1))
    time.sleep(TTL + 1)
    back = measure_back(etcd.start(token="etcd-sd-compat-2"), "replaced")
    old = {"/f/svc/t": t_lease, "/f/svc/r": r_lease, "/f/svc/k": k_lease}
    for k in keys:
        if back[k][1] == old[k] or back[k][1] == 0:
            fail("replaced: %s is under lease %d (old %d)" % (k, back[k][1], old[k]))
    # Lease() is the new lease; Check() does not throw; the handler did not run
    ka.send("check")
    m = ka.expect(r"^(lease (\d+) check ok|check threw: .*|handler called: .*)$")
    if not m.group(1).startswith("lease ") or int(m.group(2)) != back["/f/svc/k"][1]:
        fail("keepalive_handler after the replacement: %r (key under lease %d)"
             % (m.group(1), back["/f/svc/k"][1]))
    # a put naming the old lease id (the Registry's uint64_t copy) goes under the new lease
    tmpl.send("put /f/svc/t2 later")
    tmpl.expect(r"^put done$")
    kv = etcd.kv("/f/svc/t2")
    if kv is None or kv[1] != back["/f/svc/t"][1]:
        fail("/f/svc/t2 put with the old lease id %d: %r (current lease %d)"
             % (t_lease, kv, back["/f/svc/t"][1]))
    figure("replaced: a put naming the old lease %d went under the current lease %d"
           % (t_lease, kv[1]))
    later_changes("replaced", 2)
    log("replaced OK")

    # --- external revoke
    cur = etcd.kv("/f/svc/t")[1]
    t0 = time.monotonic()
    etcd.ctl("lease", "revoke", "%x" % cur)
    kv = wait_for(lambda: etcd.kv("/f/svc/t"), 10, "/f/svc/t back after the revoke")
    figure("revoke: /f/svc/t back %.2f s after the revoke (lease %d -> %d)"
           % (time.monotonic() - t0, cur, kv[1]))
    if kv[1] == cur:
        fail("/f/svc/t still under the revoked lease")
    disc.expect(r"^offline: /f/svc/t \(was 10\.1\.0\.1:9000\)$")
    disc.expect(r"^online: /f/svc/t -> 10\.1\.0\.1:9000$")
    log("revoke OK")

    # --- compaction while a Discovery is away
    etcd.ctl("put", "/f/svc/gone", "g")
    disc.expect(r"^online: /f/svc/gone -> g$")
    os.kill(disc.p.pid, signal.SIGSTOP)
    etcd.kill()
    etcd.start()
    etcd.ctl("put", "/f/svc/c1", "x1")
    etcd.ctl("del", "/f/svc/gone")
    etcd.ctl("put", "/f/svc/c1", "x2")
    rev = etcd.revision()
    etcd.ctl("compact", str(rev))
    t0 = time.monotonic()
    os.kill(disc.p.pid, signal.SIGCONT)
    disc.expect_all([r"^online: /f/svc/c1 -> x2$", r"^offline: /f/svc/gone \(was g\)$"])
    figure("compact: difference delivered %.2f s after the paused Discovery resumed"
           % (time.monotonic() - t0))
    etcd.ctl("put", "/f/svc/after", "a")
    disc.expect(r"^online: /f/svc/after -> a$")
    how = [line for line in disc.err if "compact" in line or "reading the keys again" in line]
    log("compact: the Discovery's log: %r" % how[-3:])
    if not any("was compacted" in line for line in how):
        fail("compact: the Discovery did not report the compaction (log: %r)" % how)
    log("compact OK")

    # --- etcd dead: destructors are bounded
    etcd.kill()
    t0 = time.monotonic()
    tmpl.send("quit")
    if tmpl.wait(timeout=15) != 0:
        fail("template_app exit code %s with etcd dead" % tmpl.p.returncode)
    figure("dead: template_app (Registry + Discovery destructors) exited %.2f s after quit"
           % (time.monotonic() - t0))
    t0 = time.monotonic()
    ka.close_stdin()
    if ka.wait(timeout=15) != 0:
        fail("keepalive_handler exit code %s with etcd dead" % ka.p.returncode)
    figure("dead: keepalive_handler exited %.2f s after EOF" % (time.monotonic() - t0))
    if any("handler called" in line for line in ka.seen):
        fail("the KeepAlive handler ran (an outage must not make it give up)")
    reg.kill()
    disc.kill()

    # --- programs pointed at a dead endpoint: refused, and silent (accepts TCP, never answers)
    env = env_for(REQUEST_TIMEOUT_MS)
    import socket
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        for kind, port in (("refused", with_etcd.free_port()), ("silent", silent.getsockname()[1])):
            run_dead(b, env, kind, "http://127.0.0.1:%d" % port)
    finally:
        silent.close()
    log("dead endpoint OK")


def run_dead(b, env, kind, dead):
    for name, argv in (
            ("registry_sample", [b.registry_sample, dead, "/d/r", "x"]),
            ("template_app", [b.template_app, dead, "/d/", "/d/t", "x"]),
            ("discovery_sample", [b.discovery_sample, dead, "/d"]),
            ("keepalive_handler", [b.keepalive_handler, dead, "/d/k", "x"]),
            ("sync_user", [b.sync_user, dead, "/d/s"]),
            ("then_user", [b.then_user, dead, "/d/t"])):
        t0 = time.monotonic()
        p = Proc(name, argv, env, stdin=subprocess.DEVNULL)
        rc = p.wait(timeout=30)
        took = time.monotonic() - t0
        time.sleep(0.05)  # let the reader threads drain
        out = list(p.seen) + list(p.lines.queue)
        figure("dead endpoint (%s): %s exited %s after %.2f s" % (kind, name, rc, took))
        if rc == 0:
            fail("%s succeeded against a dead endpoint: %r" % (name, out))
        if any(re.search(r"lease 0\b", line) for line in out):
            fail("%s printed a lease 0: %r" % (name, out))
        # each program makes at most a few calls, each bounded by a timeout
        if took > 6 * max(CONNECT_TIMEOUT_MS, REQUEST_TIMEOUT_MS) / 1000.0 + 3:
            fail("%s took %.1f s against a dead endpoint" % (name, took))
        if name == "registry_sample":
            # leasekeepalive(3).get() threw std::runtime_error (uncaught: terminate)
            if not any("leasekeepalive" in line for line in p.err):
                fail("%s: no leasekeepalive error on stderr: %r" % (name, p.err))
        if name == "template_app":
            # its Discovery (made first) could not create its Watcher: std::runtime_error
            if not any("etcd-sd: Watcher on" in line for line in p.err):
                fail("%s: no Watcher error on stderr: %r" % (name, p.err))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--etcd", default=os.environ.get("ETCD_BIN") or shutil.which("etcd"))
    ap.add_argument("--etcdctl", default=os.environ.get("ETCDCTL") or shutil.which("etcdctl"))
    ap.add_argument("--only", choices=("samples", "faults", "all"), default="all")
    for name in ("registry_sample", "discovery_sample", "template_app", "sync_user",
                 "then_user", "keepalive_handler"):
        ap.add_argument("--" + name, required=True)
    args = ap.parse_args()
    if not args.etcd or not args.etcdctl:
        log("etcd and etcdctl are needed")
        return 2
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix="etcd-sd-compat-", dir=base)
    etcd = Etcd(args.etcd, args.etcdctl, tmp)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    t0 = time.monotonic()
    try:
        etcd.start()
        log("etcd on %s" % etcd.endpoint)
        if args.only in ("samples", "all"):
            run_samples(args, etcd)
        if args.only in ("faults", "all"):
            run_faults(args, etcd)
        print("compat %s OK (%.1f s)" % (args.only, time.monotonic() - t0), flush=True)
        return 0
    except SystemExit as e:
        if e.code not in (0, None):
            with_etcd.print_log(etcd.log)
        raise
    finally:
        etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
