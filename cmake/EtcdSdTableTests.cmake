# Service table (issue 10): the echo_table example, the C and C++ tests, and the `etcd-sd`
# command-line tool. Included from CMakeLists.txt after the core targets are defined.
#
#   echo_table            cpp_examples/echo_table.cc (needs cpp_examples/echo_channel.hpp)
#   test_table_c          tests/c/test_table.c        -> ctest table_c, table_c_memcheck
#   test_table_cpp        tests/cpp/test_table.cc     -> ctest table_cpp, table_cpp_memcheck
#   etcd_sd_cli           <build>/etcd_sd/etcd-sd, built with the library by etcd_sd_cargo
#                         (option ETCD_SD_BUILD_CLI, see CMakeLists.txt; installed to bin/,
#                         component tools, Debian package etcd-sd-tools)

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
  # Built by the etcd_sd_cargo target (CMakeLists.txt), in the library's cargo invocation.
  add_custom_target(etcd_sd_cli ALL)
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
