// Coordination test of the etcd-cpp-apiv3 compatibility headers (include/etcd/): locks,
// elections (with observe), the one-shot watch() and its pending pplx::task, and what
// KeepAlive::Cancel()/the destructor/Check() do, against the etcd started by
// tests/with_etcd.py. Also the no-silent-heal rule (docs/compat.md, "Locks and leadership
// never heal"): a lease revoked under a held lock or leadership is reported, never repaired,
// and a second contender takes over. Built with -Wall -Wextra -Werror.
//
// Environment: as api_test.cc (ETCD_SD_TEST_ENDPOINTS, ETCD_SD_TEST_SLOW, ETCD_SD_TEST_ONLY);
// ETCDCTL (set by with_etcd.py when found) for the compaction and outside-revoke checks.
// Every wait is on a condition with a bound; nothing sleeps to synchronise.

#include <etcd/Client.hpp>
#include <etcd/KeepAlive.hpp>
#include <etcd/Response.hpp>
#include <etcd/SyncClient.hpp>
#include <etcd/Value.hpp>
#include <etcd/Watcher.hpp>

#include "compat_util.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string prefix() { return unique_prefix("compat-coord"); }

// Waits (polling every 10 ms) until `cond` holds, at most `ms`; false if it never did.
bool eventually(std::function<bool()> const &cond, int ms = 5000) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(bound(ms));
    while (!cond()) {
        if (std::chrono::steady_clock::now() > until) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

// The future's value, or fail after `ms`.
template <typename T>
T within(std::future<T> &f, int ms, const char *what) {
    if (f.wait_for(std::chrono::milliseconds(bound(ms))) != std::future_status::ready) {
        fail(__FILE__, __LINE__, std::string(what) + ": not within " + std::to_string(ms) + " ms");
    }
    return f.get();
}

// Runs etcdctl (from with_etcd.py's ETCDCTL) against the test etcd; false when absent.
bool etcdctl(std::string const &args) {
    const char *ctl = std::getenv("ETCDCTL");
    if (ctl == nullptr || ctl[0] == '\0') {
        return false;
    }
    std::string cmd = std::string(ctl) + " --endpoints=" + endpoints + " " + args + " >/dev/null";
    CHECK_MSG(std::system(cmd.c_str()) == 0, "etcdctl " + args + " failed");
    return true;
}

std::string hex(int64_t v) {
    std::ostringstream os;
    os << std::hex << v;
    return os.str();
}

// --- locks ---------------------------------------------------------------------------------

void test_lock_unlock() {
    etcd::Client c(endpoints);
    std::string name = prefix() + "lock";

    etcd::Response r = c.lock(name).get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("lock"));
    CHECK(r.lock_key().rfind(name + "/", 0) == 0);
    CHECK(r.value().lease() != 0);
    CHECK_EQ(r.lock_key(), name + "/" + hex(r.value().lease()));
    CHECK(r.index() > 0);
    CHECK_EQ(r.value().created_index(), r.index());
    CHECK_OK(c.get(r.lock_key()).get());  // a real key
    CHECK(c.leasetimetolive(r.value().lease()).get().value().ttl() > 0);
    CHECK(c.leasetimetolive(r.value().lease()).get().value().ttl() <= 10);  // TTL 10 s

    etcd::Response u = c.unlock(r.lock_key()).get();
    CHECK_OK(u);
    CHECK_EQ(u.action(), std::string("unlock"));
    CHECK_EQ(c.get(r.lock_key()).get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK_EQ(c.leasetimetolive(r.value().lease()).get().value().ttl(), -1);  // its lease revoked

    // the other overloads
    etcd::Response a = c.lock(name, 5).get();
    CHECK_OK(a);
    CHECK(c.leasetimetolive(a.value().lease()).get().value().ttl() <= 5);
    CHECK_OK(c.unlock(a.lock_key()).get());
    etcd::Response b = c.lock(name, true).get();
    CHECK_OK(b);
    CHECK_OK(c.unlock(b.lock_key()).get());
    etcd::Response d = c.lock(name, 7, true).get();
    CHECK_OK(d);
    CHECK_OK(c.unlock(d.lock_key()).get());

    etcd::SyncClient s(endpoints);
    etcd::Response e = s.lock(name);
    CHECK_OK(e);
    CHECK_EQ(e.action(), std::string("lock"));
    CHECK_OK(s.unlock(e.lock_key()));
    etcd::Response f = s.lock(name, 4);
    CHECK_OK(f);
    CHECK_OK(s.unlock(f.lock_key()));

    // a lock taken by another client is released through etcd
    etcd::Response g = s.lock(name);
    CHECK_OK(g);
    etcd::Response gu = c.unlock(g.lock_key()).get();
    CHECK_OK(gu);
    CHECK_EQ(c.get(g.lock_key()).get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
}

void test_lock_contention() {
    etcd::Client c(endpoints);
    std::string name = prefix() + "lock";
    etcd::Response first = c.lock(name).get();
    CHECK_OK(first);

    // bounded by set_grpc_timeout: code 4, action still "lock", nothing left waiting
    {
        etcd::Client t(endpoints);
        t.set_grpc_timeout(std::chrono::milliseconds(800));
        etcd::Response r = t.lock(name).get();
        CHECK(r.is_grpc_timeout());
        CHECK_EQ(r.action(), std::string("lock"));
        etcd::SyncClient ts(endpoints);
        ts.set_grpc_timeout(std::chrono::milliseconds(300));
        CHECK(ts.lock(name).is_grpc_timeout());
    }

    // a second contender (same client, another thread) waits, then takes over
    std::promise<etcd::Response> got;
    std::future<etcd::Response> second = got.get_future();
    std::thread contender([&] { got.set_value(c.lock(name).get()); });
    CHECK(second.wait_for(std::chrono::milliseconds(bound(300))) == std::future_status::timeout);
    CHECK_OK(c.unlock(first.lock_key()).get());
    etcd::Response r = within(second, 5000, "second lock");
    contender.join();
    CHECK_OK(r);
    CHECK(r.lock_key() != first.lock_key());
    CHECK(r.value().created_index() > first.value().created_index());  // fencing token grows
    CHECK_OK(c.unlock(r.lock_key()).get());
}

void test_lock_with_lease() {
    etcd::Client c(endpoints);
    std::string name = prefix() + "lock";
    int64_t lease = c.leasegrant(30).get().value().lease();
    etcd::Response r = c.lock_with_lease(name, lease).get();
    CHECK_OK(r);
    CHECK_EQ(r.value().lease(), lease);
    CHECK_EQ(r.lock_key(), name + "/" + hex(lease));
    CHECK_OK(c.unlock(r.lock_key()).get());
    CHECK(c.leasetimetolive(lease).get().value().ttl() > 0);  // the caller's lease: not revoked

    etcd::Response t = c.lock_with_lease(name, lease, true).get();
    CHECK_OK(t);
    CHECK_OK(c.unlock(t.lock_key()).get());

    etcd::SyncClient s(endpoints);
    etcd::Response u = s.lock_with_lease(name, lease);
    CHECK_OK(u);
    CHECK_OK(s.unlock(u.lock_key()));
    CHECK_OK(c.leaserevoke(lease).get());

    etcd::Response bad = c.lock_with_lease(name, 0x7abcdef12345).get();
    CHECK_EQ(bad.error_code(), etcdv3::ERROR_GRPC_NOT_FOUND);
    CHECK_EQ(bad.action(), std::string("lock"));
}

// The no-silent-heal rule for locks: a revoke under a held lock loses it for good.
void test_lock_lost() {
    etcd::Client c(endpoints);
    etcd::Client other(endpoints);
    std::string name = prefix() + "lock";
    etcd::Response r = c.lock(name).get();
    CHECK_OK(r);
    CHECK_OK(other.leaserevoke(r.value().lease()).get());
    CHECK_EQ(c.get(r.lock_key()).get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);

    // another contender gets it at once: the first is not taken again behind its owner's back
    other.set_grpc_timeout(std::chrono::seconds(2));
    etcd::Response o = other.lock(name).get();
    CHECK_OK(o);
    // and the owner is told: unlock() reports the loss
    etcd::Response u = c.unlock(r.lock_key()).get();
    CHECK_EQ(u.action(), std::string("unlock"));
    CHECK_EQ(u.error_code(), etcdv3::ERROR_GRPC_ABORTED);
    CHECK(u.error_message().find("lost") != std::string::npos);
    CHECK_EQ(c.get(r.lock_key()).get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK_OK(other.get(o.lock_key()).get());  // the new holder is untouched
    CHECK_OK(other.unlock(o.lock_key()).get());

    // once the library noticed the loss (its watch), the same answer
    etcd::Response r2 = c.lock(name).get();
    CHECK_OK(r2);
    CHECK_OK(other.leaserevoke(r2.value().lease()).get());
    CHECK(eventually([&] { return c.get(r2.lock_key()).get().error_code() == 100; }));
    etcd::Response u2 = c.unlock(r2.lock_key()).get();
    CHECK_EQ(u2.error_code(), etcdv3::ERROR_GRPC_ABORTED);

    // a lock on a KeepAlive's lease revoked by this process: lost too, never re-taken
    auto ka = c.leasekeepalive(10).get();
    etcd::Response r3 = c.lock_with_lease(name, ka->Lease()).get();
    CHECK_OK(r3);
    CHECK_OK(c.leaserevoke(ka->Lease()).get());
    CHECK(throws<std::exception>([&] { ka->Check(); }));
    CHECK_EQ(c.unlock(r3.lock_key()).get().error_code(), etcdv3::ERROR_GRPC_ABORTED);
}

// --- elections -----------------------------------------------------------------------------

void test_election() {
    etcd::Client c(endpoints);
    std::string name = prefix() + "election";
    auto ka = c.leasekeepalive(30).get();
    int64_t lease = ka->Lease();

    CHECK_EQ(c.leader(name).get().error_code(), etcdv3::ERROR_GRPC_UNKNOWN);
    CHECK_EQ(c.leader(name).get().error_message(), std::string("election: no leader"));
    CHECK_EQ(c.leader(name).get().action(), std::string("leader"));

    std::unique_ptr<etcd::Client::Observer> obs = c.observe(name);

    etcd::Response r = c.campaign(name, lease, "v1").get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("campaign"));
    CHECK_EQ(r.name(), name);
    CHECK_EQ(r.value().lease(), lease);
    CHECK_EQ(r.value().key(), name + "/" + hex(lease));
    CHECK(r.value().created_index() > 0);

    etcd::Response l = c.leader(name).get();
    CHECK_OK(l);
    CHECK_EQ(l.action(), std::string("leader"));
    CHECK_EQ(l.value().key(), r.value().key());
    CHECK_EQ(l.value().as_string(), std::string("v1"));
    CHECK_EQ(l.value().created_index(), r.value().created_index());

    etcd::Response p = c.proclaim(name, lease, r.value().key(), r.value().created_index(), "v2").get();
    CHECK_OK(p);
    CHECK_EQ(p.action(), std::string("preclaim"));
    CHECK_EQ(c.leader(name).get().value().as_string(), std::string("v2"));

    // a (key, revision) this client does not hold: as etcd's election service
    etcd::Response np = c.proclaim(name, lease, r.value().key(), r.value().created_index() + 1000, "x").get();
    CHECK_EQ(np.error_code(), etcdv3::ERROR_GRPC_UNKNOWN);
    CHECK_EQ(np.error_message(), std::string("election: not leader"));
    etcd::Client other(endpoints);
    CHECK_OK(other.proclaim(name, lease, r.value().key(), r.value().created_index(), "v3").get());
    CHECK_EQ(c.leader(name).get().value().as_string(), std::string("v3"));

    etcd::Response o1 = obs->WaitOnce();  // campaign
    CHECK_EQ(o1.action(), std::string("obverse"));
    CHECK_EQ(o1.value().key(), r.value().key());
    CHECK_EQ(o1.value().as_string(), std::string("v1"));
    CHECK_EQ(obs->WaitOnce().value().as_string(), std::string("v2"));
    CHECK_EQ(obs->WaitOnce().value().as_string(), std::string("v3"));

    etcd::Response s = c.resign(name, lease, r.value().key(), r.value().created_index()).get();
    CHECK_OK(s);
    CHECK_EQ(s.action(), std::string("resign"));
    CHECK_EQ(c.leader(name).get().error_code(), etcdv3::ERROR_GRPC_UNKNOWN);
    CHECK(c.leasetimetolive(lease).get().value().ttl() > 0);  // the caller's lease stays
    ka->Check();

    // SyncClient twins; resign of a leadership held by another client (as etcd: deletes it)
    etcd::SyncClient sc(endpoints);
    etcd::Response r2 = sc.campaign(name, lease, "w");
    CHECK_OK(r2);
    CHECK_EQ(sc.leader(name).value().as_string(), std::string("w"));
    CHECK_OK(sc.proclaim(name, lease, r2.value().key(), r2.value().created_index(), "w2"));
    CHECK_EQ(obs->WaitOnce().value().as_string(), std::string("w"));
    CHECK_EQ(obs->WaitOnce().value().as_string(), std::string("w2"));
    CHECK_OK(c.resign(name, lease, r2.value().key(), r2.value().created_index()).get());
    CHECK_EQ(sc.leader(name).error_code(), etcdv3::ERROR_GRPC_UNKNOWN);
    // sc's own leadership was lost that way: its resign() says so
    CHECK_EQ(sc.resign(name, lease, r2.value().key(), r2.value().created_index()).error_code(),
             etcdv3::ERROR_GRPC_ABORTED);

    // an observer with a grpc timeout: code 4 when nothing changes; default-made: empty
    etcd::SyncClient st(endpoints);
    st.set_grpc_timeout(std::chrono::milliseconds(200));
    std::unique_ptr<etcd::SyncClient::Observer> quiet = st.observe(name);
    CHECK(quiet->WaitOnce().is_grpc_timeout());
    etcd::SyncClient::Observer none;
    CHECK(none.WaitOnce().is_ok());
    CHECK_EQ(none.WaitOnce().action(), std::string(""));
}

void test_election_takeover() {
    etcd::Client a(endpoints);
    etcd::Client b(endpoints);
    std::string name = prefix() + "election";
    auto ka = a.leasekeepalive(30).get();
    auto kb = b.leasekeepalive(30).get();
    std::unique_ptr<etcd::SyncClient::Observer> obs = a.sync_client()->observe(name);

    etcd::Response ra = a.campaign(name, ka->Lease(), "a").get();
    CHECK_OK(ra);
    b.set_grpc_timeout(std::chrono::milliseconds(800));
    etcd::Response timed_out = b.campaign(name, kb->Lease(), "b").get();
    CHECK(timed_out.is_grpc_timeout());
    CHECK_EQ(timed_out.action(), std::string("campaign"));
    b.set_grpc_timeout(std::chrono::seconds(0));

    std::promise<etcd::Response> won;
    std::future<etcd::Response> fb = won.get_future();
    std::thread tb([&] { won.set_value(b.campaign(name, kb->Lease(), "b").get()); });
    CHECK(fb.wait_for(std::chrono::milliseconds(bound(300))) == std::future_status::timeout);
    CHECK_OK(a.resign(name, ka->Lease(), ra.value().key(), ra.value().created_index()).get());
    etcd::Response rb = within(fb, 5000, "b's campaign");
    tb.join();
    CHECK_OK(rb);
    CHECK(rb.value().created_index() > ra.value().created_index());
    CHECK_EQ(a.leader(name).get().value().as_string(), std::string("b"));
    CHECK_EQ(obs->WaitOnce().value().as_string(), std::string("a"));
    etcd::Response ob = obs->WaitOnce();
    CHECK_EQ(ob.value().as_string(), std::string("b"));
    CHECK_EQ(ob.value().key(), rb.value().key());
    CHECK_OK(b.resign(name, kb->Lease(), rb.value().key(), rb.value().created_index()).get());
}

// The no-silent-heal rule for elections: a revoke under a leadership loses it for good.
void test_election_lost() {
    etcd::Client c(endpoints);
    etcd::Client other(endpoints);
    std::string name = prefix() + "election";
    int64_t lease = c.leasegrant(30).get().value().lease();
    etcd::Response r = c.campaign(name, lease, "v").get();
    CHECK_OK(r);
    CHECK_OK(other.leaserevoke(lease).get());
    CHECK_EQ(c.leader(name).get().error_code(), etcdv3::ERROR_GRPC_UNKNOWN);  // nobody leads

    int64_t lease2 = other.leasegrant(30).get().value().lease();
    other.set_grpc_timeout(std::chrono::seconds(2));
    etcd::Response o = other.campaign(name, lease2, "o").get();
    CHECK_OK(o);  // a second contender leads at once

    etcd::Response p = c.proclaim(name, lease, r.value().key(), r.value().created_index(), "x").get();
    CHECK(!p.is_ok());
    CHECK(p.error_message().find("not leader") != std::string::npos);
    CHECK_EQ(c.leader(name).get().value().as_string(), std::string("o"));
    etcd::Response s = c.resign(name, lease, r.value().key(), r.value().created_index()).get();
    CHECK_EQ(s.error_code(), etcdv3::ERROR_GRPC_ABORTED);
    CHECK(s.error_message().find("not leader") != std::string::npos);
    CHECK_EQ(c.leader(name).get().value().key(), o.value().key());  // untouched
    CHECK_OK(other.resign(name, lease2, o.value().key(), o.value().created_index()).get());
    CHECK_OK(other.leaserevoke(lease2).get());
}

// --- one-shot watch ------------------------------------------------------------------------

void test_oneshot_watch() {
    etcd::Client c(endpoints);
    std::string p = prefix();
    CHECK_OK(c.put(p + "k", "42").get());
    CHECK_OK(c.get(p + "k").get());  // a listing right before must not make the watch fire

    pplx::task<etcd::Response> t = c.watch(p + "k");
    CHECK(!t.is_done());
    pplx::task<size_t> n = t.then([](pplx::task<etcd::Response> const &r) -> size_t {
        return r.get().events().size();
    });
    CHECK(!n.is_done());
    CHECK_OK(c.put(p + "other", "x").get());
    CHECK_OK(c.set(p + "k", "43").get());
    CHECK(eventually([&] { return t.is_done(); }));
    etcd::Response r = t.get();
    CHECK_OK(r);
    CHECK_EQ(r.action(), std::string("set"));
    CHECK_EQ(r.value().as_string(), std::string("43"));
    CHECK_EQ(r.prev_value().as_string(), std::string("42"));
    CHECK(r.index() > 0);
    CHECK(r.watch_id() > 0);
    CHECK(eventually([&] { return n.is_done(); }));
    CHECK_EQ(n.get(), size_t(1));

    // prefix: "create"
    pplx::task<etcd::Response> d = c.watch(p, true);
    CHECK(!d.is_done());
    CHECK_OK(c.add(p + "new", "44").get());
    CHECK(eventually([&] { return d.is_done(); }));
    CHECK_EQ(d.get().action(), std::string("create"));
    CHECK_EQ(d.get().value().as_string(), std::string("44"));

    // history from fromIndex: every event since, in one Response
    int64_t from = c.set(p + "h1", "1").get().index();
    CHECK_OK(c.set(p + "h1", "2").get());
    CHECK_OK(c.set(p + "h2", "3").get());
    CHECK_OK(c.set(p + "h3", "4").get());
    etcd::Response h = c.watch(p + "h1", from).get();
    CHECK_EQ(h.action(), std::string("create"));
    CHECK_EQ(h.value().as_string(), std::string("1"));
    CHECK_EQ(h.events().size(), size_t(2));
    CHECK_EQ(c.watch(p + "h", from, true).get().events().size(), size_t(4));
    CHECK_EQ(c.watch(p + "h1", p + "h3", from).get().events().size(), size_t(3));
    CHECK_EQ(c.watch(p + "h1", etcdv3::detail::string_plus_one(p + "h"), from).get().events().size(),
             size_t(4));
    pplx::task<size_t> later = c.watch(p + "h2", from + 1)
                                   .then([](etcd::Response const &x) { return x.events().size(); });
    CHECK_EQ(later.get(), size_t(1));

    // range forms from now
    pplx::task<etcd::Response> rg = c.watch(p + "r1", p + "r3");
    pplx::task<etcd::Response> rc = c.watch(p + "r3", (p + "r4").c_str());
    CHECK_OK(c.put(p + "r3", "out of the first").get());
    CHECK(eventually([&] { return rc.is_done(); }));
    CHECK(!rg.is_done());
    CHECK_OK(c.put(p + "r2", "in").get());
    CHECK(eventually([&] { return rg.is_done(); }));
    CHECK_EQ(rg.get().value().key(), p + "r2");
    CHECK_EQ(rg.get().events().size(), size_t(1));

    // SyncClient: blocks until the change
    etcd::SyncClient s(endpoints);
    std::promise<etcd::Response> got;
    std::future<etcd::Response> f = got.get_future();
    std::thread w([&] { got.set_value(s.watch(p + "k")); });
    // the watch is set up inside watch(): put until it reports (bounded)
    CHECK(eventually([&] {
        CHECK_OK(s.set(p + "k", "45"));
        return f.wait_for(std::chrono::milliseconds(50)) == std::future_status::ready;
    }));
    w.join();
    CHECK_EQ(f.get().value().as_string(), std::string("45"));
    CHECK_EQ(s.watch(p + "h1", from).events().size(), size_t(2));
    CHECK_EQ(s.watch(p + "h", from, true).events().size(), size_t(4));
    CHECK_EQ(s.watch(p + "h1", p + "h3", from).events().size(), size_t(3));

    // abandoned before any change: cancelled (no callback into a destroyed task)
    for (int i = 0; i < 20; i++) {
        pplx::task<etcd::Response> gone = c.watch(p + "k");
        auto cont = gone.then([](etcd::Response const &) {});
    }
    CHECK_OK(c.set(p + "k", "46").get());

    // compacted fromIndex: 11, compact_revision() set
    int64_t old = c.set(p + "c", "1").get().index();
    int64_t now = c.set(p + "c", "2").get().index();
    if (etcdctl("compact " + std::to_string(now))) {
        etcd::Response cr = c.watch(p + "c", old).get();
        CHECK_EQ(cr.error_code(), etcdv3::ERROR_GRPC_OUT_OF_RANGE);
        CHECK(cr.compact_revision() > 0);
    }
    CHECK_OK(c.rmdir(p, true).get());
}

// --- KeepAlive -----------------------------------------------------------------------------

void test_keepalive_cancel() {
    etcd::Client c(endpoints);
    std::string p = prefix();

    // Cancel(): the lease is revoked, its keys leave at once; Check() throws
    auto ka = c.leasekeepalive(30).get();
    CHECK_OK(c.put(p + "a", "1", ka->Lease()).get());
    ka->Check();
    ka->Cancel();
    CHECK_EQ(c.get(p + "a").get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK_EQ(c.leasetimetolive(ka->Lease()).get().value().ttl(), -1);
    CHECK(throws<std::runtime_error>([&] { ka->Check(); }));
    ka->Cancel();  // idempotent

    // the destructor, too
    int64_t id = 0;
    {
        etcd::KeepAlive k(c, 30);
        id = k.Lease();
        CHECK_OK(c.put(p + "b", "1", id).get());
    }
    CHECK_EQ(c.get(p + "b").get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK_EQ(c.leasetimetolive(id).get().value().ttl(), -1);

    // a KeepAlive of the caller's lease revokes it as well
    int64_t given = c.leasegrant(30).get().value().lease();
    CHECK_OK(c.put(p + "g", "1", given).get());
    std::atomic<int> handler_calls{0};
    { etcd::KeepAlive k(c, [&](std::exception_ptr) { handler_calls++; }, 30, given); }
    CHECK_EQ(c.get(p + "g").get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK_EQ(handler_calls.load(), 0);  // its own revoke is no give-up

    // leaserevoke() of a kept lease by this process ends it: Check() throws, never healed
    auto kr = c.leasekeepalive(30).get();
    int64_t revoked = kr->Lease();
    CHECK_OK(c.leaserevoke(revoked).get());
    CHECK(eventually([&] { return throws<std::exception>([&] { kr->Check(); }); }));
    CHECK_EQ(kr->Lease(), revoked);

    // a lease lost to the outside is recovered: Check() does not throw meanwhile
    auto ko = c.leasekeepalive(3).get();
    int64_t before = ko->Lease();
    CHECK_OK(c.put(p + "o", "1", before).get());
    if (etcdctl("lease revoke " + hex(before))) {
        CHECK(eventually([&] {
            ko->Check();  // never throws while recovering
            return ko->Lease() != before && c.get(p + "o").get().is_ok();
        }, 10000));
        ko->Check();
    }
}

void test_keepalive_expire_env() {
    etcd::Client c(endpoints);
    std::string p = prefix();
    CHECK(setenv("ETCD_SD_KEEPALIVE_CANCEL", "expire", 1) == 0);
    auto ka = std::make_shared<etcd::KeepAlive>(c, 30);
    CHECK(unsetenv("ETCD_SD_KEEPALIVE_CANCEL") == 0);
    CHECK_OK(c.put(p + "a", "1", ka->Lease()).get());
    ka->Cancel();
    CHECK_OK(c.get(p + "a").get());  // stays until the TTL ends
    CHECK(c.leasetimetolive(ka->Lease()).get().value().ttl() > 0);
    CHECK(throws<std::runtime_error>([&] { ka->Check(); }));  // the keep-alive is over all the same
    CHECK_OK(c.leaserevoke(ka->Lease()).get());

    CHECK(setenv("ETCD_SD_KEEPALIVE_CANCEL", "revoke", 1) == 0);
    {
        etcd::KeepAlive k(c, 30);
        CHECK_OK(c.put(p + "b", "1", k.Lease()).get());
    }
    CHECK_EQ(c.get(p + "b").get().error_code(), etcdv3::ERROR_KEY_NOT_FOUND);
    CHECK(setenv("ETCD_SD_KEEPALIVE_CANCEL", "sometimes", 1) == 0);
    CHECK(throws<std::invalid_argument>([&] { etcd::KeepAlive k(c, 30); }));
    CHECK(unsetenv("ETCD_SD_KEEPALIVE_CANCEL") == 0);
}

}  // namespace

int main() {
    const test_case cases[] = {
        {"lock_unlock", test_lock_unlock},
        {"lock_contention", test_lock_contention},
        {"lock_with_lease", test_lock_with_lease},
        {"lock_lost", test_lock_lost},
        {"election", test_election},
        {"election_takeover", test_election_takeover},
        {"election_lost", test_election_lost},
        {"oneshot_watch", test_oneshot_watch},
        {"keepalive_cancel", test_keepalive_cancel},
        {"keepalive_expire_env", test_keepalive_expire_env},
    };
    return run_cases(cases);
}
