#!/usr/bin/env bash
# Runs the C and C++ tests (ctest) with our C/C++ code built under sanitizers, each in its
# own build directory (build/sanitize-<name>/), the Rust library linked as it ships:
#
#   scripts/sanitize.sh              AddressSanitizer + LeakSanitizer + UBSan (address,undefined)
#   scripts/sanitize.sh thread       ThreadSanitizer (see below)
#   scripts/sanitize.sh address,undefined thread    both, one after the other
#   extra ctest arguments after --, e.g.  scripts/sanitize.sh -- -R c_api
#
# Any sanitizer report fails the test that triggered it (halt_on_error / exitcode 66), and
# undefined behaviour is not recovered from (-fno-sanitize-recover=all). The memcheck
# (valgrind) tests are disabled in these builds. CMake: -DETCD_SD_SANITIZE=... (see
# cmake/EtcdSdSanitize.cmake).
#
# ThreadSanitizer and a Rust library: the library is not instrumented, so TSan sees the
# memcpy/memset/malloc interceptor calls it makes but not the atomics and futex-based locks
# and channels that order them. Run plainly, that is hundreds of reports of "races" between
# two accesses inside libetcd_sd.so (and every test several times slower). tests/tsan.supp
# therefore has `called_from_lib:libetcd_sd.so`: interceptor calls from the library are
# ignored. What remains are accesses in our C/C++ code; where the only thing ordering them is
# the library (the main thread fills a recorder, hands it to etcd_sd_discovery_new, a callback
# thread then locks its mutex) TSan still cannot see the order and reports a race. So the
# thread mode writes every report to build/sanitize-thread/tsan/, prints a count per source
# line, and fails only when a test fails; read the reports whose stacks are in our code.
# What we found (see README, Sanitizers): every remaining report is of that kind, e.g. the C++
# wrapper deleting its callback state after etcd_sd_discovery_free returned, which the library
# orders after the last callback.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

modes=()
ctest_args=()
while [ "$#" -gt 0 ]; do
    case "$1" in
    --) shift; ctest_args=("$@"); break ;;
    *) modes+=("$1"); shift ;;
    esac
done
[ "${#modes[@]}" -gt 0 ] || modes=(address,undefined)

for mode in "${modes[@]}"; do
    dir="build/sanitize-${mode//,/-}"
    banner "sanitize: $mode in $dir"
    mkdir -p "$dir"
    # No CLI: no test needs it, and its link is a whole-program LTO of its own.
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DETCD_SD_SANITIZE="$mode" \
        -DETCD_SD_INSTALL=OFF -DETCD_SD_BUILD_CLI=OFF >"$dir/sanitize-configure.log" 2>&1 ||
        { cat "$dir/sanitize-configure.log"; die "sanitize: configuring $dir failed"; }
    cmake --build "$dir" -j2
    case "$mode" in
    thread)
        # History large enough for the long-lived library threads; the second-deadlock and
        # signal checks are noise with an uninstrumented runtime underneath.
        rm -rf "$dir/tsan"
        mkdir -p "$dir/tsan"
        export TSAN_OPTIONS="halt_on_error=0 exitcode=0 report_signal_unsafe=0 log_path=$REPO_ROOT/$dir/tsan/report suppressions=$REPO_ROOT/tests/tsan.supp ${TSAN_OPTIONS:-}"
        # c_api_static is left out: its copy of the library is inside the test binary, where
        # no module suppression can tell it apart (1,300 reports from Rust code alone).
        ETCD_SD_TEST_SLOW=1 ctest --test-dir "$dir" --output-on-failure -E 'memcheck|_static$' \
            "${ctest_args[@]}"
        races="$(cat "$dir"/tsan/report.* 2>/dev/null | grep -c '^WARNING: ThreadSanitizer' || true)"
        log "sanitize: thread: $races ThreadSanitizer report(s) in $dir/tsan/ (see the note in $0):"
        cat "$dir"/tsan/report.* 2>/dev/null | sed -n 's/^SUMMARY: ThreadSanitizer: //p' |
            sed "s|$REPO_ROOT/||" | sort | uniq -c | sort -rn >&2 || true
        ;;
    *)
        export ASAN_OPTIONS="halt_on_error=1 detect_leaks=1 abort_on_error=0 exitcode=66 detect_stack_use_after_return=1 ${ASAN_OPTIONS:-}"
        export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 exitcode=66 ${UBSAN_OPTIONS:-}"
        ctest --test-dir "$dir" --output-on-failure -E memcheck "${ctest_args[@]}"
        ;;
    esac
done
banner "sanitize: OK (${modes[*]})"
