# Sanitizers for our own C and C++ code (the tests and examples), included from the tests
# section of CMakeLists.txt; scripts/sanitize.sh configures a separate build with it.
#
#   -DETCD_SD_SANITIZE=address,undefined   AddressSanitizer (+ LeakSanitizer) and UBSan
#   -DETCD_SD_SANITIZE=thread              ThreadSanitizer
#
# Only the C/C++ side is instrumented: the Rust library is linked as it ships (cargo's release
# build, uninstrumented). ASan still sees every malloc/free of the library (it intercepts
# them), so a C++ wrapper freeing library memory wrongly, or a callback overrunning a buffer
# handed to it, is found; memory errors inside the Rust code are not (that is Miri's and the
# Rust tests' job). TSan cannot see the library's synchronisation (atomics and futexes in
# uninstrumented code), see scripts/sanitize.sh for what that means.
#
# The flags go into CMAKE_<LANG>_FLAGS and CMAKE_EXE_LINKER_FLAGS, which CMake reads when it
# generates, so this file may be included after the targets are defined. valgrind cannot run
# sanitized programs: the memcheck tests are disabled in such a build.
set(ETCD_SD_SANITIZE "" CACHE STRING
    "Sanitizers for the C/C++ tests and examples: address,undefined | thread | empty (none)")
if(ETCD_SD_SANITIZE)
  if(NOT ETCD_SD_SANITIZE MATCHES "^(address|undefined|thread|leak)(,(address|undefined|thread|leak))*$")
    message(FATAL_ERROR "ETCD_SD_SANITIZE=${ETCD_SD_SANITIZE}: want a comma-separated list of "
                        "address, undefined, leak, thread (e.g. address,undefined)")
  endif()
  if(ETCD_SD_SANITIZE MATCHES "thread" AND ETCD_SD_SANITIZE MATCHES "address|leak")
    message(FATAL_ERROR "ETCD_SD_SANITIZE: thread cannot be combined with address or leak")
  endif()
  set(_san "-fsanitize=${ETCD_SD_SANITIZE} -fno-omit-frame-pointer -g")
  if(ETCD_SD_SANITIZE MATCHES "undefined")
    # Undefined behaviour fails the test instead of printing a line and carrying on.
    string(APPEND _san " -fno-sanitize-recover=all")
  endif()
  foreach(_lang C CXX)
    string(APPEND CMAKE_${_lang}_FLAGS " ${_san}")
  endforeach()
  string(APPEND CMAKE_EXE_LINKER_FLAGS " -fsanitize=${ETCD_SD_SANITIZE}")
  # Every *memcheck test defined so far (scripts/sanitize.sh also runs ctest -E memcheck).
  get_property(_etcd_sd_all_tests DIRECTORY PROPERTY TESTS)
  foreach(_t IN LISTS _etcd_sd_all_tests)
    if(_t MATCHES "memcheck")
      set_tests_properties(${_t} PROPERTIES DISABLED TRUE)
    endif()
  endforeach()
  message(STATUS "etcd-sd: C/C++ tests and examples built with -fsanitize=${ETCD_SD_SANITIZE}")
endif()
