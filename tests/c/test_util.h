/* The harness shared by the C tests (test_c_api.c, test_security.c): C99 + POSIX, no
 * framework, header only.
 *
 * Contract: include it once per test program, after defining _POSIX_C_SOURCE (the build
 * does); everything here is `static`, so each program gets its own copy and its own state.
 *   CHECK, CHECK_MSG, CHECK_RC, CHECK_OK, CHECK_INVALID   on failure print file:line, the
 *       current case, the condition and etcd_sd_last_error(), and _Exit(1) at once (no
 *       atexit handlers: library threads may be inside a callback)
 *   fail(file, line, fmt, ...)   the same, for checks with their own file and line
 *   now_ms(), sleep_ms(ms)       monotonic milliseconds; a sleep that survives EINTR
 *   POLL_UNTIL(cond, ms)         polls cond every 5 ms until it holds or ms pass (then
 *                                check it): the one waiting loop of the C tests
 *   WAIT_UNTIL(cond, ms)         the same, failing the case when cond does not hold in time
 *   slow, bound(ms)              ETCD_SD_TEST_SLOW (read by test_begin): time bounds x 8
 *   env_flag(name)               the variable is set, non-empty and not "0"
 *   need_env(name)               its value, or exit(2) with a note when unset or empty
 *   copy_str(dst, cap, src, len) copies and NUL-terminates, truncating to cap - 1
 *   test_begin(), run_case(name, fn), test_end(ran)
 *                                main's frame: line-buffered stdout, ETCD_SD_TEST_ONLY=name
 *                                selects the cases whose name contains it, one [ RUN  ] /
 *                                [  OK  ] line pair a case, exit status 1 when none ran */
#ifndef ETCD_SD_TEST_UTIL_H
#define ETCD_SD_TEST_UTIL_H

#include "etcd_sd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* checks */

static const char *current_case = "";

static void fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s:%d: [%s] FAILED: ", file, line, current_case);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n    etcd_sd_last_error(): \"%s\"\n", etcd_sd_last_error());
    fflush(stderr);
    fflush(stdout);
    /* Library threads may be in the middle of a callback: leave without running atexit
     * handlers or destructors. */
    _Exit(1);
}

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                         \
    } while (0)

#define CHECK_MSG(cond, ...)                                                               \
    do {                                                                                   \
        if (!(cond)) fail(__FILE__, __LINE__, __VA_ARGS__);                                \
    } while (0)

/* `call` must return `want`. */
#define CHECK_RC(call, want)                                                               \
    do {                                                                                   \
        etcd_sd_result rc_ = (call);                                                       \
        if (rc_ != (want))                                                                 \
            fail(__FILE__, __LINE__, "%s returned %s, want %s", #call,                     \
                 etcd_sd_result_name((int)rc_), etcd_sd_result_name((int)(want)));          \
    } while (0)

#define CHECK_OK(call) CHECK_RC(call, ETCD_SD_OK)

/* `call` must fail with INVALID_ARGUMENT and a message that contains `word` (the name of
 * the bad argument: the library's messages name the problem). */
#define CHECK_INVALID(call, word)                                                          \
    do {                                                                                   \
        etcd_sd_result rc_ = (call);                                                       \
        const char *msg_ = etcd_sd_last_error();                                           \
        if (rc_ != ETCD_SD_INVALID_ARGUMENT)                                               \
            fail(__FILE__, __LINE__, "%s returned %s, want ETCD_SD_INVALID_ARGUMENT",      \
                 #call, etcd_sd_result_name((int)rc_));                                    \
        if (msg_ == NULL || strstr(msg_, (word)) == NULL)                                  \
            fail(__FILE__, __LINE__, "%s: message does not mention \"%s\"", #call, (word)); \
    } while (0)

/* ---------------------------------------------------------------------------------------- */
/* time */

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Polls `cond` every 5 ms until it holds or `ms` milliseconds pass; afterwards `cond` may
 * still be false: check it. */
#define POLL_UNTIL(cond, ms)                                                               \
    do {                                                                                   \
        long long until_ = now_ms() + (ms);                                                \
        while (!(cond) && now_ms() < until_) sleep_ms(5); /* the poll interval */          \
    } while (0)

/* Waits until `cond` holds; fails the case after `ms` milliseconds. */
#define WAIT_UNTIL(cond, ms)                                                               \
    do {                                                                                   \
        POLL_UNTIL(cond, ms);                                                              \
        if (!(cond))                                                                       \
            fail(__FILE__, __LINE__, "timed out after %ld ms waiting for %s", (long)(ms),  \
                 #cond);                                                                   \
    } while (0)

static int slow; /* under valgrind: timing bounds are multiplied */

/* A time bound of `ms`, relaxed when running slowly. */
static long bound(long ms) { return slow ? ms * 8 : ms; }

/* ---------------------------------------------------------------------------------------- */
/* the environment, strings */

static int env_flag(const char *name) {
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

static const char *need_env(const char *name) {
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr, "%s is not set (run me through tests/with_etcd.py, as CTest does)\n",
                name);
        exit(2);
    }
    return v;
}

static void copy_str(char *dst, size_t cap, const char *src, size_t len) {
    if (len >= cap) len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* ---------------------------------------------------------------------------------------- */
/* running the cases */

static long long test_t_all;

static void test_begin(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    slow = env_flag("ETCD_SD_TEST_SLOW");
    test_t_all = now_ms();
}

/* Runs `fn` as case `name` unless ETCD_SD_TEST_ONLY leaves it out; 1 if it ran (and so
 * passed: a failed check exits), 0 if it was left out. */
static int run_case(const char *name, void (*fn)(void)) {
    const char *only = getenv("ETCD_SD_TEST_ONLY");
    long long t0;
    if (only != NULL && strstr(name, only) == NULL) return 0;
    current_case = name;
    printf("[ RUN  ] %s\n", name);
    t0 = now_ms();
    fn();
    printf("[  OK  ] %s (%lld ms)\n", name, now_ms() - t0);
    return 1;
}

/* main's exit status: success only if some case ran. */
static int test_end(int ran) {
    printf("%d cases passed in %lld ms\n", ran, now_ms() - test_t_all);
    return ran > 0 ? 0 : 1;
}

/* One case of a test program. */
typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

/* Runs every case in order (see run_case) and returns main's exit status. */
static inline int run_cases(const test_case *cases, size_t n) {
    size_t i;
    int ran = 0;
    for (i = 0; i < n; i++) ran += run_case(cases[i].name, cases[i].fn);
    return test_end(ran);
}

/* ---------------------------------------------------------------------------------------- */
/* shared fixtures (static inline: a test that does not use them gets no warning) */

/* A loopback port that nothing listens on (bound to 0, then closed). */
static inline int unused_port(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int port, s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(s, (struct sockaddr *)&a, &len) == 0);
    port = ntohs(a.sin_port);
    close(s);
    return port;
}

/* A general client of `endpoints` with 2 s connect and request timeouts. */
static inline etcd_sd_client *test_client_new(const char *endpoints) {
    etcd_sd_options *o = NULL;
    etcd_sd_client *c = NULL;
    CHECK_OK(etcd_sd_options_new(&o));
    CHECK_OK(etcd_sd_options_set_endpoints(o, endpoints));
    CHECK_OK(etcd_sd_options_set_connect_timeout_ms(o, 2000));
    CHECK_OK(etcd_sd_options_set_request_timeout_ms(o, 2000));
    CHECK_OK(etcd_sd_client_new(o, &c));
    etcd_sd_options_free(o);
    return c;
}

#endif /* ETCD_SD_TEST_UTIL_H */
