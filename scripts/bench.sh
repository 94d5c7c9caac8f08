#!/usr/bin/env bash
# Performance report: starts a private etcd (data dir on tmpfs: /dev/shm when writable), runs
# every scenario through the C ABI, prints a Markdown table with each figure next to its
# target, and writes target/bench-report.json. Takes about 5-6 minutes on 2 cores (plus the
# first release build), of which the fleet scenario (10) about 2-3; not part of scripts/test.sh.
#
# Usage: scripts/bench.sh [--quick] [--only N[,N...]]
#   --quick        5 s idle-CPU window in the fan-out scenario instead of 30 s
#   --only 2,7     only these scenarios; `--only fleet` = 10 (the fleet), `--only fleet-fault` =
#                  11 (a member SIGKILLed under 200 fleet processes), `--only storm` = 9
#
# The fleet scenario also writes target/bench-fleet-<label>.json (ETCD_SD_FLEET_LABEL, default
# "current"); after a run that wrote one, this script draws every such file, with the runs
# kept in docs/fleet/, into docs/fleet.png (scripts/fleet-plot.py; matplotlib from PyPI,
# installed when missing). ETCD_SD_FLEET_BEFORE_BIN=<an older build of the bench binary> runs
# the fleet first with that build's children (label "before"): before and after in one run.
# More opt-ins (docs/performance.md, "Fleet"): ETCD_SD_FLEET_BINS=<label>=<binary>,... (more
# builds), ETCD_SD_FLEET_PROXY=<labels> (those passes again through an etcd grpc-proxy) and
# ETCD_SD_FLEET_PPROF=<dir> (etcd's heap and goroutine profiles per size; sum them up with
# scripts/fleet-pprof.py).
#
# Results and how to read them: docs/performance.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -f "$here/lib.sh" ]; then
    # shellcheck source=scripts/lib.sh
    source "$here/lib.sh"
    ensure_deps
fi
cd "$here/.."
# The report gives the size of target/release/libetcd_sd.so, the C library (capi/), which the
# bench itself does not link (it uses the core crate directly).
cargo build --release -p etcd-sd-capi
stamp="$(mktemp "${TMPDIR:-/tmp}/etcd-sd-bench-stamp.XXXXXX")"
trap 'rm -f "$stamp"' EXIT
status=0
cargo bench --bench report -- "$@" || status=$?

if [ -n "$(find target -maxdepth 1 -name 'bench-fleet-*.json' -newer "$stamp" 2>/dev/null)" ]; then
    if ! python3 -c 'import matplotlib' 2>/dev/null; then
        echo "bench.sh: installing matplotlib from PyPI for the fleet plot" >&2
        python3 -m pip install --quiet --root-user-action=ignore matplotlib ||
            python3 -m pip install --quiet matplotlib
    fi
    python3 scripts/fleet-plot.py -o docs/fleet.png docs/fleet target || status=$?
fi
exit "$status"
