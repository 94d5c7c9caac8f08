# Service table (issue 10): the echo_table example, the C and C++ tests, and the `etcd-sd`
# command-line tool. Included from CMakeLists.txt after the core targets are defined.
#
#   echo_table            cpp_examples/echo_table.cc (needs cpp_examples/echo_channel.hpp)
#   test_table_c          tests/c/test_table.c        -> ctest table_c, table_c_memcheck
#   test_table_cpp        tests/cpp/test_table.cc     -> ctest table_cpp, table_cpp_memcheck
#   etcd_sd_cli           `cargo build --release --bin etcd-sd` -> <build>/etcd_sd/etcd-sd
#                         (option ETCD_SD_BUILD_CLI; installed to bin/, component tools,
#                         Debian package etcd-sd-tools)
#
# ETCD_SD_BUILD_CLI defaults to ON only when the tests are off, i.e. in packaging builds
# (scripts/package.sh): a second release (LTO) build of the crate for the binary costs
# several minutes on a 2-core machine, and the test build does not need it (the tool is
# tested by `cargo test --test cli`). Pass -DETCD_SD_BUILD_CLI=ON to build it anyway.

if(ETCD_SD_BUILD_TESTS)
  set(_etcd_sd_cli_default OFF)
else()
  set(_etcd_sd_cli_default ON)
endif()
option(ETCD_SD_BUILD_CLI "Build the etcd-sd command-line tool (cargo, release)"
       ${_etcd_sd_cli_default})

if(ETCD_SD_BUILD_EXAMPLES OR ETCD_SD_BUILD_TESTS)
  add_executable(echo_table cpp_examples/echo_table.cc)
  target_include_directories(echo_table PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}/cpp_examples")
  target_link_libraries(echo_table PRIVATE etcd_sd::etcd_sd Threads::Threads)
  etcd_sd_warnings(echo_table)
  if(NOT ETCD_SD_BUILD_EXAMPLES)
    set_target_properties(echo_table PROPERTIES EXCLUDE_FROM_ALL TRUE)
  endif()
endif()

if(ETCD_SD_BUILD_CLI)
  set(ETCD_SD_CLI "${ETCD_SD_LIB_DIR}/etcd-sd")
  # A real output with the crate's sources as dependencies, so that cargo runs again only
  # when they changed: `cargo build --bin` after `cargo rustc --lib --crate-type ...` (the
  # library's build) recompiles the crate each time, which would double the packaging time
  # (CPack's preinstall builds everything again).
  file(GLOB_RECURSE _etcd_sd_cli_sources CONFIGURE_DEPENDS
       "${CMAKE_CURRENT_SOURCE_DIR}/src/*.rs")
  add_custom_command(OUTPUT "${ETCD_SD_CLI}"
    COMMAND "${CMAKE_COMMAND}" -E env "CARGO_TARGET_DIR=${ETCD_SD_CARGO_TARGET_DIR}"
            "${CARGO_EXECUTABLE}" build --release --bin etcd-sd
            --manifest-path "${CMAKE_CURRENT_SOURCE_DIR}/Cargo.toml"
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${ETCD_SD_LIB_DIR}"
    COMMAND "${CMAKE_COMMAND}" -E copy
            "${ETCD_SD_CARGO_TARGET_DIR}/release/etcd-sd" "${ETCD_SD_CLI}"
    DEPENDS ${_etcd_sd_cli_sources} "${CMAKE_CURRENT_SOURCE_DIR}/Cargo.toml"
            "${CMAKE_CURRENT_SOURCE_DIR}/Cargo.lock"
    WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
    USES_TERMINAL
    COMMENT "cargo build --release --bin etcd-sd"
    VERBATIM)
  add_custom_target(etcd_sd_cli ALL DEPENDS "${ETCD_SD_CLI}")
  # One cargo at a time on the same target directory: after the library.
  add_dependencies(etcd_sd_cli etcd_sd_cargo)
endif()

if(ETCD_SD_BUILD_TESTS)
  add_executable(test_table_c tests/c/test_table.c)
  target_link_libraries(test_table_c PRIVATE etcd_sd::etcd_sd Threads::Threads)
  target_compile_definitions(test_table_c PRIVATE _POSIX_C_SOURCE=200809L)
  set_target_properties(test_table_c PROPERTIES C_EXTENSIONS OFF)
  etcd_sd_warnings(test_table_c)

  add_executable(test_table_cpp tests/cpp/test_table.cc)
  target_include_directories(test_table_cpp PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}/cpp_examples")
  target_link_libraries(test_table_cpp PRIVATE etcd_sd::etcd_sd Threads::Threads)
  etcd_sd_warnings(test_table_cpp)

  add_test(NAME table_c COMMAND ${_with_etcd} -- "$<TARGET_FILE:test_table_c>")
  add_test(NAME table_cpp COMMAND ${_with_etcd} -- "$<TARGET_FILE:test_table_cpp>")
  set(_table_tests table_c table_cpp)
  if(VALGRIND_EXECUTABLE)
    add_test(NAME table_c_memcheck
      COMMAND ${_with_etcd} --env ETCD_SD_TEST_SLOW=1 -- ${_memcheck} "$<TARGET_FILE:test_table_c>")
    add_test(NAME table_cpp_memcheck
      COMMAND ${_with_etcd} --env ETCD_SD_TEST_SLOW=1 -- ${_memcheck} "$<TARGET_FILE:test_table_cpp>")
    list(APPEND _table_tests table_c_memcheck table_cpp_memcheck)
  endif()
  set_tests_properties(${_table_tests} PROPERTIES TIMEOUT 180)
endif()
