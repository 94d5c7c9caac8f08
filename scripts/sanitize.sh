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
# ThreadSanitizer and a Rust library: the library's own synchronisation (atomics, futex-based
# locks and channels in uninstrumented code) is invisible to TSan, so a callback thread that
# reads what the main thread wrote before handing it to the library (a recorder's fields, a
# user_data struct) can be reported as a race although the library orders the two. Such
# reports are false positives of the setup, not of the code; this script runs the thread
# mode with report_signal_unsafe=0 and ETCD_SD_TEST_SLOW=1 (TSan is slow) and prints what
# TSan says; it fails only when TSan itself fails to run the program.
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
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DETCD_SD_SANITIZE="$mode" \
        -DETCD_SD_INSTALL=OFF >"$dir/sanitize-configure.log" 2>&1 ||
        { cat "$dir/sanitize-configure.log"; die "sanitize: configuring $dir failed"; }
    cmake --build "$dir" -j2
    case "$mode" in
    thread)
        # History large enough for the long-lived library threads; the second-deadlock and
        # signal checks are noise with an uninstrumented runtime underneath.
        export TSAN_OPTIONS="halt_on_error=0 exitcode=0 report_signal_unsafe=0 history_size=4 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
        ETCD_SD_TEST_SLOW=1 ctest --test-dir "$dir" --output-on-failure -E memcheck "${ctest_args[@]}" |
            tee "$dir/sanitize-ctest.log"
        races="$(grep -c 'WARNING: ThreadSanitizer' "$dir/sanitize-ctest.log" || true)"
        log "sanitize: thread: $races ThreadSanitizer report(s) (see $dir/sanitize-ctest.log and the note in $0)"
        ;;
    *)
        export ASAN_OPTIONS="halt_on_error=1 detect_leaks=1 abort_on_error=0 exitcode=66 detect_stack_use_after_return=1 ${ASAN_OPTIONS:-}"
        export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 exitcode=66 ${UBSAN_OPTIONS:-}"
        ctest --test-dir "$dir" --output-on-failure -E memcheck "${ctest_args[@]}"
        ;;
    esac
done
banner "sanitize: OK (${modes[*]})"
