# The Debian package of the etcd-cpp-apiv3 compatibility layer (install component `compat`,
# cmake/EtcdSdCompatInstall.cmake); included from cmake/EtcdSdPackaging.cmake before CPack.
#
#   compat -> libetcd-sd-compat-dev  section libdevel: include/etcd/, libetcd-cpp-api.so (a
#             linker script), the etcd-cpp-api / etcd-cpp-apiv3 CMake packages, etcd-cpp-api.pc;
#             Depends: libetcd-sd-dev (= exact version), which brings etcd_sd.h and the library.
# A separate package so that a machine can have etcd-sd's own headers without claiming
# /usr/include/etcd/ (where etcd-cpp-apiv3's headers would go).

set(ETCD_SD_DEB_COMPAT_PACKAGE "libetcd-sd-compat-dev")
list(APPEND CPACK_COMPONENTS_ALL compat)
set(CPACK_COMPONENT_COMPAT_DEPENDS dev)  # Depends: libetcd-sd-dev (= version)

set(CPACK_DEBIAN_COMPAT_PACKAGE_NAME "${ETCD_SD_DEB_COMPAT_PACKAGE}")
set(CPACK_DEBIAN_COMPAT_PACKAGE_SECTION "libdevel")
set(CPACK_DEBIAN_COMPAT_PACKAGE_SHLIBDEPS OFF)  # no ELF file in it
set(CPACK_COMPONENT_COMPAT_DISPLAY_NAME "etcd-sd drop-in for etcd-cpp-apiv3")
set(CPACK_COMPONENT_COMPAT_DESCRIPTION
"etcd-cpp-apiv3 compatible headers and link names for etcd-sd
A drop-in replacement for the etcd-cpp-apiv3 C++ client: the same
#include <etcd/Client.hpp> lines and calls (Client, SyncClient, KeepAlive,
Watcher, Response, Value, pplx::task) compile unchanged and link against
etcd-sd, with no gRPC or cpprestsdk. Keep-alives and watchers recover by
themselves from etcd restarts, lost leases and compaction, and every call
is bounded by a timeout.
.
This package contains the headers in /usr/include/etcd/, libetcd-cpp-api.so
(a linker script resolving to libetcd_sd), the CMake packages etcd-cpp-api
and etcd-cpp-apiv3, and etcd-cpp-api.pc for pkg-config and meson.")

# copyright, changelog.Debian.gz, lintian overrides (component installs only)
install(FILES "${PROJECT_SOURCE_DIR}/packaging/debian/copyright"
        DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/${ETCD_SD_DEB_COMPAT_PACKAGE}"
        COMPONENT compat EXCLUDE_FROM_ALL)
if(_changelog)
  install(FILES "${_changelog}" RENAME changelog.Debian.gz
          DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/${ETCD_SD_DEB_COMPAT_PACKAGE}"
          COMPONENT compat EXCLUDE_FROM_ALL)
endif()
set(PKG "${ETCD_SD_DEB_COMPAT_PACKAGE}")
configure_file("${PROJECT_SOURCE_DIR}/packaging/debian/lintian-overrides.in"
               "${_deb_dir}/compat/${ETCD_SD_DEB_COMPAT_PACKAGE}" @ONLY)
install(FILES "${_deb_dir}/compat/${ETCD_SD_DEB_COMPAT_PACKAGE}"
        DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides"
        COMPONENT compat EXCLUDE_FROM_ALL)
