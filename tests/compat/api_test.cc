// API test of the etcd-cpp-apiv3 compatibility headers (include/etcd/): every implemented
// function of Client, SyncClient, KeepAlive, Watcher, Response, Value, Event and pplx::task,
// against the etcd started by tests/with_etcd.py. Built with -Wall -Wextra -Werror.
//
// Environment: ETCD_SD_TEST_ENDPOINTS (required); ETCD_SD_TEST_SLOW=1 (valgrind: longer
// waits); ETCD_SD_TEST_ONLY=<substring> runs the matching cases only. The harness (CHECK,
// CHECK_EQ, bound, run_cases) is tests/cpp/test_util.hpp.

#include <etcd/Client.hpp>
#include <etcd/KeepAlive.hpp>
#include <etcd/Response.hpp>
#include <etcd/SyncClient.hpp>
#include <etcd/Value.hpp>
#include <etcd/Watcher.hpp>

#include "compat_util.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string prefix() { return unique_prefix("compat-api"); }

// Collects watch Responses from a callback thread.
struct Inbox {
    std::mutex m;
    std::condition_variable cv;
    std::deque<etcd::Response> items;

    void push(etcd::Response r) {
        {
            std::lock_guard<std::mutex> l(m);
            items.push_back(std::move(r));
        }
        cv.notify_all();
    }

    // The next Response, or fail after `ms`.
    etcd::Response pop(int ms = 5000) {
        std::unique_lock<std::mutex> l(m);
        if (!cv.wait_for(l, std::chrono::milliseconds(bound(ms)), [&] { return !items.empty(); })) {
            fail(__FILE__, __LINE__, "no watch event within " + std::to_string(ms) + " ms");
        }
        etcd::Response r = std::move(items.front());
        items.pop_front();
        return r;
    }

    // Next event (one Response may carry several).
    std::deque<etcd::Event> pending;
    etcd::Event next_event(int ms = 5000) {
        while (pending.empty()) {
            etcd::Response r = pop(ms);
            for (auto const &e : r.events()) {
                pending.push_back(e);
            }
        }
        etcd::Event e = pending.front();
        pending.pop_front();
        return e;
    }

    bool empty_for(int ms) {
        std::unique_lock<std::mutex> l(m);
        return !cv.wait_for(l, std::chrono::milliseconds(ms), [&] { return !items.empty(); });
    }
};

// --- cases ---------------------------------------------------------------------------------

void test_constructors() {
    std::string hostport = endpoints.substr(endpoints.find("://") + 3);
    {
        etcd::Client c(endpoints);
        CHECK_OK(c.put(prefix() + "k", "v").get());
    }
    {
        etcd::Client c(hostport, "round_robin");  // no scheme
        CHECK_OK(c.head().get());
    }
    {
        // several URLs, ',' and ';' with spaces; the first is dead
        std::string urls = "http://127.0.0.1:" + std::to_string(dead_port()) + " ; " + endpoints + " ,";
        etcd::Client c(urls);
        CHECK_OK(c.head().get());
    }
    {
        std::unique_ptr<etcd::Client> c(etcd::Client::WithUrl(endpoints));
        CHECK_OK(c->head().get());
        std::unique_ptr<etcd::SyncClient> s(etcd::SyncClient::WithUrl(endpoints, "pick_first"));
        CHECK_OK(s->head());
        std::unique_ptr<etcd::Client> borrowed(etcd::Client::WithClient(s.get()));
        CHECK(borrowed->sync_client() == s.get());
        etcd::Client borrowed2(s.get());
        CHECK_OK(borrowed2.head().get());
    }
    {
        // user/password: no I/O in the constructor; against an etcd without auth the call
        // fails or succeeds, but returns.
        etcd::Client c(endpoints, "nobody", "secret");
        etcd::Client c2(endpoints, "nobody", "secret", 300, "round_robin");
        std::unique_ptr<etcd::Client> c3(etcd::Client::WithUser(endpoints, "nobody", "secret"));
        (void)c.head().get();
        etcd::SyncClient s(endpoints, "nobody", "secret");
        std::unique_ptr<etcd::SyncClient> s2(etcd::SyncClient::WithUser(endpoints, "nobody", "secret"));
    }
    // TLS constructor: an unreadable CA file is an error at construction or at the first call.
    {
        bool threw = throws<std::exception>([] {
            etcd::Client c(endpoints, "/nonexistent/ca.pem", "", "", "");
            etcd::Response r = c.head().get();
            if (!r.is_ok()) {
                throw std::runtime_error(r.error_message());
            }
        });
        CHECK(threw);
        CHECK(throws<std::exception>([] {
            std::unique_ptr<etcd::Client> c(etcd::Client::WithSSL(endpoints, "/nonexistent/ca.pem"));
            etcd::Response r = c->head().get();
            if (!r.is_ok()) {
                throw std::runtime_error(r.error_message());
            }
        }));
        CHECK(throws<std::exception>([] {
            std::unique_ptr<etcd::SyncClient> c(etcd::SyncClient::WithSSL(endpoints, "/nonexistent/ca.pem"));
            etcd::Response r = c->head();
            if (!r.is_ok()) {
                throw std::runtime_error(r.error_message());
            }
        }));
    }
    CHECK(throws<std::invalid_argument>([] { etcd::Client c(" , ;"); }));
    CHECK(throws<std::invalid_argument>([] { etcd::SyncClient c("ftp://x:1"); }));
    // A bad environment variable names itself.
    const char *saved = std::getenv("ETCD_SD_CONNECT_TIMEOUT_MS");
    std::string saved_value = saved != nullptr ? saved : "";
    setenv("ETCD_SD_CONNECT_TIMEOUT_MS", "soon", 1);
    bool named = false;
    try {
        etcd::Client c(endpoints);
    } catch (std::invalid_argument const &e) {
        named = std::string(e.what()).find("ETCD_SD_CONNECT_TIMEOUT_MS") != std::string::npos;
    }
    if (saved != nullptr) {
        setenv("ETCD_SD_CONNECT_TIMEOUT_MS", saved_value.c_str(), 1);
    } else {
        unsetenv("ETCD_SD_CONNECT_TIMEOUT_MS");
    }
    CHECK(named);
}

void test_kv() {
    etcd::Client c(endpoints);
    std::string p = prefix();

    etcd::Response r = c.get(p + "missing").get();
    CHECK(!r.is_ok());
    CHECK_EQ(r.error_code(), etcd::ERROR_KEY_NOT_FOUND);
    CHECK_EQ(r.error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK_EQ(r.action(), std::string("get"));
    CHECK(!r.error_message().empty());

    r = c.put(p + "a", "1").get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string(etcdv3::PUT_ACTION));
    CHECK(r.index() > 0);
    int64_t rev_a = r.index();

    r = c.get(p + "a").get();
    CHECK_OK(r);
    CHECK_EQ(r.value().key(), p + "a");
    CHECK_EQ(r.value().as_string(), std::string("1"));
    CHECK_EQ(r.value().version(), int64_t{1});
    CHECK_EQ(r.value().created_index(), rev_a);
    CHECK_EQ(r.value().modified_index(), rev_a);
    CHECK_EQ(r.value().lease(), int64_t{0});
    CHECK(!r.value().is_dir());
    CHECK(r.index() >= rev_a);
    CHECK_EQ(r.action(), std::string("get"));

    r = c.set(p + "a", "2").get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("set"));
    CHECK_EQ(r.prev_value().as_string(), std::string("1"));
    CHECK_EQ(r.value().as_string(), std::string("2"));

    r = c.add(p + "a", "3").get();
    CHECK(!r.is_ok());
    CHECK_EQ(r.error_code(), etcd::ERROR_KEY_ALREADY_EXISTS);
    CHECK_EQ(r.action(), std::string("create"));
    CHECK_EQ(r.value().as_string(), std::string("2"));
    r = c.add(p + "b", "b1").get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("create"));

    r = c.modify(p + "nothere", "x").get();
    CHECK_EQ(r.error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK(c.get(p + "nothere").get().error_code() == 100);  // modify created nothing
    r = c.modify(p + "b", "b2").get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("update"));
    CHECK_EQ(r.prev_value().as_string(), std::string("b1"));

    // binary value
    std::string bin("x\0y\xff", 4);
    CHECK_OK(c.put(p + "bin", bin).get());
    CHECK(c.get(p + "bin").get().value().as_string() == bin);

    // ls / keys
    CHECK_OK(c.put(p + "dir/1", "one").get());
    CHECK_OK(c.put(p + "dir/2", "two").get());
    CHECK_OK(c.put(p + "dir/3", "three").get());
    r = c.ls(p + "dir/").get();
    CHECK_OK(r);
    CHECK_EQ(r.values().size(), size_t{3});
    CHECK_EQ(r.keys().size(), size_t{3});
    CHECK_EQ(r.key(0), p + "dir/1");
    CHECK_EQ(r.value(2).as_string(), std::string("three"));
    CHECK_EQ(r.value().as_string(), std::string("one"));
    CHECK_EQ(r.action(), std::string("get"));
    r = c.ls(p + "dir/", 2).get();
    CHECK_EQ(r.keys().size(), size_t{2});
    r = c.ls(p + "empty/").get();
    CHECK_OK(r);
    CHECK(r.values().empty());
    r = c.ls(p + "dir/2", p + "dir/4").get();  // [dir/2, dir/4)
    CHECK_EQ(r.keys().size(), size_t{2});
    CHECK_EQ(r.key(0), p + "dir/2");
    r = c.ls(p + "dir/1", p + "dir/3", 1).get();
    CHECK_EQ(r.keys().size(), size_t{1});
    r = c.keys(p + "dir/").get();
    CHECK_EQ(r.keys().size(), size_t{3});
    CHECK_EQ(r.values().size(), size_t{3});  // one per key, without its value
    CHECK_EQ(r.values()[0].as_string(), std::string(""));
    CHECK_EQ(r.values()[0].key(), p + "dir/1");
    CHECK_EQ(c.keys(p + "dir/", 1).get().keys().size(), size_t{1});
    CHECK_EQ(c.keys(p + "dir/1", p + "dir/3").get().keys().size(), size_t{2});
    CHECK_EQ(c.keys(p + "dir/1", p + "dir/3", 1).get().keys().size(), size_t{1});

    // rm / rmdir
    r = c.rm(p + "nothere").get();
    CHECK_EQ(r.error_code(), 100);
    r = c.rm(p + "a").get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("delete"));
    CHECK_EQ(r.prev_value().as_string(), std::string("2"));
    CHECK_EQ(r.value().key(), p + "a");
    r = c.rmdir(p + "dir/1").get();  // not recursive: the key itself
    CHECK_OK(r);
    CHECK_EQ(r.values().size(), size_t{1});
    r = c.rmdir(p + "dir/", true).get();
    CHECK_OK(r);
    CHECK_EQ(r.values().size(), size_t{2});
    CHECK_EQ(r.keys().size(), size_t{2});
    CHECK_EQ(c.rmdir(p + "dir/", true).get().error_code(), 100);
    CHECK_OK(c.put(p + "r/1", "x").get());
    r = c.rmdir(p + "r/", etcdv3::detail::string_plus_one(p + "r/")).get();
    CHECK_OK(r);
    CHECK_EQ(r.values().size(), size_t{1});
    CHECK_OK(c.put(p + "r/1", "x").get());
    r = c.rmdir(p + "r/", (etcdv3::detail::string_plus_one(p + "r/")).c_str()).get();
    CHECK_OK(r);
    for (char const *k : {"r/1", "r/2", "r/3"}) {
        CHECK_OK(c.put(p + k, "x").get());
    }
    r = c.rmdir(p + "r/1", p + "r/3").get();  // any range: [r/1, r/3)
    CHECK_OK(r);
    CHECK_EQ(r.values().size(), size_t{2});
    CHECK_EQ(c.ls(p + "r/").get().keys().size(), size_t{1});

    CHECK_EQ(etcdv3::detail::string_plus_one("/a/"), std::string("/a0"));
    CHECK_EQ(etcdv3::detail::string_plus_one(std::string("\xff", 1)), etcdv3::NUL);

    r = c.head().get();
    CHECK_OK(r);
    CHECK(r.index() > 0);
    CHECK_EQ(r.cluster_id(), uint64_t{0});
    CHECK_EQ(r.member_id(), uint64_t{0});
    CHECK_EQ(r.raft_term(), uint64_t{0});
    CHECK(r.duration().count() >= 0);
    CHECK(etcd::detail::duration_till_now(std::chrono::high_resolution_clock::now()).count() >= 0);
    etcd::Response blank;
    CHECK(blank.is_ok() && blank.action().empty() && blank.events().empty());
    CHECK(r.leases().empty());
    CHECK(r.lock_key().empty());
    CHECK(r.name().empty());
    CHECK_EQ(r.compact_revision(), int64_t{-1});
    CHECK_EQ(r.watch_id(), int64_t{-1});
    CHECK(!r.is_network_unavailable());
    CHECK(!r.is_grpc_timeout());

    // Value / Event printing
    std::ostringstream os;
    os << c.get(p + "b").get().value();
    CHECK(os.str().find("b2") != std::string::npos);

    // set_grpc_timeout / get_grpc_timeout
    CHECK(c.get_grpc_timeout().count() == 0);
    c.set_grpc_timeout(std::chrono::milliseconds(2500));
    CHECK(c.get_grpc_timeout() == std::chrono::microseconds(2500000));
    CHECK_OK(c.get(p + "b").get());
    c.set_grpc_timeout(std::chrono::seconds(0));
    CHECK(c.get_grpc_timeout().count() == 0);
    CHECK(c.current_auth_token().empty());
}

void test_sync_client() {
    etcd::SyncClient s(endpoints);
    std::string p = prefix();
    CHECK_OK(s.put(p + "x", "1"));
    CHECK_EQ(s.get(p + "x").value().as_string(), std::string("1"));
    CHECK_OK(s.set(p + "x", "2"));
    CHECK_EQ(s.add(p + "x", "3").error_code(), 105);
    CHECK_OK(s.modify(p + "x", "4"));
    CHECK_EQ(s.ls(p).keys().size(), size_t{1});
    CHECK_EQ(s.ls(p, 1).keys().size(), size_t{1});
    CHECK_EQ(s.ls(p + "x", p + "y").keys().size(), size_t{1});
    CHECK_EQ(s.ls(p + "x", p + "y", 1).keys().size(), size_t{1});
    CHECK_EQ(s.keys(p).keys().size(), size_t{1});
    CHECK_EQ(s.keys(p, 1).keys().size(), size_t{1});
    CHECK_EQ(s.keys(p + "x", p + "y").keys().size(), size_t{1});
    CHECK_EQ(s.keys(p + "x", p + "y", 1).keys().size(), size_t{1});
    CHECK_OK(s.rm(p + "x"));
    CHECK_OK(s.put(p + "y/1", "1"));
    CHECK_OK(s.rmdir(p + "y/", true));
    CHECK_OK(s.put(p + "y/1", "1"));
    CHECK_OK(s.rmdir(p + "y/", etcdv3::detail::string_plus_one(p + "y/")));
    CHECK_OK(s.put(p + "y/1", "1"));
    CHECK_OK(s.rmdir(p + "y/", etcdv3::detail::string_plus_one(p + "y/").c_str()));
    CHECK_OK(s.head());
    s.set_grpc_timeout(std::chrono::seconds(2));
    CHECK(s.get_grpc_timeout() == std::chrono::microseconds(2000000));
    CHECK(s.current_auth_token().empty());

    etcd::Response g = s.leasegrant(5);
    CHECK_OK(g);
    CHECK_EQ(g.action(), std::string("leasegrant"));
    int64_t lease = g.value().lease();
    CHECK(lease != 0);
    CHECK_EQ(g.value().ttl(), 5);
    CHECK_OK(s.put(p + "l", "v", lease));
    CHECK_EQ(s.get(p + "l").value().lease(), lease);
    etcd::Response t = s.leasetimetolive(lease);
    CHECK_OK(t);
    CHECK_EQ(t.action(), std::string("leasetimetolive"));
    CHECK_EQ(t.value().lease(), lease);
    CHECK(t.value().ttl() > 0 && t.value().ttl() <= 5);
    etcd::Response rv = s.leaserevoke(lease);
    CHECK_OK(rv);
    CHECK_EQ(rv.action(), std::string("leaserevoke"));
    CHECK_EQ(s.get(p + "l").error_code(), 100);
    CHECK_EQ(s.leaserevoke(lease).error_code(), etcdv3::ERROR_GRPC_NOT_FOUND);
    CHECK_EQ(s.leasetimetolive(lease).value().ttl(), -1);

    auto ka = s.leasekeepalive(3);
    CHECK(ka->Lease() != 0);
    CHECK_OK(s.put(p + "ka", "v", ka->Lease()));
    ka->Check();
    ka->Cancel();
    ka->Cancel();
}

// Lease calls answer etcd's reply, not their arguments; puts answer the lease they went under;
// conditional puts tell a missing lease from a missing key.
void test_lease_replies() {
    etcd::SyncClient s(endpoints);
    std::string p = prefix();

    // leasegrant: the TTL etcd granted. etcd raises a TTL under its minimum (2 s with the
    // default election timeout), so an echo of the argument (1) would fail here.
    etcd::Response g1 = s.leasegrant(1);
    CHECK_OK(g1);
    CHECK(g1.value().ttl() >= 2);
    CHECK_EQ(g1.value().granted_ttl(), static_cast<int64_t>(g1.value().ttl()));
    CHECK(g1.index() > 0);
    etcd::Response g = s.leasegrant(5);
    CHECK_EQ(g.value().ttl(), 5);
    int64_t lease = g.value().lease();

    // leasetimetolive: the TTL left and the TTL granted; every lease call has its revision
    etcd::Response put = s.put(p + "l", "v", lease);
    CHECK_OK(put);
    etcd::Response t = s.leasetimetolive(lease);
    CHECK_OK(t);
    CHECK_EQ(t.value().granted_ttl(), int64_t{5});
    CHECK(t.value().ttl() > 0 && t.value().ttl() <= 5);
    CHECK(t.index() >= put.index());
    CHECK(s.leases().index() >= put.index());
    etcd::Response rv = s.leaserevoke(lease);
    CHECK_OK(rv);
    CHECK(rv.index() > put.index());  // the revoke deleted p + "l": a new revision

    // modify() under a lease that does not exist is etcd's "lease not found" (5), not 100
    CHECK_OK(s.set(p + "m", "v"));
    etcd::Response m = s.modify(p + "m", "w", lease);
    CHECK_EQ(m.error_code(), etcdv3::ERROR_GRPC_NOT_FOUND);
    CHECK_MSG(m.error_message().find("lease not found") != std::string::npos, m.error_message());
    CHECK_EQ(s.modify(p + "missing", "w").error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK_EQ(s.add(p + "new", "w", lease).error_code(), etcdv3::ERROR_GRPC_NOT_FOUND);
    // add() of an existing key: 105, and value() is what is there (read in the same request)
    etcd::Response a = s.add(p + "m", "w");
    CHECK_EQ(a.error_code(), etcdv3::ERROR_KEY_ALREADY_EXISTS);
    CHECK_EQ(a.value().as_string(), std::string("v"));
    CHECK(a.index() > 0);

    // a put naming a KeepAlive's lease after etcd lost it answers the lease it went under
    const char *ctl = std::getenv("ETCDCTL");
    if (ctl == nullptr) {
        std::printf("  (ETCDCTL unset: the replaced-lease case is skipped)\n");
        return;
    }
    auto ka = s.leasekeepalive(3);
    int64_t old = ka->Lease();
    char cmd[512];
    std::snprintf(cmd, sizeof cmd, "%s --endpoints=%s lease revoke %llx >/dev/null", ctl,
                  endpoints.c_str(), static_cast<unsigned long long>(old));
    CHECK(std::system(cmd) == 0);
    WAIT_UNTIL("the keep-alive holds a new lease", [&] { return ka->Lease() != old; });
    etcd::Response r = s.put(p + "r", "v", old);
    CHECK_OK(r);
    CHECK(r.value().lease() != old);
    CHECK_EQ(r.value().lease(), ka->Lease());
    CHECK_EQ(s.get(p + "r").value().lease(), ka->Lease());
}

void test_leases() {
    etcd::Client c(endpoints);
    std::string p = prefix();

    // put with the lease held in a uint64_t, as most callers do
    auto keepalive = c.leasekeepalive(3).get();
    uint64_t lease_id = keepalive->Lease();
    CHECK(lease_id != 0);
    CHECK_OK(c.put(p + "k", "v", lease_id).get());
    CHECK_OK(c.set(p + "k2", "v", lease_id).get());
    CHECK_OK(c.add(p + "k3", "v", lease_id).get());
    CHECK_OK(c.modify(p + "k3", "v2", lease_id).get());
    CHECK_EQ(static_cast<uint64_t>(c.get(p + "k").get().value().lease()), lease_id);
    etcd::Response t = c.leasetimetolive(lease_id).get();
    CHECK_OK(t);
    CHECK(t.value().ttl() > 0);

    // leaserevoke without .get(): the request is still made
    int64_t g = c.leasegrant(10).get().value().lease();
    CHECK(g != 0);
    CHECK_OK(c.put(p + "g", "v", g).get());
    c.leaserevoke(g);
    CHECK_EQ(c.get(p + "g").get().error_code(), 100);
    CHECK_EQ(c.leaserevoke(g).get().error_code(), 5);

    // the KeepAlive constructors
    etcd::SyncClient s(endpoints);
    std::atomic<int> handler_calls{0};
    auto handler = [&](std::exception_ptr) { handler_calls++; };
    {
        etcd::KeepAlive k1(c, 3);
        etcd::KeepAlive k2(s, 3);
        etcd::KeepAlive k3(endpoints, 3);
        etcd::KeepAlive k4(c, handler, 3);
        etcd::KeepAlive k5(s, handler, 3);
        etcd::KeepAlive k6(endpoints, handler, 3);
        int64_t given = c.leasegrant(3).get().value().lease();
        etcd::KeepAlive k7(c, handler, 3, given);
        CHECK_EQ(k7.Lease(), given);
        int64_t given2 = c.leasegrant(3).get().value().lease();  // k8 revokes its lease when destroyed
        etcd::KeepAlive k8(s, 3, given2);
        CHECK_EQ(k8.Lease(), given2);
        for (auto *k : {&k1, &k2, &k3, &k4, &k5, &k6}) {
            CHECK(k->Lease() != 0);
            k->Check();
        }
        // user/password forms (the test etcd has no auth: etcd-sd connects without it)
        etcd::KeepAlive k9(endpoints, "nobody", "secret", 3);
        etcd::KeepAlive k10(endpoints, "nobody", "secret", handler, 3, 0, 300);
        CHECK(k9.Lease() != 0 && k10.Lease() != 0);
        // TLS form: a CA file that does not exist is an error
        CHECK(throws<std::exception>([&] { etcd::KeepAlive k(endpoints, "/nonexistent/ca.pem", "", "", handler, 3); }));
        k1.set_grpc_timeout(std::chrono::seconds(1));
        CHECK(k1.get_grpc_timeout() == std::chrono::microseconds(1000000));
        k1.Cancel();  // revokes the lease (ETCD_SD_KEEPALIVE_CANCEL unset); the handler is not called
        int64_t last = k1.Lease();
        CHECK(last != 0);
        CHECK(throws<std::runtime_error>([&] { k1.Check(); }));
        CHECK_EQ(c.leasetimetolive(last).get().value().ttl(), -1);
        // the kept lease outlives its TTL
        std::this_thread::sleep_for(std::chrono::milliseconds(4000));
        CHECK(c.leasetimetolive(k7.Lease()).get().value().ttl() > 0);
        CHECK(c.leasetimetolive(k2.Lease()).get().value().ttl() > 0);
    }
    CHECK_EQ(handler_calls.load(), 0);
    keepalive->Cancel();
}

void test_watcher() {
    etcd::Client c(endpoints);
    etcd::SyncClient s(endpoints);
    std::string p = prefix();
    Inbox in;

    // (client, key, callback taking Response const&, recursive)
    auto cb = [&](etcd::Response const &r) { in.push(r); };
    etcd::Watcher w(c, p, cb, true);
    CHECK(!w.Cancelled());
    etcd::Response put1 = c.put(p + "a", "1").get();
    etcd::Response r = in.pop();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("create"));
    CHECK_EQ(r.events().size(), size_t{1});
    CHECK(r.events()[0].event_type() == etcd::Event::EventType::PUT);
    CHECK(r.events()[0].has_kv());
    CHECK(!r.events()[0].has_prev_kv());
    CHECK_EQ(r.events()[0].kv().key(), p + "a");
    CHECK_EQ(r.value().as_string(), std::string("1"));
    CHECK_EQ(r.index(), put1.index());
    CHECK(r.watch_id() > 0);
    CHECK_EQ(r.compact_revision(), int64_t{-1});

    c.put(p + "a", "2").get();
    r = in.pop();
    CHECK_EQ(r.action(), std::string("set"));
    CHECK(r.events()[0].has_prev_kv());
    CHECK_EQ(r.events()[0].prev_kv().as_string(), std::string("1"));
    CHECK_EQ(r.prev_value().as_string(), std::string("1"));

    c.rm(p + "a").get();
    r = in.pop();
    CHECK_EQ(r.action(), std::string("delete"));
    CHECK(r.events()[0].event_type() == etcd::Event::EventType::DELETE_);
    CHECK_EQ(r.events()[0].prev_kv().as_string(), std::string("2"));
    CHECK_EQ(r.events()[0].kv().key(), p + "a");
    std::ostringstream os;
    os << r.events()[0] << " " << r.events()[0].event_type();
    CHECK(os.str().find("DELETE") != std::string::npos);

    // not recursive: only the key itself
    Inbox one;
    etcd::Watcher w1(s, p + "k", [&](etcd::Response &&resp) { one.push(std::move(resp)); });
    c.put(p + "k2", "x").get();
    c.put(p + "k", "y").get();
    etcd::Event e = one.next_event();
    CHECK_EQ(e.kv().key(), p + "k");

    // from a start revision: history is delivered
    Inbox hist;
    int64_t from = put1.index();
    etcd::Watcher w2(endpoints, p + "a", from, [&](etcd::Response resp) { hist.push(resp); });
    e = hist.next_event();
    CHECK_EQ(e.kv().as_string(), std::string("1"));
    e = hist.next_event();
    CHECK_EQ(e.kv().as_string(), std::string("2"));
    e = hist.next_event();
    CHECK(e.event_type() == etcd::Event::EventType::DELETE_);

    // a [key, range_end) watch
    Inbox range;
    etcd::Watcher w3(c, p + "m", p + "o", [&](etcd::Response resp) { range.push(resp); });
    c.put(p + "l", "out").get();
    c.put(p + "p", "out").get();
    c.put(p + "n", "in").get();
    e = range.next_event();
    CHECK_EQ(e.kv().key(), p + "n");

    // Wait(callback): true once cancelled; a second one is refused
    std::atomic<int> waited{0};
    std::mutex wm;
    std::condition_variable wcv;
    etcd::Watcher *w4 = new etcd::Watcher(s, p + "q", [](etcd::Response) {}, true);
    CHECK(w4->Wait([&](bool cancelled) {
        if (cancelled) {
            std::lock_guard<std::mutex> l(wm);
            waited++;
        }
        wcv.notify_all();
    }));
    CHECK(!w4->Wait([](bool) {}));
    CHECK(w4->Cancel());
    CHECK(w4->Cancelled());
    CHECK(w4->Cancel());
    {
        std::unique_lock<std::mutex> l(wm);
        CHECK(wcv.wait_for(l, std::chrono::milliseconds(bound(5000)), [&] { return waited == 1; }));
    }
    delete w4;

    // wait_callback given to the constructor; Wait() returns once Cancel()ed from another thread
    std::atomic<bool> got_wait{false};
    {
        etcd::Watcher w5(c, p + "r", [](etcd::Response) {}, [&](bool b) { got_wait = b; }, true);
        std::thread t([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            w5.Cancel();
        });
        CHECK(w5.Wait());
        t.join();
    }
    for (int i = 0; i < bound(100) && !got_wait; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(got_wait);

    // A callback that destroys its own Watcher
    std::atomic<bool> destroyed{false};
    std::shared_ptr<etcd::Watcher> self;
    std::mutex sm;
    {
        std::lock_guard<std::mutex> l(sm);
        self = std::make_shared<etcd::Watcher>(c, p + "s", [&](etcd::Response) {
            std::lock_guard<std::mutex> l2(sm);
            self.reset();
            destroyed = true;
        });
    }
    c.put(p + "s", "x").get();
    for (int i = 0; i < bound(100) && !destroyed; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(destroyed);

    // std::bind with a member function, as the template code bases do
    Inbox bound_inbox;
    struct Listener {
        Inbox *inbox;
        void on(etcd::Response const &resp) { inbox->push(resp); }
    } listener{&bound_inbox};
    etcd::Watcher w6(c, p + "t", std::bind(&Listener::on, &listener, std::placeholders::_1), true);
    c.put(p + "t/1", "x").get();
    CHECK_EQ(bound_inbox.next_event().kv().key(), p + "t/1");

    // every other constructor form, each seeing one put
    std::vector<std::unique_ptr<etcd::Watcher>> ws;
    Inbox all;
    auto f = [&](etcd::Response resp) { all.push(resp); };
    std::function<void(bool)> wf = [](bool) {};  // a captureless lambda would also convert to bool (ambiguous, as in the original)
    std::string k = p + "u";
    std::string ke = etcdv3::detail::string_plus_one(k);
    ws.emplace_back(new etcd::Watcher(s, k, ke, f));
    ws.emplace_back(new etcd::Watcher(c, k, int64_t{0}, f, false));
    ws.emplace_back(new etcd::Watcher(s, k, int64_t{0}, f));
    ws.emplace_back(new etcd::Watcher(c, k, ke, int64_t{0}, f));
    ws.emplace_back(new etcd::Watcher(s, k, ke, int64_t{0}, f));
    ws.emplace_back(new etcd::Watcher(endpoints, k, f));
    ws.emplace_back(new etcd::Watcher(endpoints, k, ke, f));
    ws.emplace_back(new etcd::Watcher(endpoints, k, ke, int64_t{0}, f));
    ws.emplace_back(new etcd::Watcher(s, k, f, wf));
    ws.emplace_back(new etcd::Watcher(c, k, ke, f, wf));
    ws.emplace_back(new etcd::Watcher(s, k, ke, f, wf));
    ws.emplace_back(new etcd::Watcher(c, k, int64_t{0}, f, wf));
    ws.emplace_back(new etcd::Watcher(s, k, int64_t{0}, f, wf));
    ws.emplace_back(new etcd::Watcher(c, k, ke, int64_t{0}, f, wf));
    ws.emplace_back(new etcd::Watcher(s, k, ke, int64_t{0}, f, wf));
    ws.emplace_back(new etcd::Watcher(endpoints, k, f, wf));
    ws.emplace_back(new etcd::Watcher(endpoints, k, ke, f, wf));
    ws.emplace_back(new etcd::Watcher(endpoints, k, int64_t{0}, f, wf));
    ws.emplace_back(new etcd::Watcher(endpoints, k, ke, int64_t{0}, f, wf));
    ws.emplace_back(new etcd::Watcher(endpoints, "nobody", "secret", k, f));
    ws.emplace_back(new etcd::Watcher(endpoints, "nobody", "secret", k, ke, f));
    ws.emplace_back(new etcd::Watcher(endpoints, "nobody", "secret", k, int64_t{0}, f));
    // (address, username, password, key, range_end, fromIndex, callback[, wait_callback]) has
    // the parameter types of (address, ca, cert, privkey, key, fromIndex, callback[, ...]):
    // ambiguous in etcd-cpp-apiv3 too, unless the last defaulted argument is passed.
    ws.emplace_back(new etcd::Watcher(endpoints, "nobody", "secret", k, ke, int64_t{0}, f, 300));
    ws.emplace_back(new etcd::Watcher(endpoints, "nobody", "secret", k, f, wf));
    ws.emplace_back(new etcd::Watcher(endpoints, "nobody", "secret", k, ke, f, wf));
    ws.emplace_back(new etcd::Watcher(endpoints, "nobody", "secret", k, int64_t{0}, f, wf));
    ws.emplace_back(new etcd::Watcher(endpoints, "nobody", "secret", k, ke, int64_t{0}, f, wf, 300));
    for (int form = 0; form < 4; form++) {  // TLS forms: a CA file that does not exist
        CHECK(throws<std::exception>([&] {
            std::string ca = "/nonexistent/ca.pem";
            if (form == 0) etcd::Watcher w(endpoints, ca, "", "", k, int64_t{0}, f, false, std::string());
            if (form == 1) etcd::Watcher w(endpoints, ca, "", "", k, ke, int64_t{0}, f);
            if (form == 2) etcd::Watcher w(endpoints, ca, "", "", k, int64_t{0}, f, wf, false, std::string());
            if (form == 3) etcd::Watcher w(endpoints, ca, "", "", k, ke, int64_t{0}, f, wf);
        }));
    }
    c.put(k, "all").get();
    for (size_t i = 0; i < ws.size(); i++) {
        CHECK_EQ(all.next_event().kv().as_string(), std::string("all"));
    }
    CHECK(all.empty_for(200));
    ws.clear();
}

// ls(prefix) then a Watcher on the same prefix: a change made in between is delivered.
void test_list_then_watch() {
    etcd::Client c(endpoints);
    etcd::Client other(endpoints);
    std::string p = prefix();
    c.put(p + "before", "0").get();
    etcd::Response l = c.ls(p).get();
    CHECK_EQ(l.keys().size(), size_t{1});
    other.put(p + "between", "1").get();  // after the listing, before the watch
    Inbox in;
    auto w = std::make_shared<etcd::Watcher>(c, p, [&](etcd::Response r) { in.push(r); }, true);
    etcd::Event e = in.next_event();
    CHECK_EQ(e.kv().key(), p + "between");
    w->Cancel();
}

void test_tasks() {
    etcd::Client c(endpoints);
    std::string p = prefix();
    // value-based continuation
    int got = 0;
    c.put(p + "t", "1").then([&](etcd::Response r) { got = r.is_ok() ? 1 : -1; }).wait();
    CHECK_EQ(got, 1);
    // task-based continuation returning a value
    pplx::task<etcd::Response> t = c.get(p + "t");
    std::string v = t.then([](pplx::task<etcd::Response> prev) { return prev.get().value().as_string(); }).get();
    CHECK_EQ(v, std::string("1"));
    // a continuation returning a task is unwrapped
    pplx::task<etcd::Response> chained =
        c.put(p + "u", "2").then([&](etcd::Response) { return c.get(p + "u"); });
    CHECK_EQ(chained.get().value().as_string(), std::string("2"));
    CHECK(chained.is_done());
    CHECK(chained.wait() == pplx::completed);
    // exceptions: stored, skipped by value-based continuations, seen by task-based ones
    pplx::task<int> bad = pplx::create_task([]() -> int { throw std::runtime_error("boom"); });
    CHECK(throws<std::runtime_error>([&] { bad.get(); }));
    bool ran = false;
    pplx::task<void> skipped = bad.then([&](int) { ran = true; });
    CHECK(!ran);
    CHECK(throws<std::runtime_error>([&] { skipped.get(); }));
    bool seen = bad.then([](pplx::task<int> prev) {
                       try {
                           prev.get();
                       } catch (std::runtime_error const &) {
                           return true;
                       }
                       return false;
                   }).get();
    CHECK(seen);
    CHECK_EQ(pplx::task_from_result(7).get(), 7);
    pplx::task_from_result().get();
    CHECK(throws<std::logic_error>([] { pplx::task_from_exception<int>(std::logic_error("x")).get(); }));
    pplx::task<etcd::Response> empty;
    CHECK(throws<pplx::invalid_operation>([&] { empty.get(); }));
    pplx::task<int> explicit_task([] { return 3; });
    CHECK_EQ(explicit_task.get(), 3);
    pplx::task<void> v2([] {});
    v2.then([] {}).wait();
}

// Against an endpoint nobody listens on (ETCD_SD_CONNECT_TIMEOUT_MS is set short by CTest):
// errors, no hang, no lease 0.
// A loopback port that accepts TCP connections (the kernel's backlog) but never answers.
struct SilentPort {
    int fd = -1;
    int port = 0;
    SilentPort() {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a;
        std::memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK(bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        CHECK(listen(fd, 64) == 0);
        socklen_t len = sizeof a;
        CHECK(getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0);
        port = ntohs(a.sin_port);
    }
    ~SilentPort() { close(fd); }
};

void dead_endpoint_case(std::string const &dead, const char *kind);

void test_dead_endpoint() {
    dead_endpoint_case("http://127.0.0.1:" + std::to_string(dead_port()), "refused");
    if (slow) {
        return;  // valgrind runs with long timeouts; the bounds are checked by the plain run
    }
    SilentPort silent;
    dead_endpoint_case("http://127.0.0.1:" + std::to_string(silent.port), "silent");
}

void dead_endpoint_case(std::string const &dead, const char *kind) {
    // Each failing call prints how long it took (a figure, not a check: the bound is the
    // connect/request timeouts set by CTest through the environment).
    auto timed = [kind](const char *what, auto f) {
        auto t0 = std::chrono::steady_clock::now();
        f();
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
        std::printf("figure: dead endpoint (%s): %s failed after %lld ms\n", kind, what,
                    static_cast<long long>(ms));
    };
    etcd::Client c(dead);
    timed("Client::put", [&] {
        etcd::Response r = c.put("/compat-api/dead", "x").get();
        CHECK(!r.is_ok());
        CHECK(r.is_network_unavailable() || r.is_grpc_timeout());
    });
    timed("Client::leasekeepalive", [&] {
        bool no_lease_zero = true;
        try {
            auto ka = c.leasekeepalive(3).get();
            no_lease_zero = ka->Lease() != 0;
            fail(__FILE__, __LINE__, "leasekeepalive succeeded against a dead endpoint");
        } catch (std::runtime_error const &e) {
            CHECK(std::string(e.what()).find("leasekeepalive") != std::string::npos);
        }
        CHECK(no_lease_zero);
    });
    timed("KeepAlive()", [&] { CHECK(throws<std::runtime_error>([&] { etcd::KeepAlive k(c, 3); })); });
    timed("Watcher()", [&] {
        CHECK(throws<std::runtime_error>([&] { etcd::Watcher w(c, "/compat-api/dead", [](etcd::Response) {}); }));
    });
    etcd::SyncClient s(dead);
    timed("SyncClient::ls", [&] {
        etcd::Response r = s.ls("/x");
        CHECK(r.is_network_unavailable() || r.is_grpc_timeout());
    });
    timed("SyncClient::leasegrant", [&] { CHECK(!s.leasegrant(3).is_ok()); });
}

std::string env_or_empty(const char *name) {
    const char *v = std::getenv(name);
    return v != nullptr ? v : "";
}

bool mode_has(const char *what) { return env_or_empty("ETCD_SD_TEST_MODE").find(what) != std::string::npos; }

// The TLS constructors against an etcd that requires client certificates
// (with_etcd.py --mtls; CTest compat_api_tls). Skipped against a plain etcd.
void test_tls() {
    if (!mode_has("tls")) {
        std::printf("    (skipped: etcd is not TLS)\n");
        return;
    }
    std::string ca = env_or_empty("ETCD_SD_TEST_CA");
    std::string cert = env_or_empty("ETCD_SD_TEST_CLIENT_CERT");
    std::string key = env_or_empty("ETCD_SD_TEST_CLIENT_KEY");
    std::string hostport = endpoints.substr(endpoints.find("://") + 3);
    std::string p = prefix();
    {
        etcd::Client c(endpoints, ca, cert, key, "");
        CHECK_OK(c.put(p + "a", "1").get());
        CHECK_EQ(c.get(p + "a").get().value().as_string(), std::string("1"));
    }
    {
        // a bare host:port is spoken to over https; the certificate checked against a
        // name of its SANs
        etcd::Client c(hostport, ca, cert, key, "etcd.test", "round_robin");
        CHECK_OK(c.get(p + "a").get());
        std::unique_ptr<etcd::Client> c2(etcd::Client::WithSSL(endpoints, ca, cert, key));
        CHECK_OK(c2->head().get());
        etcd::SyncClient s(endpoints, ca, cert, key, "");
        CHECK_OK(s.put(p + "b", "2"));
        std::unique_ptr<etcd::SyncClient> s2(etcd::SyncClient::WithSSL(endpoints, ca, cert, key));
        CHECK_OK(s2->head());
    }
    // without the client certificate, etcd refuses
    {
        etcd::Client c(endpoints, ca, "", "", "");
        CHECK(!c.get(p + "a").get().is_ok());
    }
    std::atomic<int> handler_calls{0};
    etcd::KeepAlive ka(endpoints, ca, cert, key, [&](std::exception_ptr) { handler_calls++; }, 3);
    CHECK(ka.Lease() != 0);
    Inbox in;
    auto f = [&](etcd::Response r) { in.push(r); };
    std::function<void(bool)> wf = [](bool) {};
    etcd::Watcher w1(endpoints, ca, cert, key, p, int64_t{0}, f, true);
    etcd::Watcher w2(endpoints, ca, cert, key, p + "c", etcdv3::detail::string_plus_one(p + "c"), int64_t{0}, f);
    etcd::Watcher w3(endpoints, ca, cert, key, p, int64_t{0}, f, wf, true, std::string());
    etcd::Watcher w4(endpoints, ca, cert, key, p + "c", etcdv3::detail::string_plus_one(p + "c"), int64_t{0}, f, wf);
    etcd::Client c(endpoints, ca, cert, key, "");
    CHECK_OK(c.put(p + "c", "x", ka.Lease()).get());
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(in.next_event().kv().key(), p + "c");
    }
    CHECK_EQ(handler_calls.load(), 0);
}

// The user/password constructors against an etcd with auth (with_etcd.py --auth: user svc may
// read and write /service/ only; CTest compat_api_auth). Skipped against a plain etcd.
void test_auth() {
    if (!mode_has("auth")) {
        std::printf("    (skipped: etcd has no auth)\n");
        return;
    }
    std::string user = env_or_empty("ETCD_SD_TEST_USER");
    std::string password = env_or_empty("ETCD_SD_TEST_PASSWORD");
    std::string p = "/service/compat-" + std::to_string(getpid()) + "/";
    etcd::Client c(endpoints, user, password);
    CHECK_OK(c.put(p + "a", "1").get());
    CHECK_EQ(c.ls(p).get().keys().size(), size_t{1});
    etcd::Response denied = c.put("/elsewhere/compat", "x").get();
    CHECK(!denied.is_ok());
    CHECK_EQ(denied.error_code(), etcdv3::ERROR_GRPC_UNAUTHENTICATED);
    etcd::Client wrong(endpoints, user, "not-the-password");
    CHECK(!wrong.get(p + "a").get().is_ok());
    std::unique_ptr<etcd::Client> c2(etcd::Client::WithUser(endpoints, user, password));
    CHECK_OK(c2->get(p + "a").get());
    etcd::SyncClient s(endpoints, user, password, 300, "round_robin");
    CHECK_OK(s.get(p + "a"));

    etcd::KeepAlive ka(endpoints, user, password, 3);
    etcd::KeepAlive kb(endpoints, user, password, [](std::exception_ptr) {}, 3);
    CHECK(ka.Lease() != 0 && kb.Lease() != 0);
    Inbox in;
    auto f = [&](etcd::Response r) { in.push(r); };
    etcd::Watcher w(endpoints, user, password, p, f, true);
    CHECK_OK(c.put(p + "b", "2", ka.Lease()).get());
    CHECK_EQ(in.next_event().kv().key(), p + "b");
    CHECK_OK(c.rmdir(p, true).get());
}

}  // namespace

int main() {
    const test_case cases[] = {
        {"constructors", test_constructors}, {"kv", test_kv},
        {"sync_client", test_sync_client},   {"leases", test_leases},
        {"lease_replies", test_lease_replies},
        {"watcher", test_watcher},           {"list_then_watch", test_list_then_watch},
        {"tasks", test_tasks},               {"dead_endpoint", test_dead_endpoint},
        {"tls", test_tls},                   {"auth", test_auth},
    };
    return run_cases(cases);
}
