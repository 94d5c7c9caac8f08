/* The coordination C ABI against a real etcd (started by tests/with_etcd.py): transactions
 * (etcd_sd_txn, etcd_sd_client_txn, etcd_sd_txn_response), reads at a revision
 * (etcd_sd_client_get_at/_range_at), locks (etcd_sd_lock, etcd_sd_client_unlock), elections
 * (etcd_sd_election, etcd_sd_client_leader), members (etcd_sd_client_members/_member_add/
 * _member_remove), etcd_sd_client_leases and etcd_sd_keepalive_revoke.
 *
 * The rule under test: a lock or a leadership is never taken again behind its owner's back.
 * On its loss on_lost is called once and _check/_unlock/_proclaim/_resign say ETCD_SD_LOST.
 *
 * Environment: ETCD_SD_TEST_ENDPOINTS (required), ETCD_SD_TEST_SLOW=1 (valgrind),
 * ETCD_SD_TEST_ONLY=name, ETCDCTL (compaction; the case is skipped without it).
 * C99 + POSIX; the harness is test_util.h. Conditions are waited for with a bound
 * (wait_until), never with a sleep standing in for synchronisation. */
#include "test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *endpoints;

static etcd_sd_client *new_client(void) { return test_client_new(endpoints); }

static int64_t put(etcd_sd_client *c, const char *k, const char *v, int64_t lease) {
    etcd_sd_kvs *prev = NULL;
    int64_t rev;
    CHECK_OK(etcd_sd_client_put(c, k, v, strlen(v), lease, ETCD_SD_PUT_ALWAYS, &prev));
    rev = etcd_sd_kvs_revision(prev);
    etcd_sd_kvs_free(prev);
    return rev; /* the revision the put made */
}

/* Whether `k` exists; its entry into *out when it does. */
static int get_kv(etcd_sd_client *c, const char *k, etcd_sd_kv *out, etcd_sd_kvs **keep) {
    etcd_sd_kvs *r = NULL;
    etcd_sd_kv kv;
    int found;
    CHECK_OK(etcd_sd_client_get(c, k, &r));
    found = etcd_sd_kvs_at(r, 0, &kv);
    if (found && out) *out = kv;
    if (keep)
        *keep = r;
    else
        etcd_sd_kvs_free(r);
    return found;
}

static int exists(etcd_sd_client *c, const char *k) { return get_kv(c, k, NULL, NULL); }

/* ---------------------------------------------------------------------------------------- */
/* the loss recorder: user_data of on_lost in these tests */

typedef struct {
    pthread_mutex_t mu;
    int calls;
    int result;
    char message[256];
} lost_log;

static void lost_init(lost_log *l) {
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
}

static void on_lost(void *ud, int result, const char *message) {
    lost_log *l = ud;
    pthread_mutex_lock(&l->mu);
    l->calls++;
    l->result = result;
    copy_str(l->message, sizeof l->message, message, strlen(message));
    pthread_mutex_unlock(&l->mu);
}

static int lost_calls(lost_log *l) {
    int n;
    pthread_mutex_lock(&l->mu);
    n = l->calls;
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* transactions */

/* Runs `t`; returns whether its compares held. */
static int run_txn(etcd_sd_client *c, etcd_sd_txn *t) {
    etcd_sd_txn_response *r = NULL;
    int ok;
    CHECK_OK(etcd_sd_client_txn(c, t, &r));
    ok = etcd_sd_txn_response_succeeded(r);
    CHECK(etcd_sd_txn_response_revision(r) > 0);
    etcd_sd_txn_response_free(r);
    return ok;
}

/* A transaction with one value compare; whether it held. */
static int value_holds(etcd_sd_client *c, const char *key, const char *end, uint32_t op,
                       const char *value) {
    etcd_sd_txn *t = NULL;
    int ok;
    CHECK_OK(etcd_sd_txn_new(&t));
    CHECK_OK(etcd_sd_txn_compare_value(t, key, end, op, value, strlen(value)));
    ok = run_txn(c, t);
    etcd_sd_txn_free(t);
    return ok;
}

/* A transaction with one numeric compare; whether it held. */
static int number_holds(etcd_sd_client *c, const char *key, const char *end, uint32_t target,
                        uint32_t op, int64_t n) {
    etcd_sd_txn *t = NULL;
    int ok;
    CHECK_OK(etcd_sd_txn_new(&t));
    CHECK_OK(etcd_sd_txn_compare_number(t, key, end, target, op, n));
    ok = run_txn(c, t);
    etcd_sd_txn_free(t);
    return ok;
}

static void test_txn_compares(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_kv kv;
    int64_t lease = 0, create, mod;

    CHECK_OK(etcd_sd_client_delete(c, "/ct/", true, NULL));
    put(c, "/ct/a", "5", 0);
    put(c, "/ct/a", "5", 0); /* version 2 */
    CHECK(get_kv(c, "/ct/a", &kv, NULL));
    create = kv.create_revision;
    mod = kv.mod_revision;
    CHECK(kv.version == 2 && mod > create);

    /* value: every op, and a missing key makes a value compare fail */
    CHECK(value_holds(c, "/ct/a", NULL, ETCD_SD_CMP_EQUAL, "5"));
    CHECK(!value_holds(c, "/ct/a", NULL, ETCD_SD_CMP_EQUAL, "6"));
    CHECK(value_holds(c, "/ct/a", NULL, ETCD_SD_CMP_NOT_EQUAL, "6"));
    CHECK(!value_holds(c, "/ct/a", NULL, ETCD_SD_CMP_NOT_EQUAL, "5"));
    CHECK(value_holds(c, "/ct/a", NULL, ETCD_SD_CMP_GREATER, "4"));
    CHECK(!value_holds(c, "/ct/a", NULL, ETCD_SD_CMP_GREATER, "5"));
    CHECK(value_holds(c, "/ct/a", NULL, ETCD_SD_CMP_LESS, "6"));
    CHECK(!value_holds(c, "/ct/a", NULL, ETCD_SD_CMP_LESS, "5"));
    CHECK(!value_holds(c, "/ct/none", NULL, ETCD_SD_CMP_EQUAL, ""));
    CHECK(value_holds(c, "/ct/a", "", ETCD_SD_CMP_EQUAL, "5")); /* "" range end: one key */

    /* version, create revision, mod revision */
    CHECK(number_holds(c, "/ct/a", NULL, ETCD_SD_CMP_VERSION, ETCD_SD_CMP_EQUAL, 2));
    CHECK(number_holds(c, "/ct/a", NULL, ETCD_SD_CMP_VERSION, ETCD_SD_CMP_GREATER, 1));
    CHECK(!number_holds(c, "/ct/a", NULL, ETCD_SD_CMP_VERSION, ETCD_SD_CMP_LESS, 2));
    CHECK(number_holds(c, "/ct/none", NULL, ETCD_SD_CMP_VERSION, ETCD_SD_CMP_EQUAL, 0));
    CHECK(number_holds(c, "/ct/a", NULL, ETCD_SD_CMP_CREATE_REVISION, ETCD_SD_CMP_EQUAL, create));
    CHECK(!number_holds(c, "/ct/a", NULL, ETCD_SD_CMP_CREATE_REVISION, ETCD_SD_CMP_NOT_EQUAL,
                        create));
    CHECK(number_holds(c, "/ct/none", NULL, ETCD_SD_CMP_CREATE_REVISION, ETCD_SD_CMP_EQUAL, 0));
    CHECK(number_holds(c, "/ct/a", NULL, ETCD_SD_CMP_MOD_REVISION, ETCD_SD_CMP_EQUAL, mod));
    CHECK(number_holds(c, "/ct/a", NULL, ETCD_SD_CMP_MOD_REVISION, ETCD_SD_CMP_GREATER, create));
    CHECK(!number_holds(c, "/ct/a", NULL, ETCD_SD_CMP_MOD_REVISION, ETCD_SD_CMP_LESS, mod));

    /* lease */
    CHECK_OK(etcd_sd_client_lease_grant(c, 30, &lease));
    put(c, "/ct/l", "x", lease);
    CHECK(number_holds(c, "/ct/l", NULL, ETCD_SD_CMP_LEASE, ETCD_SD_CMP_EQUAL, lease));
    CHECK(number_holds(c, "/ct/a", NULL, ETCD_SD_CMP_LEASE, ETCD_SD_CMP_EQUAL, 0));
    CHECK(!number_holds(c, "/ct/a", NULL, ETCD_SD_CMP_LEASE, ETCD_SD_CMP_EQUAL, lease));

    /* a compare over a range holds only when it holds for every key in it */
    put(c, "/ct/r/1", "a", 0);
    put(c, "/ct/r/2", "a", 0);
    CHECK(value_holds(c, "/ct/r/", "/ct/r0", ETCD_SD_CMP_EQUAL, "a"));
    CHECK(number_holds(c, "/ct/r/", "/ct/r0", ETCD_SD_CMP_VERSION, ETCD_SD_CMP_EQUAL, 1));
    put(c, "/ct/r/2", "b", 0);
    CHECK(!value_holds(c, "/ct/r/", "/ct/r0", ETCD_SD_CMP_EQUAL, "a"));
    CHECK(!number_holds(c, "/ct/r/", "/ct/r0", ETCD_SD_CMP_VERSION, ETCD_SD_CMP_EQUAL, 1));
    CHECK(value_holds(c, "/ct/r/1", NULL, ETCD_SD_CMP_EQUAL, "a")); /* the key alone */

    CHECK_OK(etcd_sd_client_lease_revoke(c, lease));
    etcd_sd_client_free(c);
}

/* The kv at `index` of operation `op` of `r`. */
static etcd_sd_kv op_kv(const etcd_sd_txn_response *r, size_t op, size_t index) {
    etcd_sd_kv kv;
    memset(&kv, 0, sizeof kv);
    CHECK(etcd_sd_kvs_at(etcd_sd_txn_response_kvs(r, op), index, &kv));
    return kv;
}

static void test_txn_ops(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_txn *t = NULL, *inner = NULL;
    etcd_sd_txn_response *r = NULL;
    const etcd_sd_txn_response *n;
    etcd_sd_kv kv;
    int64_t rev_before;

    CHECK_OK(etcd_sd_client_delete(c, "/cto/", true, NULL));
    put(c, "/cto/a", "1", 0);
    put(c, "/cto/b", "2", 0);
    rev_before = put(c, "/cto/c", "3", 0);

    /* success branch: put (prev_kv), range (limit, keys_only), delete (prev_kv),
     * range_from, and a nested transaction; the failure branch is not run */
    CHECK_OK(etcd_sd_txn_new(&t));
    CHECK_OK(etcd_sd_txn_compare_value(t, "/cto/a", NULL, ETCD_SD_CMP_EQUAL, "1", 1));
    CHECK_OK(etcd_sd_txn_put(t, ETCD_SD_TXN_SUCCESS, "/cto/a", "10", 2, 0, true));
    CHECK_OK(etcd_sd_txn_range(t, ETCD_SD_TXN_SUCCESS, "/cto/", "/cto0", 2, 0, false));
    CHECK_OK(etcd_sd_txn_range(t, ETCD_SD_TXN_SUCCESS, "/cto/", "/cto0", 0, 0, true));
    CHECK_OK(etcd_sd_txn_delete(t, ETCD_SD_TXN_SUCCESS, "/cto/c", NULL, true));
    CHECK_OK(etcd_sd_txn_range_from(t, ETCD_SD_TXN_SUCCESS, "/cto/b", 1, 0));
    CHECK_OK(etcd_sd_txn_new(&inner));
    CHECK_OK(etcd_sd_txn_compare_number(inner, "/cto/b", NULL, ETCD_SD_CMP_VERSION,
                                        ETCD_SD_CMP_EQUAL, 1));
    CHECK_OK(etcd_sd_txn_put(inner, ETCD_SD_TXN_SUCCESS, "/cto/n", "nested", 6, 0, false));
    CHECK_OK(etcd_sd_txn_range(inner, ETCD_SD_TXN_FAILURE, "/cto/b", NULL, 0, 0, false));
    CHECK_OK(etcd_sd_txn_nest(t, ETCD_SD_TXN_SUCCESS, inner));
    etcd_sd_txn_free(inner); /* copied by _nest */
    CHECK_OK(etcd_sd_txn_put(t, ETCD_SD_TXN_FAILURE, "/cto/fail", "x", 1, 0, false));

    CHECK_OK(etcd_sd_client_txn(c, t, &r));
    CHECK(etcd_sd_txn_response_succeeded(r));
    CHECK(etcd_sd_txn_response_revision(r) > rev_before);
    CHECK(etcd_sd_txn_response_len(r) == 6);
    CHECK(etcd_sd_txn_response_kind(r, 0) == ETCD_SD_TXN_OP_PUT);
    CHECK(etcd_sd_kvs_len(etcd_sd_txn_response_kvs(r, 0)) == 1);
    kv = op_kv(r, 0, 0);
    CHECK(strcmp(kv.key, "/cto/a") == 0 && strcmp(kv.value, "1") == 0); /* the value replaced */
    /* range with limit 2: two keys, count of every match (a: already 10, b, c) */
    CHECK(etcd_sd_txn_response_kind(r, 1) == ETCD_SD_TXN_OP_RANGE);
    CHECK(etcd_sd_kvs_len(etcd_sd_txn_response_kvs(r, 1)) == 2);
    CHECK(etcd_sd_txn_response_count(r, 1) == 3);
    kv = op_kv(r, 1, 0);
    CHECK(strcmp(kv.value, "10") == 0); /* operations see the earlier ones */
    /* keys_only: keys without values */
    CHECK(etcd_sd_kvs_len(etcd_sd_txn_response_kvs(r, 2)) == 3);
    kv = op_kv(r, 2, 1);
    CHECK(strcmp(kv.key, "/cto/b") == 0 && kv.value_len == 0);
    /* delete with prev_kv */
    CHECK(etcd_sd_txn_response_kind(r, 3) == ETCD_SD_TXN_OP_DELETE);
    CHECK(etcd_sd_txn_response_count(r, 3) == 1);
    kv = op_kv(r, 3, 0);
    CHECK(strcmp(kv.key, "/cto/c") == 0 && strcmp(kv.value, "3") == 0);
    /* range_from "/cto/b" with limit 1: /cto/b first, and more match beyond it */
    CHECK(etcd_sd_txn_response_kind(r, 4) == ETCD_SD_TXN_OP_RANGE);
    kv = op_kv(r, 4, 0);
    CHECK(strcmp(kv.key, "/cto/b") == 0 && etcd_sd_txn_response_count(r, 4) >= 1);
    /* the nested transaction: its compare held, its put ran */
    CHECK(etcd_sd_txn_response_kind(r, 5) == ETCD_SD_TXN_OP_TXN);
    CHECK(etcd_sd_kvs_len(etcd_sd_txn_response_kvs(r, 5)) == 0);
    n = etcd_sd_txn_response_nested(r, 5);
    CHECK(n != NULL && etcd_sd_txn_response_succeeded(n) && etcd_sd_txn_response_len(n) == 1);
    CHECK(etcd_sd_txn_response_kind(n, 0) == ETCD_SD_TXN_OP_PUT);
    CHECK(etcd_sd_kvs_len(etcd_sd_txn_response_kvs(n, 0)) == 0); /* no prev_kv asked */
    CHECK(etcd_sd_txn_response_nested(r, 0) == NULL);
    /* out of range */
    CHECK(etcd_sd_txn_response_kind(r, 6) == -1);
    CHECK(etcd_sd_txn_response_kvs(r, 6) == NULL);
    CHECK(etcd_sd_txn_response_count(r, 6) == 0);
    CHECK(etcd_sd_txn_response_nested(r, 6) == NULL);
    etcd_sd_txn_response_free(r);
    CHECK(exists(c, "/cto/n") && !exists(c, "/cto/c") && !exists(c, "/cto/fail"));

    /* the same transaction again (it is reusable): "/cto/a" is "10" now, so the failure
     * branch runs */
    r = NULL;
    CHECK_OK(etcd_sd_client_txn(c, t, &r));
    CHECK(!etcd_sd_txn_response_succeeded(r));
    CHECK(etcd_sd_txn_response_len(r) == 1);
    CHECK(etcd_sd_txn_response_kind(r, 0) == ETCD_SD_TXN_OP_PUT);
    etcd_sd_txn_response_free(r);
    CHECK(exists(c, "/cto/fail"));
    etcd_sd_txn_free(t);

    /* a nested transaction whose compare fails runs its own failure branch; a read-only
     * transaction at an old revision */
    CHECK_OK(etcd_sd_txn_new(&t));
    CHECK_OK(etcd_sd_txn_new(&inner));
    CHECK_OK(etcd_sd_txn_compare_number(inner, "/cto/b", NULL, ETCD_SD_CMP_VERSION,
                                        ETCD_SD_CMP_EQUAL, 7));
    CHECK_OK(etcd_sd_txn_range(inner, ETCD_SD_TXN_FAILURE, "/cto/b", NULL, 0, 0, false));
    CHECK_OK(etcd_sd_txn_nest(t, ETCD_SD_TXN_SUCCESS, inner));
    CHECK_OK(etcd_sd_txn_range(t, ETCD_SD_TXN_SUCCESS, "/cto/c", NULL, 0, rev_before, false));
    etcd_sd_txn_free(inner);
    r = NULL;
    CHECK_OK(etcd_sd_client_txn(c, t, &r));
    CHECK(etcd_sd_txn_response_succeeded(r) && etcd_sd_txn_response_len(r) == 2);
    n = etcd_sd_txn_response_nested(r, 0);
    CHECK(n != NULL && !etcd_sd_txn_response_succeeded(n));
    kv = op_kv(n, 0, 0);
    CHECK(strcmp(kv.value, "2") == 0);
    kv = op_kv(r, 1, 0); /* deleted now, there at rev_before */
    CHECK(strcmp(kv.key, "/cto/c") == 0 && strcmp(kv.value, "3") == 0);
    etcd_sd_txn_response_free(r);
    etcd_sd_txn_free(t);

    /* an empty transaction: no compare, nothing to do, succeeds */
    CHECK_OK(etcd_sd_txn_new(&t));
    CHECK(run_txn(c, t));
    /* etcd refuses a key written twice in one transaction (as malformed) */
    CHECK_OK(etcd_sd_txn_put(t, ETCD_SD_TXN_SUCCESS, "/cto/dup", "1", 1, 0, false));
    CHECK_OK(etcd_sd_txn_put(t, ETCD_SD_TXN_SUCCESS, "/cto/dup", "2", 1, 0, false));
    r = NULL;
    CHECK_INVALID(etcd_sd_client_txn(c, t, &r), "duplicate");
    CHECK(r == NULL);
    etcd_sd_txn_free(t);
    /* a put under a lease that does not exist */
    CHECK_OK(etcd_sd_txn_new(&t));
    CHECK_OK(etcd_sd_txn_put(t, ETCD_SD_TXN_SUCCESS, "/cto/l", "1", 1, 0x7eadbeef, false));
    CHECK_RC(etcd_sd_client_txn(c, t, &r), ETCD_SD_NOT_FOUND);
    etcd_sd_txn_free(t);
    etcd_sd_client_free(c);
}

static void test_txn_invalid(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_txn *t = NULL;
    etcd_sd_txn_response *r = NULL;

    CHECK_INVALID(etcd_sd_txn_new(NULL), "out");
    CHECK_OK(etcd_sd_txn_new(&t));
    CHECK_INVALID(etcd_sd_txn_compare_value(NULL, "/k", NULL, 0, "v", 1), "txn");
    CHECK_INVALID(etcd_sd_txn_compare_value(t, NULL, NULL, 0, "v", 1), "key");
    CHECK_INVALID(etcd_sd_txn_compare_value(t, "/k\xff", NULL, 0, "v", 1), "UTF-8");
    CHECK_INVALID(etcd_sd_txn_compare_value(t, "/k", "/l\xff", 0, "v", 1), "range_end");
    CHECK_INVALID(etcd_sd_txn_compare_value(t, "/k", NULL, 4, "v", 1), "op");
    CHECK_INVALID(etcd_sd_txn_compare_value(t, "/k", NULL, 0xffffffffu, "v", 1), "op");
    CHECK_INVALID(etcd_sd_txn_compare_value(t, "/k", NULL, 0, NULL, 1), "value");
    CHECK_INVALID(etcd_sd_txn_compare_number(t, "/k", NULL, 4, ETCD_SD_CMP_EQUAL, 0), "target");
    CHECK_INVALID(etcd_sd_txn_compare_number(t, "/k", NULL, ETCD_SD_CMP_VERSION, 9, 0), "op");
    CHECK_INVALID(etcd_sd_txn_compare_number(NULL, "/k", NULL, 0, 0, 0), "txn");
    CHECK_INVALID(etcd_sd_txn_put(t, 2, "/k", "v", 1, 0, false), "branch");
    CHECK_INVALID(etcd_sd_txn_put(t, ETCD_SD_TXN_SUCCESS, NULL, "v", 1, 0, false), "key");
    CHECK_INVALID(etcd_sd_txn_put(t, ETCD_SD_TXN_SUCCESS, "/k", NULL, 1, 0, false), "value");
    CHECK_INVALID(etcd_sd_txn_put(NULL, ETCD_SD_TXN_SUCCESS, "/k", "v", 1, 0, false), "txn");
    CHECK_INVALID(etcd_sd_txn_range(t, 7, "/k", NULL, 0, 0, false), "branch");
    CHECK_INVALID(etcd_sd_txn_range(t, ETCD_SD_TXN_FAILURE, NULL, NULL, 0, 0, false), "key");
    CHECK_INVALID(etcd_sd_txn_delete(t, 2, "/k", NULL, false), "branch");
    CHECK_INVALID(etcd_sd_txn_delete(t, ETCD_SD_TXN_SUCCESS, "/k", "\xff", false), "range_end");
    CHECK_INVALID(etcd_sd_txn_range_from(t, 3, "/k", 0, 0), "branch");
    CHECK_INVALID(etcd_sd_txn_range_from(t, ETCD_SD_TXN_SUCCESS, NULL, 0, 0), "key");
    CHECK_INVALID(etcd_sd_txn_nest(t, ETCD_SD_TXN_SUCCESS, NULL), "nested");
    CHECK_INVALID(etcd_sd_txn_nest(t, 2, t), "branch");
    CHECK_INVALID(etcd_sd_txn_nest(NULL, ETCD_SD_TXN_SUCCESS, t), "txn");
    /* none of the refused calls changed it: still an empty transaction */
    CHECK_OK(etcd_sd_client_txn(c, t, &r));
    CHECK(etcd_sd_txn_response_succeeded(r) && etcd_sd_txn_response_len(r) == 0);
    etcd_sd_txn_response_free(r);
    /* an empty key is refused when the transaction is run */
    CHECK_OK(etcd_sd_txn_put(t, ETCD_SD_TXN_SUCCESS, "", "v", 1, 0, false));
    r = NULL;
    CHECK_INVALID(etcd_sd_client_txn(c, t, &r), "key");
    CHECK(r == NULL);
    CHECK_INVALID(etcd_sd_client_txn(NULL, t, &r), "client");
    CHECK_INVALID(etcd_sd_client_txn(c, NULL, &r), "txn");
    CHECK_INVALID(etcd_sd_client_txn(c, t, NULL), "out");
    etcd_sd_txn_free(t);
    etcd_sd_txn_free(NULL);
    etcd_sd_txn_response_free(NULL);
    CHECK(!etcd_sd_txn_response_succeeded(NULL));
    CHECK(etcd_sd_txn_response_revision(NULL) == 0 && etcd_sd_txn_response_len(NULL) == 0);
    CHECK(etcd_sd_txn_response_kind(NULL, 0) == -1 && etcd_sd_txn_response_kvs(NULL, 0) == NULL);
    CHECK(etcd_sd_txn_response_count(NULL, 0) == 0 && etcd_sd_txn_response_nested(NULL, 0) == NULL);
    etcd_sd_client_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* reads at a revision */

static void test_read_at_revision(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_kvs *r = NULL;
    etcd_sd_kv kv;
    const char *ctl = getenv("ETCDCTL");
    int64_t r1, r2, r3;
    char cmd[512];

    CHECK_OK(etcd_sd_client_delete(c, "/cr/", true, NULL));
    r1 = put(c, "/cr/k", "v1", 0);
    r2 = put(c, "/cr/k", "v2", 0);
    r3 = put(c, "/cr/m", "m1", 0);
    CHECK(r1 < r2 && r2 < r3);

    CHECK_OK(etcd_sd_client_get_at(c, "/cr/k", r1, &r));
    CHECK(etcd_sd_kvs_at(r, 0, &kv) && strcmp(kv.value, "v1") == 0 && kv.mod_revision == r1);
    etcd_sd_kvs_free(r);
    CHECK_OK(etcd_sd_client_get_at(c, "/cr/k", 0, &r));
    CHECK(etcd_sd_kvs_at(r, 0, &kv) && strcmp(kv.value, "v2") == 0);
    etcd_sd_kvs_free(r);
    CHECK_OK(etcd_sd_client_get_at(c, "/cr/m", r2, &r)); /* not there yet */
    CHECK(etcd_sd_kvs_len(r) == 0);
    etcd_sd_kvs_free(r);

    /* prefix (NULL or "" range end), explicit range end, limit */
    CHECK_OK(etcd_sd_client_range_at(c, "/cr/", NULL, 0, r2, &r));
    CHECK(etcd_sd_kvs_len(r) == 1);
    etcd_sd_kvs_free(r);
    CHECK_OK(etcd_sd_client_range_at(c, "/cr/", "", 0, 0, &r));
    CHECK(etcd_sd_kvs_len(r) == 2);
    etcd_sd_kvs_free(r);
    CHECK_OK(etcd_sd_client_range_at(c, "/cr/k", "/cr/l", 0, r3, &r));
    CHECK(etcd_sd_kvs_len(r) == 1 && etcd_sd_kvs_at(r, 0, &kv) && strcmp(kv.value, "v2") == 0);
    etcd_sd_kvs_free(r);
    CHECK_OK(etcd_sd_client_range_at(c, "/cr/", NULL, 1, r3, &r));
    CHECK(etcd_sd_kvs_len(r) == 1);
    etcd_sd_kvs_free(r);

    r = NULL;
    CHECK_INVALID(etcd_sd_client_get_at(c, "/cr/k", -1, &r), "revision");
    CHECK_INVALID(etcd_sd_client_range_at(c, "/cr/", NULL, 0, -5, &r), "revision");
    CHECK_INVALID(etcd_sd_client_get_at(NULL, "/cr/k", 0, &r), "client");
    CHECK_INVALID(etcd_sd_client_get_at(c, NULL, 0, &r), "key");
    CHECK_INVALID(etcd_sd_client_get_at(c, "/cr/k", 0, NULL), "out");
    CHECK_INVALID(etcd_sd_client_range_at(c, "/cr/", "\xff", 0, 0, &r), "range_end");
    CHECK_INVALID(etcd_sd_client_range_at(c, "/cr/", NULL, 0, 0, NULL), "out");
    CHECK(r == NULL);

    /* a compacted revision */
    if (!ctl) {
        printf("  (ETCDCTL unset: compaction skipped)\n");
    } else {
        snprintf(cmd, sizeof cmd, "%s --endpoints=%s compact %lld >/dev/null", ctl, endpoints,
                 (long long)r3);
        CHECK(system(cmd) == 0);
        CHECK_INVALID(etcd_sd_client_get_at(c, "/cr/k", r1, &r), "compact");
        CHECK_INVALID(etcd_sd_client_range_at(c, "/cr/", NULL, 0, r2, &r), "compact");
        CHECK(r == NULL);
        CHECK_OK(etcd_sd_client_get_at(c, "/cr/k", r3, &r)); /* the compaction point stays */
        CHECK(etcd_sd_kvs_len(r) == 1);
        etcd_sd_kvs_free(r);
    }
    etcd_sd_client_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* locks */

static void test_lock_contention(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_lock *a = NULL, *b = NULL, *d = NULL;
    lost_log la;
    int64_t rev_a, lease;
    long long t0, took;
    const char *key;

    lost_init(&la);
    CHECK_OK(etcd_sd_lock_new(c, "/cl/job", 5, 0, 2000, on_lost, &la, &a));
    key = etcd_sd_lock_key(a);
    CHECK(key != NULL && strncmp(key, "/cl/job/", 8) == 0);
    rev_a = etcd_sd_lock_revision(a);
    CHECK(rev_a > 0 && etcd_sd_lock_lease(a) != 0);
    CHECK_OK(etcd_sd_lock_check(a));
    CHECK(exists(c, key));

    /* a second contender times out, in bounded time, and is left waiting nowhere */
    t0 = now_ms();
    CHECK_RC(etcd_sd_lock_new(c, "/cl/job", 5, 0, 500, NULL, NULL, &b), ETCD_SD_TIMEOUT);
    took = now_ms() - t0;
    CHECK(b == NULL);
    CHECK_MSG(took >= 400 && took < bound(3000), "the contender gave up after %lld ms", took);
    CHECK_OK(etcd_sd_lock_check(a)); /* untouched */

    /* unlock lets the next one in, with a larger fencing revision */
    CHECK_OK(etcd_sd_lock_unlock(a));
    CHECK_RC(etcd_sd_lock_check(a), ETCD_SD_CLOSED);
    CHECK_OK(etcd_sd_lock_unlock(a)); /* later calls do nothing */
    CHECK_OK(etcd_sd_lock_new(c, "/cl/job", 5, 0, 2000, NULL, NULL, &b));
    CHECK(etcd_sd_lock_revision(b) > rev_a);
    CHECK(strcmp(etcd_sd_lock_key(b), etcd_sd_lock_key(a)) != 0);
    etcd_sd_lock_free(a);
    CHECK(lost_calls(&la) == 0); /* released, not lost */

    /* freeing a held lock releases it */
    etcd_sd_lock_free(b);
    CHECK_OK(etcd_sd_lock_new(c, "/cl/job", 5, 0, 2000, NULL, NULL, &a));

    /* a lock under the caller's lease; a lease that does not exist */
    CHECK_OK(etcd_sd_client_lease_grant(c, 30, &lease));
    t0 = now_ms();
    CHECK_OK(etcd_sd_lock_new(c, "/cl/other", 0, lease, 2000, NULL, NULL, &d));
    CHECK(etcd_sd_lock_lease(d) == lease);
    etcd_sd_lock_free(d);
    d = NULL;
    CHECK_RC(etcd_sd_lock_new(c, "/cl/other", 0, 0x7eadbeef, 2000, NULL, NULL, &d),
             ETCD_SD_NOT_FOUND);
    CHECK(d == NULL);
    /* the caller's lease is the caller's: releasing the lock did not revoke it */
    {
        int64_t left = 0;
        CHECK_OK(etcd_sd_client_lease_ttl(c, lease, &left, NULL));
        CHECK(left > 0);
    }
    CHECK_OK(etcd_sd_client_lease_revoke(c, lease));
    etcd_sd_lock_free(a);
    etcd_sd_client_free(c);
}

static void test_lock_lost_on_revoke(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_lock *a = NULL, *b = NULL;
    lost_log la;
    char key[256];

    lost_init(&la);
    CHECK_OK(etcd_sd_lock_new(c, "/cll/job", 5, 0, 2000, on_lost, &la, &a));
    copy_str(key, sizeof key, etcd_sd_lock_key(a), strlen(etcd_sd_lock_key(a)));
    /* someone revokes the lock's lease */
    CHECK_OK(etcd_sd_client_lease_revoke(c, etcd_sd_lock_lease(a)));
    WAIT_UNTIL(lost_calls(&la) == 1, bound(5000)); /* on_lost after the revoke */
    CHECK(la.result == ETCD_SD_LOST && la.message[0] != '\0');
    CHECK_RC(etcd_sd_lock_check(a), ETCD_SD_LOST);
    CHECK_RC(etcd_sd_lock_unlock(a), ETCD_SD_LOST);
    CHECK_OK(etcd_sd_lock_unlock(a)); /* once */
    /* never taken back behind the owner's back: the key stays gone, another acquires */
    CHECK(!exists(c, key));
    CHECK_OK(etcd_sd_lock_new(c, "/cll/job", 5, 0, 2000, NULL, NULL, &b));
    CHECK(!exists(c, key));
    CHECK(lost_calls(&la) == 1);
    etcd_sd_lock_free(a);
    etcd_sd_lock_free(b);

    /* lost by its key being deleted (etcd_sd_client_unlock by key, from "another process") */
    lost_init(&la);
    CHECK_OK(etcd_sd_lock_new(c, "/cll/job", 5, 0, 2000, on_lost, &la, &a));
    CHECK_OK(etcd_sd_client_unlock(c, etcd_sd_lock_key(a)));
    WAIT_UNTIL(lost_calls(&la) == 1, bound(5000)); /* on_lost after the key's deletion */
    CHECK_RC(etcd_sd_lock_check(a), ETCD_SD_LOST);
    CHECK_OK(etcd_sd_lock_new(c, "/cll/job", 5, 0, 2000, NULL, NULL, &b));
    CHECK_RC(etcd_sd_lock_unlock(a), ETCD_SD_LOST);
    etcd_sd_lock_free(a);
    etcd_sd_lock_free(b);
    CHECK(lost_calls(&la) == 1);
    etcd_sd_client_free(c);
}

/* Frees its own lock from inside on_lost. */
typedef struct {
    pthread_mutex_t mu;
    etcd_sd_lock *lock;
    int freed;
    int result;
} self_free;

static void free_own_lock(void *ud, int result, const char *message) {
    self_free *s = ud;
    etcd_sd_lock *l;
    (void)message;
    pthread_mutex_lock(&s->mu);
    l = s->lock;
    s->lock = NULL;
    pthread_mutex_unlock(&s->mu);
    CHECK_RC(etcd_sd_lock_check(l), ETCD_SD_LOST); /* already lost when told */
    etcd_sd_lock_free(l);
    pthread_mutex_lock(&s->mu);
    s->freed++;
    s->result = result;
    pthread_mutex_unlock(&s->mu);
}

static int freed_count(self_free *s) {
    int n;
    pthread_mutex_lock(&s->mu);
    n = s->freed;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void test_lock_free_in_callback(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_lock *l = NULL, *b = NULL;
    self_free s;
    int64_t lease;

    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    CHECK_OK(etcd_sd_lock_new(c, "/clf/job", 5, 0, 2000, free_own_lock, &s, &l));
    lease = etcd_sd_lock_lease(l);
    pthread_mutex_lock(&s.mu);
    s.lock = l;
    pthread_mutex_unlock(&s.mu);
    CHECK_OK(etcd_sd_client_lease_revoke(c, lease));
    WAIT_UNTIL(freed_count(&s) == 1, bound(5000)); /* the lock freed from its own on_lost */
    CHECK(s.result == ETCD_SD_LOST);
    CHECK_OK(etcd_sd_lock_new(c, "/clf/job", 5, 0, 2000, NULL, NULL, &b));
    etcd_sd_lock_free(b);
    pthread_mutex_destroy(&s.mu);
    etcd_sd_client_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* elections */

typedef struct {
    etcd_sd_client *c;
    const char *value;
    uint64_t wait_ms;
    etcd_sd_result rc;
    etcd_sd_election *e;
} candidate;

static void *campaign_thread(void *arg) {
    candidate *k = arg;
    k->rc = etcd_sd_election_new(k->c, "/ce/svc", k->value, strlen(k->value), 5, 0, k->wait_ms,
                                 NULL, NULL, &k->e);
    return NULL;
}

/* The leader's value of /ce/svc into buf ("" when none leads). */
static const char *leader_value(etcd_sd_client *c, char *buf, size_t cap, char *key, size_t kcap) {
    etcd_sd_kvs *r = NULL;
    etcd_sd_kv kv;
    etcd_sd_result rc = etcd_sd_client_leader(c, "/ce/svc", &r);
    buf[0] = '\0';
    if (rc == ETCD_SD_NOT_FOUND) return buf;
    CHECK_OK(rc);
    CHECK(etcd_sd_kvs_len(r) == 1 && etcd_sd_kvs_at(r, 0, &kv));
    copy_str(buf, cap, kv.value, kv.value_len);
    if (key) copy_str(key, kcap, kv.key, kv.key_len);
    etcd_sd_kvs_free(r);
    return buf;
}

static void test_election(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_election *e1 = NULL, *e2 = NULL;
    etcd_sd_kvs *r = NULL;
    candidate k;
    pthread_t th;
    char v[64], key[256];
    long long t0, took;
    int64_t rev1;

    CHECK_RC(etcd_sd_client_leader(c, "/ce/svc", &r), ETCD_SD_NOT_FOUND);
    CHECK(r == NULL);
    CHECK_OK(etcd_sd_election_new(c, "/ce/svc", "one", 3, 5, 0, 2000, NULL, NULL, &e1));
    CHECK_OK(etcd_sd_election_check(e1));
    rev1 = etcd_sd_election_revision(e1);
    CHECK(rev1 > 0 && etcd_sd_election_lease(e1) != 0);
    CHECK(strncmp(etcd_sd_election_key(e1), "/ce/svc/", 8) == 0);
    CHECK(strcmp(leader_value(c, v, sizeof v, key, sizeof key), "one") == 0);
    CHECK(strcmp(key, etcd_sd_election_key(e1)) == 0);

    CHECK_OK(etcd_sd_election_proclaim(e1, "uno", 3));
    CHECK(strcmp(leader_value(c, v, sizeof v, NULL, 0), "uno") == 0);
    CHECK_OK(etcd_sd_election_proclaim(e1, NULL, 0)); /* an empty value */
    CHECK(strcmp(leader_value(c, v, sizeof v, NULL, 0), "") == 0);
    CHECK_OK(etcd_sd_election_proclaim(e1, "one", 3));

    /* a second candidate times out in bounded time */
    t0 = now_ms();
    CHECK_RC(etcd_sd_election_new(c, "/ce/svc", "two", 3, 5, 0, 500, NULL, NULL, &e2),
             ETCD_SD_TIMEOUT);
    took = now_ms() - t0;
    CHECK(e2 == NULL);
    CHECK_MSG(took >= 400 && took < bound(3000), "the candidate gave up after %lld ms", took);
    CHECK(strcmp(leader_value(c, v, sizeof v, NULL, 0), "one") == 0);

    /* a waiting candidate leads once the leader resigns */
    memset(&k, 0, sizeof k);
    k.c = c;
    k.value = "two";
    k.wait_ms = (uint64_t)bound(10000);
    k.rc = ETCD_SD_INTERNAL;
    CHECK(pthread_create(&th, NULL, campaign_thread, &k) == 0);
    CHECK_OK(etcd_sd_election_resign(e1));
    CHECK(pthread_join(th, NULL) == 0);
    CHECK_OK(k.rc);
    e2 = k.e;
    CHECK(etcd_sd_election_revision(e2) > rev1);
    CHECK(strcmp(leader_value(c, v, sizeof v, NULL, 0), "two") == 0);
    CHECK_RC(etcd_sd_election_check(e1), ETCD_SD_CLOSED);
    CHECK_RC(etcd_sd_election_proclaim(e1, "x", 1), ETCD_SD_CLOSED);
    CHECK_OK(etcd_sd_election_resign(e1)); /* later calls do nothing */
    CHECK(strcmp(leader_value(c, v, sizeof v, NULL, 0), "two") == 0);
    etcd_sd_election_free(e1);

    /* freeing the leader resigns */
    etcd_sd_election_free(e2);
    CHECK_RC(etcd_sd_client_leader(c, "/ce/svc", &r), ETCD_SD_NOT_FOUND);
    etcd_sd_client_free(c);
}

static void test_election_lost_on_revoke(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_election *e = NULL, *e2 = NULL;
    etcd_sd_kvs *r = NULL;
    lost_log la;
    char v[64];

    lost_init(&la);
    CHECK_OK(etcd_sd_election_new(c, "/ce/svc", "one", 3, 5, 0, 2000, on_lost, &la, &e));
    CHECK_OK(etcd_sd_client_lease_revoke(c, etcd_sd_election_lease(e)));
    WAIT_UNTIL(lost_calls(&la) == 1, bound(5000)); /* on_lost after the revoke */
    CHECK(la.result == ETCD_SD_LOST && la.message[0] != '\0');
    CHECK_RC(etcd_sd_election_check(e), ETCD_SD_LOST);
    CHECK_RC(etcd_sd_election_proclaim(e, "x", 1), ETCD_SD_LOST);
    /* not campaigned again behind the owner's back */
    CHECK_RC(etcd_sd_client_leader(c, "/ce/svc", &r), ETCD_SD_NOT_FOUND);
    CHECK_OK(etcd_sd_election_new(c, "/ce/svc", "two", 3, 5, 0, 2000, NULL, NULL, &e2));
    CHECK(strcmp(leader_value(c, v, sizeof v, NULL, 0), "two") == 0);
    CHECK_RC(etcd_sd_election_resign(e), ETCD_SD_LOST);
    CHECK_OK(etcd_sd_election_resign(e));
    etcd_sd_election_free(e);
    CHECK(strcmp(leader_value(c, v, sizeof v, NULL, 0), "two") == 0);
    etcd_sd_election_free(e2);
    CHECK(lost_calls(&la) == 1);
    etcd_sd_client_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* members, leases, keep-alive revoke */

static void test_members(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_members *m = NULL;
    etcd_sd_member mb;
    uint64_t id = 0, first;
    char peer[64];
    size_t i;
    int found = 0;

    CHECK_OK(etcd_sd_client_members(c, &m));
    CHECK(etcd_sd_members_len(m) == 1);
    CHECK(etcd_sd_members_at(m, 0, &mb));
    CHECK(mb.id != 0 && mb.name[0] != '\0' && !mb.is_learner);
    CHECK(strncmp(mb.peer_urls, "http", 4) == 0 && strstr(mb.client_urls, "127.0.0.1") != NULL);
    first = mb.id;
    CHECK(!etcd_sd_members_at(m, 1, &mb));
    CHECK(!etcd_sd_members_at(m, 0, NULL));
    etcd_sd_members_free(m);

    /* a learner (never a voting member: the single test etcd would lose its quorum) */
    snprintf(peer, sizeof peer, "http://127.0.0.1:%d", unused_port());
    CHECK_OK(etcd_sd_client_member_add(c, peer, true, &id));
    CHECK(id != 0 && id != first);
    CHECK_OK(etcd_sd_client_members(c, &m));
    CHECK(etcd_sd_members_len(m) == 2);
    for (i = 0; i < 2; i++) {
        CHECK(etcd_sd_members_at(m, i, &mb));
        if (mb.id == id) {
            found = 1;
            CHECK(mb.is_learner && mb.name[0] == '\0' && mb.client_urls[0] == '\0');
            CHECK(strcmp(mb.peer_urls, peer) == 0);
        }
    }
    CHECK(found);
    etcd_sd_members_free(m);
    /* the same peer URL again is refused */
    CHECK_RC(etcd_sd_client_member_add(c, peer, true, NULL), ETCD_SD_ETCD_ERROR);
    CHECK_OK(etcd_sd_client_member_remove(c, id));
    CHECK_OK(etcd_sd_client_members(c, &m));
    CHECK(etcd_sd_members_len(m) == 1);
    etcd_sd_members_free(m);
    CHECK_RC(etcd_sd_client_member_remove(c, id), ETCD_SD_NOT_FOUND);

    m = NULL;
    CHECK_INVALID(etcd_sd_client_members(NULL, &m), "client");
    CHECK_INVALID(etcd_sd_client_members(c, NULL), "out");
    CHECK_INVALID(etcd_sd_client_member_add(c, NULL, true, &id), "peer_urls");
    CHECK_INVALID(etcd_sd_client_member_add(c, "", true, &id), "URL");
    CHECK_INVALID(etcd_sd_client_member_add(NULL, peer, true, &id), "client");
    CHECK_INVALID(etcd_sd_client_member_remove(NULL, 1), "client");
    CHECK(m == NULL);
    CHECK(etcd_sd_members_len(NULL) == 0 && !etcd_sd_members_at(NULL, 0, &mb));
    etcd_sd_members_free(NULL);
    etcd_sd_client_free(c);
}

static void test_leases_listing(void) {
    etcd_sd_client *c = new_client();
    int64_t a = 0, b = 0, ids[64], one[1];
    size_t n = 0, i;
    int seen = 0;

    CHECK_OK(etcd_sd_client_lease_grant(c, 30, &a));
    CHECK_OK(etcd_sd_client_lease_grant(c, 30, &b));
    CHECK_OK(etcd_sd_client_leases(c, NULL, 0, &n)); /* the count only */
    CHECK(n >= 2 && n <= 64);
    CHECK_OK(etcd_sd_client_leases(c, ids, 64, &n));
    for (i = 0; i < n; i++) seen += (ids[i] == a) + (ids[i] == b);
    CHECK(seen == 2);
    one[0] = 0;
    CHECK_OK(etcd_sd_client_leases(c, one, 1, &n)); /* too small: one written, total told */
    CHECK(n >= 2 && one[0] != 0);
    CHECK_OK(etcd_sd_client_lease_revoke(c, a));
    CHECK_OK(etcd_sd_client_leases(c, ids, 64, &n));
    for (i = 0; i < n; i++) CHECK(ids[i] != a);
    CHECK_OK(etcd_sd_client_lease_revoke(c, b));
    CHECK_INVALID(etcd_sd_client_leases(c, ids, 64, NULL), "out_count");
    CHECK_INVALID(etcd_sd_client_leases(c, NULL, 4, &n), "ids");
    CHECK_INVALID(etcd_sd_client_leases(NULL, ids, 64, &n), "client");
    etcd_sd_client_free(c);
}

typedef struct {
    pthread_mutex_t mu;
    int calls, result;
    int64_t lease;
} give_up_log;

static void on_give_up(void *ud, int64_t lease, int result, const char *message) {
    give_up_log *g = ud;
    (void)message;
    pthread_mutex_lock(&g->mu);
    g->calls++;
    g->lease = lease;
    g->result = result;
    pthread_mutex_unlock(&g->mu);
}

static int give_up_calls(give_up_log *g) {
    int n;
    pthread_mutex_lock(&g->mu);
    n = g->calls;
    pthread_mutex_unlock(&g->mu);
    return n;
}

static void test_keepalive_revoke(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_keepalive *ka = NULL;
    give_up_log g;
    int64_t lease, left = 0;

    memset(&g, 0, sizeof g);
    pthread_mutex_init(&g.mu, NULL);
    CHECK_OK(etcd_sd_keepalive_new(c, 5, 0, on_give_up, &g, &ka));
    lease = etcd_sd_keepalive_lease(ka);
    put(c, "/ck/k", "v", lease);
    CHECK_OK(etcd_sd_keepalive_check(ka));
    CHECK_OK(etcd_sd_keepalive_revoke(ka));
    CHECK_RC(etcd_sd_keepalive_check(ka), ETCD_SD_LOST);
    CHECK(!exists(c, "/ck/k")); /* its keys left at once */
    CHECK_OK(etcd_sd_client_lease_ttl(c, lease, &left, NULL));
    CHECK(left == -1);
    WAIT_UNTIL(give_up_calls(&g) == 1, bound(5000)); /* on_give_up after the revoke */
    CHECK(g.lease == lease && g.result == ETCD_SD_LOST);
    CHECK_OK(etcd_sd_keepalive_revoke(ka)); /* a lease etcd no longer has is not an error */
    CHECK_RC(etcd_sd_keepalive_check(ka), ETCD_SD_LOST);
    CHECK(etcd_sd_keepalive_lease(ka) == lease); /* never granted again */
    etcd_sd_keepalive_free(ka);
    CHECK(give_up_calls(&g) == 1);
    CHECK_INVALID(etcd_sd_keepalive_revoke(NULL), "keepalive");
    pthread_mutex_destroy(&g.mu);
    etcd_sd_client_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* bad arguments to locks and elections */

static void test_coord_invalid(void) {
    etcd_sd_client *c = new_client();
    etcd_sd_lock *l = NULL;
    etcd_sd_election *e = NULL;
    etcd_sd_kvs *r = NULL;

    CHECK_INVALID(etcd_sd_lock_new(NULL, "/x", 5, 0, 0, NULL, NULL, &l), "client");
    CHECK_INVALID(etcd_sd_lock_new(c, NULL, 5, 0, 0, NULL, NULL, &l), "name");
    CHECK_INVALID(etcd_sd_lock_new(c, "", 5, 0, 0, NULL, NULL, &l), "key");
    CHECK_INVALID(etcd_sd_lock_new(c, "/x\xff", 5, 0, 0, NULL, NULL, &l), "UTF-8");
    CHECK_INVALID(etcd_sd_lock_new(c, "/x", 0, 0, 0, NULL, NULL, &l), "ttl");
    CHECK_INVALID(etcd_sd_lock_new(c, "/x", -1, 0, 0, NULL, NULL, &l), "ttl");
    CHECK_INVALID(etcd_sd_lock_new(c, "/x", 5, 0, 0, NULL, NULL, NULL), "out");
    CHECK(l == NULL);
    CHECK_INVALID(etcd_sd_lock_check(NULL), "lock");
    CHECK_INVALID(etcd_sd_lock_unlock(NULL), "lock");
    CHECK(etcd_sd_lock_key(NULL) == NULL && etcd_sd_lock_revision(NULL) == 0);
    CHECK(etcd_sd_lock_lease(NULL) == 0);
    etcd_sd_lock_free(NULL);
    CHECK_INVALID(etcd_sd_client_unlock(NULL, "/x/1"), "client");
    CHECK_INVALID(etcd_sd_client_unlock(c, NULL), "key");

    CHECK_INVALID(etcd_sd_election_new(NULL, "/e", "v", 1, 5, 0, 0, NULL, NULL, &e), "client");
    CHECK_INVALID(etcd_sd_election_new(c, NULL, "v", 1, 5, 0, 0, NULL, NULL, &e), "name");
    CHECK_INVALID(etcd_sd_election_new(c, "", "v", 1, 5, 0, 0, NULL, NULL, &e), "key");
    CHECK_INVALID(etcd_sd_election_new(c, "/e", NULL, 1, 5, 0, 0, NULL, NULL, &e), "value");
    CHECK_INVALID(etcd_sd_election_new(c, "/e", "v", 1, 0, 0, 0, NULL, NULL, &e), "ttl");
    CHECK_INVALID(etcd_sd_election_new(c, "/e", "v", 1, 5, 0, 0, NULL, NULL, NULL), "out");
    CHECK(e == NULL);
    CHECK_INVALID(etcd_sd_election_check(NULL), "election");
    CHECK_INVALID(etcd_sd_election_proclaim(NULL, "v", 1), "election");
    CHECK_INVALID(etcd_sd_election_resign(NULL), "election");
    CHECK(etcd_sd_election_key(NULL) == NULL && etcd_sd_election_revision(NULL) == 0);
    CHECK(etcd_sd_election_lease(NULL) == 0);
    etcd_sd_election_free(NULL);
    CHECK_INVALID(etcd_sd_client_leader(NULL, "/e", &r), "client");
    CHECK_INVALID(etcd_sd_client_leader(c, NULL, &r), "name");
    CHECK_INVALID(etcd_sd_client_leader(c, "/e", NULL), "out");
    CHECK(r == NULL);
    /* a proclaim with a NULL value of non-zero length, on a live leadership */
    CHECK_OK(etcd_sd_election_new(c, "/ci/e", "v", 1, 5, 0, 2000, NULL, NULL, &e));
    CHECK_INVALID(etcd_sd_election_proclaim(e, NULL, 3), "value");
    CHECK_OK(etcd_sd_election_check(e));
    etcd_sd_election_free(e);
    etcd_sd_client_free(c);
}

int main(void) {
    static const test_case cases[] = {
        {"txn_compares", test_txn_compares},
        {"txn_ops", test_txn_ops},
        {"txn_invalid", test_txn_invalid},
        {"lock_contention", test_lock_contention},
        {"lock_lost_on_revoke", test_lock_lost_on_revoke},
        {"lock_free_in_callback", test_lock_free_in_callback},
        {"election", test_election},
        {"election_lost_on_revoke", test_election_lost_on_revoke},
        {"members", test_members},
        {"leases_listing", test_leases_listing},
        {"keepalive_revoke", test_keepalive_revoke},
        {"coord_invalid", test_coord_invalid},
        /* last: it compacts the store */
        {"read_at_revision", test_read_at_revision},
    };

    test_begin();
    endpoints = need_env("ETCD_SD_TEST_ENDPOINTS");
    return run_cases(cases, sizeof cases / sizeof cases[0]);
}
