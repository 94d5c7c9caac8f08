// The harness shared by the C++ tests (tests/cpp/test_cpp_api.cc, tests/cpp/test_table.cc,
// tests/compat/api_test.cc): C++17 + POSIX, no framework, header only. The C++ counterpart of
// tests/c/test_util.h.
//
// Contract: include it once per test program (each is one translation unit); the state below
// is one per program.
//   CHECK(cond), CHECK_MSG(cond, std::string), CHECK_EQ(a, b)
//                              on failure print file:line, the current case, the condition and
//                              etcd_sd_last_error(), and _Exit(1) at once (no destructors:
//                              library threads may be inside a callback)
//   fail(file, line, what)     the same, for checks with their own file and line
//   throws<E>(f)               f() throws an E (false when it throws something else or nothing)
//   endpoints                  ETCD_SD_TEST_ENDPOINTS (set by run_cases; required)
//   slow, bound(ms)            ETCD_SD_TEST_SLOW (set by run_cases): time bounds x 8
//   env_flag(name)             the variable is set, non-empty and not "0"
//   need_env(name)             its value, or exit(2) with a note when unset or empty
//   dead_port()                a loopback port nothing listens on
//   poll_until(pred, limit)    polls pred every 5 ms until it holds (true) or bound(limit)
//                              passes (false): the one waiting loop of the C++ tests
//   WAIT_UNTIL(what, pred[, limit = 5 s])
//                              the same, failing the case (naming `what`) on time-out
//   test_case, run_cases(cases)
//                              main's frame: reads the environment above, line-buffered stdout,
//                              ETCD_SD_TEST_ONLY=name selects the cases whose name contains it,
//                              one [ RUN  ] / [  OK  ] line pair a case, an exception escaping
//                              a case fails it, exit status 1 when none ran
#ifndef ETCD_SD_TEST_UTIL_HPP
#define ETCD_SD_TEST_UTIL_HPP

#include "etcd_sd.h"

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

// ------------------------------------------------------------------------------------------
// checks

inline const char *current_case = "";

[[noreturn]] inline void fail(const char *file, int line, const std::string &what) {
    std::fprintf(stderr, "%s:%d: [%s] FAILED: %s\n    etcd_sd_last_error(): \"%s\"\n", file,
                 line, current_case, what.c_str(), etcd_sd_last_error());
    std::fflush(stderr);
    std::fflush(stdout);
    std::_Exit(1);  // library threads may be inside a callback: no destructors
}

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) fail(__FILE__, __LINE__, "CHECK(" #cond ")");                         \
    } while (0)

#define CHECK_MSG(cond, msg)                                                               \
    do {                                                                                   \
        if (!(cond)) fail(__FILE__, __LINE__, (msg));                                      \
    } while (0)

// Both sides must be printable with <<.
#define CHECK_EQ(a, b)                                                                     \
    do {                                                                                   \
        auto _a = (a);                                                                     \
        auto _b = (b);                                                                     \
        if (!(_a == _b)) {                                                                 \
            std::ostringstream _os;                                                        \
            _os << "CHECK_EQ(" #a ", " #b "): " << _a << " != " << _b;                     \
            fail(__FILE__, __LINE__, _os.str());                                           \
        }                                                                                  \
    } while (0)

template <typename E, typename F>
bool throws(F f) {
    try {
        f();
    } catch (E const &) {
        return true;
    } catch (...) {
        return false;
    }
    return false;
}

// ------------------------------------------------------------------------------------------
// the environment, time

inline std::string endpoints;
inline bool slow = false;  // under valgrind: timing bounds are multiplied

// A time bound of `ms`, relaxed when running slowly.
inline std::chrono::milliseconds bound(std::chrono::milliseconds ms) {
    return slow ? ms * 8 : ms;
}
inline int bound(int ms) { return slow ? ms * 8 : ms; }

inline bool env_flag(const char *name) {
    const char *v = std::getenv(name);
    return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

inline const char *need_env(const char *name) {
    const char *v = std::getenv(name);
    if (v == nullptr || v[0] == '\0') {
        std::fprintf(stderr,
                     "%s is not set (run me through tests/with_etcd.py, as CTest does)\n", name);
        std::exit(2);
    }
    return v;
}

// A loopback port nothing listens on.
inline int dead_port() {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(s, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    CHECK(getsockname(s, reinterpret_cast<sockaddr *>(&a), &len) == 0);
    close(s);
    return ntohs(a.sin_port);
}

// Polls `pred` every 5 ms until it holds (true) or bound(limit) passes (false).
template <class Pred>
bool poll_until(Pred pred, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + bound(limit);
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return pred();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the poll interval
    }
    return true;
}

// Waits until `pred` holds; fails the case, naming `what`, after bound(limit).
#define WAIT_UNTIL(what, ...) wait_until_at(__FILE__, __LINE__, (what), __VA_ARGS__)
template <class Pred>
void wait_until_at(const char *file, int line, const std::string &what, Pred pred,
                   std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    if (!poll_until(pred, limit)) fail(file, line, "timed out waiting for " + what);
}

// ------------------------------------------------------------------------------------------
// running the cases

// One case of a test program.
struct test_case {
    const char *name;
    void (*fn)();
};

inline long long test_ms_since(std::chrono::steady_clock::time_point t0) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - t0)
                                      .count());
}

// Reads the environment (endpoints, slow), runs every case in order unless ETCD_SD_TEST_ONLY
// leaves it out, and returns main's exit status: success only if some case ran (and so
// passed: a failed check exits). `before`, when given, runs once before the cases.
template <std::size_t N>
int run_cases(const test_case (&cases)[N], void (*before)() = nullptr) {
    endpoints = need_env("ETCD_SD_TEST_ENDPOINTS");
    slow = env_flag("ETCD_SD_TEST_SLOW");
    const char *only = std::getenv("ETCD_SD_TEST_ONLY");
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (before != nullptr) before();
    const auto t_all = std::chrono::steady_clock::now();
    int ran = 0;
    for (const test_case &c : cases) {
        if (only != nullptr && std::strstr(c.name, only) == nullptr) continue;
        current_case = c.name;
        std::printf("[ RUN  ] %s\n", c.name);
        const auto t0 = std::chrono::steady_clock::now();
        try {
            c.fn();
        } catch (const std::exception &e) {
            fail(__FILE__, __LINE__, std::string("uncaught exception: ") + e.what());
        } catch (...) {
            fail(__FILE__, __LINE__, "uncaught exception of a type not derived from std::exception");
        }
        std::printf("[  OK  ] %s (%lld ms)\n", c.name, test_ms_since(t0));
        ran++;
    }
    std::printf("%d cases passed in %lld ms\n", ran, test_ms_since(t_all));
    if (ran == 0) {
        std::fprintf(stderr, "no case matched ETCD_SD_TEST_ONLY=%s\n",
                     only != nullptr ? only : "");
        return 1;
    }
    return 0;
}

#endif  // ETCD_SD_TEST_UTIL_HPP
