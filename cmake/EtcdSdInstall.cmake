# `cmake --install` rules (included from CMakeLists.txt, "Install and packaging").
#
# Layout under the prefix (GNUInstallDirs; LIBDIR is lib/<multiarch> for prefix /usr on
# Debian, lib otherwise), with the install component of each part:
#
#   LIBDIR/libetcd_sd.so.<version>             runtime   (SONAME libetcd_sd.so.<major>)
#   LIBDIR/libetcd_sd.so.<major> -> ...        runtime
#   LIBDIR/libetcd_sd.so -> libetcd_sd.so.<major>   dev  (what -letcd_sd finds)
#   LIBDIR/libetcd_sd.a                        dev
#   include/etcd_sd.h, etcd_sd_coord.h, etcd_sd_table.h, etcd_sd.hpp, etcd_sd_table.hpp, etcd_sd_coord.hpp   dev
#   LIBDIR/cmake/etcd_sd/etcd_sdConfig.cmake, etcd_sdConfigVersion.cmake (SameMajorVersion),
#                        etcd_sdTargets.cmake (etcd_sd::etcd_sd, etcd_sd::etcd_sd_static)  dev
#   LIBDIR/pkgconfig/etcd_sd.pc                dev
#   share/doc/etcd-sd/README.md, LICENSE       dev
#
# The components become the Debian packages (cmake/EtcdSdPackaging.cmake): runtime ->
# libetcd-sd<major>, dev -> libetcd-sd-dev. README/LICENSE go with dev so that two runtime
# packages of different majors stay co-installable (no file in common); each package also gets
# share/doc/<package>/copyright and changelog.Debian.gz, installed only by component installs
# (EXCLUDE_FROM_ALL), i.e. by CPack and not by a plain `cmake --install`.

if(NOT DEFINED CMAKE_INSTALL_DOCDIR)
  set(CMAKE_INSTALL_DOCDIR "share/doc/etcd-sd" CACHE PATH "documentation (share/doc/etcd-sd)")
endif()
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(ETCD_SD_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/etcd_sd"
    CACHE STRING "where etcd_sdConfig.cmake goes (relative to the prefix)")
set(ETCD_SD_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
    CACHE STRING "where etcd_sd.pc goes (relative to the prefix)")

set(_so_perms OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)  # Debian: libraries not executable

# --- libraries and headers ---
install(FILES "${ETCD_SD_SHARED_LIB}" "${ETCD_SD_LIB_DIR}/${ETCD_SD_SONAME}"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}" PERMISSIONS ${_so_perms} COMPONENT runtime)
install(FILES "${ETCD_SD_LIB_DIR}/libetcd_sd.so" "${ETCD_SD_STATIC_LIB}"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}" PERMISSIONS ${_so_perms} COMPONENT dev)
install(FILES "${ETCD_SD_INCLUDE_DIR}/etcd_sd.h" "${ETCD_SD_INCLUDE_DIR}/etcd_sd_coord.h" "${ETCD_SD_INCLUDE_DIR}/etcd_sd_table.h" "${ETCD_SD_INCLUDE_DIR}/etcd_sd.hpp"
              "${ETCD_SD_INCLUDE_DIR}/etcd_sd_table.hpp" "${ETCD_SD_INCLUDE_DIR}/etcd_sd_coord.hpp"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT dev)

# --- CMake package: find_package(etcd_sd CONFIG REQUIRED) ---
# The library is built by cargo, not by add_library(), so there is nothing for
# install(EXPORT): etcd_sdTargets.cmake is written from a template. Its paths are relative to
# its own location, so the tree stays relocatable (DESTDIR, dpkg -x, cmake --install --prefix).
set(_cfg_dir "${CMAKE_CURRENT_BINARY_DIR}/etcd_sd-config")
set(_full_cmakedir "${CMAKE_INSTALL_PREFIX}/${ETCD_SD_INSTALL_CMAKEDIR}")
if(IS_ABSOLUTE "${ETCD_SD_INSTALL_CMAKEDIR}")
  set(_full_cmakedir "${ETCD_SD_INSTALL_CMAKEDIR}")
endif()
file(RELATIVE_PATH ETCD_SD_CMAKEDIR_TO_LIBDIR "${_full_cmakedir}" "${CMAKE_INSTALL_FULL_LIBDIR}")
file(RELATIVE_PATH ETCD_SD_CMAKEDIR_TO_INCLUDEDIR "${_full_cmakedir}"
     "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
configure_file("${CMAKE_CURRENT_LIST_DIR}/etcd_sdTargets.cmake.in"
               "${_cfg_dir}/etcd_sdTargets.cmake" @ONLY)
configure_package_config_file("${CMAKE_CURRENT_LIST_DIR}/etcd_sdConfig.cmake.in"
  "${_cfg_dir}/etcd_sdConfig.cmake"
  INSTALL_DESTINATION "${ETCD_SD_INSTALL_CMAKEDIR}"
  NO_SET_AND_CHECK_MACRO)
write_basic_package_version_file("${_cfg_dir}/etcd_sdConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}" COMPATIBILITY SameMajorVersion)
install(FILES "${_cfg_dir}/etcd_sdConfig.cmake" "${_cfg_dir}/etcd_sdConfigVersion.cmake"
              "${_cfg_dir}/etcd_sdTargets.cmake"
        DESTINATION "${ETCD_SD_INSTALL_CMAKEDIR}" COMPONENT dev)

# --- pkg-config: etcd_sd.pc (relocatable: the prefix is found from the file's own place) ---
# prefix=${pcfiledir}/<back to the prefix>, so a tree installed with `cmake --install --prefix`
# elsewhere, staged with DESTDIR or unpacked with `dpkg -x` finds its own headers and library
# (pkg-config and pkgconf both define pcfiledir). Only when the .pc directory is not under the
# prefix (an absolute ETCD_SD_INSTALL_PKGCONFIGDIR elsewhere) is the prefix written out; an
# absolute LIBDIR or INCLUDEDIR outside the prefix is written as it is.
set(_full_pcdir "${CMAKE_INSTALL_PREFIX}/${ETCD_SD_INSTALL_PKGCONFIGDIR}")
if(IS_ABSOLUTE "${ETCD_SD_INSTALL_PKGCONFIGDIR}")
  set(_full_pcdir "${ETCD_SD_INSTALL_PKGCONFIGDIR}")
endif()
file(RELATIVE_PATH _pc_to_prefix "${_full_pcdir}" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" _pc_to_prefix "${_pc_to_prefix}")
if(_pc_to_prefix MATCHES "^(\\.\\./)*\\.\\.$")
  set(ETCD_SD_PC_PREFIX "\${pcfiledir}/${_pc_to_prefix}")
elseif(_pc_to_prefix STREQUAL "")
  set(ETCD_SD_PC_PREFIX "\${pcfiledir}")
else()
  set(ETCD_SD_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
endif()
set(ETCD_SD_PC_LIBDIR "\${exec_prefix}/${CMAKE_INSTALL_LIBDIR}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(ETCD_SD_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
endif()
set(ETCD_SD_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(ETCD_SD_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file("${CMAKE_CURRENT_LIST_DIR}/etcd_sd.pc.in" "${_cfg_dir}/etcd_sd.pc" @ONLY)
install(FILES "${_cfg_dir}/etcd_sd.pc" DESTINATION "${ETCD_SD_INSTALL_PKGCONFIGDIR}"
        COMPONENT dev)

# --- documentation ---
install(FILES "${PROJECT_SOURCE_DIR}/README.md" "${PROJECT_SOURCE_DIR}/LICENSE"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}" COMPONENT dev)
include(EtcdSdCompatInstall)  # cmake/EtcdSdCompatInstall.cmake: the etcd-cpp-apiv3 compat layer (component compat)

# --- the etcd-sd command-line tool (service table, issue 10) ---
# bin/etcd-sd, component "tools" -> its own Debian package (etcd-sd-tools, see
# EtcdSdPackaging.cmake), so that runtime packages of two majors stay co-installable.
if(TARGET etcd_sd_cli)
  install(PROGRAMS "${ETCD_SD_CLI}" DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT tools)
endif()
# The C++ service table header: etcd_sd.hpp includes it, so it ships with it (dev).
install(FILES "${ETCD_SD_INCLUDE_DIR}/etcd_sd_table.hpp"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT dev)
