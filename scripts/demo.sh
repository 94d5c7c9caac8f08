#!/usr/bin/env bash
# End-to-end demo of etcd-sd with the two C++ examples (cpp_examples/):
#   1. builds the `registry` and `discovery` examples with CMake (Release, in build/),
#   2. starts a private etcd on free loopback ports (never the system one on :2379),
#   3. runs `discovery <endpoints> /service` and two `registry` processes (lease TTL 3 s),
#   4. shows the discovery's introspection figures (stats: revision, keys, resumes, member),
#   5. stops the first registry with SIGTERM -> it deletes its key -> `offline:` at once,
#      and prints its own stats (lease, TTL left, keys, losses/restores),
#   6. kills the second with SIGKILL -> its key only vanishes when the lease expires (~TTL),
#   7. measures both delays and exits non-zero if an expected event does not show up.
# Everything it starts is stopped, and its temp dir removed, on exit (also on Ctrl-C).
# Works from any directory. Needs root or passwordless sudo only if a dependency is missing.
# Set ETCD_SD_LOG=info (or debug) to see the library's own log lines on the examples' stderr.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

PREFIX=/service
KEY1=/service/user/instance-1
VAL1=127.0.0.1:9001
KEY2=/service/friend/instance-1
VAL2=127.0.0.1:9002
TTL=3
GRACEFUL_MAX_MS=1500 # a deleted key must show up as offline well before the TTL
EVENT_TIMEOUT_MS=10000

TAILERS=()
demo_cleanup() {
    lib_cleanup
    # The log followers end by themselves (tail --pid) once their process is gone.
    local p
    for p in "${TAILERS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
}
trap 'demo_cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '== %s\n' "$*"; }
fail() {
    sleep 0.3 # let the followers print the last lines first
    printf '\n!! DEMO FAILED: %s\n' "$*" >&2
    exit 1
}

# spawn NAME LOGFILE PIDVAR CMD...: run CMD in the background with stdout+stderr in LOGFILE
# (line-buffered), show that output live prefixed with [NAME], store the pid in PIDVAR.
spawn() {
    local name="$1" logf="$2" var="$3" pid
    shift 3
    : >"$logf"
    stdbuf -oL -eL "$@" >"$logf" 2>&1 </dev/null &
    pid=$!
    lib_track_pid "$pid"
    tail -n +1 -s 0.1 -f --pid="$pid" "$logf" 2>/dev/null | sed -u "s/^/    [$name] /" &
    TAILERS+=("$!")
    printf -v "$var" '%s' "$pid"
}

# wait_for_line FILE ERE TIMEOUT_MS [PID]: poll until a line of FILE matches ERE. Returns 1
# on timeout, or as soon as PID (if given) has exited without the line showing up.
wait_for_line() {
    local file="$1" re="$2" timeout="$3" pid="${4:-}" t0
    t0=$(now_ms)
    while :; do
        grep -qE -- "$re" "$file" 2>/dev/null && return 0
        if [ -n "$pid" ] && ! lib_pid_alive "$pid"; then
            grep -qE -- "$re" "$file" 2>/dev/null
            return
        fi
        [ $(($(now_ms) - t0)) -lt "$timeout" ] || return 1
        sleep 0.02
    done
}

# Like wait_for_line, but measured from an earlier timestamp T0 (ms): sets DELAY_MS.
DELAY_MS=0
wait_event_since() {
    local t0="$1" file="$2" re="$3" timeout="$4"
    while :; do
        if grep -qE -- "$re" "$file" 2>/dev/null; then
            DELAY_MS=$(($(now_ms) - t0))
            return 0
        fi
        [ $(($(now_ms) - t0)) -lt "$timeout" ] || return 1
        sleep 0.02
    done
}

# The newest executable named $1 under build/ (the examples may sit in build/ or a subdir;
# the newest is the one the build just made, not a leftover of an older layout).
find_bin() {
    local f
    f="$(find build -type f -name "$1" -perm -u+x -not -path '*/CMakeFiles/*' \
        -printf '%T@ %p\n' 2>/dev/null | sort -rn | head -n 1 | cut -d' ' -f2-)"
    [ -n "$f" ] || die "built example '$1' not found under build/"
    printf '%s\n' "$f"
}

say "checking dependencies (etcd, etcdctl, protoc, cmake, pkg-config; apt-get if missing)"
ensure_deps

say "building the examples: cmake (Release) -> targets registry, discovery"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ||
    fail "cmake configure failed (see above)"
cmake --build build -j2 --target registry discovery ||
    fail "building the examples failed (see above)"
REGISTRY="$(find_bin registry)"
DISCOVERY="$(find_bin discovery)"
say "examples: $REGISTRY, $DISCOVERY"

lib_tmpdir WORK
echo
say "starting a private etcd on free loopback ports (data + logs in $WORK)"
start_etcd "$WORK" ETCD
say "etcd is healthy at $ETCD_ENDPOINTS (pid $ETCD_PID)"

DLOG="$WORK/discovery.log"
R1LOG="$WORK/registry-user.log"
R2LOG="$WORK/registry-friend.log"

echo
say "starting discovery: watches everything under $PREFIX"
spawn discovery "$DLOG" DPID "$DISCOVERY" "$ETCD_ENDPOINTS" "$PREFIX"
wait_for_line "$DLOG" "^watching $PREFIX" "$EVENT_TIMEOUT_MS" "$DPID" ||
    fail "discovery did not print 'watching $PREFIX' (log: $DLOG)"

echo
say "starting registry #1: $KEY1 -> $VAL1 (lease TTL ${TTL} s)"
spawn registry-user "$R1LOG" R1PID "$REGISTRY" "$ETCD_ENDPOINTS" "$KEY1" "$VAL1" "$TTL"
say "starting registry #2: $KEY2 -> $VAL2 (lease TTL ${TTL} s)"
spawn registry-friend "$R2LOG" R2PID "$REGISTRY" "$ETCD_ENDPOINTS" "$KEY2" "$VAL2" "$TTL"

wait_for_line "$R1LOG" "^registered $KEY1" "$EVENT_TIMEOUT_MS" "$R1PID" ||
    fail "registry #1 did not register $KEY1"
wait_for_line "$R2LOG" "^registered $KEY2" "$EVENT_TIMEOUT_MS" "$R2PID" ||
    fail "registry #2 did not register $KEY2"
wait_for_line "$DLOG" "^online: $KEY1 -> $VAL1" "$EVENT_TIMEOUT_MS" ||
    fail "discovery did not report 'online: $KEY1'"
wait_for_line "$DLOG" "^online: $KEY2 -> $VAL2" "$EVENT_TIMEOUT_MS" ||
    fail "discovery did not report 'online: $KEY2'"
sleep 0.2
say "both instances are online in discovery"

echo
say "letting the keep-alives run for 2 s"
sleep 2
lib_pid_alive "$R1PID" || fail "registry #1 exited unexpectedly"
lib_pid_alive "$R2PID" || fail "registry #2 exited unexpectedly"

echo
say "introspection: the discovery's stats (SIGUSR1 makes it print them)"
kill -USR1 "$DPID"
wait_for_line "$DLOG" "^stats: " "$EVENT_TIMEOUT_MS" ||
    fail "discovery did not print its stats"
sleep 0.2

echo
say "SIGTERM registry #1 (graceful: it deletes its key at once, then prints its stats)"
t0=$(now_ms)
kill -TERM "$R1PID"
wait_event_since "$t0" "$DLOG" "^offline: $KEY1( |$)" "$EVENT_TIMEOUT_MS" ||
    fail "no 'offline: $KEY1' within $((EVENT_TIMEOUT_MS / 1000)) s after SIGTERM"
graceful_ms=$DELAY_MS
rc1=0
wait "$R1PID" || rc1=$?
sleep 0.2
say "discovery saw $KEY1 go offline ${graceful_ms} ms after SIGTERM (registry #1 exit code $rc1)"
grep -q "^unregistered $KEY1" "$R1LOG" ||
    say "note: registry #1 did not print 'unregistered $KEY1'"
[ "$graceful_ms" -le "$GRACEFUL_MAX_MS" ] ||
    fail "graceful stop took ${graceful_ms} ms (> ${GRACEFUL_MAX_MS} ms): the key was not deleted?"

echo
say "SIGKILL registry #2 (no chance to revoke: the key lives until its ${TTL} s lease expires)"
t0=$(now_ms)
kill -KILL "$R2PID"
wait "$R2PID" 2>/dev/null || true
wait_event_since "$t0" "$DLOG" "^offline: $KEY2( |$)" "$EVENT_TIMEOUT_MS" ||
    fail "no 'offline: $KEY2' within $((EVENT_TIMEOUT_MS / 1000)) s after SIGKILL"
killed_ms=$DELAY_MS
sleep 0.2
say "discovery saw $KEY2 go offline ${killed_ms} ms after SIGKILL (lease TTL ${TTL} s)"
if [ "$killed_ms" -lt 1000 ]; then
    say "note: that is faster than expected for a lease expiry"
fi

echo
say "stopping discovery and etcd"
lib_kill_pid "$DPID"
echo
say "summary: graceful stop -> offline after ${graceful_ms} ms; SIGKILL -> offline after ${killed_ms} ms (TTL ${TTL} s)"
say "demo OK"

# --- Service table (issue 10) -------------------------------------------------------------
# Three echo_table instances register themselves under /service/echo; one client calls them
# through etcd_sd::ServiceManager + ChannelPool for 12 s, alternately round robin and by
# consistent hash on a user id. Instance 1 is stopped with SIGTERM: it drains (its key stays,
# marked draining), answers 500 ms more, unregisters and stops; no call may fail once the
# client saw the drain (0 failed calls to a draining instance). Instance 2 is black-holed
# (SIGUSR1: registered, connected, silent): at most 5 calls (the ejection threshold) fail,
# then it is ejected and the calls go to the others.
ECHO_SVC=/service/echo
TABLE_CALL_S=12
echo
say "service table: building the echo_table example"
cmake --build build -j2 --target echo_table || fail "building echo_table failed (see above)"
ECHO_TABLE="$(find_bin echo_table)"
declare -a EPIDS=() EADDRS=()
for i in 1 2 3; do
    spawn "echo-$i" "$WORK/echo-$i.log" epid "$ECHO_TABLE" serve "$ETCD_ENDPOINTS" "$ECHO_SVC/instance-$i" 0
    EPIDS[$i]=$epid
done
for i in 1 2 3; do
    wait_for_line "$WORK/echo-$i.log" "serving " "$EVENT_TIMEOUT_MS" "${EPIDS[$i]}" ||
        fail "echo instance $i did not register"
    EADDRS[$i]="$(grep -m1 'serving ' "$WORK/echo-$i.log" | awk '{print $NF}')"
done
say "three echo instances: ${EADDRS[1]} ${EADDRS[2]} ${EADDRS[3]}"
CLOG="$WORK/echo-client.log"
spawn echo-client "$CLOG" CPID "$ECHO_TABLE" client "$ETCD_ENDPOINTS" "$ECHO_SVC" "$TABLE_CALL_S" 20
wait_for_line "$CLOG" "instances: [^ ]+ [^ ]+ [^ ]+$" "$EVENT_TIMEOUT_MS" "$CPID" ||
    fail "the client did not see the three instances"
sleep 3
say "SIGTERM echo instance 1 (${EADDRS[1]}): it drains, answers 500 ms more, unregisters, stops"
kill -TERM "${EPIDS[1]}"
wait_for_line "$CLOG" "draining: ${EADDRS[1]}$" "$EVENT_TIMEOUT_MS" ||
    fail "the client did not see instance 1 draining"
# Failures are counted from the line where the client saw the drain (calls before it may
# fail on a loaded machine; none may after: the instance still answers while draining).
deleted_at=$(grep -n "draining: ${EADDRS[1]}$" "$CLOG" | head -n 1 | cut -d: -f1)
wait_for_line "$CLOG" "instances: ${EADDRS[2]} ${EADDRS[3]}$" "$EVENT_TIMEOUT_MS" ||
    fail "the client did not see instance 1 leave"
wait_for_line "$WORK/echo-1.log" "unregistered " "$EVENT_TIMEOUT_MS" ||
    fail "instance 1 did not unregister after draining"
sleep 3
say "SIGUSR1 echo instance 2 (${EADDRS[2]}): black-holed, still registered"
holed_at=$(($(wc -l <"$CLOG") + 1))
kill -USR1 "${EPIDS[2]}"
wait "$CPID" || fail "the echo client failed"
failed1=$(tail -n +"$deleted_at" "$CLOG" | grep -c "to ${EADDRS[1]} FAILED" || true)
failed2=$(tail -n +"$holed_at" "$CLOG" | grep -c "to ${EADDRS[2]} FAILED" || true)
sleep 0.2
say "failed calls to the draining, then stopped, instance after the client saw the drain: $failed1 (expected 0); to the black-holed one: $failed2 (expected at most 5)"
[ "$failed1" -eq 0 ] || fail "calls failed on the instance drained and stopped with SIGTERM"
[ "$failed2" -le 5 ] || fail "more than 5 calls failed on the black-holed instance"
for i in 2 3; do lib_kill_pid "${EPIDS[$i]}"; done
say "service table demo OK"
