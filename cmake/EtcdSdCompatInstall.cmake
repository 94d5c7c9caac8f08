# Install rules of the etcd-cpp-apiv3 compatibility layer, install component `compat`
# (Debian package libetcd-sd-compat-dev, cmake/EtcdSdCompatPackaging.cmake); included at the
# end of cmake/EtcdSdInstall.cmake. See docs/compat.md.
#
#   include/etcd/*.hpp, include/etcd/detail/, include/etcd/v3/   the headers (#include <etcd/...>)
#   LIBDIR/libetcd-cpp-api.so            a linker script, INPUT(libetcd_sd.so.<major>):
#                                        `-letcd-cpp-api` links the real library
#   LIBDIR/cmake/etcd-cpp-api/           find_package(etcd-cpp-api): target etcd-cpp-api (and
#                                        etcd-cpp-api-core), ETCD_CPP_LIBRARIES,
#                                        ETCD_CPP_INCLUDE_DIR(S), as the original's package
#   LIBDIR/cmake/etcd-cpp-apiv3/         find_package(etcd-cpp-apiv3): the same
#   LIBDIR/pkgconfig/etcd-cpp-api.pc     pkg-config / meson dependency('etcd-cpp-api')
#   share/doc/libetcd-sd-compat-dev/compat.md
#
# The packages' version is the etcd-cpp-apiv3 API level implemented (0.15.4); the config files
# accept any older requested version (find_package(etcd-cpp-api 0.14) works).
# Everything is relative to its own location (relocatable tree).

set(ETCD_SD_COMPAT_API_VERSION "0.15.4")
set(_compat_cfg "${CMAKE_CURRENT_BINARY_DIR}/etcd_sd-compat")

# --- headers
install(DIRECTORY "${ETCD_SD_INCLUDE_DIR}/etcd" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        COMPONENT compat FILES_MATCHING PATTERN "*.hpp")

# --- the link name
file(WRITE "${_compat_cfg}/libetcd-cpp-api.so"
     "/* etcd-sd: -letcd-cpp-api links etcd-sd's library (libetcd-sd-compat-dev; docs/compat.md) */\n"
     "INPUT(${ETCD_SD_SONAME})\n")
install(FILES "${_compat_cfg}/libetcd-cpp-api.so" DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ COMPONENT compat)

# --- CMake packages
set(_compat_cmakedir "${CMAKE_INSTALL_LIBDIR}/cmake/etcd-cpp-api")
set(_compat_v3_cmakedir "${CMAKE_INSTALL_LIBDIR}/cmake/etcd-cpp-apiv3")
# etcd_sd's own package directory relative to ours (siblings under LIBDIR/cmake normally).
file(RELATIVE_PATH ETCD_SD_COMPAT_TO_ETCD_SD "${CMAKE_INSTALL_PREFIX}/${_compat_cmakedir}"
     "${CMAKE_INSTALL_PREFIX}/${ETCD_SD_INSTALL_CMAKEDIR}")
file(RELATIVE_PATH ETCD_SD_COMPAT_TO_INCLUDEDIR "${CMAKE_INSTALL_PREFIX}/${_compat_cmakedir}"
     "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
configure_file("${CMAKE_CURRENT_LIST_DIR}/etcd-cpp-api-config.cmake.in"
               "${_compat_cfg}/etcd-cpp-api-config.cmake" @ONLY)
write_basic_package_version_file("${_compat_cfg}/etcd-cpp-api-config-version.cmake"
  VERSION "${ETCD_SD_COMPAT_API_VERSION}" COMPATIBILITY AnyNewerVersion)
install(FILES "${_compat_cfg}/etcd-cpp-api-config.cmake"
              "${_compat_cfg}/etcd-cpp-api-config-version.cmake"
        DESTINATION "${_compat_cmakedir}" COMPONENT compat)
file(WRITE "${_compat_cfg}/etcd-cpp-apiv3-config.cmake"
     "# find_package(etcd-cpp-apiv3): the same as find_package(etcd-cpp-api) (etcd-sd compat)\n"
     "include(\"\${CMAKE_CURRENT_LIST_DIR}/../etcd-cpp-api/etcd-cpp-api-config.cmake\")\n"
     "set(etcd-cpp-apiv3_FOUND TRUE)\n")
write_basic_package_version_file("${_compat_cfg}/etcd-cpp-apiv3-config-version.cmake"
  VERSION "${ETCD_SD_COMPAT_API_VERSION}" COMPATIBILITY AnyNewerVersion)
install(FILES "${_compat_cfg}/etcd-cpp-apiv3-config.cmake"
              "${_compat_cfg}/etcd-cpp-apiv3-config-version.cmake"
        DESTINATION "${_compat_v3_cmakedir}" COMPONENT compat)

# --- pkg-config (relocatable: prefix from ${pcfiledir}, so a tree extracted anywhere works)
set(_pc_full "${ETCD_SD_INSTALL_PKGCONFIGDIR}")
if(NOT IS_ABSOLUTE "${_pc_full}")
  set(_pc_full "${CMAKE_INSTALL_PREFIX}/${_pc_full}")
endif()
file(RELATIVE_PATH ETCD_SD_COMPAT_PC_TO_PREFIX "${_pc_full}" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" ETCD_SD_COMPAT_PC_TO_PREFIX "${ETCD_SD_COMPAT_PC_TO_PREFIX}")
file(RELATIVE_PATH ETCD_SD_COMPAT_PC_LIBDIR "${CMAKE_INSTALL_PREFIX}" "${CMAKE_INSTALL_FULL_LIBDIR}")
file(RELATIVE_PATH ETCD_SD_COMPAT_PC_INCLUDEDIR "${CMAKE_INSTALL_PREFIX}" "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
configure_file("${CMAKE_CURRENT_LIST_DIR}/etcd-cpp-api.pc.in" "${_compat_cfg}/etcd-cpp-api.pc" @ONLY)
install(FILES "${_compat_cfg}/etcd-cpp-api.pc" DESTINATION "${ETCD_SD_INSTALL_PKGCONFIGDIR}"
        COMPONENT compat)

# --- documentation
install(FILES "${PROJECT_SOURCE_DIR}/docs/compat.md"
        DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/libetcd-sd-compat-dev" COMPONENT compat)
