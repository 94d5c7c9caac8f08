/* The general client C ABI (etcd_sd_client, etcd_sd_kvs, etcd_sd_keepalive, etcd_sd_watch)
 * and the stats structs, against a real etcd (started by tests/with_etcd.py).
 *
 * Environment: ETCD_SD_TEST_ENDPOINTS (required), ETCD_SD_TEST_SLOW=1 (valgrind),
 * ETCD_SD_TEST_ONLY=name, ETCDCTL (for the external revoke).
 * C99 + POSIX; the harness is test_util.h. */
#include "test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *endpoints;

static etcd_sd_client *new_client(void) { return test_client_new(endpoints); }

static void put(etcd_sd_client *c, const char *k, const char *v, int64_t lease) {
    CHECK_OK(etcd_sd_client_put(c, k, v, strlen(v), lease, ETCD_SD_PUT_ALWAYS, NULL));
}

/* The value of `k`, "" when missing, into buf. */
static const char *value_of(etcd_sd_client *c, const char *k, char *buf, size_t cap, int64_t *lease) {
    etcd_sd_kvs *r = NULL;
    etcd_sd_kv kv;
    CHECK_OK(etcd_sd_client_get(c, k, &r));
    buf[0] = '\0';
    if (etcd_sd_kvs_at(r, 0, &kv)) {
        copy_str(buf, cap, kv.value, kv.value_len);
        if (lease) *lease = kv.lease;
    }
    etcd_sd_kvs_free(r);
    return buf;
}

static void test_kv(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_kvs *r = NULL;
    etcd_sd_kv kv;
    char buf[64];
    size_t i;

    put(c, "/ck/a", "1", 0);
    CHECK_OK(etcd_sd_client_put(c, "/ck/a", "2", 1, 0, ETCD_SD_PUT_ALWAYS, &r));
    CHECK(etcd_sd_kvs_len(r) == 1 && etcd_sd_kvs_revision(r) > 0);
    CHECK(etcd_sd_kvs_at(r, 0, &kv) && strcmp(kv.value, "1") == 0 && kv.value_len == 1);
    CHECK(!etcd_sd_kvs_at(r, 1, &kv));
    etcd_sd_kvs_free(r);

    CHECK(strcmp(value_of(c, "/ck/a", buf, sizeof buf, NULL), "2") == 0);
    r = NULL;
    CHECK_RC(etcd_sd_client_put(c, "/ck/a", "3", 1, 0, ETCD_SD_PUT_IF_ABSENT, &r), ETCD_SD_EXISTS);
    CHECK(r == NULL); /* out-params only on success */
    CHECK_RC(etcd_sd_client_put(c, "/ck/none", "3", 1, 0, ETCD_SD_PUT_IF_PRESENT, NULL),
             ETCD_SD_NOT_FOUND);
    CHECK(strcmp(etcd_sd_result_name(ETCD_SD_NOT_FOUND), "ETCD_SD_NOT_FOUND") == 0);
    CHECK_OK(etcd_sd_client_put(c, "/ck/b", "x", 1, 0, ETCD_SD_PUT_IF_ABSENT, NULL));
    /* Binary values with NULs. */
    CHECK_OK(etcd_sd_client_put(c, "/ck/bin", "a\0b", 3, 0, ETCD_SD_PUT_ALWAYS, NULL));
    CHECK_OK(etcd_sd_client_get(c, "/ck/bin", &r));
    CHECK(etcd_sd_kvs_at(r, 0, &kv) && kv.value_len == 3 && memcmp(kv.value, "a\0b", 3) == 0);
    CHECK(kv.version == 1 && kv.create_revision == kv.mod_revision);
    etcd_sd_kvs_free(r);

    for (i = 0; i < 7; i++) {
        char k[32];
        snprintf(k, sizeof k, "/ck/dir/%02u", (unsigned)i);
        put(c, k, "v", 0);
    }
    CHECK_OK(etcd_sd_client_range(c, "/ck/dir/", 0, &r));
    CHECK(etcd_sd_kvs_len(r) == 7);
    CHECK(etcd_sd_kvs_at(r, 6, &kv) && strcmp(kv.key, "/ck/dir/06") == 0 && kv.key_len == 10);
    etcd_sd_kvs_free(r);
    CHECK_OK(etcd_sd_client_range(c, "/ck/dir/", 3, &r));
    CHECK(etcd_sd_kvs_len(r) == 3);
    etcd_sd_kvs_free(r);

    CHECK_OK(etcd_sd_client_delete(c, "/ck/dir/", true, &r));
    CHECK(etcd_sd_kvs_len(r) == 7);
    etcd_sd_kvs_free(r);
    CHECK_OK(etcd_sd_client_delete(c, "/ck/dir/", true, NULL));
    CHECK_OK(etcd_sd_client_get(c, "/ck/dir/00", &r));
    CHECK(etcd_sd_kvs_len(r) == 0);
    etcd_sd_kvs_free(r);

    /* Bad input: clear errors, never a crash. */
    CHECK_INVALID(etcd_sd_client_put(NULL, "/k", "v", 1, 0, ETCD_SD_PUT_ALWAYS, NULL), "client");
    CHECK_INVALID(etcd_sd_client_put(c, NULL, "v", 1, 0, ETCD_SD_PUT_ALWAYS, NULL), "key");
    CHECK_INVALID(etcd_sd_client_put(c, "", "v", 1, 0, ETCD_SD_PUT_ALWAYS, NULL), "key");
    CHECK_INVALID(etcd_sd_client_put(c, "/k", NULL, 1, 0, ETCD_SD_PUT_ALWAYS, NULL), "value");
    CHECK_INVALID(etcd_sd_client_get(c, "/k\xff", &r), "UTF-8");
    CHECK_INVALID(etcd_sd_client_get(c, "/k", NULL), "out");
    CHECK_INVALID(etcd_sd_client_new(NULL, NULL), "out");
    CHECK(etcd_sd_kvs_len(NULL) == 0 && etcd_sd_kvs_revision(NULL) == 0);
    CHECK(!etcd_sd_kvs_at(NULL, 0, &kv));
    etcd_sd_kvs_free(NULL);
    etcd_sd_client_free(NULL);
    etcd_sd_client_free(c);
}

static void test_leases(void) {
    etcd_sd_client *c = new_client();
    int64_t id = 0, left = 0, granted = 0, lease = 0;
    char buf[16];
    CHECK_OK(etcd_sd_client_lease_grant(c, 20, &id));
    CHECK(id != 0);
    CHECK_OK(etcd_sd_client_lease_ttl(c, id, &left, &granted));
    CHECK(granted == 20 && left > 15);
    put(c, "/cl/k", "v", id);
    CHECK(strcmp(value_of(c, "/cl/k", buf, sizeof buf, &lease), "v") == 0 && lease == id);
    CHECK_OK(etcd_sd_client_lease_revoke(c, id));
    CHECK(strcmp(value_of(c, "/cl/k", buf, sizeof buf, NULL), "") == 0);
    CHECK_RC(etcd_sd_client_lease_revoke(c, id), ETCD_SD_NOT_FOUND);
    CHECK_OK(etcd_sd_client_lease_ttl(c, id, &left, NULL));
    CHECK(left == -1);
    CHECK_INVALID(etcd_sd_client_lease_grant(c, 0, &id), "ttl");
    CHECK_INVALID(etcd_sd_client_lease_grant(c, 5, NULL), "out_id");
    etcd_sd_client_free(c);
}

/* The whole replies (etcd_sd_coord.h): etcd's granted TTL and revision, a conditional put's
 * refusal with the value found, and bad out-structs refused before anything is done. */
static void test_replies(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_lease_info info = {sizeof info, 0, 0, 0, 0};
    etcd_sd_lease_info tiny = {sizeof(size_t) - 1, 0, 0, 0, 0};
    etcd_sd_put_info put = {sizeof put, false, 0, 0};
    etcd_sd_kvs *found = NULL;
    etcd_sd_kv kv;
    int64_t revision = 0;
    size_t count = 0;

    CHECK_OK(etcd_sd_client_lease_grant_info(c, 1, &info));
    CHECK(info.size == sizeof info && info.id != 0);
    CHECK(info.ttl >= 2 && info.granted_ttl == info.ttl && info.revision > 0); /* etcd's minimum */
    CHECK_OK(etcd_sd_client_put_info(c, "/cr/k", 5, "v", 1, info.id, ETCD_SD_PUT_IF_ABSENT, &put,
                                     &found));
    CHECK(put.applied && put.lease == info.id && put.revision > info.revision);
    CHECK(etcd_sd_kvs_len(found) == 0);
    etcd_sd_kvs_free(found);
    found = NULL;
    CHECK_OK(etcd_sd_client_put_info(c, "/cr/k", 5, "w", 1, 0, ETCD_SD_PUT_IF_ABSENT, &put, &found));
    CHECK(!put.applied && etcd_sd_kvs_len(found) == 1);
    CHECK(etcd_sd_kvs_at(found, 0, &kv) && kv.value_len == 1 && kv.value[0] == 'v');
    etcd_sd_kvs_free(found);
    CHECK_OK(etcd_sd_client_put_info(c, "/cr/none", 8, "w", 1, 0, ETCD_SD_PUT_IF_PRESENT, &put,
                                     NULL));
    CHECK(!put.applied);
    CHECK_OK(etcd_sd_client_leases_info(c, NULL, 0, &count, &revision));
    CHECK(count >= 1 && revision >= put.revision);
    CHECK_OK(etcd_sd_client_lease_ttl_info(c, info.id, &info));
    CHECK(info.granted_ttl >= 2 && info.ttl > 0);
    CHECK_INVALID(etcd_sd_client_lease_revoke_info(c, info.id, NULL), "out");
    CHECK_INVALID(etcd_sd_client_lease_revoke_info(c, info.id, &tiny), "size");
    CHECK_OK(etcd_sd_client_lease_ttl_info(c, info.id, &info)); /* not revoked by the refusals */
    CHECK(info.ttl > 0);
    CHECK_OK(etcd_sd_client_lease_revoke_info(c, info.id, &info));
    CHECK(info.revision > put.revision); /* the revoke deleted /cr/k */
    CHECK_RC(etcd_sd_client_put_info(c, "/cr/k", 5, "v", 1, info.id, ETCD_SD_PUT_ALWAYS, &put, NULL),
             ETCD_SD_NOT_FOUND);
    CHECK_INVALID(etcd_sd_client_put_info(c, "/cr/k", 5, "v", 1, 0, 7, &put, NULL), "mode");
    etcd_sd_client_free(c);
}

static void test_keepalive_recovers(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_keepalive *ka = NULL;
    const char *ctl = getenv("ETCDCTL");
    int64_t old, now, lease = 0;
    char cmd[512], buf[16];

    CHECK_OK(etcd_sd_keepalive_new(c, 2, 0, NULL, NULL, &ka));
    old = etcd_sd_keepalive_lease(ka);
    CHECK(old != 0);
    CHECK_OK(etcd_sd_keepalive_check(ka));
    put(c, "/cka/k", "v", old);
    sleep_ms(3000); /* past the TTL: renewed (the scenario, not synchronisation) */
    CHECK(strcmp(value_of(c, "/cka/k", buf, sizeof buf, NULL), "v") == 0);
    if (!ctl) {
        printf("  (ETCDCTL unset: external revoke skipped)\n");
    } else {
        snprintf(cmd, sizeof cmd, "%s --endpoints=%s lease revoke %llx >/dev/null", ctl, endpoints,
                 (unsigned long long)old);
        CHECK(system(cmd) == 0);
        /* recovered: a new lease, the key back */
        WAIT_UNTIL((now = etcd_sd_keepalive_lease(ka)) != old &&
                       strcmp(value_of(c, "/cka/k", buf, sizeof buf, &lease), "v") == 0,
                   bound(5000));
        CHECK(lease == now);
        /* A put naming the old id goes under the new one. */
        put(c, "/cka/k2", "w", old);
        value_of(c, "/cka/k2", buf, sizeof buf, &lease);
        CHECK(lease == now);
    }
    etcd_sd_keepalive_free(ka);
    CHECK(etcd_sd_keepalive_lease(NULL) == 0);
    CHECK_INVALID(etcd_sd_keepalive_check(NULL), "keepalive");
    CHECK_INVALID(etcd_sd_keepalive_new(c, 0, 0, NULL, NULL, &ka), "ttl");
    etcd_sd_keepalive_free(NULL);
    etcd_sd_client_free(c);
}

/* ---- watch ---- */

typedef struct {
    pthread_mutex_t mu;
    int puts, dels, prev_ok, batches;
    int64_t last_revision;
    char last_key[64];
} watch_log;

static void on_events(void *ud, const etcd_sd_watch_event *ev, size_t n, int64_t revision,
                      int64_t compact_revision) {
    watch_log *w = ud;
    size_t i;
    (void)compact_revision;
    pthread_mutex_lock(&w->mu);
    w->batches++;
    w->last_revision = revision;
    for (i = 0; i < n; i++) {
        if (ev[i].type == ETCD_SD_WATCH_PUT)
            w->puts++;
        else
            w->dels++;
        if (ev[i].has_prev_kv && ev[i].prev_kv.value_len > 0) w->prev_ok++;
        copy_str(w->last_key, sizeof w->last_key, ev[i].kv.key, ev[i].kv.key_len);
    }
    pthread_mutex_unlock(&w->mu);
}

static int count(watch_log *w, int *field) {
    int v;
    pthread_mutex_lock(&w->mu);
    v = *field;
    pthread_mutex_unlock(&w->mu);
    return v;
}

static void test_watch(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_watch *wh = NULL;
    etcd_sd_kvs *r = NULL;
    etcd_sd_discovery_stats st;
    watch_log w;

    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.mu, NULL);
    put(c, "/cw/a", "1", 0);
    /* list, then a change, then the watch: the change is not lost */
    CHECK_OK(etcd_sd_client_range(c, "/cw/", 0, &r));
    etcd_sd_kvs_free(r);
    put(c, "/cw/b", "2", 0);
    CHECK_OK(etcd_sd_watch_new(c, "/cw/", true, 0, on_events, &w, &wh));
    put(c, "/cw/a", "11", 0);
    CHECK_OK(etcd_sd_client_delete(c, "/cw/b", false, NULL));
    WAIT_UNTIL(count(&w, &w.puts) >= 2 && count(&w, &w.dels) >= 1, bound(5000));
    CHECK(count(&w, &w.prev_ok) == 2); /* the put over "1", the delete of "2" */
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    CHECK_OK(etcd_sd_watch_stats_get(wh, &st));
    CHECK(st.size == sizeof st && st.events == 3 && st.revision >= w.last_revision);
    CHECK(strncmp(st.member, "http", 4) == 0 && st.ms_since_last_event >= 0);
    etcd_sd_watch_free(wh);

    CHECK_INVALID(etcd_sd_watch_new(c, "", true, 0, on_events, &w, &wh), "key");
    CHECK_INVALID(etcd_sd_watch_new(c, "/k", true, -1, on_events, &w, &wh), "revision");
    CHECK_INVALID(etcd_sd_watch_new(NULL, "/k", true, 0, on_events, &w, &wh), "client");
    etcd_sd_watch_free(NULL);
    pthread_mutex_destroy(&w.mu);
    etcd_sd_client_free(c);
}

static void test_stats(void) {
    etcd_sd_registry *a = NULL, *b = NULL;
    etcd_sd_registry_stats rs;
    etcd_sd_process_stats ps;

    CHECK_OK(etcd_sd_registry_new(endpoints, 3, &a));
    CHECK_OK(etcd_sd_registry_new(endpoints, 3, &b));
    CHECK_OK(etcd_sd_registry_register(a, "/cs/a", "1"));
    CHECK_OK(etcd_sd_registry_register(a, "/cs/b", "1"));
    memset(&rs, 0, sizeof rs);
    rs.size = sizeof rs;
    CHECK_OK(etcd_sd_registry_stats_get(a, &rs));
    CHECK(rs.size == sizeof rs && rs.keys == 2 && rs.lease_id != 0 && rs.lease_ttl == 3);
    CHECK(rs.shared_lease && rs.lease_losses == 0 && rs.member[0] != '\0');
    /* known after the first renewal at the latest */
    WAIT_UNTIL(etcd_sd_registry_stats_get(a, &rs) == ETCD_SD_OK && rs.lease_ttl_left_ms >= 0,
               bound(3000));
    CHECK(rs.lease_ttl_left_ms <= 3000);
    /* An older caller with a smaller struct gets only what fits. */
    memset(&rs, 0x7f, sizeof rs);
    rs.size = sizeof(size_t) + sizeof(int64_t);
    CHECK_OK(etcd_sd_registry_stats_get(b, &rs));
    CHECK(rs.size == sizeof(size_t) + sizeof(int64_t) && rs.lease_id != 0);
    CHECK(rs.lease_ttl == 0x7f7f7f7f7f7f7f7fLL); /* untouched */
    rs.size = 1;
    CHECK_INVALID(etcd_sd_registry_stats_get(b, &rs), "size");
    CHECK_INVALID(etcd_sd_registry_stats_get(b, NULL), "out");

    ps.size = sizeof ps;
    CHECK_OK(etcd_sd_process_stats_get(&ps));
    CHECK(ps.connections >= 1 && ps.members_connected >= 1 && ps.leases_kept >= 1);
    etcd_sd_registry_free(a);
    etcd_sd_registry_free(b);
}

/* Enums taken from C are plain integers: a value outside the enum is refused with a message
 * naming it, never undefined behaviour (issue 17). */
static void test_enums_from_c(void) {
    etcd_sd_client *c = new_client();
    char buf[16];
    CHECK_OK(etcd_sd_client_delete(c, "/ce/k", false, NULL));
    CHECK_INVALID(etcd_sd_client_put(c, "/ce/k", "v", 1, 0, 99, NULL), "put mode 99");
    CHECK_INVALID(etcd_sd_client_put(c, "/ce/k", "v", 1, 0, 3, NULL), "put mode 3");
    CHECK_INVALID(etcd_sd_client_put(c, "/ce/k", "v", 1, 0, 0x80000000u, NULL), "put mode");
    CHECK(strcmp(value_of(c, "/ce/k", buf, sizeof buf, NULL), "") == 0); /* nothing was put */
    CHECK_OK(etcd_sd_client_put(c, "/ce/k", "v", 1, 0, ETCD_SD_PUT_IF_ABSENT, NULL));
    CHECK(strcmp(value_of(c, "/ce/k", buf, sizeof buf, NULL), "v") == 0);
    CHECK_INVALID(etcd_sd_set_log_level(99), "log level 99");
    CHECK_INVALID(etcd_sd_set_log_level(5), "log level 5");
    CHECK_INVALID(etcd_sd_set_log_level(0xffffffffu), "log level");
    CHECK_OK(etcd_sd_set_log_level(ETCD_SD_LOG_WARN));
    CHECK_OK(etcd_sd_client_delete(c, "/ce/k", false, NULL));
    etcd_sd_client_free(c);
}

int main(void) {
    static const test_case cases[] = {
        {"kv", test_kv},
        {"leases", test_leases},
        {"replies", test_replies},
        {"keepalive_recovers", test_keepalive_recovers},
        {"watch", test_watch},
        {"stats", test_stats},
        {"enums_from_c", test_enums_from_c},
    };

    test_begin();
    endpoints = need_env("ETCD_SD_TEST_ENDPOINTS");
    return run_cases(cases, sizeof cases / sizeof cases[0]);
}
