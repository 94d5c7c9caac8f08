#!/usr/bin/env bash
# Runs every check of the project, in order, stopping at the first failure:
#   deps      install etcd/etcdctl/protoc/cmake/pkg-config/valgrind (apt) and rustfmt/clippy
#   fmt       cargo fmt --all -- --check
#   layers    scripts/check-layers.py: no module of src/ imports one that imports it back
#   clippy    cargo clippy --all-targets -- -D warnings
#   test      cargo test  (Rust unit + integration tests, incl. the header drift test)
#   cmake     configure + build the C/C++ side (Release) in build/
#   ctest     ctest --test-dir build --output-on-failure
#   package   scripts/package-test.sh (only when that script exists)
#   partition (not in the default list: `cargo test` in the test step runs it already)
#             cargo test --test partition: network partitions of a 3-member
#             etcd in network namespaces (tests/partition.rs), ~1 min; needs root and iproute2,
#             prints a SKIP line and passes without them; ETCD_SD_SKIP_PARTITION=1 opts out
#             (in the test step too)
#   sanitize  (not in the default list: run `scripts/test.sh sanitize` or scripts/sanitize.sh)
#             ctest again with the C/C++ side under ASan + UBSan in
#             build/sanitize-address-undefined. Left out of the default run to keep the whole
#             suite under 15 min on 2 cores: it reuses cargo's release build of the library,
#             but rebuilds the C/C++ side and runs ctest again (2-4 min).
#
# Usage: scripts/test.sh [STEP...]     (no argument: all steps; e.g. `scripts/test.sh fmt clippy`)
# Works from any directory. Needs root or passwordless sudo only if a dependency is missing.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

step_deps() { ensure_deps; }
step_fmt() { cargo fmt --all -- --check; }
step_layers() { python3 scripts/check-layers.py; }
step_clippy() { cargo clippy --all-targets -- -D warnings; }
step_test() {
    if ! cargo test; then
        log ""
        log "hint: if tests/header.rs failed, include/etcd_sd.h is stale; regenerate it with"
        log "      ETCD_SD_BLESS=1 cargo test --test header"
        return 1
    fi
}
step_cmake() {
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release &&
        cmake --build build -j2
}
step_ctest() { ctest --test-dir build --output-on-failure; }
step_package() { bash scripts/package-test.sh; }
step_sanitize() { bash scripts/sanitize.sh address,undefined; }
step_partition() { cargo test --test partition; }

# Steps run in a subshell whose status is tested, so `set -e` does not apply inside them:
# chain multi-command steps with && (or return on failure) explicitly.

# The ordered step list. To add a check: write step_<name> above and append <name> here.
STEPS=(deps fmt layers clippy test cmake ctest)
[ -f scripts/package-test.sh ] && STEPS+=(package)

describe() {
    case "$1" in
    deps) echo "dependencies (etcd, etcdctl, protoc, cmake, pkg-config, valgrind, rustfmt, clippy)" ;;
    fmt) echo "cargo fmt --all -- --check" ;;
    layers) echo "scripts/check-layers.py (one-way imports among the modules of src/)" ;;
    clippy) echo "cargo clippy --all-targets -- -D warnings" ;;
    test) echo "cargo test" ;;
    cmake) echo "cmake configure + build (Release, build/)" ;;
    ctest) echo "ctest --test-dir build --output-on-failure" ;;
    package) echo "scripts/package-test.sh" ;;
    sanitize) echo "scripts/sanitize.sh address,undefined (ctest under ASan + UBSan)" ;;
    partition) echo "cargo test --test partition (network partitions in namespaces)" ;;
    *) echo "$1" ;;
    esac
}

selected=("$@")
if [ "${#selected[@]}" -eq 0 ]; then
    selected=("${STEPS[@]}")
else
    for s in "${selected[@]}"; do
        declare -F "step_$s" >/dev/null || die "unknown step '$s' (steps: ${STEPS[*]} partition sanitize)"
    done
fi

fmt_secs() { printf '%d.%03d s' $(($1 / 1000)) $(($1 % 1000)); }

t_start=$(now_ms)
n=${#selected[@]}
i=0
for s in "${selected[@]}"; do
    i=$((i + 1))
    printf '\n======== [%d/%d] %s: %s\n' "$i" "$n" "$s" "$(describe "$s")"
    t0=$(now_ms)
    rc=0
    ("step_$s") || rc=$?
    dt=$(($(now_ms) - t0))
    if [ "$rc" -ne 0 ]; then
        printf '\n######## FAILED: step [%d/%d] %s (exit %d) after %s\n' \
            "$i" "$n" "$s" "$rc" "$(fmt_secs "$dt")"
        printf '######## total elapsed: %s\n' "$(fmt_secs $(($(now_ms) - t_start)))"
        exit "$rc"
    fi
    printf -- '-------- ok: %s (%s)\n' "$s" "$(fmt_secs "$dt")"
done

printf '\n######## ALL %d STEPS PASSED (%s) in %s\n' "$n" "${selected[*]}" \
    "$(fmt_secs $(($(now_ms) - t_start)))"
