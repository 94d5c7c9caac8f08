#!/usr/bin/env bash
# Performance report: starts a private etcd (data dir on tmpfs: /dev/shm when writable), runs
# every scenario through the C ABI, prints a Markdown table with each figure next to its
# target, and writes target/bench-report.json. Takes about 2-3 minutes on 2 cores (plus the
# first release build); not part of scripts/test.sh.
#
# Usage: scripts/bench.sh [--quick]
#   --quick   5 s idle-CPU window in the fan-out scenario instead of 30 s
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
exec cargo bench --bench report -- "$@"
