/* The service table from C (etcd_sd_table_*), against the etcd started by with_etcd.py.
 * Every case works under its own prefix, /t_<case>/, with its own registry and table. */
#include "test_util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

static const char *endpoints;

static etcd_sd_options *opts(void) {
    etcd_sd_options *o = NULL;
    CHECK_OK(etcd_sd_options_new(&o));
    CHECK_OK(etcd_sd_options_set_endpoints(o, endpoints));
    return o;
}

static etcd_sd_table *new_table(const char *prefix, uint32_t policy) {
    etcd_sd_options *o = opts();
    etcd_sd_table *t = NULL;
    CHECK_OK(etcd_sd_table_new(o, prefix, policy, &t));
    etcd_sd_options_free(o);
    return t;
}

static etcd_sd_registry *new_registry(void) {
    etcd_sd_registry *r = NULL;
    CHECK_OK(etcd_sd_registry_new(endpoints, 10, &r));
    return r;
}

static size_t count(const etcd_sd_table *t, const char *service) {
    etcd_sd_instances *s = NULL;
    size_t n;
    CHECK_OK(etcd_sd_table_instances(t, service, &s));
    n = etcd_sd_instances_len(s);
    etcd_sd_instances_free(s);
    return n;
}

/* Waits until `service` has `n` instances. */
static void wait_count(const etcd_sd_table *t, const char *service, size_t n) {
    POLL_UNTIL(count(t, service) == n, bound(5000));
    CHECK_MSG(count(t, service) == n, "%s: %zu instances, want %zu", service, count(t, service),
              n);
}

static void reg(etcd_sd_registry *r, const char *key, const char *value) {
    CHECK_OK(etcd_sd_registry_register(r, key, value));
}

/* Picks into a string; "" for no instance. */
static const char *pick(const etcd_sd_table *t, const char *service, const char *hash) {
    static char buf[128]; /* main thread only */
    size_t len = 0;
    etcd_sd_result rc = etcd_sd_table_pick(t, service, hash, hash ? strlen(hash) : 0, buf,
                                           sizeof buf, &len);
    if (rc == ETCD_SD_NO_INSTANCE) return "";
    CHECK_MSG(rc == ETCD_SD_OK, "pick: %s", etcd_sd_result_name((int)rc));
    CHECK(strlen(buf) == len);
    return buf;
}

static void test_invalid_arguments(void) {
    etcd_sd_options *o = opts();
    etcd_sd_table *t = NULL;
    char buf[8];
    size_t len = 0;
    CHECK(strcmp(etcd_sd_result_name(ETCD_SD_NO_INSTANCE), "ETCD_SD_NO_INSTANCE") == 0);
    CHECK(strcmp(etcd_sd_result_name(ETCD_SD_NOT_FOUND), "ETCD_SD_NOT_FOUND") == 0);
    CHECK(strcmp(etcd_sd_result_name(ETCD_SD_EXISTS), "ETCD_SD_EXISTS") == 0);
    CHECK_INVALID(etcd_sd_table_new(NULL, "/t/", 0, &t), "options");
    CHECK_INVALID(etcd_sd_table_new(o, NULL, 0, &t), "prefix");
    CHECK_INVALID(etcd_sd_table_new(o, "/t/", 0, NULL), "out");
    CHECK_INVALID(etcd_sd_table_new(o, "/t/", 7, &t), "policy");
    CHECK_INVALID(etcd_sd_table_new(o, "", 0, &t), "prefix");
    CHECK(t == NULL);
    CHECK_OK(etcd_sd_table_new(o, "/t_invalid/", ETCD_SD_POLICY_RANDOM, &t));
    CHECK_INVALID(etcd_sd_table_pick(NULL, "/s", NULL, 0, buf, sizeof buf, &len), "table");
    CHECK_INVALID(etcd_sd_table_pick(t, NULL, NULL, 0, buf, sizeof buf, &len), "service");
    CHECK_INVALID(etcd_sd_table_pick(t, "/s", NULL, 0, NULL, 0, &len), "buf");
    CHECK_INVALID(etcd_sd_table_pick(t, "\xff", NULL, 0, buf, sizeof buf, &len), "UTF-8");
    CHECK_RC(etcd_sd_table_pick(t, "/none", NULL, 0, buf, sizeof buf, NULL),
             ETCD_SD_NO_INSTANCE);
    CHECK(strstr(etcd_sd_last_error(), "/none") != NULL);
    CHECK_INVALID(etcd_sd_table_set_ejection(t, 5, 0, 10, 50), "base_ms");
    CHECK_INVALID(etcd_sd_table_set_ejection(t, 5, 20, 10, 50), "max_ms");
    CHECK_INVALID(etcd_sd_table_set_ejection(t, 5, 10, 10, 101), "percent");
    CHECK_INVALID(etcd_sd_table_declare(t, NULL), "service");
    CHECK_INVALID(etcd_sd_table_report(t, "/s", NULL, true), "address");
    CHECK_RC(etcd_sd_table_report(t, "/s", "h:1", true), ETCD_SD_NO_INSTANCE);
    CHECK(etcd_sd_instances_len(NULL) == 0);
    CHECK(!etcd_sd_instances_at(NULL, 0, NULL));
    etcd_sd_instances_free(NULL);
    etcd_sd_table_free(NULL);
    etcd_sd_table_free(t);
    etcd_sd_options_free(o);
}

static void test_round_robin_even(void) {
    etcd_sd_registry *r = new_registry();
    etcd_sd_table *t;
    int counts[3] = {0, 0, 0};
    int i;
    reg(r, "/t_rr/echo/a", "127.0.0.1:7001");
    t = new_table("/t_rr/", ETCD_SD_POLICY_ROUND_ROBIN);
    CHECK(count(t, "/t_rr/echo") == 1); /* the listing is in when _new returns */
    reg(r, "/t_rr/echo/b", "127.0.0.1:7002");
    reg(r, "/t_rr/echo/c", "127.0.0.1:7003");
    wait_count(t, "/t_rr/echo", 3);
    for (i = 0; i < 3000; i++) {
        const char *a = pick(t, "/t_rr/echo", NULL);
        CHECK(strncmp(a, "127.0.0.1:700", 13) == 0);
        counts[a[13] - '1']++;
    }
    CHECK_MSG(counts[0] == 1000 && counts[1] == 1000 && counts[2] == 1000, "%d %d %d",
              counts[0], counts[1], counts[2]);
    /* The last instance leaving: NO_INSTANCE, never a crash. */
    etcd_sd_registry_free(r);
    wait_count(t, "/t_rr/echo", 0);
    CHECK(strcmp(pick(t, "/t_rr/echo", NULL), "") == 0);
    etcd_sd_table_free(t);
}

static void test_buffer_and_snapshot(void) {
    etcd_sd_registry *r = new_registry();
    etcd_sd_table *t;
    etcd_sd_instances *s = NULL;
    etcd_sd_instance v;
    char small[4];
    size_t len = 0;
    reg(r, "/t_snap/svc/1", "{\"Op\":0,\"Addr\":\"127.0.0.1:7101\",\"Metadata\":{\"weight\":3}}");
    reg(r, "/t_snap/svc/2", "127.0.0.1:7102 weight=2");
    reg(r, "/t_snap/svc/3", "not an address at all");
    t = new_table("/t_snap/", ETCD_SD_POLICY_ROUND_ROBIN);
    CHECK_RC(etcd_sd_table_pick(t, "/t_snap/svc", NULL, 0, small, sizeof small, &len),
             ETCD_SD_INVALID_ARGUMENT);
    CHECK(len == strlen("127.0.0.1:7101"));
    CHECK(strstr(etcd_sd_last_error(), "too small") != NULL);
    CHECK_OK(etcd_sd_table_instances(t, "/t_snap/svc/", &s));
    CHECK(etcd_sd_instances_len(s) == 2); /* the invalid value is not an instance */
    CHECK(etcd_sd_instances_at(s, 0, &v));
    CHECK(strcmp(v.key, "/t_snap/svc/1") == 0 && v.key_len == 13);
    CHECK(strcmp(v.address, "127.0.0.1:7101") == 0 && v.address_len == 14);
    CHECK(v.weight == 3 && !v.ejected && v.consecutive_failures == 0);
    CHECK(v.metadata != NULL && strcmp(v.metadata, "{\"weight\":3}") == 0);
    CHECK(etcd_sd_instances_at(s, 1, &v));
    CHECK(strcmp(v.address, "127.0.0.1:7102") == 0 && v.weight == 2 && v.metadata == NULL);
    CHECK(!etcd_sd_instances_at(s, 2, &v));
    /* The snapshot outlives changes and even the table. */
    CHECK_OK(etcd_sd_registry_unregister(r, "/t_snap/svc/1"));
    wait_count(t, "/t_snap/svc", 1);
    etcd_sd_table_free(t);
    CHECK(etcd_sd_instances_len(s) == 2);
    CHECK(etcd_sd_instances_at(s, 0, &v) && strcmp(v.address, "127.0.0.1:7101") == 0);
    etcd_sd_instances_free(s);
    etcd_sd_registry_free(r);
}

static void test_weighted(void) {
    etcd_sd_registry *r = new_registry();
    etcd_sd_table *t;
    const int weights[4] = {1, 2, 3, 4};
    int counts[4] = {0, 0, 0, 0};
    int i;
    char key[64], value[64];
    for (i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "/t_wrr/svc/%d", i);
        snprintf(value, sizeof value, "127.0.0.1:720%d %d", i, weights[i]);
        reg(r, key, value);
    }
    t = new_table("/t_wrr/", ETCD_SD_POLICY_WEIGHTED_ROUND_ROBIN);
    for (i = 0; i < 100000; i++) counts[pick(t, "/t_wrr/svc", NULL)[13] - '0']++;
    for (i = 0; i < 4; i++) {
        double got = counts[i] / 100000.0, want = weights[i] / 10.0;
        CHECK_MSG(got >= want * 0.98 && got <= want * 1.02, "instance %d: %f, want %f", i, got,
                  want);
    }
    etcd_sd_table_free(t);
    etcd_sd_registry_free(r);
}

#define HASH_KEYS 10000
static char before_pick[HASH_KEYS][24];

static void test_consistent_hash(void) {
    etcd_sd_registry *r = new_registry();
    etcd_sd_table *t;
    int i, moved = 0;
    char key[64], value[64], hk[32];
    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "/t_hash/svc/%d", i);
        snprintf(value, sizeof value, "127.0.0.1:73%02d", i);
        reg(r, key, value);
    }
    t = new_table("/t_hash/", ETCD_SD_POLICY_CONSISTENT_HASH);
    for (i = 0; i < HASH_KEYS; i++) {
        snprintf(hk, sizeof hk, "user-%d", i);
        copy_str(before_pick[i], sizeof before_pick[i], pick(t, "/t_hash/svc", hk), 23);
    }
    CHECK_OK(etcd_sd_registry_unregister(r, "/t_hash/svc/7"));
    wait_count(t, "/t_hash/svc", 9);
    for (i = 0; i < HASH_KEYS; i++) {
        const char *now;
        snprintf(hk, sizeof hk, "user-%d", i);
        now = pick(t, "/t_hash/svc", hk);
        if (strcmp(now, before_pick[i]) != 0) {
            moved++;
            CHECK_MSG(strcmp(before_pick[i], "127.0.0.1:7307") == 0,
                      "key %s moved from %s (still there) to %s", hk, before_pick[i], now);
        }
    }
    printf("    %d of %d keys moved when 1 of 10 instances left\n", moved, HASH_KEYS);
    CHECK_MSG(moved > 0 && moved <= HASH_KEYS / 10 + HASH_KEYS / 20, "%d keys moved", moved);
    etcd_sd_table_free(t);
    etcd_sd_registry_free(r);
}

/* True when `addr` is among the next `n` round-robin picks. */
static bool picked_within(const etcd_sd_table *t, const char *svc, const char *addr, int n) {
    int i;
    for (i = 0; i < n; i++)
        if (strcmp(pick(t, svc, NULL), addr) == 0) return true;
    return false;
}

static void test_ejection_and_readmission(void) {
    etcd_sd_registry *r = new_registry();
    etcd_sd_table *t;
    const char *svc = "/t_eject/svc", *bad = "127.0.0.1:7401";
    long long t0, took;
    int i;
    reg(r, "/t_eject/svc/0", "127.0.0.1:7400");
    reg(r, "/t_eject/svc/1", bad);
    reg(r, "/t_eject/svc/2", "127.0.0.1:7402");
    reg(r, "/t_eject/svc/3", "127.0.0.1:7403");
    t = new_table("/t_eject/", ETCD_SD_POLICY_ROUND_ROBIN);
    CHECK_OK(etcd_sd_table_set_ejection(t, 5, bound(400), bound(4000), 50));
    for (i = 0; i < 4; i++) CHECK_OK(etcd_sd_table_report(t, svc, bad, false));
    CHECK(picked_within(t, svc, bad, 4)); /* 4 failures: still in */
    /* The ejection starts at the 5th report, not before t0: it cannot end before t0 + base.
     * Re-admission is polled for, so it is seen (and the next failures come) a few ms after
     * it, well within base_ms: no doubling is forgiven. */
    t0 = now_ms();
    CHECK_OK(etcd_sd_table_report(t, svc, bad, false));
    CHECK(!picked_within(t, svc, bad, 40));
    POLL_UNTIL(picked_within(t, svc, bad, 4), bound(400) + bound(2000));
    took = now_ms() - t0;
    CHECK_MSG(took >= bound(400) && took < bound(400) + bound(2000),
              "re-admitted after %lld ms, want %ld", took, bound(400));
    /* Fails 5 times again: ejected for twice as long. */
    t0 = now_ms();
    for (i = 0; i < 5; i++) CHECK_OK(etcd_sd_table_report(t, svc, bad, false));
    CHECK(!picked_within(t, svc, bad, 40));
    POLL_UNTIL(picked_within(t, svc, bad, 4), bound(800) + bound(2000));
    took = now_ms() - t0;
    CHECK_MSG(took >= bound(800) && took < bound(800) + bound(2000),
              "re-admitted after %lld ms, want %ld (twice as long)", took, bound(800));
    /* A success resets the count. */
    for (i = 0; i < 4; i++) CHECK_OK(etcd_sd_table_report(t, svc, bad, false));
    CHECK_OK(etcd_sd_table_report(t, svc, bad, true));
    CHECK_OK(etcd_sd_table_report(t, svc, bad, false));
    CHECK(picked_within(t, svc, bad, 4));
    etcd_sd_table_free(t);
    etcd_sd_registry_free(r);
}

static void test_half_ejected_cap(void) {
    etcd_sd_registry *r = new_registry();
    etcd_sd_table *t;
    etcd_sd_instances *s = NULL;
    etcd_sd_instance v;
    char key[64], value[64];
    int i, j, ejected = 0;
    for (i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "/t_cap/svc/%d", i);
        snprintf(value, sizeof value, "127.0.0.1:750%d", i);
        reg(r, key, value);
    }
    t = new_table("/t_cap/", ETCD_SD_POLICY_ROUND_ROBIN);
    for (i = 0; i < 4; i++) {
        snprintf(value, sizeof value, "127.0.0.1:750%d", i);
        for (j = 0; j < 5; j++) CHECK_OK(etcd_sd_table_report(t, "/t_cap/svc", value, false));
    }
    CHECK_OK(etcd_sd_table_instances(t, "/t_cap/svc", &s));
    for (i = 0; etcd_sd_instances_at(s, (size_t)i, &v); i++) ejected += v.ejected;
    etcd_sd_instances_free(s);
    CHECK_MSG(ejected == 2, "%d of 4 ejected", ejected);
    /* Picks go to the two still admitted. */
    CHECK(!picked_within(t, "/t_cap/svc", "127.0.0.1:7500", 20));
    CHECK(!picked_within(t, "/t_cap/svc", "127.0.0.1:7501", 20));
    etcd_sd_table_free(t);
    etcd_sd_registry_free(r);
}

typedef struct {
    pthread_mutex_t mu;
    int calls;
    char last[64];
} changed_log;

static void on_changed(void *ud, const char *service, size_t len) {
    changed_log *l = ud;
    CHECK(strlen(service) == len);
    pthread_mutex_lock(&l->mu);
    l->calls++;
    copy_str(l->last, sizeof l->last, service, len);
    pthread_mutex_unlock(&l->mu);
}

static int calls(changed_log *l) {
    int n;
    pthread_mutex_lock(&l->mu);
    n = l->calls;
    pthread_mutex_unlock(&l->mu);
    return n;
}

static void test_changed_and_declared(void) {
    etcd_sd_registry *r = new_registry();
    etcd_sd_table *t = new_table("/t_chg/", ETCD_SD_POLICY_ROUND_ROBIN), *t2;
    changed_log l, l2;
    int n;
    pthread_mutex_init(&l.mu, NULL);
    l.calls = 0;
    l.last[0] = '\0';
    CHECK_OK(etcd_sd_table_set_changed_fn(t, on_changed, &l));
    reg(r, "/t_chg/a/1", "127.0.0.1:7601");
    WAIT_UNTIL(calls(&l) >= 1, bound(5000));
    CHECK(strcmp(l.last, "/t_chg/a") == 0);
    CHECK(strcmp(pick(t, "/t_chg/a", NULL), "127.0.0.1:7601") == 0);
    /* The same value again: no change, no call. */
    reg(r, "/t_chg/a/1", "127.0.0.1:7601");
    reg(r, "/t_chg/b/1", "127.0.0.1:7602");
    wait_count(t, "/t_chg/b", 1);
    /* /t_chg/b's call is the marker: a call for the repeated value would have come first */
    WAIT_UNTIL(calls(&l) >= 2, bound(5000));
    CHECK_MSG(calls(&l) == 2, "%d calls", calls(&l));
    CHECK(strcmp(l.last, "/t_chg/b") == 0);
    /* Declared: only /t_chg/b is kept. */
    CHECK_OK(etcd_sd_table_declare(t, "/t_chg/b"));
    CHECK(strcmp(pick(t, "/t_chg/a", NULL), "") == 0);
    CHECK(strcmp(pick(t, "/t_chg/b", NULL), "127.0.0.1:7602") == 0);
    CHECK_OK(etcd_sd_table_declare(t, "/t_chg/a/"));
    CHECK(strcmp(pick(t, "/t_chg/a", NULL), "127.0.0.1:7601") == 0);
    /* Removed: no call after set_changed_fn(NULL) returns. */
    CHECK_OK(etcd_sd_table_set_changed_fn(t, NULL, NULL));
    n = calls(&l);
    /* a second table on the prefix: its call for the change is the marker */
    pthread_mutex_init(&l2.mu, NULL);
    l2.calls = 0;
    l2.last[0] = '\0';
    t2 = new_table("/t_chg/", ETCD_SD_POLICY_ROUND_ROBIN);
    CHECK_OK(etcd_sd_table_set_changed_fn(t2, on_changed, &l2));
    reg(r, "/t_chg/b/2", "127.0.0.1:7603");
    wait_count(t, "/t_chg/b", 2);
    WAIT_UNTIL(calls(&l2) >= 1, bound(5000));
    CHECK(calls(&l) == n);
    etcd_sd_table_free(t2);
    etcd_sd_table_free(t);
    etcd_sd_registry_free(r);
    pthread_mutex_destroy(&l.mu);
    pthread_mutex_destroy(&l2.mu);
}

/* 8 threads pick while a registry adds and removes instances. */
typedef struct {
    const etcd_sd_table *t;
    volatile int *stop;
    long picks;
} picker_arg;

static void *picker(void *p) {
    picker_arg *a = p;
    char buf[128], hk[32];
    size_t len;
    while (!*a->stop) {
        etcd_sd_result rc;
        snprintf(hk, sizeof hk, "k%ld", a->picks);
        rc = etcd_sd_table_pick(a->t, "/t_mt/svc", (a->picks & 1) ? hk : NULL, strlen(hk), buf,
                                sizeof buf, &len);
        CHECK(rc == ETCD_SD_OK || rc == ETCD_SD_NO_INSTANCE);
        if (rc == ETCD_SD_OK) CHECK(strncmp(buf, "127.0.0.1:77", 12) == 0 && len == 14);
        a->picks++;
        if (slow) sleep_ms(1); /* under valgrind: leave the registry room (pacing, no wait) */
    }
    return NULL;
}

static void test_threads_and_churn(void) {
    etcd_sd_registry *r = new_registry();
    etcd_sd_table *t = new_table("/t_mt/", ETCD_SD_POLICY_ROUND_ROBIN);
    pthread_t th[8];
    picker_arg args[8];
    volatile int stop = 0;
    long long t0 = now_ms();
    long total = 0;
    int i, changes = 0;
    char key[64], value[64];
    for (i = 0; i < 8; i++) {
        args[i].t = t;
        args[i].stop = &stop;
        args[i].picks = 0;
        CHECK(pthread_create(&th[i], NULL, picker, &args[i]) == 0);
    }
    while (now_ms() - t0 < 2000) {
        int k = changes % 6;
        snprintf(key, sizeof key, "/t_mt/svc/%d", k);
        if ((changes / 6) % 2 == 0) {
            snprintf(value, sizeof value, "127.0.0.1:77%02d", changes % 100);
            reg(r, key, value);
        } else {
            CHECK_OK(etcd_sd_registry_unregister(r, key));
        }
        changes++;
    }
    stop = 1;
    for (i = 0; i < 8; i++) {
        CHECK(pthread_join(th[i], NULL) == 0);
        total += args[i].picks;
    }
    printf("    %d changes, %ld picks\n", changes, total);
    etcd_sd_table_free(t);
    etcd_sd_registry_free(r);
}

/* Picks `n` times (with `sel`, NULL for none) and counts by the address's last digit
 * ("127.0.0.1:75X4" style addresses: `digit_at` is the index of the distinguishing digit);
 * counts[10] holds the NO_INSTANCE results. */
static void pick_counts(const etcd_sd_table *t, const char *service, const etcd_sd_selector *sel,
                        int n, size_t digit_at, int counts[11]) {
    char buf[64];
    int i;
    memset(counts, 0, 11 * sizeof counts[0]);
    for (i = 0; i < n; i++) {
        size_t len = 0;
        etcd_sd_result rc =
            etcd_sd_table_pick_select(t, service, sel, NULL, 0, buf, sizeof buf, &len);
        if (rc == ETCD_SD_NO_INSTANCE) {
            counts[10]++;
            continue;
        }
        CHECK_MSG(rc == ETCD_SD_OK, "pick_select: %s", etcd_sd_result_name((int)rc));
        CHECK(len > digit_at && buf[digit_at] >= '0' && buf[digit_at] <= '9');
        counts[buf[digit_at] - '0']++;
    }
}

#define EXPECT_COUNTS(c, a0, a1, a2, a3, a4, none)                                           \
    CHECK_MSG((c)[0] == (a0) && (c)[1] == (a1) && (c)[2] == (a2) && (c)[3] == (a3) &&       \
                  (c)[4] == (a4) && (c)[10] == (none),                                     \
              "counts %d %d %d %d %d, none %d", (c)[0], (c)[1], (c)[2], (c)[3], (c)[4], (c)[10])

static bool draining_at(const etcd_sd_table *t, const char *service, size_t i) {
    etcd_sd_instances *s = NULL;
    bool d;
    CHECK_OK(etcd_sd_table_instances(t, service, &s));
    d = etcd_sd_instances_draining(s, i);
    etcd_sd_instances_free(s);
    return d;
}

static void test_metadata_and_drain(void) {
    etcd_sd_registry *r = new_registry();
    etcd_sd_table *t;
    etcd_sd_instances *s = NULL;
    etcd_sd_meta_pair p;
    int c[11];
    const char *svc = "/t_meta/svc";
    reg(r, "/t_meta/svc/0", "127.0.0.1:7500 weight=2 zone=a version=v2");
    reg(r, "/t_meta/svc/1", "{\"Addr\":\"127.0.0.1:7501\",\"Metadata\":{\"zone\":\"b\",\"canary\":false}}");
    reg(r, "/t_meta/svc/2", "127.0.0.1:7502");
    reg(r, "/t_meta/svc/3", "127.0.0.1:7503 zone=a junk"); /* invalid: not an instance */
    t = new_table("/t_meta/", ETCD_SD_POLICY_ROUND_ROBIN);
    CHECK_OK(etcd_sd_table_instances(t, svc, &s));
    CHECK(etcd_sd_instances_len(s) == 3);
    CHECK(etcd_sd_instances_meta_len(s, 0) == 3);
    CHECK(etcd_sd_instances_meta_at(s, 0, 0, &p));
    CHECK(strcmp(p.key, "version") == 0 && p.key_len == 7 && strcmp(p.value, "v2") == 0 &&
          p.value_len == 2);
    CHECK(etcd_sd_instances_meta_at(s, 0, 1, &p) && strcmp(p.key, "weight") == 0 &&
          strcmp(p.value, "2") == 0);
    CHECK(etcd_sd_instances_meta_at(s, 0, 2, &p) && strcmp(p.key, "zone") == 0 &&
          strcmp(p.value, "a") == 0);
    CHECK(!etcd_sd_instances_meta_at(s, 0, 3, &p));
    CHECK(etcd_sd_instances_meta_get(s, 1, "canary", &p) && strcmp(p.value, "false") == 0);
    CHECK(etcd_sd_instances_meta_get(s, 1, "zone", &p) && strcmp(p.value, "b") == 0);
    CHECK(!etcd_sd_instances_meta_get(s, 2, "zone", &p));
    CHECK(etcd_sd_instances_meta_len(s, 2) == 0 && etcd_sd_instances_meta_len(s, 9) == 0);
    CHECK(etcd_sd_instances_meta_len(NULL, 0) == 0 && !etcd_sd_instances_draining(NULL, 0));
    CHECK(!etcd_sd_instances_meta_get(s, 0, NULL, &p) && !etcd_sd_instances_meta_at(s, 0, 0, NULL));
    CHECK(!etcd_sd_instances_draining(s, 0) && !etcd_sd_instances_draining(s, 1));
    etcd_sd_instances_free(s);

    /* The drain mark (what etcd_sd_registry_drain writes): listed, flagged, never picked. */
    reg(r, "/t_meta/svc/1", "127.0.0.1:7501 zone=b draining=true");
    POLL_UNTIL(draining_at(t, svc, 1), bound(5000));
    CHECK(draining_at(t, svc, 1) && count(t, svc) == 3);
    pick_counts(t, svc, NULL, 3000, 13, c);
    EXPECT_COUNTS(c, 1500, 0, 1500, 0, 0, 0);
    reg(r, "/t_meta/svc/1", "127.0.0.1:7501 zone=b draining=1");
    reg(r, "/t_meta/svc/0", "127.0.0.1:7500 draining=1");
    reg(r, "/t_meta/svc/2", "127.0.0.1:7502 draining=true");
    POLL_UNTIL(draining_at(t, svc, 2), bound(5000));
    pick_counts(t, svc, NULL, 10, 13, c);
    EXPECT_COUNTS(c, 0, 0, 0, 0, 0, 10); /* all draining: no instance */
    reg(r, "/t_meta/svc/1", "127.0.0.1:7501 zone=b");
    POLL_UNTIL(!draining_at(t, svc, 1), bound(5000));
    pick_counts(t, svc, NULL, 10, 13, c);
    EXPECT_COUNTS(c, 0, 10, 0, 0, 0, 0);

    /* The registry writes the mark itself: etcd_sd_registry_drain, then _undrain. */
    {
        etcd_sd_registry *d = new_registry();
        reg(d, "/t_meta/svc/4", "127.0.0.1:7504");
        POLL_UNTIL(count(t, svc) == 4, bound(5000));
        CHECK_OK(etcd_sd_registry_drain(d));
        POLL_UNTIL(draining_at(t, svc, 3), bound(5000));
        pick_counts(t, svc, NULL, 10, 13, c);
        EXPECT_COUNTS(c, 0, 10, 0, 0, 0, 0); /* 7501 is the only one not draining */
        CHECK_OK(etcd_sd_registry_undrain(d));
        POLL_UNTIL(!draining_at(t, svc, 3), bound(5000));
        pick_counts(t, svc, NULL, 20, 13, c);
        EXPECT_COUNTS(c, 0, 10, 0, 0, 10, 0);
        CHECK_INVALID(etcd_sd_registry_drain(NULL), "registry");
        etcd_sd_registry_free(d);
    }
    etcd_sd_table_free(t);
    etcd_sd_registry_free(r);
}

static etcd_sd_selector *selector(const char *text, uint32_t failover) {
    etcd_sd_selector *sel = NULL;
    CHECK_OK(etcd_sd_selector_new(text, failover, &sel));
    return sel;
}

static void test_selector_failover(void) {
    etcd_sd_registry *r = new_registry();
    etcd_sd_table *t;
    etcd_sd_selector *sel = NULL;
    int c[11];
    const char *svc = "/t_sel/svc";
    char buf[64];
    CHECK_INVALID(etcd_sd_selector_new("", ETCD_SD_FAILOVER_NONE, &sel), "empty");
    CHECK_INVALID(etcd_sd_selector_new("version", ETCD_SD_FAILOVER_NONE, &sel), "key=value");
    CHECK_INVALID(etcd_sd_selector_new("a=1,,b=2", ETCD_SD_FAILOVER_NONE, &sel), "empty");
    CHECK_INVALID(etcd_sd_selector_new("=v2", ETCD_SD_FAILOVER_NONE, &sel), "empty key");
    CHECK_INVALID(etcd_sd_selector_new("a=1,a=2", ETCD_SD_FAILOVER_NONE, &sel), "twice");
    CHECK_INVALID(etcd_sd_selector_new("a=1", 3, &sel), "failover");
    CHECK_INVALID(etcd_sd_selector_new(NULL, ETCD_SD_FAILOVER_NONE, &sel), "text");
    CHECK_RC(etcd_sd_selector_new("a=1", ETCD_SD_FAILOVER_NONE, NULL), ETCD_SD_INVALID_ARGUMENT);
    CHECK(sel == NULL);
    etcd_sd_selector_free(NULL);

    reg(r, "/t_sel/svc/0", "127.0.0.1:7600 version=v1");
    reg(r, "/t_sel/svc/1", "127.0.0.1:7601 version=v2 canary=false");
    reg(r, "/t_sel/svc/2", "{\"Addr\":\"127.0.0.1:7602\",\"Metadata\":{\"version\":\"v2\",\"canary\":true}}");
    reg(r, "/t_sel/svc/3", "127.0.0.1:7603");
    t = new_table("/t_sel/", ETCD_SD_POLICY_ROUND_ROBIN);
    CHECK(count(t, svc) == 4);

    sel = selector("version=v2", ETCD_SD_FAILOVER_NONE);
    pick_counts(t, svc, sel, 1000, 13, c);
    EXPECT_COUNTS(c, 0, 500, 500, 0, 0, 0);
    etcd_sd_selector_free(sel);

    sel = selector(" version = v2 , canary=false ", ETCD_SD_FAILOVER_NONE);
    pick_counts(t, svc, sel, 100, 13, c);
    EXPECT_COUNTS(c, 0, 100, 0, 0, 0, 0);
    etcd_sd_selector_free(sel);

    sel = selector("version=v3", ETCD_SD_FAILOVER_NONE);
    CHECK_RC(etcd_sd_table_pick_select(t, svc, sel, NULL, 0, buf, sizeof buf, NULL),
             ETCD_SD_NO_INSTANCE);
    CHECK(strstr(etcd_sd_last_error(), "selector") != NULL);
    etcd_sd_selector_free(sel);

    sel = selector("version=v3", ETCD_SD_FAILOVER_ALL);
    pick_counts(t, svc, sel, 400, 13, c);
    EXPECT_COUNTS(c, 100, 100, 100, 100, 0, 0);
    etcd_sd_selector_free(sel);

    sel = selector("version=v3,canary=no", ETCD_SD_FAILOVER_MISSING_KEY);
    pick_counts(t, svc, sel, 100, 13, c);
    EXPECT_COUNTS(c, 0, 0, 0, 100, 0, 0);
    /* Hash key within the selection: stable. */
    {
        size_t len = 0;
        CHECK_OK(etcd_sd_table_pick_select(t, svc, sel, "user-1", 6, buf, sizeof buf, &len));
        CHECK(strcmp(buf, "127.0.0.1:7603") == 0);
    }
    etcd_sd_selector_free(sel);

    /* No selector: a plain pick. */
    pick_counts(t, svc, NULL, 400, 13, c);
    EXPECT_COUNTS(c, 100, 100, 100, 100, 0, 0);
    etcd_sd_table_free(t);
    etcd_sd_registry_free(r);
}

static void test_zones_spill_over(void) {
    etcd_sd_registry *r = new_registry();
    etcd_sd_table *t;
    int c[11], i;
    const char *svc = "/t_zone/svc";
    reg(r, "/t_zone/svc/0", "127.0.0.1:7700 zone=a");
    reg(r, "/t_zone/svc/1", "127.0.0.1:7701 zone=a");
    reg(r, "/t_zone/svc/2", "127.0.0.1:7702 zone=b");
    reg(r, "/t_zone/svc/3", "127.0.0.1:7703 zone=b");
    /* The caller's zone from the environment when the table is made. */
    CHECK(setenv("ETCD_SD_ZONE", "a", 1) == 0);
    t = new_table("/t_zone/", ETCD_SD_POLICY_ROUND_ROBIN);
    CHECK(unsetenv("ETCD_SD_ZONE") == 0);
    pick_counts(t, svc, NULL, 400, 13, c);
    EXPECT_COUNTS(c, 200, 200, 0, 0, 0, 0);
    CHECK_INVALID(etcd_sd_table_set_locality(t, "a", 101), "min_healthy_percent");

    /* One of the two local instances drains: 50 % healthy is not under 50 %: stay local. */
    reg(r, "/t_zone/svc/0", "127.0.0.1:7700 zone=a draining=true");
    POLL_UNTIL(draining_at(t, svc, 0), bound(5000));
    pick_counts(t, svc, NULL, 100, 13, c);
    EXPECT_COUNTS(c, 0, 100, 0, 0, 0, 0);
    /* A 60 % threshold: spill over to every zone's non-draining instances. */
    CHECK_OK(etcd_sd_table_set_locality(t, "a", 60));
    pick_counts(t, svc, NULL, 300, 13, c);
    EXPECT_COUNTS(c, 0, 100, 100, 100, 0, 0);
    /* Back to 50 %, and the other local instance ejected: no healthy local instance. */
    CHECK_OK(etcd_sd_table_set_locality(t, "a", 50));
    CHECK_OK(etcd_sd_table_set_ejection(t, 5, 600000, 600000, 50));
    for (i = 0; i < 5; i++) CHECK_OK(etcd_sd_table_report(t, svc, "127.0.0.1:7701", false));
    /* Every zone's candidates 1, 2, 3; the ejected 1's turn goes to the next (2). */
    pick_counts(t, svc, NULL, 300, 13, c);
    EXPECT_COUNTS(c, 0, 0, 200, 100, 0, 0);
    /* A zone without instances, or no zone: every zone (the ejected one still skipped). */
    CHECK_OK(etcd_sd_table_set_locality(t, "c", 50));
    pick_counts(t, svc, NULL, 300, 13, c);
    EXPECT_COUNTS(c, 0, 0, 200, 100, 0, 0);
    CHECK_OK(etcd_sd_table_set_locality(t, NULL, 50));
    pick_counts(t, svc, NULL, 300, 13, c);
    EXPECT_COUNTS(c, 0, 0, 200, 100, 0, 0);
    /* Zone b preferred: the selector and the zone together. */
    {
        etcd_sd_selector *sel = selector("zone=b", ETCD_SD_FAILOVER_NONE);
        CHECK_OK(etcd_sd_table_set_locality(t, "b", 50));
        reg(r, "/t_zone/svc/4", "127.0.0.1:7704 zone=a");
        wait_count(t, svc, 5);
        pick_counts(t, svc, sel, 200, 13, c);
        EXPECT_COUNTS(c, 0, 0, 100, 100, 0, 0);
        etcd_sd_selector_free(sel);
    }
    etcd_sd_table_free(t);
    etcd_sd_registry_free(r);
}

/* Whether `n` picks are spread exactly evenly over instances 0..k-1. */
static bool even(const etcd_sd_table *t, const char *svc, int n, int k) {
    int c[11], i;
    pick_counts(t, svc, NULL, n, 13, c);
    for (i = 0; i < k; i++)
        if (c[i] != n / k) return false;
    return true;
}

static void test_slow_start(void) {
    etcd_sd_registry *r = new_registry();
    etcd_sd_table *t, *w;
    int c[11];
    const char *svc = "/t_slow/svc";
    reg(r, "/t_slow/svc/0", "127.0.0.1:7800");
    reg(r, "/t_slow/svc/1", "127.0.0.1:7801");
    reg(r, "/t_slow/svc/2", "127.0.0.1:7802");
    t = new_table("/t_slow/", ETCD_SD_POLICY_ROUND_ROBIN);
    CHECK_INVALID(etcd_sd_table_set_slow_start(t, 1000, 101), "floor_percent");
    /* A 1 h window from 10 %: for the next 6 minutes a new instance is at the floor. */
    CHECK_OK(etcd_sd_table_set_slow_start(t, 3600000, 10));
    /* The first listing is never ramped. */
    pick_counts(t, svc, NULL, 300, 13, c);
    EXPECT_COUNTS(c, 100, 100, 100, 0, 0, 0);
    reg(r, "/t_slow/svc/3", "127.0.0.1:7803");
    wait_count(t, svc, 4);
    /* 1000 turns each; the new one takes 10 % of its turns, the rest go to the next (0). */
    pick_counts(t, svc, NULL, 4000, 13, c);
    EXPECT_COUNTS(c, 1900, 1000, 1000, 100, 0, 0);
    /* A 1 ms window: over as soon as 1 ms has passed since the table saw it. */
    CHECK_OK(etcd_sd_table_set_slow_start(t, 1, 10));
    POLL_UNTIL(even(t, svc, 400, 4), bound(5000));
    CHECK(even(t, svc, 4000, 4));
    etcd_sd_table_free(t);

    /* On by default for weighted round robin (30 s from 10 %). */
    reg(r, "/t_sloww/svc/0", "127.0.0.1:7810 weight=3");
    w = new_table("/t_sloww/", ETCD_SD_POLICY_WEIGHTED_ROUND_ROBIN);
    reg(r, "/t_sloww/svc/1", "127.0.0.1:7811 weight=1");
    wait_count(w, "/t_sloww/svc", 2);
    pick_counts(w, "/t_sloww/svc", NULL, 4000, 13, c);
    /* Full share would be 1000; within the first few seconds it is about 100. */
    CHECK_MSG(c[0] + c[1] == 4000 && c[1] >= 100 && c[1] < 500, "%d %d", c[0], c[1]);
    CHECK_OK(etcd_sd_table_set_slow_start(w, 0, 10)); /* off */
    pick_counts(w, "/t_sloww/svc", NULL, 4000, 13, c);
    EXPECT_COUNTS(c, 3000, 1000, 0, 0, 0, 0);
    etcd_sd_table_free(w);
    etcd_sd_registry_free(r);
}

int main(void) {
    static const test_case cases[] = {
        {"invalid_arguments", test_invalid_arguments},
        {"round_robin_even", test_round_robin_even},
        {"buffer_and_snapshot", test_buffer_and_snapshot},
        {"weighted", test_weighted},
        {"consistent_hash", test_consistent_hash},
        {"ejection_and_readmission", test_ejection_and_readmission},
        {"half_ejected_cap", test_half_ejected_cap},
        {"changed_and_declared", test_changed_and_declared},
        {"threads_and_churn", test_threads_and_churn},
        {"metadata_and_drain", test_metadata_and_drain},
        {"selector_failover", test_selector_failover},
        {"zones_spill_over", test_zones_spill_over},
        {"slow_start", test_slow_start},
    };
    test_begin();
    endpoints = need_env("ETCD_SD_TEST_ENDPOINTS");
    printf("etcd at %s%s\n", endpoints, slow ? " (slow mode: relaxed time bounds)" : "");
    return run_cases(cases, sizeof cases / sizeof cases[0]);
}
