# The system libraries a program needs when it links the static libetcd_sd.a: what rustc
# prints as "native-static-libs" (the Rust standard library's needs; our dependencies add
# none today). Probed at configure time from the same rustc that cargo uses, by building an
# empty staticlib (~0.2 s), so it follows the toolchain; cmake/cargo_build.cmake then checks at
# every build that the real crate prints exactly this list, so a dependency that starts
# linking a system library fails the build instead of producing a broken etcd_sd.pc.
#
# Sets:
#   ETCD_SD_NATIVE_STATIC_LIBS_FLAGS  rustc's flags, e.g. "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
#                                     (pkg-config Libs.private)
#   ETCD_SD_NATIVE_STATIC_LIBS        the same as a CMake link list (gcc_s;util;rt;...;c)
#                                     (INTERFACE_LINK_LIBRARIES of etcd_sd::etcd_sd_static)

# System libraries our own dependencies need on top of std (crates with #[link(name = ...)]).
# Append here ("-lfoo") if the build ever reports a mismatch for a new one.
set(_etcd_sd_extra_native_libs "")

get_filename_component(_etcd_sd_cargo_dir "${CARGO_EXECUTABLE}" DIRECTORY)
find_program(RUSTC_EXECUTABLE rustc HINTS "${_etcd_sd_cargo_dir}" NO_DEFAULT_PATH)
find_program(RUSTC_EXECUTABLE rustc HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin")
if(NOT RUSTC_EXECUTABLE)
  message(FATAL_ERROR "rustc not found next to cargo (${CARGO_EXECUTABLE}); set RUSTC_EXECUTABLE")
endif()

set(_etcd_sd_probe_dir "${CMAKE_CURRENT_BINARY_DIR}/CMakeFiles/etcd_sd_native_libs_probe")
file(MAKE_DIRECTORY "${_etcd_sd_probe_dir}")
file(WRITE "${_etcd_sd_probe_dir}/probe.rs" "")
execute_process(
  COMMAND "${RUSTC_EXECUTABLE}" --crate-type staticlib --crate-name etcd_sd_probe
          --print native-static-libs -o "${_etcd_sd_probe_dir}/libetcd_sd_probe.a"
          "${_etcd_sd_probe_dir}/probe.rs"
  WORKING_DIRECTORY "${_etcd_sd_probe_dir}"
  RESULT_VARIABLE _etcd_sd_probe_rc
  OUTPUT_VARIABLE _etcd_sd_probe_out
  ERROR_VARIABLE _etcd_sd_probe_out)
if(NOT _etcd_sd_probe_rc EQUAL 0
   OR NOT _etcd_sd_probe_out MATCHES "native-static-libs: ([^\r\n]*)")
  message(FATAL_ERROR "cannot get the native static libraries from "
          "'${RUSTC_EXECUTABLE} --print native-static-libs':\n${_etcd_sd_probe_out}")
endif()
string(STRIP "${CMAKE_MATCH_1} ${_etcd_sd_extra_native_libs}" ETCD_SD_NATIVE_STATIC_LIBS_FLAGS)

# "-lfoo" -> "foo"; anything else (e.g. "-framework X" elsewhere) is kept as a link flag.
separate_arguments(_etcd_sd_flags UNIX_COMMAND "${ETCD_SD_NATIVE_STATIC_LIBS_FLAGS}")
set(ETCD_SD_NATIVE_STATIC_LIBS "")
foreach(_f IN LISTS _etcd_sd_flags)
  if(_f MATCHES "^-l(.+)$")
    list(APPEND ETCD_SD_NATIVE_STATIC_LIBS "${CMAKE_MATCH_1}")
  else()
    list(APPEND ETCD_SD_NATIVE_STATIC_LIBS "${_f}")
  endif()
endforeach()
message(STATUS "etcd_sd: native libraries of the static library: ${ETCD_SD_NATIVE_STATIC_LIBS_FLAGS}")
