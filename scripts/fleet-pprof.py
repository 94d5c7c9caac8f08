#!/usr/bin/env python3
"""Sums up the etcd profiles the fleet scenario saves with ETCD_SD_FLEET_PPROF=<dir>.

Usage: scripts/fleet-pprof.py DIR [--per-process]

For each pass (label) and fleet size N, over the three members (and, apart, the grpc-proxy of a
"-proxy" pass): RSS (anonymous and file-backed), the Go runtime's view (`/metrics` as measured:
heap in use, idle heap not yet returned to the OS, stacks; and after the forced GC of
`heap?gc=1`: the live heap and stacks), goroutines by owner (from `goroutine?debug=1`) and the
live heap by owner (from `heap.pb.gz`, through `go tool pprof -raw`; Go samples one allocation
per 512 KiB, so an owner of a few MiB is known to about ±0.5 MiB). --per-process divides each
figure's growth over N = 0 of the same pass by N.

Owners: "conn" = the gRPC connection (grpc-go's http2Server: its 32 KiB read buffer, 64 KiB
write buffer, framer, HPACK, control buffer, and its reader, writer and keepalive goroutines);
"watch stream" = etcd's serverWatchStream and mvcc watchStream with their goroutines (Watch,
sendLoop, recvLoop); "lease stream" = LeaseKeepAlive and its receive goroutine; "grpc per
stream" = grpc-go's and the interceptors' state of any stream. Needs Go (`go tool pprof`).
"""

import collections
import glob
import os
import re
import subprocess
import sys

HEAP_OWNERS = [
    ("watch stream", ["v3rpc.(*watchServer).Watch", "v3rpc.(*serverWatchStream)",
                      "mvcc.(*watchableStore).NewWatchStream", "mvcc.(*watchStream)",
                      "mvcc.(*watchableStore).watch", "mvcc.newWatcherGroup", "mvcc.(*watcherGroup)",
                      "grpcproxy.(*watchProxy", "grpcproxy.(*watchProxyStream)"]),
    ("lease stream", ["v3rpc.(*LeaseServer).LeaseKeepAlive", "v3rpc.(*LeaseServer).leaseKeepAlive",
                      "grpcproxy.(*leaseProxy).LeaseKeepAlive", "grpcproxy.(*leaseProxyStream)"]),
    ("grpc per stream", ["(*http2Server).operateHeaders", "transport.newRecvBuffer",
                         "grpc.(*Server).processStreamingRPC", "grpc.(*Server).handleStream",
                         "v3rpc.newStreamInterceptor", "v3rpc.newCancellableContext",
                         "go-grpc-prometheus", "go-grpc-middleware"]),
    ("conn: write buffer", ["transport.newBufWriter"]),
    ("conn: read buffer", ["bufio.NewReaderSize"]),
    ("conn: other", ["transport.newHTTP2Server", "transport.(*http2Server)", "transport.(*loopyWriter)",
                     "transport.(*controlBuffer)", "transport.newFramer", "hpack.",
                     "grpc.(*Server).handleRawConn", "grpc.(*Server).serveStreams", "http2.(*Framer)"]),
    ("goroutine descriptors", ["runtime.malg"]),
    ("raft, peers, WAL", ["rafthttp.", "raft.", "wal."]),
]

GOROUTINE_OWNERS = [
    ("conn", ["(*http2Server).keepalive", "(*controlBuffer).get", "(*http2Server).HandleStreams",
              "(*loopyWriter)"]),
    ("watch stream", ["(*watchServer).Watch", "(*serverWatchStream)", "(*watchProxy).Watch",
                      "(*watchProxyStream)"]),
    ("lease stream", ["(*LeaseServer).LeaseKeepAlive", "(*LeaseServer).leaseKeepAlive",
                      "(*leaseProxy).LeaseKeepAlive", "(*leaseProxyStream)", "(*lessor).keepAliveCtxCloser"]),
]

MIB = 1048576.0


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def gauges(text):
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#") and "{" not in parts[0]:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def memstats(text):
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^# (\w+) = (\d+)", text, re.M)}


def status_bytes(text):
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        v = rest.split()
        if len(v) == 2 and v[1] == "kB":
            out[key] = int(v[0]) * 1024
    return out


def heap_owners(path):
    raw = subprocess.run(["go", "tool", "pprof", "-raw", path], capture_output=True, text=True).stdout
    samples, locs, section, cur = [], {}, None, None
    for line in raw.splitlines():
        if line.startswith("Samples:"):
            section = "samples"
        elif line.startswith("Locations"):
            section = "locations"
        elif line.startswith("Mappings"):
            section = None
        elif section == "samples":
            m = re.match(r"\s*\d+\s+\d+\s+\d+\s+(\d+): ([\d ]+)$", line)
            if m:
                samples.append((int(m.group(1)), [int(x) for x in m.group(2).split()]))
        elif section == "locations":
            m = re.match(r"\s*(\d+): 0x[0-9a-f]+ M=\d+ (\S+)", line)
            if m:
                cur = int(m.group(1))
                locs[cur] = [m.group(2)]
            elif cur is not None and line.strip():
                locs[cur].append(line.split()[0])  # an inlined frame
    owners = collections.Counter()
    for inuse, stack in samples:
        if inuse:
            frames = [f for i in stack for f in locs.get(i, [])]
            owner = next((name for name, pats in HEAP_OWNERS
                          if any(p in f for f in frames for p in pats)), "other")
            owners[owner] += inuse
    return owners


def goroutine_owners(text):
    owners = collections.Counter()
    for block in re.split(r"\n(?=\d+ @ )", text):
        m = re.match(r"(\d+) @ ", block)
        if m:
            owner = next((name for name, pats in GOROUTINE_OWNERS
                          if any(p in block for p in pats)), "other")
            owners[owner] += int(m.group(1))
    return owners


def figures(prefix):
    st = status_bytes(read(prefix + "status.txt"))
    g = gauges(read(prefix + "metrics.txt"))
    ms = memstats(read(prefix + "heap.txt"))
    f = collections.OrderedDict()
    f["RSS MiB"] = st.get("VmRSS", 0) / MIB
    f["  anonymous MiB"] = st.get("RssAnon", 0) / MIB
    f["  file-backed (the binary) MiB"] = (st.get("RssFile", 0) + st.get("RssShmem", 0)) / MIB
    if g:
        f["as measured: heap in use MiB"] = g.get("go_memstats_heap_inuse_bytes", 0) / MIB
        f["as measured: heap idle, kept MiB"] = (g.get("go_memstats_heap_idle_bytes", 0)
                                                 - g.get("go_memstats_heap_released_bytes", 0)) / MIB
        f["as measured: stacks MiB"] = g.get("go_memstats_stack_inuse_bytes", 0) / MIB
        f["as measured: GC metadata MiB"] = g.get("go_memstats_gc_sys_bytes", 0) / MIB
    f["after GC: live heap MiB"] = ms.get("HeapAlloc", 0) / MIB
    f["after GC: stacks MiB"] = ms.get("Stack", 0) / MIB
    gr = goroutine_owners(read(prefix + "goroutine.txt"))
    f["goroutines"] = sum(gr.values())
    for name, _ in GOROUTINE_OWNERS + [("other", None)]:
        f[f"  goroutines: {name}"] = gr.get(name, 0)
    heap = heap_owners(prefix + "heap.pb.gz")
    for name, _ in HEAP_OWNERS + [("other", None)]:
        f[f"live heap: {name} MiB"] = heap.get(name, 0) / MIB
    return f


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    d, per_process = sys.argv[1], "--per-process" in sys.argv
    runs = collections.defaultdict(set)
    for path in glob.glob(os.path.join(d, "*-status.txt")):
        m = re.match(r"(.+)-n(\d+)-(m\d+|proxy)-status\.txt$", os.path.basename(path))
        if m:
            runs[(m.group(1), int(m.group(2)))].add(m.group(3))
    cols = {}
    for (label, n), who in sorted(runs.items()):
        groups = [("members", sorted(w for w in who if w != "proxy"))]
        if "proxy" in who:
            groups.append(("proxy", ["proxy"]))
        for name, ws in groups:
            total = collections.OrderedDict()
            for w in ws:
                for k, v in figures(os.path.join(d, f"{label}-n{n}-{w}-")).items():
                    total[k] = total.get(k, 0) + v
            cols[(label, n, name)] = total
    if per_process:
        base = {(l, w): f for (l, n, w), f in cols.items() if n == 0}
        def per(k, v, b, n):
            if k.endswith(" MiB"):
                return k[:-4] + " KiB", (v - b) / n * 1024
            return k, (v - b) / n
        cols = {(l, n, w): collections.OrderedDict(
                    per(k, v, base[(l, w)].get(k, 0), n) for k, v in f.items())
                for (l, n, w), f in cols.items() if n > 0 and (l, w) in base}
    keys = list(dict.fromkeys(k for f in cols.values() for k in f))
    heads = [f"{l} N={n} {w}" for l, n, w in cols]
    width = max(12, *(len(h) for h in heads))
    unit = "growth over N = 0, per process" if per_process else "sum"
    print(f"{unit:<40}" + "".join(h.rjust(width + 2) for h in heads))
    for k in keys:
        print(f"{k:<40}" + "".join(f"{f.get(k, 0):.1f}".rjust(width + 2) for f in cols.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
