# Tests of the etcd-cpp-apiv3 compatibility headers (include/etcd/, docs/compat.md); included
# from CMakeLists.txt's tests section.
#
#   compat_headers         each header alone in its own TU, linked together (no etcd)
#   compat_api_test        every implemented function (-Wall -Wextra -Werror), tests/with_etcd.py
#   compat_api_tls/_auth   its TLS (with_etcd.py --mtls) and user/password (--auth) cases
#   compat_samples         the programs written the way etcd-cpp-apiv3's users write them,
#                          compiled unchanged with -std=c++17 only and linked with
#                          -letcd-cpp-api (the linker script below), run once each
#   compat_faults          the same programs under faults: etcd SIGKILLed and restarted after
#                          more than the TTL, external revoke, compaction, a dead endpoint
#                          (tests/compat/faults.py starts and kills its own etcd)
#   compat_coord_test      locks, elections, one-shot watch, KeepAlive Cancel (tests/with_etcd.py)
#   compat_api_memcheck    compat_api_test under valgrind (when found); compat_coord_memcheck
#                          compat_coord_test likewise
#   compat_txn_test        transactions, modify_if/rm_if, reads at a revision, byte keys and
#                          ranges, error messages, members, lease listing (-Werror)
#   compat_txn_memcheck    compat_txn_test under valgrind (when found)
#   compat_using_std       the headers' `using namespace std;` and ETCD_SD_NO_USING_NAMESPACE_STD

# libetcd-cpp-api.so next to the library in the build tree: a linker script, as installed
# by libetcd-sd-compat-dev (cmake/EtcdSdCompatInstall.cmake), so `-letcd-cpp-api` resolves to
# libetcd_sd.so.<major>.
file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/etcd_sd_compat/libetcd-cpp-api.so"
     "/* etcd-sd: the etcd-cpp-apiv3 link name; see docs/compat.md */\nINPUT(${ETCD_SD_SONAME})\n")
set(ETCD_SD_COMPAT_LINK_DIR "${CMAKE_CURRENT_BINARY_DIR}/etcd_sd_compat")

# Each public header alone in its own translation unit, all linked together (ODR); no etcd.
add_executable(compat_headers tests/compat/headers/main.cc tests/compat/headers/client.cc
  tests/compat/headers/sync_client.cc tests/compat/headers/keepalive.cc
  tests/compat/headers/watcher.cc tests/compat/headers/response.cc tests/compat/headers/value.cc
  tests/compat/headers/transaction.cc tests/compat/headers/member.cc)
target_link_libraries(compat_headers PRIVATE etcd_sd::etcd_sd Threads::Threads)
target_compile_options(compat_headers PRIVATE -Wall -Wextra -Werror -pedantic)
add_test(NAME compat_headers COMMAND compat_headers)
set_tests_properties(compat_headers PROPERTIES TIMEOUT 30)

add_executable(compat_using_std tests/compat/using_std/main.cc tests/compat/using_std/with_std.cc
               tests/compat/using_std/without_std.cc)
target_link_libraries(compat_using_std PRIVATE etcd_sd::etcd_sd Threads::Threads)
etcd_sd_warnings(compat_using_std)
add_test(NAME compat_using_std COMMAND compat_using_std)
set_tests_properties(compat_using_std PROPERTIES TIMEOUT 30)

add_executable(compat_txn_test tests/compat/txn_test.cc)
target_link_libraries(compat_txn_test PRIVATE etcd_sd::etcd_sd Threads::Threads)
etcd_sd_warnings(compat_txn_test)

add_executable(compat_api_test tests/compat/api_test.cc)
target_link_libraries(compat_api_test PRIVATE etcd_sd::etcd_sd Threads::Threads)
etcd_sd_warnings(compat_api_test)

# Locks, elections, the one-shot watch and KeepAlive's Cancel (-Wall -Wextra -Werror).
add_executable(compat_coord_test tests/compat/coord_test.cc)
target_link_libraries(compat_coord_test PRIVATE etcd_sd::etcd_sd Threads::Threads)
etcd_sd_warnings(compat_coord_test)

# "Compiles unchanged": no warning flags, only -std=c++17 (CMAKE_CXX_STANDARD); linked the way
# their build files do it, -letcd-cpp-api (found in ETCD_SD_COMPAT_LINK_DIR, then the real
# library in ETCD_SD_LIB_DIR), plus -pthread.
set(_compat_samples registry_sample discovery_sample template_app sync_user then_user
    keepalive_handler)
foreach(_s ${_compat_samples})
  add_executable(compat_${_s} tests/compat/${_s}.cc)
  target_include_directories(compat_${_s} PRIVATE "${ETCD_SD_INCLUDE_DIR}")
  target_link_directories(compat_${_s} PRIVATE "${ETCD_SD_COMPAT_LINK_DIR}" "${ETCD_SD_LIB_DIR}")
  target_link_libraries(compat_${_s} PRIVATE etcd-cpp-api Threads::Threads)
  set_target_properties(compat_${_s} PROPERTIES BUILD_RPATH "${ETCD_SD_LIB_DIR}")
  add_dependencies(compat_${_s} etcd_sd_cargo)
endforeach()

set(_compat_bins)
foreach(_s ${_compat_samples})
  list(APPEND _compat_bins "--${_s}" "$<TARGET_FILE:compat_${_s}>")
endforeach()

add_test(NAME compat_api_test COMMAND ${_with_etcd}
         --env ETCD_SD_CONNECT_TIMEOUT_MS=1500 --env ETCD_SD_REQUEST_TIMEOUT_MS=1000
         -- "$<TARGET_FILE:compat_api_test>")
add_test(NAME compat_samples
  COMMAND "${Python3_EXECUTABLE}" "${CMAKE_CURRENT_SOURCE_DIR}/tests/compat/faults.py"
          --etcd "${ETCD_EXECUTABLE}" --etcdctl "${ETCDCTL_EXECUTABLE}" --only samples ${_compat_bins})
add_test(NAME compat_faults
  COMMAND "${Python3_EXECUTABLE}" "${CMAKE_CURRENT_SOURCE_DIR}/tests/compat/faults.py"
          --etcd "${ETCD_EXECUTABLE}" --etcdctl "${ETCDCTL_EXECUTABLE}" --only faults ${_compat_bins})
# The TLS and user/password constructors, against etcds that need them.
add_test(NAME compat_api_tls COMMAND ${_with_etcd} --mtls --env ETCD_SD_TEST_ONLY=tls
         -- "$<TARGET_FILE:compat_api_test>")
add_test(NAME compat_api_auth COMMAND ${_with_etcd} --auth --env ETCD_SD_TEST_ONLY=auth
         -- "$<TARGET_FILE:compat_api_test>")
add_test(NAME compat_txn_test COMMAND ${_with_etcd}
         --env ETCD_SD_CONNECT_TIMEOUT_MS=1500 --env ETCD_SD_REQUEST_TIMEOUT_MS=3000
         -- "$<TARGET_FILE:compat_txn_test>")
add_test(NAME compat_coord_test COMMAND ${_with_etcd}
         --env ETCD_SD_CONNECT_TIMEOUT_MS=1500 --env ETCD_SD_REQUEST_TIMEOUT_MS=1000
         -- "$<TARGET_FILE:compat_coord_test>")
set(_compat_tests compat_api_test compat_api_tls compat_api_auth compat_samples compat_faults
    compat_txn_test compat_coord_test)
if(VALGRIND_EXECUTABLE)
  add_test(NAME compat_api_memcheck
    # long timeouts: under valgrind on a loaded machine the first dial alone can take seconds
    # (ETCD_SD_TEST_SLOW also skips the silent-endpoint case, whose bounds the plain run checks)
    COMMAND ${_with_etcd} --env ETCD_SD_TEST_SLOW=1 --env ETCD_SD_CONNECT_TIMEOUT_MS=20000
            --env ETCD_SD_REQUEST_TIMEOUT_MS=15000
            -- ${_memcheck} "$<TARGET_FILE:compat_api_test>")
  add_test(NAME compat_txn_memcheck
    COMMAND ${_with_etcd} --env ETCD_SD_TEST_SLOW=1 --env ETCD_SD_CONNECT_TIMEOUT_MS=20000
            --env ETCD_SD_REQUEST_TIMEOUT_MS=15000
            -- ${_memcheck} "$<TARGET_FILE:compat_txn_test>")
  add_test(NAME compat_coord_memcheck
    COMMAND ${_with_etcd} --env ETCD_SD_TEST_SLOW=1 --env ETCD_SD_CONNECT_TIMEOUT_MS=20000
            --env ETCD_SD_REQUEST_TIMEOUT_MS=15000
            -- ${_memcheck} "$<TARGET_FILE:compat_coord_test>")
  list(APPEND _compat_tests compat_api_memcheck compat_txn_memcheck compat_coord_memcheck)
endif()
set_tests_properties(${_compat_tests} PROPERTIES TIMEOUT 120)
