#!/usr/bin/env bash
# Builds the Debian packages of etcd-sd into dist/ with CMake + CPack (DEB generator):
#
#   dist/libetcd-sd<major>_<version>-<rev>_<arch>.deb   the shared library
#   dist/libetcd-sd-dev_<version>-<rev>_<arch>.deb      headers, static library, CMake and
#                                                       pkg-config files
#
# Usage: scripts/package.sh [CMAKE_ARG...]   e.g. -DETCD_SD_DEB_REVISION=2
#                                                 -DETCD_SD_DEB_MAINTAINER="Name <mail>"
# Equivalent to configuring a build tree with -DCMAKE_INSTALL_PREFIX=/usr and running
# `cmake --build <tree> --target package`. The build tree is build/deb
# (ETCD_SD_PACKAGE_BUILD_DIR overrides it); cargo's target/ is shared with the normal build.
# Needs cmake, cargo, and for CPack's dependency computation dpkg-shlibdeps (dpkg-dev) and
# file; works from any directory, without root.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

missing=()
for c in cmake cargo dpkg-shlibdeps file readelf; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
if [ "${#missing[@]}" -gt 0 ]; then
    die "missing command(s): ${missing[*]} (Debian: apt-get install cmake dpkg-dev file binutils; cargo: https://rustup.rs)"
fi

build="${ETCD_SD_PACKAGE_BUILD_DIR:-$REPO_ROOT/build/deb}"
version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)"
[ -n "$version" ] || die "cannot read the version from Cargo.toml"

# Only this version's packages from an earlier run: CPack rewrites them, but a failed run
# must not leave an old file that looks fresh.
mkdir -p dist
rm -f dist/libetcd-sd*_"$version"-*.deb

cmake -S . -B "$build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX=/usr \
    -DETCD_SD_BUILD_TESTS=OFF \
    -DETCD_SD_BUILD_EXAMPLES=OFF \
    -DETCD_SD_PACKAGE_DIR="$REPO_ROOT/dist" \
    "$@"
cmake --build "$build" --target package

log ""
log "packages:"
ls -l dist/libetcd-sd*_"$version"-*.deb >&2
