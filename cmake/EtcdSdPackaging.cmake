# Debian packages with CPack (included from CMakeLists.txt, "Install and packaging").
#
#   cmake -S . -B build/deb -DCMAKE_INSTALL_PREFIX=/usr && cmake --build build/deb --target package
#   (scripts/package.sh does this, with tests and examples off)  ->  dist/*.deb
#
# Why CPack's DEB generator rather than debian/ + dpkg-buildpackage:
#   - nothing extra to install: CMake ships CPack, and it writes .deb files itself (no
#     debhelper, no build-dependency resolution, no source package to maintain);
#   - it packages exactly the `cmake --install` tree, split by install component, so the
#     layout is defined once (cmake/EtcdSdInstall.cmake) for both `cmake --install` and .deb;
#   - CPACK_DEBIAN_PACKAGE_SHLIBDEPS=ON runs dpkg-shlibdeps on the packaged ELF files, so
#     Depends is computed from what libetcd_sd.so really links (libc6, libgcc-s1), and
#     GENERATE_SHLIBS writes the shlibs file that lets dpkg-shlibdeps of *our* users map
#     libetcd_sd.so.<major> to this package.
#
# Packages (component -> package):
#   runtime -> libetcd-sd<major>  section libs:     libetcd_sd.so.<version> + .so.<major>
#   dev     -> libetcd-sd-dev     section libdevel: headers, .a, .so symlink, CMake and
#                                 pkg-config files, README/LICENSE;
#                                 Depends: libetcd-sd<major> (= exact version)
# Each has share/doc/<package>/copyright (packaging/debian/copyright), changelog.Debian.gz
# and share/lintian/overrides/<package> (justified exceptions only, see packaging/debian/);
# the runtime package has the ldconfig trigger (packaging/debian/triggers) and a shlibs file.
#
# Cache variables: ETCD_SD_DEB_MAINTAINER, ETCD_SD_DEB_REVISION (Debian revision, 1),
# ETCD_SD_PACKAGE_DIR (where the .deb files go: <source>/dist).

set(ETCD_SD_DEB_MAINTAINER "etcd-sd maintainers <etcd-sd@example.org>"
    CACHE STRING "Maintainer field of the Debian packages")
set(ETCD_SD_DEB_REVISION "1" CACHE STRING "Debian revision of the packages (the -N in 0.1.0-N)")
set(ETCD_SD_PACKAGE_DIR "${PROJECT_SOURCE_DIR}/dist" CACHE PATH "where CPack writes the packages")

set(ETCD_SD_DEB_RUNTIME_PACKAGE "libetcd-sd${ETCD_SD_SOVERSION}")
set(ETCD_SD_DEB_DEV_PACKAGE "libetcd-sd-dev")
set(ETCD_SD_DEB_VERSION "${PROJECT_VERSION}-${ETCD_SD_DEB_REVISION}")

# --- per-package Debian documentation (component installs only) ---
find_program(GZIP_EXECUTABLE gzip)
set(_deb_dir "${CMAKE_CURRENT_BINARY_DIR}/etcd_sd-debian")
# Honours SOURCE_DATE_EPOCH for reproducible packages.
string(TIMESTAMP ETCD_SD_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file("${PROJECT_SOURCE_DIR}/packaging/debian/changelog.in" "${_deb_dir}/changelog" @ONLY)
if(GZIP_EXECUTABLE)
  # -n: no name/timestamp in the header; -9: what Debian policy asks for.
  execute_process(COMMAND "${GZIP_EXECUTABLE}" -9nf "${_deb_dir}/changelog" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "gzip failed on ${_deb_dir}/changelog")
  endif()
  set(_changelog "${_deb_dir}/changelog.gz")
else()
  message(WARNING "gzip not found: the Debian packages will have no changelog.Debian.gz")
  set(_changelog "")
endif()
foreach(_comp runtime dev)
  if(_comp STREQUAL "runtime")
    set(_pkg "${ETCD_SD_DEB_RUNTIME_PACKAGE}")
  else()
    set(_pkg "${ETCD_SD_DEB_DEV_PACKAGE}")
  endif()
  install(FILES "${PROJECT_SOURCE_DIR}/packaging/debian/copyright"
          DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/${_pkg}"
          COMPONENT ${_comp} EXCLUDE_FROM_ALL)
  if(_changelog)
    install(FILES "${_changelog}" RENAME changelog.Debian.gz
            DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/${_pkg}"
            COMPONENT ${_comp} EXCLUDE_FROM_ALL)
  endif()
  # Justified lintian exceptions (each explained in its template).
  set(PKG "${_pkg}")
  configure_file("${PROJECT_SOURCE_DIR}/packaging/debian/lintian-overrides.in"
                 "${_deb_dir}/${_comp}/${_pkg}" @ONLY)
  if(_comp STREQUAL "runtime")
    configure_file("${PROJECT_SOURCE_DIR}/packaging/debian/runtime-lintian-overrides.in"
                   "${_deb_dir}/runtime-extra" @ONLY)
    file(READ "${_deb_dir}/runtime-extra" _extra)
    file(APPEND "${_deb_dir}/${_comp}/${_pkg}" "${_extra}")
  endif()
  install(FILES "${_deb_dir}/${_comp}/${_pkg}"
          DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides"
          COMPONENT ${_comp} EXCLUDE_FROM_ALL)
endforeach()

# --- CPack ---
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "etcd-sd")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "etcd-sd")
set(CPACK_PACKAGE_CONTACT "${ETCD_SD_DEB_MAINTAINER}")
set(CPACK_OUTPUT_FILE_PREFIX "${ETCD_SD_PACKAGE_DIR}")
# The .pc file and GNUInstallDirs' multiarch libdir were computed for CMAKE_INSTALL_PREFIX:
# package exactly that tree (EtcdSdCPackOptions.cmake refuses anything but /usr for .deb).
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_STRIP_FILES OFF)  # cargo already strips (profile.release strip = "symbols")

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_COMPONENT_DEV_DEPENDS runtime)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)  # dev: Depends libetcd-sd0 (= version)

set(CPACK_DEBIAN_PACKAGE_RELEASE "${ETCD_SD_DEB_REVISION}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)         # <name>_<version>-<rev>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${ETCD_SD_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)           # Depends from dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)     # DEBIAN/shlibs for our users' shlibdeps
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_PACKAGE_SOURCE "etcd-sd")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME "${ETCD_SD_DEB_RUNTIME_PACKAGE}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION "libs")
# The ldconfig trigger (Debian policy 8.1.1; lintian: lacks-ldconfig-trigger).
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA "${PROJECT_SOURCE_DIR}/packaging/debian/triggers")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENT_RUNTIME_DISPLAY_NAME "etcd-sd shared library")
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
"service registration and discovery over etcd v3 - shared library
etcd-sd registers service instances in etcd under a kept-alive lease and
discovers them by key prefix (initial listing, then watch), recovering by
itself from etcd restarts, lost leases, compaction and member loss.
It has a small C ABI and a header-only C++17 wrapper, and needs nothing
beyond the C runtime (TLS is built in).
.
This package contains the shared library.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME "${ETCD_SD_DEB_DEV_PACKAGE}")
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION "libdevel")
set(CPACK_COMPONENT_DEV_DISPLAY_NAME "etcd-sd development files")
set(CPACK_COMPONENT_DEV_DESCRIPTION
"service registration and discovery over etcd v3 - development files
etcd-sd registers service instances in etcd under a kept-alive lease and
discovers them by key prefix (initial listing, then watch), recovering by
itself from etcd restarts, lost leases, compaction and member loss.
.
This package contains the C header etcd_sd.h, the C++17 wrapper
etcd_sd.hpp, the static library, and the CMake (find_package(etcd_sd))
and pkg-config (etcd_sd) files.")

include(EtcdSdCompatPackaging)  # libetcd-sd-compat-dev (cmake/EtcdSdCompatPackaging.cmake)
# --- etcd-sd-tools: the etcd-sd command-line tool (service table, issue 10) ---
# A package of its own (section utils): /usr/bin/etcd-sd links only the C runtime (the Rust
# code is in the binary), so it depends on neither library package.
if(TARGET etcd_sd_cli)
  set(ETCD_SD_DEB_TOOLS_PACKAGE "etcd-sd-tools")
  list(APPEND CPACK_COMPONENTS_ALL tools)
  install(FILES "${PROJECT_SOURCE_DIR}/packaging/debian/copyright"
          DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/${ETCD_SD_DEB_TOOLS_PACKAGE}"
          COMPONENT tools EXCLUDE_FROM_ALL)
  if(_changelog)
    install(FILES "${_changelog}" RENAME changelog.Debian.gz
            DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/${ETCD_SD_DEB_TOOLS_PACKAGE}"
            COMPONENT tools EXCLUDE_FROM_ALL)
  endif()
  set(PKG "${ETCD_SD_DEB_TOOLS_PACKAGE}")
  configure_file("${PROJECT_SOURCE_DIR}/packaging/debian/lintian-overrides.in"
                 "${_deb_dir}/tools/${PKG}" @ONLY)
  install(FILES "${_deb_dir}/tools/${PKG}"
          DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides"
          COMPONENT tools EXCLUDE_FROM_ALL)
  set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME "${ETCD_SD_DEB_TOOLS_PACKAGE}")
  set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION "utils")
  set(CPACK_COMPONENT_TOOLS_DISPLAY_NAME "etcd-sd command-line tool")
  set(CPACK_COMPONENT_TOOLS_DESCRIPTION
"service registration and discovery over etcd v3 - command-line tool
etcd-sd registers service instances in etcd under a kept-alive lease and
discovers them by key prefix.
.
This package contains the etcd-sd tool: list services, instances,
addresses and lease TTLs (etcd-sd services), follow them live (etcd-sd
watch), hold a registration for a program that cannot link the library
(etcd-sd register), and check the etcd endpoints (etcd-sd check).")
endif()

configure_file("${CMAKE_CURRENT_LIST_DIR}/EtcdSdCPackOptions.cmake.in"
               "${CMAKE_CURRENT_BINARY_DIR}/EtcdSdCPackOptions.cmake" @ONLY)
set(CPACK_PROJECT_CONFIG_FILE "${CMAKE_CURRENT_BINARY_DIR}/EtcdSdCPackOptions.cmake")

include(CPack)
