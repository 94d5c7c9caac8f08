# Build step of the etcd_sd_cargo target (run with `cmake -P`; see CMakeLists.txt).
#
#   cargo rustc --release --lib --crate-type cdylib,staticlib
#         -- -C link-arg=-Wl,-soname,<SONAME> --print native-static-libs
#
# The linker flag goes through `cargo rustc` so that it reaches only this crate's final link:
# RUSTFLAGS would also change (and rebuild) every dependency and every build script. Then:
#   - checks that the native libraries rustc reports for the staticlib are the ones CMake
#     configured (EXPECTED_NATIVE_LIBS; cargo replays the note even when nothing was rebuilt);
#   - copies the results into OUT_DIR as
#       libetcd_sd.so.<VERSION>, libetcd_sd.so.<major> -> it, libetcd_sd.so -> that, libetcd_sd.a
#     (copy_if_different: an unchanged library keeps its timestamp, nothing relinks), and checks
#     that the copied .so really carries the SONAME (a concurrent plain `cargo build --release`
#     rewrites target/release/libetcd_sd.so without one).
#
# Variables (-D): CARGO MANIFEST TARGET_DIR SONAME VERSION OUT_DIR EXPECTED_NATIVE_LIBS
cmake_minimum_required(VERSION 3.16)

foreach(v CARGO MANIFEST TARGET_DIR SONAME VERSION OUT_DIR)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "cargo_build.cmake: -D${v}=... is required")
  endif()
endforeach()

set(ENV{CARGO_TARGET_DIR} "${TARGET_DIR}")
set(_cmd "${CARGO}" rustc --release --lib --crate-type cdylib,staticlib
    --manifest-path "${MANIFEST}"
    -- "-Clink-arg=-Wl,-soname,${SONAME}" --print native-static-libs)

# Show cargo's output as it comes and keep a copy to read the native-static-libs note.
if(CMAKE_VERSION VERSION_LESS 3.18)
  execute_process(COMMAND ${_cmd} RESULT_VARIABLE rc ERROR_VARIABLE err)
  message("${err}")
else()
  execute_process(COMMAND ${_cmd} RESULT_VARIABLE rc ERROR_VARIABLE err ECHO_ERROR_VARIABLE)
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cargo rustc failed (${rc})")
endif()

if(DEFINED EXPECTED_NATIVE_LIBS)
  if(NOT err MATCHES "native-static-libs: ([^\r\n]*)")
    message(FATAL_ERROR "cargo did not report native-static-libs for libetcd_sd.a")
  endif()
  string(STRIP "${CMAKE_MATCH_1}" _got)
  if(NOT _got STREQUAL EXPECTED_NATIVE_LIBS)
    message(FATAL_ERROR
      "libetcd_sd.a now needs these system libraries:\n  ${_got}\n"
      "but CMake was configured with:\n  ${EXPECTED_NATIVE_LIBS}\n"
      "Add what is missing to _etcd_sd_extra_native_libs in cmake/EtcdSdNativeLibs.cmake "
      "(it ends up in etcd_sd::etcd_sd_static and etcd_sd.pc) and reconfigure.")
  endif()
endif()

set(_src "${TARGET_DIR}/release")
set(_real "libetcd_sd.so.${VERSION}")
file(MAKE_DIRECTORY "${OUT_DIR}")
foreach(pair "libetcd_sd.so|${_real}" "libetcd_sd.a|libetcd_sd.a")
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
  message(FATAL_ERROR "${_src}/libetcd_sd.so has no SONAME ${SONAME}: another cargo build "
                      "probably rewrote it meanwhile; build again")
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
