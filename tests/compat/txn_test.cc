// Test of the compatibility headers' transactions, compare-and-swap/delete, reads at a
// revision, byte-string keys and ranges, error codes and messages, members and lease listing
// (include/etcd/v3/Transaction.hpp, etcd/v3/Member.hpp, etcd/detail/{txn,ranges,members}.hpp),
// against the etcd started by tests/with_etcd.py. Built with -Wall -Wextra -Werror.
//
// Environment: ETCD_SD_TEST_ENDPOINTS (required); ETCD_SD_TEST_SLOW=1 (valgrind);
// ETCD_SD_TEST_ONLY=<substring>. The last case deletes the whole key space of its etcd.

#include <etcd/Client.hpp>
#include <etcd/SyncClient.hpp>
#include <etcd/v3/Member.hpp>
#include <etcd/v3/Transaction.hpp>

#include "compat_util.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string prefix() { return unique_prefix("compat-txn"); }

const std::string kNotFound = "etcd-cpp-apiv3: key not found";
const std::string kCompareFailed = "etcd-cpp-apiv3: compare failed";
const std::string kExists = "etcd-cpp-apiv3: key already exists";
const std::string kNoLease = "etcdserver: requested lease not found";

// A lease id etcd has never granted.
constexpr int64_t kBadLease = 0x1234567890abcdLL;

void test_resolve() {
    const char *saved = std::getenv("ETCD_ENDPOINTS");
    std::string saved_value = saved != nullptr ? saved : "";
    unsetenv("ETCD_ENDPOINTS");
    CHECK_EQ(etcdv3::detail::resolve_etcd_endpoints("http://a:1"), std::string("http://a:1"));
    setenv("ETCD_ENDPOINTS", "http://b:2,http://c:3", 1);
    CHECK_EQ(etcdv3::detail::resolve_etcd_endpoints("http://a:1"),
             std::string("http://b:2,http://c:3"));
    if (saved != nullptr) {
        setenv("ETCD_ENDPOINTS", saved_value.c_str(), 1);
    } else {
        unsetenv("ETCD_ENDPOINTS");
    }
}

void test_txn_basic() {
    etcd::Client c(endpoints);
    std::string p = prefix();

    etcdv3::Transaction t;
    t.setup_put(p + "x1", "1");
    t.setup_put(p + "x2", "2");
    t.setup_put(p + "x3", "3");
    etcd::Response r = c.txn(t).get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("txn"));
    CHECK(r.index() > 0);
    CHECK(r.values().empty());
    CHECK_EQ(c.get(p + "x2").get().value().as_string(), std::string("2"));

    // compares hold: put, two deletes (one of nothing: no 100 in a txn), a put
    etcdv3::Transaction t2;
    t2.add_compare_value(p + "x1", "1");
    t2.add_compare_value(p + "x2", "2");
    t2.setup_put(p + "x1", "111");
    t2.setup_delete(p + "x2");
    t2.setup_delete(p + "nothing");
    t2.setup_put(p + "x4", "4");
    r = c.txn(t2).get();
    CHECK_OK(r);
    // values(): the deleted x2; prev_value(): the first put's (empty: prev_kv not asked)
    CHECK_EQ(r.values().size(), size_t{1});
    CHECK_EQ(r.value().key(), p + "x2");
    CHECK_EQ(r.value().as_string(), std::string("2"));
    CHECK_EQ(r.keys().size(), size_t{1});
    CHECK_EQ(r.prev_value().key(), std::string(""));
    CHECK_EQ(c.get(p + "x1").get().value().as_string(), std::string("111"));
    CHECK_EQ(c.get(p + "x2").get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);

    // a failed compare without error: 101, the failure branch's results
    etcdv3::Transaction t3;
    t3.setup_compare_and_swap(p + "x1", "not-it", "5");
    r = c.txn(t3).get();
    CHECK(!r.is_ok());
    CHECK_EQ(r.error_code(), etcdv3::ERROR_COMPARE_FAILED);
    CHECK_EQ(r.error_message(), kCompareFailed);
    CHECK_EQ(r.action(), std::string("txn"));
    CHECK_EQ(r.value().as_string(), std::string("111"));
    CHECK_EQ(std::stoi(r.value().as_string()), 111);

    // the same through SyncClient, and `auto t = Transaction();`
    etcd::SyncClient s(endpoints);
    auto t4 = etcdv3::Transaction();
    t4.setup_compare_and_swap(p + "x1", "111", "112");
    r = s.txn(t4);
    CHECK_OK(r);
    CHECK_EQ(s.get(p + "x1").value().as_string(), std::string("112"));

    // etcd refuses: the same key twice in one txn -> 3 with etcd's message
    etcdv3::Transaction dup;
    dup.add_success_put(p + "d", "1");
    dup.add_success_put(p + "d", "2");
    r = c.txn(dup).get();
    CHECK_EQ(r.error_code(), etcdv3::ERROR_GRPC_INVALID_ARGUMENT);
    CHECK_EQ(r.error_message(), std::string("etcdserver: duplicate key given in txn request"));

    // a put under a lease that does not exist: 5, etcd's message
    etcdv3::Transaction bad;
    bad.add_success_put(p + "l", "1", kBadLease);
    r = c.txn(bad).get();
    CHECK_EQ(r.error_code(), etcdv3::ERROR_GRPC_NOT_FOUND);
    CHECK_EQ(r.error_message(), kNoLease);

    // keys a C string cannot carry: 3, nothing sent
    etcdv3::Transaction nul;
    nul.setup_put(std::string("/a\0b", 4), "1");
    r = c.txn(nul).get();
    CHECK_EQ(r.error_code(), etcdv3::ERROR_GRPC_INVALID_ARGUMENT);
    CHECK_EQ(r.action(), std::string("txn"));
    etcdv3::Transaction all;
    all.add_success_delete(p, etcdv3::NUL);
    CHECK_EQ(c.txn(all).get().error_code(), etcdv3::ERROR_GRPC_INVALID_ARGUMENT);
}

// Every compare target and result, and range_end compares.
void test_txn_compares() {
    etcd::SyncClient s(endpoints);
    std::string p = prefix();
    int64_t lease = s.leasegrant(60).value().lease();
    CHECK(lease > 0);
    CHECK_OK(s.put(p + "a", "5"));
    CHECK_OK(s.put(p + "a", "6"));  // version 2
    CHECK_OK(s.put(p + "b", "7", lease));
    etcd::Response a = s.get(p + "a");
    int64_t created = a.value().created_index();
    int64_t modified = a.value().modified_index();

    using etcdv3::CompareResult;
    using etcdv3::CompareTarget;
    auto holds = [&](std::function<void(etcdv3::Transaction &)> add) {
        etcdv3::Transaction t;
        add(t);
        t.add_success_range(p + "a");
        t.add_failure_range(p + "b");
        etcd::Response r = s.txn(t);
        CHECK(r.is_ok() || r.error_code() == etcdv3::ERROR_COMPARE_FAILED);
        CHECK_EQ(r.values().size(), size_t{1});
        CHECK_EQ(r.value().key(), r.is_ok() ? p + "a" : p + "b");
        return r.is_ok();
    };
    using T = etcdv3::Transaction &;
    CHECK(holds([&](T t) { t.add_compare_version(p + "a", 2); }));
    CHECK(!holds([&](T t) { t.add_compare_version(p + "a", 3); }));
    CHECK(holds([&](T t) { t.add_compare_version(p + "a", CompareResult::GREATER, 1); }));
    CHECK(holds([&](T t) { t.add_compare_version(p + "a", CompareResult::LESS, 3); }));
    CHECK(holds([&](T t) { t.add_compare_version(p + "a", CompareResult::NOT_EQUAL, 1); }));
    CHECK(holds([&](T t) { t.add_compare_version(p + "nope", 0); }));
    CHECK(holds([&](T t) { t.add_compare_create(p + "a", created); }));
    CHECK(!holds([&](T t) { t.add_compare_create(p + "a", CompareResult::GREATER, created); }));
    CHECK(holds([&](T t) { t.add_compare_mod(p + "a", modified); }));
    CHECK(holds([&](T t) { t.add_compare_mod(p + "a", CompareResult::GREATER, created); }));
    CHECK(holds([&](T t) { t.add_compare_value(p + "a", "6"); }));
    CHECK(!holds([&](T t) { t.add_compare_value(p + "a", "5"); }));
    CHECK(holds([&](T t) { t.add_compare_value(p + "a", CompareResult::GREATER, "5"); }));
    CHECK(holds([&](T t) { t.add_compare_value(p + "a", CompareResult::LESS, "7"); }));
    CHECK(holds([&](T t) { t.add_compare_value(p + "a", CompareResult::NOT_EQUAL, "5"); }));
    CHECK(holds([&](T t) { t.add_compare_lease(p + "b", lease); }));
    CHECK(holds([&](T t) { t.add_compare_lease(p + "a", 0); }));
    CHECK(!holds([&](T t) { t.add_compare_lease(p + "b", CompareResult::LESS, lease); }));
    // over a range: every key in [a, c) has a version > 0
    CHECK(holds([&](T t) {
        t.add_compare_version(p + "a", CompareResult::GREATER, 0, p + "c");
    }));
    CHECK(!holds([&](T t) { t.add_compare_value(p + "a", "6", p + "c"); }));  // b is "7"
    // add_compare with a Value (a struct here)
    etcdv3::Transaction::Value v;
    v.value = "6";
    CHECK(holds([&](T t) { t.add_compare(p + "a", CompareTarget::VALUE, CompareResult::EQUAL, v); }));
    v.version = 2;
    CHECK(holds([&](T t) { t.add_compare(p + "a", CompareTarget::VERSION, CompareResult::EQUAL, v); }));
    v.create_revision = created;
    CHECK(holds([&](T t) { t.add_compare(p + "a", CompareTarget::CREATE, CompareResult::EQUAL, v); }));
    v.mod_revision = modified;
    CHECK(holds([&](T t) { t.add_compare(p + "a", CompareTarget::MOD, CompareResult::EQUAL, v); }));
    v.lease = lease;
    CHECK(holds([&](T t) { t.add_compare(p + "b", CompareTarget::LEASE, CompareResult::EQUAL, v); }));
    CHECK(!holds([&](T t) {
        t.add_compare(p + "a", CompareTarget::LEASE, CompareResult::EQUAL, v, p + "c");
    }));
    CHECK_OK(s.leaserevoke(lease));
}

// Every operation of both branches, nested transactions, and the setup_* helpers.
void test_txn_ops() {
    etcd::Client c(endpoints);
    std::string p = prefix();
    int64_t lease = c.leasegrant(60).get().value().lease();
    for (char const *k : {"r/1", "r/2", "r/3", "s"}) {
        CHECK_OK(c.put(p + k, k).get());
    }

    // success: put with lease and prev_kv, ranges (prefix, range_end, limit, to the end)
    etcdv3::Transaction t;
    t.add_compare_version(p + "s", 1);
    t.add_success_put(p + "s", "new", lease, true);
    t.add_success_range(p + "r/", "", true);
    t.add_success_range(p + "r/1", p + "r/3");
    t.add_success_range(p + "r/", "", true, 1);
    t.add_success_range(p + "s", etcdv3::NUL);  // from s on: s only (nothing sorts after)
    etcd::Response r = c.txn(t).get();
    CHECK_OK(r);
    CHECK_EQ(r.prev_value().as_string(), std::string("s"));
    CHECK_EQ(r.values().size(), size_t{3 + 2 + 1 + 1});
    CHECK_EQ(r.key(0), p + "r/1");
    CHECK_EQ(r.key(3), p + "r/1");
    CHECK_EQ(r.key(5), p + "r/1");
    CHECK_EQ(r.key(6), p + "s");
    CHECK_EQ(r.value(6).as_string(), std::string("new"));
    CHECK_EQ(r.value(6).lease(), lease);

    // failure branch: put, delete by range with prev_kv, range
    etcdv3::Transaction f;
    f.add_compare_value(p + "s", "old");
    f.add_success_put(p + "never", "x");
    f.add_failure_put(p + "f", "1", 0, false);
    f.add_failure_delete(p + "r/1", p + "r/3", false, true);
    f.add_failure_range(p + "r/", "", true);
    r = c.txn(f).get();
    CHECK_EQ(r.error_code(), etcdv3::ERROR_COMPARE_FAILED);
    CHECK_EQ(r.values().size(), size_t{3});  // 2 deleted + r/3
    CHECK_EQ(r.prev_value().key(), std::string(""));  // the put's: not asked
    CHECK_EQ(c.get(p + "never").get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK_EQ(c.get(p + "f").get().value().as_string(), std::string("1"));
    CHECK_EQ(c.ls(p + "r/").get().keys().size(), size_t{1});

    // delete: recursive, and without prev_kv (nothing reported)
    etcdv3::Transaction d;
    d.add_success_delete(p + "r/", "", true, false);
    d.add_failure_delete(p + "f");
    r = c.txn(d).get();
    CHECK_OK(r);
    CHECK(r.values().empty());
    CHECK(c.ls(p + "r/").get().values().empty());

    // nested: copied when added
    auto inner = std::make_shared<etcdv3::Transaction>();
    inner->add_compare_value(p + "f", "1");
    inner->add_success_put(p + "n1", "inner");
    etcdv3::Transaction outer;
    outer.add_success_txn(inner);
    inner->add_success_put(p + "n2", "added later");
    auto inner_fail = std::make_shared<etcdv3::Transaction>();
    inner_fail->add_success_put(p + "n3", "on failure");
    outer.add_failure_txn(inner_fail);
    r = c.txn(outer).get();
    CHECK_OK(r);
    CHECK_EQ(c.get(p + "n1").get().value().as_string(), std::string("inner"));
    CHECK_EQ(c.get(p + "n2").get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK_EQ(c.get(p + "n3").get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);

    // setup_* by value
    CHECK_OK(c.put(p + "k", "v1").get());
    etcdv3::Transaction h1;
    h1.setup_compare_and_create(p + "k", "v1", p + "created", "c", lease);
    CHECK_OK(c.txn(h1).get());
    CHECK_EQ(c.get(p + "created").get().value().lease(), lease);
    etcdv3::Transaction h2;
    h2.setup_compare_or_create(p + "k", "v1", p + "created2", "c");
    r = c.txn(h2).get();
    CHECK_EQ(r.error_code(), etcdv3::ERROR_COMPARE_FAILED);
    CHECK_EQ(r.value().as_string(), std::string("v1"));  // the failure range of k
    etcdv3::Transaction h3;
    h3.setup_compare_or_swap(p + "k", "other", "v2");
    CHECK_OK(c.txn(h3).get());
    etcdv3::Transaction h4;
    h4.setup_compare_and_delete(p + "k", "v2", p + "created");
    r = c.txn(h4).get();
    CHECK_OK(r);
    CHECK_EQ(r.value().key(), p + "created");
    CHECK_EQ(r.prev_value().key(), p + "created");
    CHECK_OK(c.put(p + "del/1", "x").get());
    CHECK_OK(c.put(p + "del/2", "x").get());
    etcdv3::Transaction h5;
    h5.setup_compare_or_delete(p + "k", "other", p + "del/", "", true);
    r = c.txn(h5).get();
    CHECK_OK(r);
    CHECK_EQ(r.values().size(), size_t{2});

    // setup_* by revision
    int64_t mod = c.get(p + "k").get().value().modified_index();
    etcdv3::Transaction m1;
    m1.setup_compare_and_swap(p + "k", mod, "v3");
    CHECK_OK(c.txn(m1).get());
    etcdv3::Transaction m2;
    m2.setup_compare_and_swap(p + "k", mod, "v4");  // stale revision
    CHECK_EQ(c.txn(m2).get().error_code(), etcdv3::ERROR_COMPARE_FAILED);
    mod = c.get(p + "k").get().value().modified_index();
    etcdv3::Transaction m3;
    m3.setup_compare_or_swap(p + "k", mod + 1000, "v5");
    CHECK_OK(c.txn(m3).get());
    mod = c.get(p + "k").get().value().modified_index();
    etcdv3::Transaction m4;
    m4.setup_compare_and_create(p + "k", mod, p + "c2", "x");
    CHECK_OK(c.txn(m4).get());
    etcdv3::Transaction m5;
    m5.setup_compare_or_create(p + "k", mod, p + "c3", "x");
    CHECK_EQ(c.txn(m5).get().error_code(), etcdv3::ERROR_COMPARE_FAILED);
    etcdv3::Transaction m6;
    m6.setup_compare_and_delete(p + "k", mod, p + "c2");
    CHECK_OK(c.txn(m6).get());
    etcdv3::Transaction m7;
    m7.setup_compare_or_delete(p + "k", mod, p + "c2");
    CHECK_EQ(c.txn(m7).get().error_code(), etcdv3::ERROR_COMPARE_FAILED);
    etcdv3::Transaction m8;
    m8.setup_delete(p + "del/", p + "del0");
    m8.setup_delete(p + "k", "", false);
    CHECK_OK(c.txn(m8).get());
    CHECK_EQ(c.get(p + "k").get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    c.leaserevoke(lease).wait();
}

// Concurrent compare-and-swap increments: every one lands once.
void test_txn_counter() {
    etcd::Client c(endpoints);
    std::string key = prefix() + "counter";
    CHECK_OK(c.put(key, "0").get());
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int i = 0; i < 4; i++) {
        threads.emplace_back([&] {
            for (int n = 0; n < 10;) {
                etcd::Response cur = c.get(key).get();
                int v = std::stoi(cur.value().as_string());
                etcdv3::Transaction t;
                t.setup_compare_and_swap(key, std::to_string(v), std::to_string(v + 1));
                etcd::Response r = c.txn(t).get();
                if (r.is_ok()) {
                    n++;
                } else if (r.error_code() != etcdv3::ERROR_COMPARE_FAILED) {
                    failures++;
                    return;
                }
            }
        });
    }
    for (auto &t : threads) {
        t.join();
    }
    CHECK_EQ(failures.load(), 0);
    CHECK_EQ(c.get(key).get().value().as_string(), std::string("40"));
}

void test_modify_if_rm_if() {
    etcd::Client c(endpoints);
    etcd::SyncClient s(endpoints);
    std::string p = prefix();
    std::string k = p + "k";
    int64_t lease = c.leasegrant(60).get().value().lease();
    CHECK_OK(c.add(k, "42").get());

    etcd::Response r = c.modify_if(k, "43", "42").get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("compareAndSwap"));
    CHECK_EQ(r.value().as_string(), std::string("43"));
    CHECK_EQ(r.value().key(), k);
    CHECK_EQ(r.index(), r.value().modified_index());
    int64_t index = r.index();
    r = c.modify_if(k, "44", "42").get();
    CHECK_EQ(r.error_code(), etcdv3::ERROR_COMPARE_FAILED);
    CHECK_EQ(r.error_message(), kCompareFailed);
    CHECK_EQ(r.action(), std::string("compareAndSwap"));
    CHECK_EQ(r.value().as_string(), std::string("43"));
    r = c.modify_if(k, "44", index).get();
    CHECK_OK(r);
    CHECK_EQ(r.value().as_string(), std::string("44"));
    CHECK_EQ(c.modify_if(k, "45", index).get().error_code(), etcdv3::ERROR_COMPARE_FAILED);
    r = c.modify_if(k, "45", "44", lease).get();
    CHECK_OK(r);
    CHECK_EQ(r.value().lease(), lease);
    r = c.modify_if(k, "46", r.index(), lease).get();
    CHECK_OK(r);
    CHECK_EQ(r.value().lease(), lease);
    r = c.modify_if(k, "47", "46", kBadLease).get();
    CHECK_EQ(r.error_code(), etcdv3::ERROR_GRPC_NOT_FOUND);
    CHECK_EQ(r.error_message(), kNoLease);
    r = c.modify_if(p + "missing", "1", "0").get();
    CHECK_EQ(r.error_code(), etcdv3::ERROR_COMPARE_FAILED);
    r = s.modify_if(k, "47", "46");
    CHECK_OK(r);
    CHECK_OK(s.modify_if(k, "48", r.index()));

    r = c.rm_if(k, "nope").get();
    CHECK_EQ(r.error_code(), etcdv3::ERROR_COMPARE_FAILED);
    CHECK_EQ(r.error_message(), kCompareFailed);
    CHECK_EQ(r.action(), std::string("compareAndDelete"));
    r = c.rm_if(k, "48").get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("compareAndDelete"));
    CHECK_EQ(r.value().as_string(), std::string("48"));
    CHECK_EQ(r.prev_value().as_string(), std::string("48"));
    CHECK_EQ(c.get(k).get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK_EQ(c.rm_if(k, "48").get().error_code(), etcdv3::ERROR_COMPARE_FAILED);
    r = c.set(k, "x").get();
    int64_t set_index = r.index();
    CHECK_EQ(c.rm_if(k, set_index - 1).get().error_code(), etcdv3::ERROR_COMPARE_FAILED);
    CHECK_OK(c.rm_if(k, set_index).get());
    CHECK_OK(s.set(k, "y"));
    CHECK_OK(s.rm_if(k, "y"));
    CHECK_OK(s.set(k, "z"));
    CHECK_OK(s.rm_if(k, s.get(k).index()));
    c.leaserevoke(lease).wait();
}

// Error codes and messages of the plain calls.
void test_messages() {
    etcd::Client c(endpoints);
    std::string p = prefix();
    CHECK_OK(c.add(p + "a", "1").get());
    etcd::Response r = c.add(p + "a", "2").get();
    CHECK_EQ(r.error_code(), etcdv3::ERROR_KEY_ALREADY_EXISTS);
    CHECK_EQ(r.error_message(), kExists);
    CHECK_EQ(r.value().as_string(), std::string("1"));
    r = c.get(p + "none").get();
    CHECK_EQ(r.error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK_EQ(r.error_message(), kNotFound);
    CHECK_EQ(c.rm(p + "none").get().error_message(), kNotFound);
    CHECK_EQ(c.rmdir(p + "none/", true).get().error_message(), kNotFound);
    r = c.modify(p + "none", "1").get();
    CHECK_EQ(r.error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK_EQ(r.error_message(), kNotFound);
    // a lease that does not exist: 5 and etcd's message, for every write
    for (etcd::Response bad : {c.set(p + "a", "1", kBadLease).get(), c.add(p + "b", "1", kBadLease).get(),
                               c.modify(p + "a", "1", kBadLease).get(),
                               c.put(p + "a", "1", kBadLease).get()}) {
        CHECK_EQ(bad.error_code(), etcdv3::ERROR_GRPC_NOT_FOUND);
        CHECK_EQ(bad.error_message(), kNoLease);
    }
}

// get / ls / keys at a past revision.
void test_revisions() {
    etcd::Client c(endpoints);
    etcd::SyncClient s(endpoints);
    std::string p = prefix();
    int64_t r1 = c.put(p + "k", "old").get().index();
    CHECK_OK(c.put(p + "j", "j").get());
    int64_t r2 = c.put(p + "k", "new").get().index();
    CHECK(r2 > r1);
    etcd::Response r = c.get(p + "k", r1).get();
    CHECK_OK(r);
    CHECK_EQ(r.value().as_string(), std::string("old"));
    CHECK_EQ(s.get(p + "k", r2).value().as_string(), std::string("new"));
    CHECK_EQ(c.get(p + "j", r1).get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    r = c.get(p + "k", r2 + 1000000).get();  // a future revision: 11 with etcd's message
    CHECK_EQ(r.error_code(), etcdv3::ERROR_GRPC_OUT_OF_RANGE);
    CHECK(r.error_message().find("future revision") != std::string::npos);

    CHECK_EQ(c.ls(p, 0, r1).get().keys().size(), size_t{1});
    CHECK_EQ(c.ls(p, 0, r2).get().keys().size(), size_t{2});
    CHECK_EQ(c.ls(p, 1, r2).get().keys().size(), size_t{1});
    CHECK_EQ(s.ls(p, 0, r1).value().as_string(), std::string("old"));
    r = c.ls(p + "j", p + "l", 0, r1).get();
    CHECK_EQ(r.keys().size(), size_t{1});
    CHECK_EQ(r.value().as_string(), std::string("old"));
    CHECK_EQ(s.ls(p + "j", p + "l", 1, r2).keys().size(), size_t{1});
    r = c.keys(p, 0, r2).get();
    CHECK_EQ(r.keys().size(), size_t{2});
    CHECK_EQ(r.values().size(), size_t{2});
    CHECK_EQ(r.values()[1].as_string(), std::string(""));
    CHECK_EQ(r.values()[1].key(), p + "k");
    CHECK_EQ(s.keys(p, 0, r1).keys().size(), size_t{1});
    CHECK_EQ(c.keys(p + "j", p + "l", 0, r1).get().keys().size(), size_t{1});
    CHECK_EQ(s.keys(p + "j", p + "l", 0, r2).keys().size(), size_t{2});
}

// Byte-string keys (NULs, not UTF-8) and ranges between any bytes.
void test_binary() {
    etcd::Client c(endpoints);
    std::string p = prefix();
    std::string k = p + std::string("key\0xyz", 7);
    std::string v("42\0foo", 6);
    CHECK_OK(c.put(k, v).get());
    CHECK_EQ(c.get(p + "key").get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    etcd::Response r = c.get(k).get();
    CHECK_OK(r);
    CHECK_EQ(r.value().key(), k);
    CHECK_EQ(r.value().as_string(), v);
    std::string raw = p + "\xff\xfe";
    CHECK_OK(c.set(raw, "bin").get());
    CHECK_OK(c.modify(raw, "bin2").get());
    CHECK_EQ(c.add(raw, "x").get().error_code(), etcdv3::ERROR_KEY_ALREADY_EXISTS);
    r = c.ls(p).get();
    CHECK_EQ(r.keys().size(), size_t{2});
    CHECK_EQ(r.key(0), k);
    CHECK_EQ(r.key(1), raw);
    r = c.ls(p + "key", std::string("\xC0\x80")).get();  // to a range end that is not UTF-8
    CHECK_OK(r);
    CHECK_EQ(r.keys().size(), size_t{2});
    CHECK_EQ(c.ls(p, etcdv3::detail::string_plus_one(p + "key")).get().keys().size(), size_t{1});
    CHECK_EQ(c.keys(p + "\xff", etcdv3::NUL).get().keys().size(), size_t{1});
    r = c.ls(k, "").get();  // an empty range end: the key alone
    CHECK_OK(r);
    CHECK_EQ(r.value().as_string(), v);
    CHECK(r.values().empty());
    r = c.keys(k, "").get();
    CHECK_EQ(r.value().key(), k);
    CHECK_EQ(r.value().as_string(), std::string(""));
    r = c.rm(k).get();
    CHECK_OK(r);
    CHECK_EQ(r.prev_value().as_string(), v);
    r = c.rmdir(p + "\xff", std::string("\xff\xff")).get();
    CHECK_OK(r);
    CHECK_EQ(r.values().size(), size_t{1});
    CHECK_EQ(c.rmdir(raw).get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
}

void test_leases_list() {
    etcd::Client c(endpoints);
    etcd::SyncClient s(endpoints);
    int64_t lease = c.leasegrant(60).get().value().lease();
    etcd::Response r = c.leases().get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("leaseleases"));
    CHECK(std::find(r.leases().begin(), r.leases().end(), lease) != r.leases().end());
    CHECK(!s.leases().leases().empty());
    CHECK_OK(c.leaserevoke(lease).get());
    r = s.leases();
    CHECK(std::find(r.leases().begin(), r.leases().end(), lease) == r.leases().end());
}

// Members: list, add a learner (it never starts; a learner does not count for the quorum),
// list it, remove it.
void test_members() {
    etcd::Client c(endpoints);
    etcd::SyncClient s(endpoints);
    etcd::Response r = c.list_member().get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("listmember"));
    CHECK_EQ(r.members().size(), size_t{1});
    etcdv3::Member const &m = r.members()[0];
    CHECK(m.get_id() != 0);
    CHECK(!m.get_name().empty());
    CHECK(!m.get_peerURLs().empty());
    CHECK(!m.get_clientURLs().empty());
    CHECK(!m.get_learner());

    std::string peer = "http://127.0.0.1:" + std::to_string(dead_port());
    r = c.add_member(peer, true).get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("addmember"));
    CHECK_EQ(r.members().size(), size_t{1});
    uint64_t id = r.members()[0].get_id();
    CHECK(id != 0);
    CHECK(r.members()[0].get_learner());
    r = s.list_member();
    CHECK_EQ(r.members().size(), size_t{2});
    bool seen = false;
    for (auto const &one : r.members()) {
        if (one.get_id() == id) {
            seen = true;
            CHECK(one.get_learner());
            CHECK_EQ(one.get_peerURLs().size(), size_t{1});
            CHECK_EQ(one.get_peerURLs()[0], peer);
            CHECK(one.get_name().empty());
        }
    }
    CHECK(seen);
    r = c.remove_member(id).get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("removemember"));
    CHECK_EQ(s.list_member().members().size(), size_t{1});
    r = s.remove_member(id);
    CHECK(!r.is_ok());
    CHECK_EQ(r.action(), std::string("removemember"));
    CHECK(!s.add_member("", false).is_ok());

    etcdv3::Member made;
    made.set_id(7);
    made.set_name("n");
    made.set_peerURLs({"p"});
    made.set_clientURLs({"c1", "c2"});
    made.set_learner(true);
    CHECK_EQ(made.get_id(), uint64_t{7});
    CHECK_EQ(made.get_name(), std::string("n"));
    CHECK_EQ(made.get_clientURLs().size(), size_t{2});
    CHECK(made.get_learner());
    CHECK(!etcdv3::Member().get_learner());
}

// ls("") and rmdir("", true): the whole key space. Last: it deletes everything.
void test_whole_keyspace() {
    etcd::Client c(endpoints);
    etcd::SyncClient s(endpoints);
    CHECK_OK(c.put("/whole/a", "1").get());
    CHECK_OK(c.put(std::string("\x01z", 2), "2").get());
    etcd::Response r = c.ls("").get();
    CHECK_OK(r);
    CHECK(r.keys().size() >= 2);
    size_t n = r.keys().size();
    CHECK_EQ(s.keys("").keys().size(), n);
    r = c.rmdir("", true).get();
    CHECK_OK(r);
    CHECK_EQ(r.values().size(), n);
    CHECK(c.ls("").get().values().empty());
    CHECK_EQ(c.rmdir("", true).get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
}

}  // namespace

int main() {
    const test_case cases[] = {
        {"resolve", test_resolve},         {"txn_basic", test_txn_basic},
        {"txn_compares", test_txn_compares}, {"txn_ops", test_txn_ops},
        {"txn_counter", test_txn_counter}, {"modify_if_rm_if", test_modify_if_rm_if},
        {"messages", test_messages},       {"revisions", test_revisions},
        {"binary", test_binary},           {"leases_list", test_leases_list},
        {"members", test_members},         {"whole_keyspace", test_whole_keyspace},
    };
    return run_cases(cases);
}
