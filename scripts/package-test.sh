#!/usr/bin/env bash
# Checks the Debian packages from the outside, the way a user gets them:
#
#   1. builds them (scripts/package.sh -> dist/*.deb)
#   2. lintian: fails on any E: tag (warnings are printed, not fatal)
#   3. control fields: names, version, architecture, sections, Depends (dpkg-shlibdeps for the
#      runtime package, the exact runtime version for -dev)
#   4. installs them: `dpkg -i` as root, else `dpkg -x` into a scratch root
#   5. the installed library: SONAME and symlinks, exports only etcd_sd_* (nm -D), needs only
#      libc/libm/libgcc_s/the loader (readelf NEEDED + ldd), stripped (size printed), and the
#      system libraries of the static library in etcd_sd.pc and the CMake targets are the
#      ones rustc reports for the real crate
#   6. builds out-of-tree consumers (tests/package/) against the installed files:
#        CMake find_package(etcd_sd CONFIG REQUIRED): etcd_sd::etcd_sd (C++ and C programs)
#          and etcd_sd::etcd_sd_static, plus the version file (SameMajorVersion)
#        g++ -std=c++17 app.cc $(pkg-config --cflags --libs etcd_sd)
#        gcc app.c -letcd_sd
#        g++ app.cc -Wl,-Bstatic -letcd_sd -Wl,-Bdynamic <Libs.private of etcd_sd.pc>
#      and, for libetcd-sd-compat-dev (the etcd-cpp-apiv3 drop-in, tests/compat/package/):
#        CMake find_package(etcd-cpp-api) / find_package(etcd-cpp-apiv3), pkg-config
#        etcd-cpp-api, and a Makefile linking -letcd-cpp-api (the installed linker script)
#   7. runs each of them against a private etcd (register a key, see it come back through a
#      Discovery); the shared ones must load the installed libetcd_sd.so.<major>, the static
#      ones must not need it at all
#   8. relocated trees: `cmake --install <package build> --prefix <another dir>` and the two
#      .debs unpacked (`dpkg -x`) into another directory; in each, etcd_sd.pc derives its prefix
#      from ${pcfiledir} and the CMake package from its own location, and a pkg-config
#      consumer, a CMake find_package(etcd_sd) consumer and a plain Makefile consumer
#      (tests/package/Makefile, with pkg-config and with PREFIX=) build against that tree, load
#      its libetcd_sd.so.<major> and run against the private etcd
#   9. dpkg mode: `dpkg --purge` both packages and checks that nothing they installed is left
#      (the `dpkg -L` lists taken before removal) and that ldconfig forgot the library
#
# Usage: scripts/package-test.sh        (scripts/test.sh runs it as its last step)
# Environment: ETCD_SD_PACKAGE_TEST_INSTALL=dpkg|extract|auto (default auto: dpkg when root
# and the packages are not installed already, else extract). Installing missing tools
# (lintian, dpkg-dev, file, g++) needs root or passwordless sudo.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

fail() { die "package-test: $*"; }
step() { banner "package-test: $*"; }

# ---------------------------------------------------------------------------------------------
# Dependencies: the main ones (etcd, etcdctl, cmake, pkg-config...) through ensure_deps, plus
# what only this test needs, kept out of ensure_deps so the main install stays small.
# ---------------------------------------------------------------------------------------------

_pt_pkg_for() {
    case "$1" in
    lintian) echo lintian ;;
    dpkg-shlibdeps | dpkg-architecture) echo dpkg-dev ;;
    file) echo file ;;
    g++) echo g++ ;;
    gcc) echo gcc ;;
    nm | readelf) echo binutils ;;
    gzip) echo gzip ;;
    timeout) echo coreutils ;;
    *) echo "$1" ;;
    esac
}

package_test_deps() {
    ensure_deps
    local c missing=() pkgs=()
    for c in lintian dpkg-shlibdeps dpkg-architecture file g++ gcc nm readelf gzip timeout; do
        command -v "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    for c in "${missing[@]}"; do pkgs+=("$(_pt_pkg_for "$c")"); done
    mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
    log "package-test: missing command(s): ${missing[*]}"
    if _lib_can_root && command -v apt-get >/dev/null 2>&1; then
        log "package-test: installing ${pkgs[*]} with apt-get"
        if ! _lib_as_root apt-get update -q ||
            ! _lib_as_root env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -q --no-install-recommends "${pkgs[@]}"; then
            fail "apt-get install failed; install these Debian packages: ${pkgs[*]}"
        fi
    else
        fail "missing ${missing[*]}; as root: apt-get install -y ${pkgs[*]}"
    fi
    for c in "${missing[@]}"; do
        command -v "$c" >/dev/null 2>&1 || fail "'$c' still missing after installing $(_pt_pkg_for "$c")"
    done
}

# ---------------------------------------------------------------------------------------------
# Cleanup: packages this run installed are purged on any exit (then lib_cleanup).
# ---------------------------------------------------------------------------------------------

PT_INSTALLED=()
pt_cleanup() {
    local rc=$?
    if [ "${#PT_INSTALLED[@]}" -gt 0 ]; then
        log "package-test: removing the packages this run installed: ${PT_INSTALLED[*]}"
        _lib_as_root dpkg --purge "${PT_INSTALLED[@]}" >/dev/null 2>&1 || true
        PT_INSTALLED=()
    fi
    lib_cleanup
    return "$rc"
}
trap 'pt_cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------

step "dependencies"
package_test_deps

version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)"
[ -n "$version" ] || fail "cannot read the version from Cargo.toml"
soversion="${version%%.*}"
soname="libetcd_sd.so.$soversion"
arch="$(dpkg --print-architecture)"
multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)"
runtime_pkg="libetcd-sd$soversion"
dev_pkg="libetcd-sd-dev"
compat_pkg="libetcd-sd-compat-dev"  # the etcd-cpp-apiv3 drop-in (docs/compat.md)
lib_tmpdir TMP

step "build the packages (scripts/package.sh)"
bash scripts/package.sh
pkg_build="${ETCD_SD_PACKAGE_BUILD_DIR:-$REPO_ROOT/build/deb}"
# What rustc says the real crate's staticlib needs, for the drift check further down: the
# package build's cargo step (cmake/cargo_build.cmake) asks rustc against the crate it just
# built, checks it against what CMake was configured with, and keeps the answer here.
cargo_note="$(cat "$pkg_build/etcd_sd/native-static-libs.txt" 2>/dev/null || true)"
runtime_debs=(dist/"${runtime_pkg}_${version}"-*_"$arch".deb)
dev_debs=(dist/"${dev_pkg}_${version}"-*_"$arch".deb)
if [ "${#runtime_debs[@]}" -ne 1 ] || [ ! -f "${runtime_debs[0]}" ]; then
    fail "expected one ${runtime_pkg}_${version}-*_$arch.deb in dist/, got: ${runtime_debs[*]}"
fi
if [ "${#dev_debs[@]}" -ne 1 ] || [ ! -f "${dev_debs[0]}" ]; then
    fail "expected one ${dev_pkg}_${version}-*_$arch.deb in dist/, got: ${dev_debs[*]}"
fi
runtime_deb="${runtime_debs[0]}"
dev_deb="${dev_debs[0]}"
# --- compat: libetcd-sd-compat-dev
compat_debs=(dist/"${compat_pkg}_${version}"-*_"$arch".deb)
if [ "${#compat_debs[@]}" -ne 1 ] || [ ! -f "${compat_debs[0]}" ]; then
    fail "expected one ${compat_pkg}_${version}-*_$arch.deb in dist/, got: ${compat_debs[*]}"
fi
compat_deb="${compat_debs[0]}"
debver="$(dpkg-deb -f "$runtime_deb" Version)"
ls -l "$runtime_deb" "$dev_deb"

step "lintian"
# --fail-on error: exit status 2 only for E: tags. Overrides shipped in the packages
# (packaging/debian/*lintian-overrides.in) are printed with their justification.
lintian_rc=0
lintian --fail-on error --show-overrides "$runtime_deb" "$dev_deb" "$compat_deb" >"$TMP/lintian.txt" 2>&1 ||
    lintian_rc=$?
grep -v '^running with root privileges' "$TMP/lintian.txt" || true
if [ "$lintian_rc" -ne 0 ] || grep -q '^E:' "$TMP/lintian.txt"; then
    fail "lintian reported errors (exit $lintian_rc)"
fi
log "lintian: no errors ($(grep -c '^W:' "$TMP/lintian.txt" || true) warning(s))"

step "control fields"
field() { dpkg-deb -f "$1" "$2"; }
expect_field() {
    local deb="$1" name="$2" want="$3" got
    got="$(field "$deb" "$name")"
    [ "$got" = "$want" ] || fail "$(basename "$deb"): $name is '$got', expected '$want'"
}
for deb in "$runtime_deb" "$dev_deb"; do
    expect_field "$deb" Version "$debver"
    expect_field "$deb" Architecture "$arch"
    [[ "$debver" == "$version"-* ]] || fail "package version $debver is not $version-<revision>"
    [ -n "$(field "$deb" Maintainer)" ] || fail "$(basename "$deb"): no Maintainer"
    [ "$(field "$deb" Description | wc -l)" -ge 3 ] ||
        fail "$(basename "$deb"): the Description has no long description"
done
expect_field "$runtime_deb" Package "$runtime_pkg"
expect_field "$runtime_deb" Section libs
expect_field "$dev_deb" Package "$dev_pkg"
expect_field "$dev_deb" Section libdevel
expect_field "$dev_deb" Depends "$runtime_pkg (= $debver)"
# --- compat: its own package, needing the -dev one (etcd_sd.h, libetcd_sd.so)
expect_field "$compat_deb" Package "$compat_pkg"
expect_field "$compat_deb" Section libdevel
expect_field "$compat_deb" Version "$debver"
expect_field "$compat_deb" Depends "$dev_pkg (= $debver)"
[ "$(field "$compat_deb" Description | wc -l)" -ge 3 ] || fail "$compat_pkg: no long description"
if dpkg-deb -c "$dev_deb" | grep -q '/usr/include/etcd/'; then
    fail "$dev_pkg claims /usr/include/etcd/ (it belongs to $compat_pkg only)"
fi
runtime_depends="$(field "$runtime_deb" Depends)"
# What dpkg-shlibdeps computed from libetcd_sd.so's NEEDED: libc6 and libgcc-s1, nothing else.
for dep in ${runtime_depends//,/ }; do
    case "$dep" in
    libc6 | libgcc-s1 | "("* | *")" | ">="* | [0-9]*) ;;
    *) fail "unexpected dependency '$dep' in Depends: $runtime_depends" ;;
    esac
done
[[ "$runtime_depends" == *libc6* ]] || fail "Depends lacks libc6 (dpkg-shlibdeps not run?): $runtime_depends"
dpkg-deb --ctrl-tarfile "$runtime_deb" | tar -xO ./shlibs >"$TMP/shlibs"
grep -qx "libetcd_sd $soversion $runtime_pkg (>= $debver)" "$TMP/shlibs" ||
    fail "unexpected shlibs file: $(cat "$TMP/shlibs")"
log "$runtime_pkg Depends: $runtime_depends"
log "$dev_pkg Depends: $(field "$dev_deb" Depends)"

step "install"
mode="${ETCD_SD_PACKAGE_TEST_INSTALL:-auto}"
installed_already=0
for p in "$runtime_pkg" "$dev_pkg" "$compat_pkg"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        installed_already=1
    fi
done
if [ "$mode" = auto ]; then
    if [ "$(id -u)" -eq 0 ] && [ "$installed_already" -eq 0 ]; then
        mode=dpkg
    else
        mode=extract
        if [ "$installed_already" -eq 1 ]; then
            log "package-test: $runtime_pkg or $dev_pkg is installed already; leaving it alone" \
                "and testing a scratch root (dpkg -x) instead"
        fi
    fi
fi
case "$mode" in
dpkg)
    [ "$(id -u)" -eq 0 ] || fail "ETCD_SD_PACKAGE_TEST_INSTALL=dpkg needs root"
    [ "$installed_already" -eq 0 ] || fail "$runtime_pkg/$dev_pkg installed already; purge them first"
    PT_INSTALLED=("$compat_pkg" "$dev_pkg" "$runtime_pkg")
    dpkg -i "$runtime_deb" "$dev_deb" "$compat_deb"
    root=""
    ;;
extract)
    root="$TMP/root"
    mkdir -p "$root"
    dpkg -x "$runtime_deb" "$root"
    dpkg -x "$dev_deb" "$root"
    dpkg -x "$compat_deb" "$root"
    log "extracted into $root"
    ;;
*) fail "ETCD_SD_PACKAGE_TEST_INSTALL must be dpkg, extract or auto (got '$mode')" ;;
esac
libdir="$root/usr/lib/$multiarch"
so="$libdir/libetcd_sd.so.$version"
pcfile="$libdir/pkgconfig/etcd_sd.pc"
cmakedir="$libdir/cmake/etcd_sd"
for f in "$so" "$libdir/$soname" "$libdir/libetcd_sd.so" "$libdir/libetcd_sd.a" \
    "$root/usr/include/etcd_sd.h" "$root/usr/include/etcd_sd_coord.h" "$root/usr/include/etcd_sd_table.h" \
    "$root/usr/include/etcd_sd.hpp" \
    "$root/usr/include/etcd_sd_table.hpp" "$root/usr/include/etcd_sd_coord.hpp" "$pcfile" \
    "$cmakedir/etcd_sdConfig.cmake" "$cmakedir/etcd_sdConfigVersion.cmake" \
    "$cmakedir/etcd_sdTargets.cmake" "$root/usr/share/doc/etcd-sd/README.md" \
    "$root/usr/share/doc/etcd-sd/LICENSE" \
    "$root/usr/share/doc/$runtime_pkg/copyright" "$root/usr/share/doc/$dev_pkg/copyright" \
    "$root/usr/share/doc/$runtime_pkg/changelog.Debian.gz" \
    "$root/usr/include/etcd/Client.hpp" "$root/usr/include/etcd/SyncClient.hpp" \
    "$root/usr/include/etcd/KeepAlive.hpp" "$root/usr/include/etcd/Watcher.hpp" \
    "$root/usr/include/etcd/Response.hpp" "$root/usr/include/etcd/Value.hpp" \
    "$libdir/libetcd-cpp-api.so" "$libdir/pkgconfig/etcd-cpp-api.pc" \
    "$libdir/cmake/etcd-cpp-api/etcd-cpp-api-config.cmake" \
    "$libdir/cmake/etcd-cpp-apiv3/etcd-cpp-apiv3-config.cmake" \
    "$root/usr/share/doc/$compat_pkg/copyright" "$root/usr/share/doc/$compat_pkg/compat.md"; do
    [ -e "$f" ] || fail "not installed: $f"
done
if [ "$mode" = dpkg ]; then
    ldconfig -p | grep -q "$soname " || fail "ldconfig does not know $soname after install"
fi

step "the installed shared library"
[ "$(readlink "$libdir/$soname")" = "libetcd_sd.so.$version" ] ||
    fail "$soname -> $(readlink "$libdir/$soname"), expected libetcd_sd.so.$version"
[ "$(readlink "$libdir/libetcd_sd.so")" = "$soname" ] ||
    fail "libetcd_sd.so -> $(readlink "$libdir/libetcd_sd.so"), expected $soname"
got_soname="$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ "$got_soname" = "$soname" ] || fail "SONAME is '$got_soname', expected $soname"
[ "$(stat -c %a "$so")" = 644 ] || fail "$so has mode $(stat -c %a "$so"), expected 644"

nm -D --defined-only "$so" | awk '{ print $NF }' >"$TMP/exports"
n_exports="$(wc -l <"$TMP/exports")"
[ "$n_exports" -gt 0 ] || fail "nm -D found no exported symbol"
if grep -v '^etcd_sd_' "$TMP/exports" >"$TMP/bad-exports"; then
    fail "exports beyond etcd_sd_*: $(tr '\n' ' ' <"$TMP/bad-exports")"
fi
log "exports: $n_exports symbols, all etcd_sd_*"

# NEEDED entries and what ldd resolves: the C runtime, libm, libgcc_s, the loader, the vDSO.
allowed_lib='^(libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|ld-linux[-a-z0-9_.]*\.so\.[0-9]+|linux-vdso\.so\.1|linux-gate\.so\.1|/lib[0-9]*/ld-linux[-a-z0-9_.]*\.so\.[0-9]+)$'
readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' >"$TMP/needed"
if grep -Ev "$allowed_lib" "$TMP/needed" >"$TMP/bad-needed"; then
    fail "$so needs more than libc/libm/libgcc_s: $(tr '\n' ' ' <"$TMP/bad-needed")"
fi
ldd "$so" | awk '{ print $1 }' >"$TMP/ldd"
if grep -Ev "$allowed_lib" "$TMP/ldd" >"$TMP/bad-ldd"; then
    fail "ldd $so shows more than libc/libm/libgcc_s/loader/vdso: $(tr '\n' ' ' <"$TMP/bad-ldd")"
fi
log "NEEDED: $(tr '\n' ' ' <"$TMP/needed")"
file -L "$so" | grep -q ', stripped' || fail "$so is not stripped: $(file -L "$so")"
log "size: $(stat -c %s "$so") bytes (stripped) for $(basename "$so")"

# Drift check: what rustc says the real crate's staticlib needs (read above, after the
# package build) against what the installed files hand out.
[ -n "$cargo_note" ] || fail "no native-static-libs from the package build ($pkg_build/etcd_sd/native-static-libs.txt)"
pc_private="$(sed -n 's/^Libs\.private: *//p' "$pcfile")"
[ "$pc_private" = "$cargo_note" ] ||
    fail "etcd_sd.pc Libs.private '$pc_private' != rustc's native-static-libs '$cargo_note'"
cmake_libs="$(sed -n 's/.*INTERFACE_LINK_LIBRARIES "\(.*\)")$/\1/p' "$cmakedir/etcd_sdTargets.cmake")"
# shellcheck disable=SC2086 # split the flags into words
want_cmake_libs="$(printf '%s\n' $cargo_note | sed 's/^-l//' | paste -sd';')"
[ "$cmake_libs" = "$want_cmake_libs" ] ||
    fail "etcd_sd::etcd_sd_static links '$cmake_libs', rustc says '$want_cmake_libs'"
log "static library needs: $cargo_note (etcd_sd.pc and etcd_sd::etcd_sd_static agree)"

step "build the consumers (tests/package)"
cmake_args=(-DCMAKE_BUILD_TYPE=Release -DETCD_SD_EXPECTED_VERSION="$version"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
pc=(pkg-config)
cc_dirs=()
if [ "$mode" = extract ]; then
    cmake_args+=(-DCMAKE_PREFIX_PATH="$root/usr")
    # No --define-variable=prefix: etcd_sd.pc finds its tree from ${pcfiledir} by itself.
    export PKG_CONFIG_PATH="$libdir/pkgconfig"
    cc_dirs=(-I"$root/usr/include" -L"$libdir")
    export LD_LIBRARY_PATH="$libdir"
fi
cmake -S tests/package -B "$TMP/consumer" "${cmake_args[@]}" >"$TMP/consumer-configure.log" 2>&1 ||
    { cat "$TMP/consumer-configure.log"; fail "configuring tests/package failed"; }
found_dir="$(sed -n 's/^etcd_sd_DIR:PATH=//p' "$TMP/consumer/CMakeCache.txt")"
[ "$(realpath "$found_dir")" = "$(realpath "$cmakedir")" ] ||
    fail "find_package(etcd_sd) used $found_dir, not the installed $cmakedir"
grep 'etcd_sd ' "$TMP/consumer-configure.log" || true
cmake --build "$TMP/consumer" -j2
apps=("$TMP/consumer/app_shared" "$TMP/consumer/app_static" "$TMP/consumer/app_c")

# shellcheck disable=SC2046 # pkg-config prints several words on purpose
g++ -std=c++17 -Wall -Wextra -Werror tests/package/app.cc \
    $("${pc[@]}" --cflags --libs etcd_sd) -o "$TMP/app_pkgconfig"
gcc -std=c99 -Wall -Wextra -Werror tests/package/app.c "${cc_dirs[@]}" -letcd_sd -o "$TMP/app_gcc"
# shellcheck disable=SC2086 # Libs.private is a list of flags
g++ -std=c++17 -Wall -Wextra -Werror tests/package/app.cc "${cc_dirs[@]}" \
    -Wl,-Bstatic -letcd_sd -Wl,-Bdynamic $pc_private -o "$TMP/app_gxx_static"
apps+=("$TMP/app_pkgconfig" "$TMP/app_gcc" "$TMP/app_gxx_static")

# --- compat: etcd-cpp-apiv3 code built the ways its build files do it (tests/compat/package)
grep -qx 'INPUT(libetcd_sd.so.'"$soversion"')' "$libdir/libetcd-cpp-api.so" ||
    fail "libetcd-cpp-api.so is not the linker script INPUT(libetcd_sd.so.$soversion): $(cat "$libdir/libetcd-cpp-api.so")"
cmake -S tests/compat/package -B "$TMP/compat-consumer" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF ${root:+-DCMAKE_PREFIX_PATH="$root/usr"} \
    >"$TMP/compat-configure.log" 2>&1 ||
    { cat "$TMP/compat-configure.log"; fail "configuring tests/compat/package failed"; }
for pkg in etcd-cpp-api etcd-cpp-apiv3; do
    found_dir="$(sed -n "s/^${pkg}_DIR:PATH=//p" "$TMP/compat-consumer/CMakeCache.txt")"
    [ "$(realpath "$found_dir")" = "$(realpath "$libdir/cmake/$pkg")" ] ||
        fail "find_package($pkg) used $found_dir, not the installed $libdir/cmake/$pkg"
done
grep 'etcd-cpp-api' "$TMP/compat-configure.log" || true
cmake --build "$TMP/compat-consumer" -j2
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
g++ -std=c++17 tests/compat/package/app.cc $("${pc[@]}" --cflags --libs etcd-cpp-api) \
    -o "$TMP/app_compat_pkgconfig"
make -s -f tests/compat/package/Makefile OUT="$TMP/app_compat_make" \
    CPPFLAGS="${cc_dirs[*]:0:1}" LDFLAGS="${cc_dirs[*]:1:1}"
apps+=("$TMP/compat-consumer/app_etcd_cpp_api" "$TMP/compat-consumer/app_etcd_cpp_apiv3"
    "$TMP/app_compat_pkgconfig" "$TMP/app_compat_make")

for app in "${apps[@]}"; do
    name="$(basename "$app")"
    ldd "$app" >"$TMP/ldd-$name"
    case "$name" in
    *static)
        if grep -q libetcd_sd "$TMP/ldd-$name"; then
            fail "$name is meant to be static but needs libetcd_sd: $(cat "$TMP/ldd-$name")"
        fi
        # Beyond what a C++ program needs anyway (libstdc++), only the C runtime.
        if awk '{ print $1 }' "$TMP/ldd-$name" | grep -v '^libstdc++\.so\.6$' |
            grep -Ev "$allowed_lib" >"$TMP/bad-ldd"; then
            fail "$name needs more than libc/libm/libgcc_s/libstdc++: $(tr '\n' ' ' <"$TMP/bad-ldd")"
        fi
        ;;
    *)
        resolved="$(awk -v s="$soname" '$1 == s { print $3 }' "$TMP/ldd-$name")"
        [ -n "$resolved" ] || fail "$name does not load $soname: $(cat "$TMP/ldd-$name")"
        [ "$(realpath "$resolved")" = "$(realpath "$so")" ] ||
            fail "$name loads $resolved, not the installed $so"
        ;;
    esac
    log "$name: $(awk '{ print $1 }' "$TMP/ldd-$name" | tr '\n' ' ')"
done

step "run the consumers against a private etcd"
start_etcd "$TMP" ETCD
log "etcd at $ETCD_ENDPOINTS"
for app in "${apps[@]}"; do
    name="$(basename "$app")"
    out="$(timeout 60 "$app" "$ETCD_ENDPOINTS" "/etcd-sd-package-test/$name/instance-1" \
        "127.0.0.1:$((9000 + RANDOM % 1000))" 2>&1)" || fail "$name failed: $out"
    case "$out" in
    ok:*) log "$name: $out" ;;
    *) fail "$name printed no ok line: $out" ;;
    esac
done

# relocated_consumers LABEL PREFIX: the tree under PREFIX (include/, lib[/<multiarch>]/) was
# installed or unpacked somewhere else than its configured prefix (/usr). Checks that its .pc
# and CMake package point into PREFIX, then builds the pkg-config, CMake and Makefile consumers
# against it and runs them against the private etcd, loading PREFIX's library.
relocated_consumers() {
    local label="$1" prefix="$2" rpc rlibdir rso out app name resolved inc
    rpc="$(find "$prefix" -name etcd_sd.pc -print -quit)"
    [ -n "$rpc" ] || fail "$label: no etcd_sd.pc under $prefix"
    rlibdir="$(dirname "$(dirname "$rpc")")"
    rso="$rlibdir/libetcd_sd.so.$version"
    # shellcheck disable=SC2016 # the literal ${pcfiledir}
    grep -q '^prefix=${pcfiledir}/' "$rpc" || fail "$label: $rpc does not derive its prefix: $(head -n 1 "$rpc")"
    inc="$(PKG_CONFIG_PATH="$(dirname "$rpc")" pkg-config --variable=includedir etcd_sd)"
    [ "$(realpath "$inc")" = "$(realpath "$prefix/include")" ] ||
        fail "$label: etcd_sd.pc says includedir=$inc, not $prefix/include"
    out="$TMP/reloc-$label"
    mkdir -p "$out"
    cmake -S tests/package -B "$out/cmake" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DETCD_SD_EXPECTED_VERSION="$version" \
        >"$out/configure.log" 2>&1 || { cat "$out/configure.log"; fail "$label: configuring tests/package failed"; }
    [ "$(realpath "$(sed -n 's/^etcd_sd_DIR:PATH=//p' "$out/cmake/CMakeCache.txt")")" = \
        "$(realpath "$rlibdir/cmake/etcd_sd")" ] || fail "$label: find_package(etcd_sd) did not use $prefix"
    cmake --build "$out/cmake" -j2 --target app_shared app_c >"$out/build.log" 2>&1 ||
        { cat "$out/build.log"; fail "$label: building the CMake consumers failed"; }
    # shellcheck disable=SC2046 # pkg-config prints several words on purpose
    g++ -std=c++17 -Wall -Wextra -Werror tests/package/app.cc \
        $(PKG_CONFIG_PATH="$(dirname "$rpc")" pkg-config --cflags --libs etcd_sd) -o "$out/app_pkgconfig"
    mkdir -p "$out/make-pc" "$out/make-prefix"
    PKG_CONFIG_PATH="$(dirname "$rpc")" make -s -f tests/package/Makefile OUT="$out/make-pc" ||
        fail "$label: the Makefile consumer (pkg-config) failed"
    make -s -f tests/package/Makefile OUT="$out/make-prefix" PREFIX="$prefix" LIBDIR="$rlibdir" \
        "$out/make-prefix/app_make_c" || fail "$label: the Makefile consumer (PREFIX=) failed"
    for app in "$out/cmake/app_shared" "$out/cmake/app_c" "$out/app_pkgconfig" \
        "$out/make-pc/app_make_c" "$out/make-pc/app_make_cc" "$out/make-prefix/app_make_c"; do
        name="$label/${app#"$out"/}"
        resolved="$(LD_LIBRARY_PATH="$rlibdir" ldd "$app" | awk -v s="$soname" '$1 == s { print $3 }')"
        [ "$(realpath "$resolved")" = "$(realpath "$rso")" ] ||
            fail "$name loads '$resolved', not $rso"
        app_out="$(LD_LIBRARY_PATH="$rlibdir" timeout 60 "$app" "$ETCD_ENDPOINTS" \
            "/etcd-sd-package-test/reloc/$name/instance-1" "127.0.0.1:$((9000 + RANDOM % 1000))" 2>&1)" ||
            fail "$name failed: $app_out"
        case "$app_out" in
        ok:*) log "$name: $app_out" ;;
        *) fail "$name printed no ok line: $app_out" ;;
        esac
    done
}

step "relocated trees: cmake --install --prefix elsewhere, and the .debs unpacked elsewhere"
cmake --install "$pkg_build" --prefix "$TMP/elsewhere/opt/etcd-sd" >"$TMP/reloc-install.log" 2>&1 ||
    { cat "$TMP/reloc-install.log"; fail "cmake --install $pkg_build --prefix ... failed"; }
relocated_consumers install "$TMP/elsewhere/opt/etcd-sd"
mkdir -p "$TMP/unpacked"
dpkg -x "$runtime_deb" "$TMP/unpacked"
dpkg -x "$dev_deb" "$TMP/unpacked"
relocated_consumers deb "$TMP/unpacked/usr"

if [ "$mode" = dpkg ]; then
    step "remove the packages"
    for p in "$runtime_pkg" "$dev_pkg" "$compat_pkg"; do dpkg -L "$p"; done | sort -u >"$TMP/owned"
    # Directories shared with other packages (/usr, /usr/lib/<triplet>, ...) legitimately stay;
    # anything that is not a directory, or a directory of our own, must go.
    : >"$TMP/must-go"
    while IFS= read -r path; do
        if [ -d "$path" ] && [ ! -L "$path" ]; then
            case "$path" in
            *etcd_sd* | *etcd-sd* | */include/etcd | */include/etcd/* | *etcd-cpp-api*) echo "$path" >>"$TMP/must-go" ;;
            esac
        else
            echo "$path" >>"$TMP/must-go"
        fi
    done <"$TMP/owned"
    dpkg --purge "$compat_pkg" "$dev_pkg" "$runtime_pkg"
    PT_INSTALLED=()
    for p in "$runtime_pkg" "$dev_pkg" "$compat_pkg"; do
        if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed'; then
            fail "$p still installed after dpkg --purge"
        fi
    done
    left=()
    while IFS= read -r path; do
        if [ -e "$path" ] || [ -L "$path" ]; then left+=("$path"); fi
    done <"$TMP/must-go"
    [ "${#left[@]}" -eq 0 ] || fail "left on disk after purge: ${left[*]}"
    if ldconfig -p | grep -q "$soname "; then
        fail "ldconfig still lists $soname after purge"
    fi
    log "purged; all $(wc -l <"$TMP/must-go") files and own directories are gone"
fi

banner "package-test: OK ($mode mode; $runtime_pkg $debver Depends: $runtime_depends)"
