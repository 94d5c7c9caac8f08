#!/usr/bin/env python3
"""Smoke test of the two C++ examples against the etcd started by tests/with_etcd.py.

Usage: examples_smoke.py REGISTRY_BIN DISCOVERY_BIN   (needs ETCD_SD_TEST_ENDPOINTS)

Checks the documented behaviour: `registry` prints "registered ...", stays until Enter or
SIGINT/SIGTERM (also with stdin at EOF), then prints "unregistered ..." and exits 0 with its
key revoked; `discovery` prints the initial listing, "watching <prefix>", and online/offline
lines as instances come and go, and exits 0 on SIGINT. Bad arguments exit 1 with a message.
"""

import os
import queue
import signal
import subprocess
import sys
import threading
import time

TIMEOUT = 10.0


def fail(msg):
    sys.stderr.write("examples_smoke: FAILED: %s\n" % msg)
    sys.exit(1)


class Proc:
    """A child whose stdout lines are collected by a reader thread."""

    def __init__(self, argv, stdin):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, want):
        """Waits for a line equal to `want` (or starting with it when it ends with '*')."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                fail("%s: no line %r; got %r" % (os.path.basename(self.argv[0]), want, self.seen))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if line == want or (want.endswith("*") and line.startswith(want[:-1])):
                return line

    def finish(self, sig=None):
        if sig is not None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.p.kill()
            fail("%s did not exit" % self.argv)
        return rc


def main():
    if len(sys.argv) != 3:
        fail("usage: examples_smoke.py REGISTRY_BIN DISCOVERY_BIN")
    reg_bin, disc_bin = sys.argv[1], sys.argv[2]
    ep = os.environ.get("ETCD_SD_TEST_ENDPOINTS")
    if not ep:
        fail("ETCD_SD_TEST_ENDPOINTS is not set")

    # A registrant already there when discovery starts; stdin at EOF: it waits for a signal.
    a = Proc([reg_bin, ep, "/service/user/a", "127.0.0.1:9000", "3"], subprocess.DEVNULL)
    a.expect("registered /service/user/a -> 127.0.0.1:9000 (lease *")

    d = Proc([disc_bin, ep, "/service"], subprocess.DEVNULL)
    d.expect("initial: /service/user/a -> 127.0.0.1:9000")
    d.expect("watching /service")

    # One that stops on Enter.
    b = Proc([reg_bin, ep, "/service/user/b", "127.0.0.1:9001"], subprocess.PIPE)
    b.expect("registered /service/user/b -> 127.0.0.1:9001 (lease *")
    d.expect("online: /service/user/b -> 127.0.0.1:9001")
    time.sleep(0.2)
    if b.p.poll() is not None:
        fail("registry exited before Enter")
    b.p.stdin.write("\n")
    b.p.stdin.flush()
    b.expect("unregistered /service/user/b")
    if b.finish() != 0:
        fail("registry (Enter) exit code %s" % b.p.returncode)
    d.expect("offline: /service/user/b (was 127.0.0.1:9001)")

    # a has been waiting with stdin at EOF: still alive; SIGTERM revokes at once.
    if a.p.poll() is not None:
        fail("registry exited at stdin EOF")
    t0 = time.monotonic()
    if a.finish(signal.SIGTERM) != 0:
        fail("registry (SIGTERM) exit code %s: %s" % (a.p.returncode, a.p.stderr.read()))
    a.expect("unregistered /service/user/a")
    d.expect("offline: /service/user/a (was 127.0.0.1:9000)")
    if time.monotonic() - t0 > 2.0:
        fail("offline line came %.1f s after SIGTERM (lease not revoked?)" % (time.monotonic() - t0))

    # SIGINT ends discovery cleanly.
    if d.finish(signal.SIGINT) != 0:
        fail("discovery (SIGINT) exit code %s" % d.p.returncode)

    # Failures: exit 1 with the library's message.
    r = subprocess.run([reg_bin, "ftp://x:1"], capture_output=True, text=True, timeout=TIMEOUT)
    if r.returncode != 1 or "ftp" not in r.stderr:
        fail("registry with bad endpoints: exit %d, stderr %r" % (r.returncode, r.stderr))
    r = subprocess.run([disc_bin, ep, ""], capture_output=True, text=True, timeout=TIMEOUT)
    if r.returncode != 1 or "prefix" not in r.stderr:
        fail("discovery with empty prefix: exit %d, stderr %r" % (r.returncode, r.stderr))
    r = subprocess.run([reg_bin, ep, "/k", "v", "zero"], capture_output=True, text=True,
                       timeout=TIMEOUT)
    if r.returncode != 1:
        fail("registry with bad ttl: exit %d" % r.returncode)
    print("examples OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
