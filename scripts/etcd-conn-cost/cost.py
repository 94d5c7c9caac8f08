#!/usr/bin/env python3
"""What one client connection of a given shape costs etcd, exactly (docs/performance.md, "Where
etcd's memory per process goes").

Usage: PROBE=/tmp/probe/probe scripts/etcd-conn-cost/cost.py SHAPE[@proxy] ...   (K=200)

For each shape: a fresh single-member etcd (data on /dev/shm, --enable-pprof), optionally an
`etcd grpc-proxy` in front of it (`@proxy`); after 2 s, a reading; then the probe (probe.go)
opens K connections of that shape; 5 s after it says READY, a second reading. A reading forces
a GC (`/debug/pprof/heap?gc=1`) and takes runtime.MemStats from `heap?debug=1` (live heap,
stacks: exact, not sampled), the goroutine count from `goroutine?debug=1`, RSS from /proc, and
etcd's CPU over a 10 s window. Prints one JSON line per shape with the difference divided by K.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

PROBE = os.environ.get("PROBE", "/tmp/probe/probe")
K = int(os.environ.get("K", "200"))
WINDOW = float(os.environ.get("WINDOW", "10"))

SHAPES = {
    "conn": ["-watch", "0", "-lease", "none"],
    "conn+watch1": ["-watch", "1", "-lease", "none"],
    "conn+watch7": ["-watch", "7", "-lease", "none"],
    "conn+lease": ["-watch", "0", "-lease", "stream"],
    "process-after": ["-watch", "7", "-lease", "stream"],
    "process-before": ["-watch", "7", "-lease", "stream", "-split"],
    "after+tonic-windows": ["-watch", "7", "-lease", "stream", "-win", "2097152", "-cwin", "5242880"],
    "after+lease-once": ["-watch", "7", "-lease", "once"],
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(port, path):
    return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).read().decode(errors="replace")


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_ns(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def reading(port, pid, window=0.0):
    c0, t0 = cpu_ns(pid), time.time()
    if window:
        time.sleep(window)
    cpu = (cpu_ns(pid) - c0) / 1e9 / (time.time() - t0) * 100 if window else 0.0
    get(port, "/debug/pprof/heap?gc=1")
    ms = {m.group(1): int(m.group(2))
          for m in re.finditer(r"^# (\w+) = (\d+)", get(port, "/debug/pprof/heap?debug=1"), re.M)}
    goroutines = int(re.search(r"goroutine profile: total (\d+)", get(port, "/debug/pprof/goroutine?debug=1")).group(1))
    return {"rss_kb": status_kb(pid, "VmRSS"), "goroutines": goroutines, "live_bytes": ms["HeapAlloc"],
            "stack_bytes": ms["Stack"], "cpu_pct": cpu}


def healthy(port, limit=30):
    end = time.time() + limit
    while time.time() < end:
        try:
            get(port, "/health")
            return True
        except OSError:
            time.sleep(0.2)
    return False


def measure(shape):
    name, _, via = shape.partition("@")
    d = tempfile.mkdtemp(prefix="etcd-conn-cost-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    log = open(os.path.join(d, "log"), "w")
    cp, pp = free_port(), free_port()
    procs = [subprocess.Popen([
        "etcd", "--name", "m", "--data-dir", os.path.join(d, "data"),
        "--listen-client-urls", f"http://127.0.0.1:{cp}", "--advertise-client-urls", f"http://127.0.0.1:{cp}",
        "--listen-peer-urls", f"http://127.0.0.1:{pp}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{pp}",
        "--initial-cluster", f"m=http://127.0.0.1:{pp}", "--enable-pprof"], stdout=log, stderr=log)]
    try:
        etcd, target = procs[0], cp
        assert healthy(cp), "etcd did not start"
        if via == "proxy":
            xp = free_port()
            procs.append(subprocess.Popen([
                "etcd", "grpc-proxy", "start", f"--endpoints=127.0.0.1:{cp}", f"--listen-addr=127.0.0.1:{xp}",
                f"--advertise-client-url=127.0.0.1:{xp}", "--data-dir", os.path.join(d, "proxy"),
                "--enable-pprof"], stdout=log, stderr=log))
            assert healthy(xp), "grpc-proxy did not start"
            target = xp
        time.sleep(2)
        before = reading(cp, etcd.pid)
        before_proxy = reading(target, procs[1].pid) if via == "proxy" else None
        probe = subprocess.Popen([PROBE, "-ep", f"127.0.0.1:{target}", "-k", str(K)] + SHAPES[name],
                                 stdout=subprocess.PIPE, text=True)
        procs.append(probe)
        ready = probe.stdout.readline().strip()
        assert ready == "READY", ready
        time.sleep(5)
        after = reading(cp, etcd.pid, WINDOW)
        out = {"shape": shape, "k": K, "etcd_before": before, "etcd_after": after,
               "etcd_per_conn": {k: (after[k] - before[k]) / K for k in after if k != "cpu_pct"}}
        if via == "proxy":
            after_proxy = reading(target, procs[1].pid)
            out["proxy_after"] = after_proxy
            out["proxy_per_conn"] = {k: (after_proxy[k] - before_proxy[k]) / K for k in after_proxy if k != "cpu_pct"}
        print(json.dumps(out), flush=True)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__ + "\nshapes: " + ", ".join(SHAPES), file=sys.stderr)
        sys.exit(2)
    for s in sys.argv[1:]:
        measure(s)
