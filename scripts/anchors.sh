#!/usr/bin/env bash
# Anchors: etcd-sd side by side with etcd-cpp-apiv3, in one run, on one etcd (issue 20).
# Optional: not part of scripts/test.sh or scripts/bench.sh, since it needs etcd-cpp-apiv3,
# which this repository does not ship and CI does not fetch.
#
# Builds (cmake, Release, target/anchors/build; the library with `cargo build --release`) the
# arms in benches/anchors/, each a program of its own:
#   etcd-cpp-apiv3          cppapi.cc against etcd-cpp-apiv3 (its headers and library)
#   etcd-sd native          native.cc against include/etcd_sd.h (the C API)
#   etcd-sd compat          cppapi.cc again, against etcd-sd's drop-in headers (include/etcd/)
#   etcd-sd native inline   native.cc with inline callbacks, when include/etcd_sd.h has
#                           etcd_sd_options_set_inline_callbacks (else left out, and said so)
#   etcd-sd native, etcd-cpp-apiv3 puts
#                           native.cc with etcd-cpp-apiv3's client putting the keys (the
#                           first arm's putter: only the delivery differs from that arm)
# starts one private etcd (data on /dev/shm when writable, two free 127.0.0.1 ports), then runs
# the arms one at a time, alternated (A B C D, A B C D, ...), for --rounds rounds. Each run
# measures put->callback (a watch on a prefix, keys put by the arm's own client, p50/p90/p99)
# and the own-lease register (lease grant + put under it + a keep-alive of it, on the open
# connection). Prints, as Markdown, the median over rounds of each figure and its ratio to
# etcd-cpp-apiv3's median, with every run's figures and the load average before each run; all
# of it also goes to target/anchors.json (each run's JSON in target/anchors/runs/).
# Method and a run's table: docs/performance.md, "Anchors: side by side with etcd-cpp-apiv3".
#
# Usage:
#   ETCD_CPP_APIV3_PREFIX=<install prefix> scripts/anchors.sh [options]
#       an installed etcd-cpp-apiv3 (the prefix holding lib/cmake/etcd-cpp-api/)
#   ETCD_CPP_APIV3_SRC=<etcd-cpp-apiv3 checkout> scripts/anchors.sh [options]
#       builds it first (Release, its tests off, -j2) in target/anchors/etcd-cpp-apiv3-build and
#       installs it into target/anchors/etcd-cpp-apiv3 (reused by later runs while present)
# Options:
#   --rounds N           rounds (default 7, at least 3)
#   --events N           measured put->callback events per run (default 2000)
#   --registrations N    measured own-lease registrations per run (default 500)
#   --quick              3 rounds of 500 events and 100 registrations: a smoke test, not a result
#
# Missing Debian packages (etcd, cmake, ... as scripts/lib.sh's ensure_deps, and the gRPC,
# protobuf, cpprestsdk and OpenSSL development packages etcd-cpp-apiv3 needs) are installed
# with apt-get; that needs root or passwordless sudo.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

rounds=7
events=2000
warmup=200
registrations=500
reg_warmup=20
ttl=10
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds)
        rounds="${2:?--rounds N}"
        shift 2
        ;;
    --events)
        events="${2:?--events N}"
        shift 2
        ;;
    --registrations)
        registrations="${2:?--registrations N}"
        shift 2
        ;;
    --quick)
        rounds=3
        events=500
        warmup=50
        registrations=100
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown option '$1' (see scripts/anchors.sh --help)" ;;
    esac
done
for n in "$rounds" "$events" "$registrations"; do
    [[ "$n" =~ ^[0-9]+$ ]] || die "not a number: $n"
done
[ "$rounds" -ge 3 ] || die "--rounds: at least 3 (the medians need them)"

# ---------------------------------------------------------------------------------------------
# etcd-cpp-apiv3 and its dependencies
# ---------------------------------------------------------------------------------------------

prefix="${ETCD_CPP_APIV3_PREFIX:-}"
src="${ETCD_CPP_APIV3_SRC:-}"
if [ -z "$prefix" ] && [ -z "$src" ]; then
    cat >&2 <<'EOF'
scripts/anchors.sh compares etcd-sd with etcd-cpp-apiv3, which it needs and does not fetch.
Give it one of:

    ETCD_CPP_APIV3_PREFIX=<prefix> scripts/anchors.sh
        an etcd-cpp-apiv3 installed under <prefix> (<prefix>/lib/cmake/etcd-cpp-api/)

    ETCD_CPP_APIV3_SRC=<checkout> scripts/anchors.sh
        a checkout of https://github.com/etcd-cpp-apiv3/etcd-cpp-apiv3 (the figures in
        docs/performance.md are from v0.15.4); it is built and installed under target/anchors/

Its build dependencies (gRPC, protobuf, cpprestsdk, OpenSSL) come from Debian: this script
installs them with apt-get when they are missing.
EOF
    exit 2
fi

# etcd-cpp-apiv3's build and header dependencies (Debian 12 names); g++ for our arms.
anchor_pkgs=(g++ libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev libprotoc-dev
    libcpprest-dev libssl-dev zlib1g-dev)
anchors_deps() {
    command -v dpkg-query >/dev/null 2>&1 || {
        log "anchors: no dpkg-query (not Debian?): make sure these are installed: ${anchor_pkgs[*]}"
        return 0
    }
    local p missing=()
    for p in "${anchor_pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    _lib_can_root ||
        die "missing Debian packages: ${missing[*]}; as root: apt-get install -y ${missing[*]}"
    log "anchors: apt-get install ${missing[*]}"
    if ! _lib_as_root apt-get update -q >&2 ||
        ! _lib_as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
        die "apt-get install ${missing[*]} failed"
    fi
}

ensure_deps
anchors_deps

work="$REPO_ROOT/target/anchors"
mkdir -p "$work"
if [ -z "$prefix" ]; then
    if [ ! -f "$src/CMakeLists.txt" ] || [ ! -f "$src/etcd/Watcher.hpp" ]; then
        die "ETCD_CPP_APIV3_SRC=$src is not an etcd-cpp-apiv3 checkout (no CMakeLists.txt, etcd/Watcher.hpp)"
    fi
    prefix="$work/etcd-cpp-apiv3"
    if [ ! -f "$prefix/lib/cmake/etcd-cpp-api/etcd-cpp-api-config.cmake" ]; then
        banner "building etcd-cpp-apiv3 from $src (Release, tests off, -j2)"
        # Its tests are off: they link -lSegFault, which glibc 2.35 dropped.
        cmake -S "$src" -B "$work/etcd-cpp-apiv3-build" -DCMAKE_BUILD_TYPE=Release \
            -DBUILD_ETCD_TESTS=OFF -DCMAKE_INSTALL_PREFIX="$prefix" >&2
        cmake --build "$work/etcd-cpp-apiv3-build" -j2 >&2
        cmake --install "$work/etcd-cpp-apiv3-build" >&2
    fi
fi
prefix="$(cd "$prefix" && pwd)"
upstream_cfg="$prefix/lib/cmake/etcd-cpp-api/etcd-cpp-api-config-version.cmake"
[ -f "$upstream_cfg" ] ||
    die "ETCD_CPP_APIV3_PREFIX=$prefix: no lib/cmake/etcd-cpp-api/ there (not an etcd-cpp-apiv3 install prefix)"
upstream_version="$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")/\1/p' "$upstream_cfg" | head -n 1)"

# ---------------------------------------------------------------------------------------------
# Build the arms
# ---------------------------------------------------------------------------------------------

banner "building the arms (target/anchors/build; libetcd_sd.so by cargo build --release)"
cmake -S benches/anchors -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DETCD_CPP_APIV3_PREFIX="$prefix" >&2
cmake --build "$work/build" -j2 >&2

arm_names=("etcd-cpp-apiv3" "etcd-sd native" "etcd-sd compat")
arm_slugs=(upstream native compat)
arm_bins=(anchors_upstream anchors_native anchors_compat)
arm_flags=("" "" "")
if "$work/build/anchors_native" --has-inline; then
    arm_names+=("etcd-sd native inline")
    arm_slugs+=(inline)
    arm_bins+=(anchors_native)
    arm_flags+=(--inline)
else
    log "anchors: include/etcd_sd.h has no etcd_sd_options_set_inline_callbacks:" \
        "no inline-callback arm in this run"
fi
# Our discovery with etcd-cpp-apiv3's client putting: against the first arm, only the delivery
# differs.
arm_names+=("etcd-sd native, etcd-cpp-apiv3 puts")
arm_slugs+=(xput)
arm_bins+=(anchors_native_xput)
arm_flags+=("")

# ---------------------------------------------------------------------------------------------
# One etcd, the arms alternated
# ---------------------------------------------------------------------------------------------

lib_install_trap
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    data_parent=/dev/shm
else
    data_parent="${TMPDIR:-/tmp}"
fi
etcd_dir=""
TMPDIR="$data_parent" lib_tmpdir etcd_dir
start_etcd "$etcd_dir" ETCD
data_fs="$(stat -f -c %T "$etcd_dir" 2>/dev/null || echo "?")"
log "anchors: etcd at $ETCD_ENDPOINTS (pid $ETCD_PID, data in $etcd_dir: $data_fs)"

# Between runs: delete what the run left and compact, so every run starts on the same etcd.
reset_etcd() {
    etcdctl --endpoints="$ETCD_ENDPOINTS" del --prefix /anchors/ >/dev/null
    local rev
    rev="$(etcdctl --endpoints="$ETCD_ENDPOINTS" endpoint status -w json |
        grep -o '"revision":[0-9]*' | head -n 1 | cut -d: -f2)"
    if [ -n "$rev" ]; then
        etcdctl --endpoints="$ETCD_ENDPOINTS" compact --physical "$rev" >/dev/null
    fi
}

runs_dir="$work/runs"
rm -rf "$runs_dir"
mkdir -p "$runs_dir"
index="$runs_dir/index.tsv"
: >"$index"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit + local changes"
fi
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
date_start="$(date '+%Y-%m-%d %H:%M %Z')"

banner "$rounds rounds: ${arm_names[*]}"
for ((r = 1; r <= rounds; r++)); do
    for i in "${!arm_names[@]}"; do
        name="${arm_names[$i]}"
        out="$runs_dir/r$r-${arm_slugs[$i]}.json"
        load="$(cut -d' ' -f1 /proc/loadavg)"
        log "round $r/$rounds: $name (load $load)"
        flags=()
        [ -n "${arm_flags[$i]}" ] && flags+=("${arm_flags[$i]}")
        timeout 600 "$work/build/${arm_bins[$i]}" "${flags[@]}" --arm "$name" \
            --endpoints "$ETCD_ENDPOINTS" --prefix "/anchors/r$r/${arm_slugs[$i]}/" \
            --events "$events" --warmup "$warmup" --registrations "$registrations" \
            --reg-warmup "$reg_warmup" --ttl "$ttl" --out "$out" ||
            die "arm '$name' failed in round $r (exit $?)"
        printf '%s\t%s\t%s\n' "$r" "$load" "$out" >>"$index"
        reset_etcd
    done
done

load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
meta="$runs_dir/meta.json"
ncpu="$(nproc)"
cpu="$(grep -m 1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' || true)"
arms_joined="$(IFS='|' && echo "${arm_names[*]}")"
python3 - "$meta" date="$date_start" commit="$commit" machine="$ncpu CPUs ($cpu)" \
    etcd_version="$(etcd --version | head -n 1 | awk '{print $3}')" data_dir_fs="$data_fs" \
    upstream_version="$upstream_version" upstream_prefix="$prefix" load_start="$load_start" \
    load_end="$load_end" rounds="$rounds" events="$events" warmup="$warmup" \
    registrations="$registrations" reg_warmup="$reg_warmup" ttl="$ttl" arms="$arms_joined" <<'EOF'
import json
import sys

meta = dict(arg.split("=", 1) for arg in sys.argv[2:])
for k in ("rounds", "events", "warmup", "registrations", "reg_warmup", "ttl"):
    meta[k] = int(meta[k])
meta["arms"] = meta["arms"].split("|")
with open(sys.argv[1], "w") as f:
    json.dump(meta, f, indent=1)
EOF

banner "anchors: median of $rounds rounds"
python3 benches/anchors/summarize.py --meta "$meta" --index "$index" \
    --json "$REPO_ROOT/target/anchors.json"
log ""
log "anchors: written to target/anchors.json (each run: $runs_dir)"
