# Build step of the etcd_sd_cargo target (run with `cmake -P`; see CMakeLists.txt).
#
#   cargo build --release -p etcd-sd-capi                                  (the C library)
#   cargo build --release -p etcd-sd-capi -p etcd-sd --lib --bin etcd-sd    (BUILD_CLI: and the tool)
#
# Plain `cargo build`, nothing added to rustc's command lines: these are the units a plain
# `cargo build --release` builds too (the core crate once; libetcd_sd.so/.a from capi/, the
# SONAME set by capi/build.rs; the etcd-sd tool), with the same flags, so neither build
# recompiles what the other left. Then:
#   - checks that the native libraries rustc reports for the staticlib are the ones CMake
#     configured (EXPECTED_NATIVE_LIBS). Passing `--print native-static-libs` through
#     `cargo rustc` would change the library's fingerprint (a full LTO rebuild at the next
#     plain build), so rustc is asked on its own: a one-line staticlib, `extern crate etcd_sd;`,
#     against the core's rlib that cargo just reported, has the very same dependency graph and
#     so the same list (it only archives, ~1 s). The list is kept in
#     OUT_DIR/native-static-libs.txt for scripts/package-test.sh;
#   - copies the results into OUT_DIR as
#       libetcd_sd.so.<VERSION>, libetcd_sd.so.<major> -> it, libetcd_sd.so -> that, libetcd_sd.a
#       and etcd-sd (BUILD_CLI)
#     (copy_if_different: an unchanged library keeps its timestamp, nothing relinks), and checks
#     that the copied .so carries the SONAME CMake expects (SONAME).
#
# Variables (-D): CARGO RUSTC MANIFEST TARGET_DIR SONAME VERSION OUT_DIR [EXPECTED_NATIVE_LIBS]
#                 [BUILD_CLI]
cmake_minimum_required(VERSION 3.16)

foreach(v CARGO RUSTC MANIFEST TARGET_DIR SONAME VERSION OUT_DIR)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "cargo_build.cmake: -D${v}=... is required")
  endif()
endforeach()

set(ENV{CARGO_TARGET_DIR} "${TARGET_DIR}")
set(_cmd "${CARGO}" build --release --manifest-path "${MANIFEST}" -p etcd-sd-capi)
if(BUILD_CLI)
  list(APPEND _cmd -p etcd-sd --lib --bin etcd-sd)  # --lib: both packages' libraries
endif()
# JSON messages on stdout (to find the core's rlib), rendered diagnostics and progress on
# stderr as usual.
list(APPEND _cmd --message-format=json-render-diagnostics)
execute_process(COMMAND ${_cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE messages)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cargo build failed (${rc})")
endif()

if(DEFINED EXPECTED_NATIVE_LIBS)
  # The core's rlib: target/release/deps/libetcd_sd-<hash>.rlib (target/release/libetcd_sd.rlib
  # when the core is built for its own sake). capi's outputs are .so and .a, never an rlib.
  if(NOT messages MATCHES "\"([^\"]*/libetcd_sd(-[0-9a-f]+)?\\.rlib)\"")
    message(FATAL_ERROR "cargo did not report the etcd-sd crate's rlib")
  endif()
  set(_rlib "${CMAKE_MATCH_1}")
  get_filename_component(_deps "${_rlib}" DIRECTORY)
  if(NOT _deps MATCHES "/deps$")
    set(_deps "${_deps}/deps")
  endif()
  if(DEFINED ENV{RUSTC} AND NOT "$ENV{RUSTC}" STREQUAL "")
    set(RUSTC "$ENV{RUSTC}")  # what cargo itself used
  endif()
  set(_probe "${OUT_DIR}/native-libs-probe")
  file(MAKE_DIRECTORY "${_probe}")
  file(WRITE "${_probe}/probe.rs" "extern crate etcd_sd;\n")
  execute_process(
    COMMAND "${RUSTC}" --edition 2021 --crate-type staticlib --crate-name etcd_sd_native_libs
            --print native-static-libs --extern "etcd_sd=${_rlib}" -L "dependency=${_deps}"
            -o "${_probe}/libetcd_sd_native_libs.a" "${_probe}/probe.rs"
    RESULT_VARIABLE rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  file(REMOVE_RECURSE "${_probe}")
  if(NOT rc EQUAL 0 OR NOT _out MATCHES "native-static-libs: ([^\r\n]*)")
    message(FATAL_ERROR "cannot get the native static libraries of ${_rlib} from rustc:\n${_out}")
  endif()
  string(STRIP "${CMAKE_MATCH_1}" _got)
  if(NOT _got STREQUAL EXPECTED_NATIVE_LIBS)
    message(FATAL_ERROR
      "libetcd_sd.a now needs these system libraries:\n  ${_got}\n"
      "but CMake was configured with:\n  ${EXPECTED_NATIVE_LIBS}\n"
      "Add what is missing to _etcd_sd_extra_native_libs in cmake/EtcdSdNativeLibs.cmake "
      "(it ends up in etcd_sd::etcd_sd_static and etcd_sd.pc) and reconfigure.")
  endif()
  file(MAKE_DIRECTORY "${OUT_DIR}")
  set(_keep "${OUT_DIR}/native-static-libs.txt")
  set(_old "")
  if(EXISTS "${_keep}")
    file(READ "${_keep}" _old)
  endif()
  if(NOT _old STREQUAL "${_got}\n")
    file(WRITE "${_keep}" "${_got}\n")
  endif()
endif()

set(_src "${TARGET_DIR}/release")
set(_real "libetcd_sd.so.${VERSION}")
set(_copies "libetcd_sd.so|${_real}" "libetcd_sd.a|libetcd_sd.a")
if(BUILD_CLI)
  list(APPEND _copies "etcd-sd|etcd-sd")
endif()
file(MAKE_DIRECTORY "${OUT_DIR}")
foreach(pair ${_copies})
  string(REPLACE "|" ";" pair "${pair}")
  list(GET pair 0 from)
  list(GET pair 1 to)
  execute_process(COMMAND "${CMAKE_COMMAND}" -E copy_if_different "${_src}/${from}" "${OUT_DIR}/${to}"
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cannot copy ${_src}/${from} to ${OUT_DIR}/${to}")
  endif()
endforeach()
string(REPLACE "." "\\." _soname_re "${SONAME}")
file(STRINGS "${OUT_DIR}/${_real}" _soname_found REGEX "^${_soname_re}$" LIMIT_COUNT 1)
if(NOT _soname_found)
  file(REMOVE "${OUT_DIR}/${_real}")
  message(FATAL_ERROR "${_src}/libetcd_sd.so has no SONAME ${SONAME}: capi/build.rs sets "
                      "libetcd_sd.so.<major of Cargo.toml's version>; CMake expects ${SONAME}")
endif()
foreach(pair "${SONAME}|${_real}" "libetcd_sd.so|${SONAME}")
  string(REPLACE "|" ";" pair "${pair}")
  list(GET pair 0 link)
  list(GET pair 1 target)
  set(_have "")
  if(IS_SYMLINK "${OUT_DIR}/${link}")
    file(READ_SYMLINK "${OUT_DIR}/${link}" _have)
  endif()
  if(NOT _have STREQUAL target)
    file(REMOVE "${OUT_DIR}/${link}")
    file(CREATE_LINK "${target}" "${OUT_DIR}/${link}" SYMBOLIC)
  endif()
endforeach()
