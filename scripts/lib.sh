# shellcheck shell=bash
# Shared helpers for scripts/*.sh. Source it; do not run it.
#
#   ensure_deps              install etcd, etcdctl, protoc, cmake, pkg-config (and valgrind and
#                            iproute2's ip, optional) via apt if any is missing; rustfmt +
#                            clippy via rustup
#   free_port                print a free TCP port on 127.0.0.1
#   start_etcd DIR PREFIX    start a private etcd on two free loopback ports, data + log in DIR;
#                            sets ${PREFIX}_ENDPOINTS ${PREFIX}_PID ${PREFIX}_LOG ${PREFIX}_DATA
#   lib_tmpdir VAR           create a temp dir (removed on exit), store its path in VAR
#   lib_track_pid PID        kill PID (TERM, then KILL) on exit
#   lib_install_trap         install the EXIT/INT/TERM trap that runs lib_cleanup
#
# Everything started or created through these helpers is torn down by lib_cleanup, which the
# trap runs on any exit (success, failure, Ctrl-C).

# Repo root: the parent of the directory holding this file.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT

# etcd 3.4's etcdctl defaults to v3 already; be explicit for older/newer ones.
export ETCDCTL_API=3

_LIB_PIDS=()
_LIB_DIRS=()
_LIB_CLEANED=0

log() { printf '%s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}
banner() { printf '\n== %s\n' "$*"; }

now_ms() { date +%s%3N; }

# ---------------------------------------------------------------------------------------------
# Dependencies
# ---------------------------------------------------------------------------------------------

# Command -> Debian 12 package providing it.
_lib_pkg_for() {
    case "$1" in
    etcd) echo etcd-server ;;
    etcdctl) echo etcd-client ;;
    protoc) echo protobuf-compiler ;;
    cmake) echo cmake ;;
    pkg-config) echo pkg-config ;;
    valgrind) echo valgrind ;;
    ip) echo iproute2 ;;
    *) echo "$1" ;;
    esac
}

# Run a command as root: directly when we are root, else through non-interactive sudo.
# Returns 127 when neither is possible.
_lib_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 127
    fi
}

_lib_can_root() {
    [ "$(id -u)" -eq 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }
}

# PIDs of the packaged etcd daemon, one per line: /usr/bin/etcd processes running as the
# `etcd` system user (both the systemd unit and the init script use --chuid/User=etcd). Our
# private etcds run as the invoking user, so they never match.
_lib_system_etcd_pids() {
    local p exe owner
    for p in /proc/[0-9]*; do
        exe="$(readlink "$p/exe" 2>/dev/null || true)"
        [ "$exe" = /usr/bin/etcd ] || continue
        owner="$(stat -c %U "$p" 2>/dev/null || true)"
        [ "$owner" = etcd ] && echo "${p#/proc/}"
    done
    return 0
}

# The etcd-server package's postinst may start (and enable) a system etcd on 127.0.0.1:2379.
# Our scripts never use it, so stop and disable it -- but only an instance that the install
# we just ran started (pids not in $1). Without systemd we kill it by pid rather than with
# `service etcd stop`, whose start-stop-daemon would match every /usr/bin/etcd by name,
# including private ones of tests running at the same time.
_lib_stop_packaged_etcd() {
    local before="$1" pid new=()
    for pid in $(_lib_system_etcd_pids); do
        case " $before " in
        *" $pid "*) ;;
        *) new+=("$pid") ;;
        esac
    done
    [ "${#new[@]}" -gt 0 ] || return 0
    log "ensure_deps: the etcd-server package started a system etcd (pid ${new[*]});" \
        "stopping and disabling it (our scripts always start their own etcd)"
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        _lib_as_root systemctl stop etcd >/dev/null 2>&1 || true
        _lib_as_root systemctl disable etcd >/dev/null 2>&1 || true
    elif command -v update-rc.d >/dev/null 2>&1; then
        _lib_as_root update-rc.d etcd disable >/dev/null 2>&1 || true
    fi
    # Whatever is still alive of those pids: TERM, then KILL after ~3 s, by pid.
    local i alive
    for i in 1 2 3 4 5 6 7 8 9 10 11; do
        alive=()
        for pid in "${new[@]}"; do
            [ -e "/proc/$pid" ] && alive+=("$pid")
        done
        [ "${#alive[@]}" -gt 0 ] || return 0
        if [ "$i" -eq 1 ]; then
            _lib_as_root kill -TERM "${alive[@]}" 2>/dev/null || true
        elif [ "$i" -eq 10 ]; then
            _lib_as_root kill -KILL "${alive[@]}" 2>/dev/null || true
        fi
        sleep 0.3
    done
    log "ensure_deps: warning: could not stop the system etcd (pid ${alive[*]}); harmless:" \
        "our scripts use their own etcd on free ports"
}

ensure_deps() {
    local required=(etcd etcdctl protoc cmake pkg-config)
    # valgrind: the memcheck tests; ip: tests/partition.rs's network namespaces (both skip
    # without them).
    local optional=(valgrind ip)
    local missing_req=() missing_opt=() c
    for c in "${required[@]}"; do
        command -v "$c" >/dev/null 2>&1 || missing_req+=("$c")
    done
    for c in "${optional[@]}"; do
        # ip is in /usr/sbin, off a normal user's PATH.
        command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || [ -x "/sbin/$c" ] ||
            missing_opt+=("$c")
    done

    if [ "${#missing_req[@]}" -gt 0 ] || [ "${#missing_opt[@]}" -gt 0 ]; then
        local pkgs=(etcd-server etcd-client protobuf-compiler cmake pkg-config valgrind iproute2)
        local missing=("${missing_req[@]}" "${missing_opt[@]}")
        log "ensure_deps: missing command(s): ${missing[*]}"
        if _lib_can_root && command -v apt-get >/dev/null 2>&1; then
            local before
            before="$(_lib_system_etcd_pids | tr '\n' ' ')"
            log "ensure_deps: installing ${pkgs[*]} with apt-get"
            if ! _lib_as_root apt-get update -q ||
                ! _lib_as_root env DEBIAN_FRONTEND=noninteractive \
                    apt-get install -y -q "${pkgs[@]}"; then
                if [ "${#missing_req[@]}" -gt 0 ]; then
                    die "apt-get install failed; install these Debian packages manually: ${pkgs[*]}"
                fi
                log "ensure_deps: warning: could not install ${missing_opt[*]};" \
                    "the tests that need them will be skipped (valgrind: memcheck; ip: partition)"
            fi
            _lib_stop_packaged_etcd "$before"
        elif [ "${#missing_req[@]}" -gt 0 ]; then
            local need=()
            for c in "${missing_req[@]}" "${missing_opt[@]}"; do
                need+=("$(_lib_pkg_for "$c")")
            done
            {
                echo "error: missing command(s): ${missing[*]}"
                echo "Installing them needs root, and this shell is neither root nor allowed"
                echo "to use 'sudo -n' (passwordless sudo). Please run, as root:"
                echo
                echo "    apt-get update && apt-get install -y ${need[*]}"
                echo
                echo "(Debian 12: etcd-server provides etcd, etcd-client provides etcdctl.)"
                echo "If the etcd-server package starts a system etcd, you may stop it:"
                echo "our scripts always start their own private etcd on free ports."
            } >&2
            exit 1
        else
            log "ensure_deps: warning: ${missing_opt[*]} missing and no root/sudo to install;" \
                "the tests that need them will be skipped (apt-get install valgrind iproute2)"
        fi
        for c in "${required[@]}"; do
            command -v "$c" >/dev/null 2>&1 ||
                die "'$c' still missing after install (package $(_lib_pkg_for "$c"))"
        done
    fi

    # Rust toolchain and its components.
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found; install the Rust toolchain (https://rustup.rs) and retry"
    local comps=()
    cargo fmt --version >/dev/null 2>&1 || comps+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || comps+=(clippy)
    if [ "${#comps[@]}" -gt 0 ]; then
        command -v rustup >/dev/null 2>&1 ||
            die "missing Rust component(s) ${comps[*]} and no rustup to add them; install them with your toolchain"
        log "ensure_deps: rustup component add ${comps[*]}"
        rustup component add "${comps[@]}" ||
            die "'rustup component add ${comps[*]}' failed"
    fi

    # Python's prometheus_client: tests/metrics.rs checks etcd_sd_metrics_text with its
    # parser (a real Prometheus text-format parser, from PyPI).
    if ! python3 -c 'import prometheus_client' >/dev/null 2>&1; then
        log "ensure_deps: python3 -m pip install prometheus_client"
        python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore prometheus_client ||
            die "could not install the Python package prometheus_client (pip install prometheus_client)"
    fi
}

# ---------------------------------------------------------------------------------------------
# Processes, temp dirs and cleanup
# ---------------------------------------------------------------------------------------------

lib_track_pid() { _LIB_PIDS+=("$1"); }

lib_tmpdir() {
    local d
    d="$(mktemp -d "${TMPDIR:-/tmp}/etcd-sd.XXXXXX")"
    _LIB_DIRS+=("$d")
    printf -v "$1" '%s' "$d"
}

# True while PID exists and is not a zombie (a zombie child still answers kill -0). A pid
# whose /proc entry vanishes between the two checks (reaped meanwhile) counts as gone.
lib_pid_alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
    [ -n "$st" ] && [ "$st" != "Z" ]
}

# Stop one pid: TERM, wait up to ~5 s, then KILL. Reaps it when it is our child.
lib_kill_pid() {
    local pid="$1" i
    if lib_pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            lib_pid_alive "$pid" || break
            sleep 0.1
        done
        if lib_pid_alive "$pid"; then
            log "cleanup: pid $pid ignored SIGTERM for 5 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

lib_cleanup() {
    [ "$_LIB_CLEANED" -eq 0 ] || return 0
    _LIB_CLEANED=1
    local i
    # Newest first: clients before the etcd they talk to.
    for ((i = ${#_LIB_PIDS[@]} - 1; i >= 0; i--)); do
        lib_kill_pid "${_LIB_PIDS[$i]}"
    done
    for i in "${_LIB_DIRS[@]}"; do
        [ -n "$i" ] && rm -rf -- "$i"
    done
}

lib_install_trap() {
    trap 'lib_cleanup' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# ---------------------------------------------------------------------------------------------
# Private etcd
# ---------------------------------------------------------------------------------------------

free_port() {
    python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# start_etcd DIR PREFIX: etcd with data dir DIR/etcd-PREFIX.data and log DIR/etcd-PREFIX.log,
# on two free loopback ports. Waits (max 10 s) until `etcdctl endpoint health` succeeds.
# Sets ${PREFIX}_ENDPOINTS, ${PREFIX}_PID, ${PREFIX}_LOG, ${PREFIX}_DATA; the pid is killed by
# lib_cleanup. Retries with new ports if etcd dies at startup (port taken meanwhile).
start_etcd() {
    local dir="$1" prefix="$2"
    [ -d "$dir" ] || die "start_etcd: no such directory: $dir"
    [[ "$prefix" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "start_etcd: bad variable prefix '$prefix'"
    local data="$dir/etcd-$prefix.data" logf="$dir/etcd-$prefix.log"
    local attempt p1 p2 url pid deadline
    for attempt in 1 2 3; do
        p1="$(free_port)"
        p2="$(free_port)"
        while [ "$p2" = "$p1" ]; do p2="$(free_port)"; done
        url="http://127.0.0.1:$p1"
        rm -rf -- "$data"
        etcd --name demo --data-dir "$data" \
            --listen-client-urls "$url" --advertise-client-urls "$url" \
            --listen-peer-urls "http://127.0.0.1:$p2" \
            --initial-advertise-peer-urls "http://127.0.0.1:$p2" \
            --initial-cluster "demo=http://127.0.0.1:$p2" \
            >"$logf" 2>&1 </dev/null &
        pid=$!
        lib_track_pid "$pid"
        deadline=$(($(now_ms) + 10000))
        while :; do
            if ! lib_pid_alive "$pid"; then
                wait "$pid" 2>/dev/null || true
                log "start_etcd: etcd exited during startup (attempt $attempt); log tail:"
                tail -n 5 "$logf" >&2 || true
                break
            fi
            if etcdctl --endpoints="$url" --dial-timeout=1s --command-timeout=1s \
                endpoint health >/dev/null 2>&1; then
                printf -v "${prefix}_ENDPOINTS" '%s' "$url"
                printf -v "${prefix}_PID" '%s' "$pid"
                printf -v "${prefix}_LOG" '%s' "$logf"
                printf -v "${prefix}_DATA" '%s' "$data"
                return 0
            fi
            if [ "$(now_ms)" -ge "$deadline" ]; then
                log "start_etcd: etcd at $url not healthy after 10 s; log tail:"
                tail -n 20 "$logf" >&2 || true
                lib_kill_pid "$pid"
                die "start_etcd: giving up (log: $logf)"
            fi
            sleep 0.1
        done
    done
    die "start_etcd: etcd failed to start 3 times (log: $logf)"
}
