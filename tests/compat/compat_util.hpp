// Helpers shared by the compat tests (api_test.cc, txn_test.cc, coord_test.cc), on top of
// tests/cpp/test_util.hpp: a check that a Response is ok, and unique key prefixes.
#ifndef ETCD_SD_COMPAT_TEST_UTIL_HPP
#define ETCD_SD_COMPAT_TEST_UTIL_HPP

#include <unistd.h>

#include <etcd/Response.hpp>
#include <string>

#include "../cpp/test_util.hpp"

#define CHECK_OK(resp)                                                                         \
    do {                                                                                       \
        etcd::Response _r = (resp);                                                            \
        if (!_r.is_ok()) {                                                                     \
            fail(__FILE__, __LINE__,                                                           \
                 "CHECK_OK(" #resp "): " + std::to_string(_r.error_code()) + " " +             \
                     _r.error_message());                                                      \
        }                                                                                      \
    } while (0)

// "/<test>/<pid>/<n>/": a key prefix of its own for each case of each run.
inline std::string unique_prefix(const char *test) {
    static int n = 0;
    return std::string("/") + test + "/" + std::to_string(getpid()) + "/" + std::to_string(++n) +
           "/";
}

#endif
