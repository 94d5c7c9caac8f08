// The C++ coordination wrapper (etcd_sd_coord.hpp) against a real etcd (tests/with_etcd.py):
// Client, Transaction/TxnResponse, Lock (fencing, timeout, loss, destruction inside its own
// on_lost) and Election (proclaim, hand-over on resign, loss, recampaign after a loss while
// a second contender takes over, destruction inside a callback).
//
// Environment: ETCD_SD_TEST_ENDPOINTS (required), ETCD_SD_TEST_SLOW=1 (valgrind),
// ETCD_SD_TEST_ONLY=name. Conditions are waited for with a bound, never slept for.
#include "etcd_sd.hpp"
#include "test_util.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;

static_assert(!std::is_copy_constructible<etcd_sd::Transaction>::value, "Transaction is move-only");
static_assert(!std::is_copy_constructible<etcd_sd::Client>::value, "Client is move-only");
static_assert(!std::is_copy_constructible<etcd_sd::Lock>::value, "Lock is move-only");
static_assert(!std::is_copy_constructible<etcd_sd::Election>::value, "Election is move-only");
static_assert(std::is_nothrow_move_constructible<etcd_sd::Transaction>::value, "moves");
static_assert(std::is_nothrow_move_constructible<etcd_sd::Client>::value, "moves");
static_assert(std::is_nothrow_move_constructible<etcd_sd::Lock>::value, "moves");
static_assert(std::is_nothrow_move_constructible<etcd_sd::Election>::value, "moves");

namespace {

etcd_sd::Client client() {
    return etcd_sd::Client(etcd_sd::Options()
                               .endpoints(endpoints)
                               .connect_timeout(2000ms)
                               .request_timeout(2000ms));
}

// Waits (bounded) until `cond()` holds.
template <typename F>
void wait_until(F cond, int ms, const char *what) {
    const auto t0 = std::chrono::steady_clock::now();
    while (!cond()) {
        CHECK_MSG(test_ms_since(t0) < bound(ms), std::string("timed out waiting: ") + what);
        std::this_thread::sleep_for(10ms);
    }
}

// What the callbacks saw, from whichever thread they ran on.
struct Log {
    std::mutex mu;
    std::vector<std::string> events;  // "lost:<message>", "elected:<revision>"
    std::vector<std::thread::id> threads;

    void add(std::string e) {
        std::lock_guard<std::mutex> g(mu);
        events.push_back(std::move(e));
        threads.push_back(std::this_thread::get_id());
    }
    size_t size() {
        std::lock_guard<std::mutex> g(mu);
        return events.size();
    }
    std::string at(size_t i) {
        std::lock_guard<std::mutex> g(mu);
        return i < events.size() ? events[i] : std::string();
    }
};

// ------------------------------------------------------------------------------------------

void test_transaction() {
    etcd_sd::Client c = client();
    c.del("/xt/", true);
    c.put("/xt/a", "1");
    c.put("/xt/b", "2");
    const int64_t lease = c.lease_grant(30s);
    c.put("/xt/l", "x", lease);
    const auto a = c.get("/xt/a");
    CHECK(a && a->value == "1" && a->version == 1);

    // compare-and-swap: every compare kind holds, so then() runs
    etcd_sd::Transaction t;
    t.compare_value("/xt/a", etcd_sd::CompareOp::Equal, "1")
        .compare_version("/xt/a", etcd_sd::CompareOp::Equal, 1)
        .compare_create("/xt/a", etcd_sd::CompareOp::Equal, a->create_revision)
        .compare_mod("/xt/a", etcd_sd::CompareOp::Less, a->mod_revision + 1)
        .compare_lease("/xt/l", etcd_sd::CompareOp::Equal, lease)
        .compare_version("/xt/none", etcd_sd::CompareOp::Equal, 0)
        .compare_value("/xt/", etcd_sd::CompareOp::Greater, "0", "/xt0");  // a range
    etcd_sd::Transaction inner;
    inner.compare_value("/xt/l", etcd_sd::CompareOp::NotEqual, "x");
    inner.then().put("/xt/never", "x");
    inner.otherwise().get("/xt/l");
    t.then()
        .put("/xt/a", "10", 0, true)
        .get_prefix("/xt/", 2)
        .get("/xt/a", "/xt/c", 0, 0, true)
        .del("/xt/b", "", true)
        .get_from("/xt/l", 1)
        .nest(inner)
        .del_prefix("/xt/nothing/");
    t.otherwise().put("/xt/fail", "x");

    etcd_sd::TxnResponse r = c.txn(t);
    CHECK(r.succeeded && r.revision > a->mod_revision);
    CHECK_EQ(r.ops.size(), size_t(7));
    CHECK(r.ops[0].kind == etcd_sd::TxnOpKind::Put);
    CHECK(r.ops[0].kvs.size() == 1 && r.ops[0].kvs[0].value == "1");  // prev_kv
    CHECK(r.ops[1].kind == etcd_sd::TxnOpKind::Range);
    CHECK(r.ops[1].kvs.size() == 2 && r.ops[1].count == 3 && r.ops[1].kvs[0].value == "10");
    CHECK(r.ops[2].kvs.size() == 2 && r.ops[2].kvs[1].key == "/xt/b" && r.ops[2].kvs[1].value.empty());
    CHECK(r.ops[3].kind == etcd_sd::TxnOpKind::Delete && r.ops[3].count == 1);
    CHECK(r.ops[3].kvs.size() == 1 && r.ops[3].kvs[0].value == "2");
    CHECK(r.ops[4].kvs.size() == 1 && r.ops[4].kvs[0].key == "/xt/l");
    CHECK(r.ops[5].kind == etcd_sd::TxnOpKind::Txn && r.ops[5].nested);
    CHECK(!r.ops[5].nested->succeeded && r.ops[5].nested->ops.size() == 1);
    CHECK(r.ops[5].nested->ops[0].kvs.size() == 1 && r.ops[5].nested->ops[0].kvs[0].value == "x");
    CHECK(!r.ops[0].nested && r.ops[6].count == 0);
    CHECK(!c.get("/xt/b") && !c.get("/xt/never") && !c.get("/xt/fail"));

    // run again: "/xt/a" is "10" now, otherwise() runs
    etcd_sd::TxnResponse r2 = c.txn(t);
    CHECK(!r2.succeeded && r2.ops.size() == 1 && c.get("/xt/fail"));

    // reads at a revision through the Client
    auto old = c.get("/xt/a", a->mod_revision);
    CHECK(old && old->value == "1");
    CHECK(c.get_prefix("/xt/", 0, a->mod_revision).size() == 1);  // only /xt/a existed then
    CHECK(c.get_range("/xt/a", "/xt/b").size() == 1);

    // moved-from and bad input
    etcd_sd::Transaction moved = std::move(t);
    CHECK(t.capi() == nullptr && moved.capi() != nullptr);
    CHECK(throws<etcd_sd::Error>([&] { t.compare_value("/k", etcd_sd::CompareOp::Equal, "v"); }));
    CHECK(throws<etcd_sd::Error>([&] { c.txn(t); }));
    CHECK(throws<etcd_sd::Error>([&] { moved.then().put("", "v"); c.txn(moved); }));
    CHECK(throws<etcd_sd::Error>([&] { etcd_sd::Transaction x; x.then().get_prefix("/\xc3\xbf"); }));
    CHECK(throws<etcd_sd::Error>([&] { etcd_sd::Transaction x; x.then().del_prefix(""); }));
    try {
        c.get("/xt/a", -1);
        CHECK(false);
    } catch (const etcd_sd::Error &e) {
        CHECK(e.code() == ETCD_SD_INVALID_ARGUMENT);
    }
    c.lease_revoke(lease);
}

void test_client_misc() {
    etcd_sd::Client c = client();
    const int64_t a = c.lease_grant(30s);
    std::vector<int64_t> ids = c.leases();
    CHECK(std::find(ids.begin(), ids.end(), a) != ids.end());
    c.lease_revoke(a);
    try {
        c.lease_revoke(a);
        CHECK(false);
    } catch (const etcd_sd::Error &e) {
        CHECK(e.code() == ETCD_SD_NOT_FOUND);
    }
    std::vector<etcd_sd::Member> m = c.members();
    CHECK(m.size() == 1 && m[0].id != 0 && !m[0].name.empty() && !m[0].is_learner);
    CHECK(!c.leader("/xm/nobody"));
    etcd_sd::Client moved = std::move(c);
    CHECK(c.capi() == nullptr);
    CHECK(throws<etcd_sd::Error>([&] { c.put("/k", "v"); }));
    moved.put("/xm/k", "v");
    CHECK(moved.del("/xm/", true) == 1);
}

// ------------------------------------------------------------------------------------------

void test_lock() {
    etcd_sd::Client c = client();
    Log log;
    etcd_sd::Lock a(c, "/xl/job", 5s, 2000ms, [&](const std::string &m) { log.add("lost:" + m); });
    CHECK(a.held() && a.check() == ETCD_SD_OK);
    CHECK(a.key().rfind("/xl/job/", 0) == 0 && a.revision() > 0 && a.lease() != 0);
    const int64_t fence = a.revision();

    // a second contender times out in bounded time
    const auto t0 = std::chrono::steady_clock::now();
    try {
        etcd_sd::Lock::acquire(c, "/xl/job", 5s, 500ms);
        CHECK(false);
    } catch (const etcd_sd::Error &e) {
        CHECK(e.code() == ETCD_SD_TIMEOUT);
    }
    const long long took = test_ms_since(t0);
    CHECK_MSG(took >= 400 && took < bound(3000), "gave up after " + std::to_string(took) + " ms");

    // unlock lets it in, with a larger fencing token; moves keep the lock
    CHECK(a.unlock());
    CHECK(a.check() == ETCD_SD_CLOSED && a.unlock());
    etcd_sd::Lock b = etcd_sd::Lock::acquire(c, "/xl/job", 5s, 2000ms);
    CHECK(b.revision() > fence);
    etcd_sd::Lock b2 = std::move(b);
    CHECK(b.check() == ETCD_SD_INVALID_ARGUMENT && b.key().empty() && b2.held());
    CHECK(throws<etcd_sd::Error>([&] { b.unlock(); }));

    // a write fenced by the lock: compare the lock key's create revision in a transaction
    etcd_sd::Transaction fenced;
    fenced.compare_create(b2.key(), etcd_sd::CompareOp::Equal, b2.revision());
    fenced.then().put("/xl/data", "guarded");
    CHECK(c.txn(fenced).succeeded);

    // the lease revoked from outside: on_lost once, never taken back
    Log lost_log;
    etcd_sd::Lock d = etcd_sd::Lock::acquire(c, "/xl/other", 5s, 2000ms,
                                             [&](const std::string &m) { lost_log.add(m); });
    const std::string dkey = d.key();
    c.lease_revoke(d.lease());
    wait_until([&] { return lost_log.size() == 1; }, 5000, "Lock on_lost");
    CHECK(!lost_log.at(0).empty());
    CHECK(d.check() == ETCD_SD_LOST && !d.held() && !d.unlock());
    CHECK(!c.get(dkey));
    etcd_sd::Lock e = etcd_sd::Lock::acquire(c, "/xl/other", 5s, 2000ms);
    CHECK(e.held() && lost_log.size() == 1);

    // the fenced write fails for the old holder once a newer one holds the lock
    b2.unlock();
    etcd_sd::Lock f = etcd_sd::Lock::acquire(c, "/xl/job", 5s, 2000ms);
    CHECK(!c.txn(fenced).succeeded);

    // under the caller's lease
    const int64_t lease = c.lease_grant(30s);
    {
        etcd_sd::Lock g = etcd_sd::Lock::acquire_under_lease(c, "/xl/third", lease, 2000ms);
        CHECK(g.lease() == lease);
    }
    CHECK(throws<etcd_sd::Error>([&] { etcd_sd::Lock::acquire_under_lease(c, "/xl/t", 0x7eadbeef, 1000ms); }));
    c.lease_revoke(lease);
    CHECK(log.size() == 0);  // `a` was released, not lost
}

void test_lock_destroyed_in_callback() {
    etcd_sd::Client c = client();
    std::mutex mu;
    std::unique_ptr<etcd_sd::Lock> held;
    std::atomic<int> done{0};
    held.reset(new etcd_sd::Lock(c, "/xld/job", 5s, 2000ms, [&](const std::string &) {
        std::unique_ptr<etcd_sd::Lock> self;
        {
            std::lock_guard<std::mutex> g(mu);
            self = std::move(held);
        }
        CHECK(self && self->check() == ETCD_SD_LOST);
        self.reset();  // destroys the Lock (and this very callback's functor, afterwards)
        done++;
        throw std::runtime_error("reported on stderr, not unwound into the library");
    }));
    int64_t lease;
    {
        std::lock_guard<std::mutex> g(mu);
        lease = held->lease();
    }
    c.lease_revoke(lease);
    wait_until([&] { return done.load() == 1; }, 5000, "the Lock destroyed in its own on_lost");
    etcd_sd::Lock again(c, "/xld/job", 5s, 2000ms);
    CHECK(again.held());
}

// ------------------------------------------------------------------------------------------

void test_election() {
    etcd_sd::Client c = client();
    Log log;
    etcd_sd::Election e1(c, "/xe/svc", "one",
                         etcd_sd::ElectionOptions().ttl(5s).wait(2000ms).on_lost(
                             [&](const std::string &m) { log.add("lost:" + m); }));
    CHECK(e1.leading() && e1.revision() > 0 && e1.lease() != 0);
    CHECK(e1.key().rfind("/xe/svc/", 0) == 0);
    auto l = c.leader("/xe/svc");
    CHECK(l && l->value == "one" && l->key == e1.key());
    CHECK(e1.proclaim("uno"));
    CHECK(c.leader("/xe/svc")->value == "uno");

    // a second candidate times out; one that waits takes over on resign
    CHECK(throws<etcd_sd::Error>([&] {
        etcd_sd::Election(c, "/xe/svc", "two", etcd_sd::ElectionOptions().wait(500ms));
    }));
    std::unique_ptr<etcd_sd::Election> e2;
    std::thread th([&] {
        e2.reset(new etcd_sd::Election(c, "/xe/svc", "two",
                                       etcd_sd::ElectionOptions().wait(std::chrono::milliseconds(bound(10000)))));
    });
    // resign only once the second one is waiting (its key exists behind ours)
    wait_until([&] { return c.get_prefix("/xe/svc/").size() == 2; }, 5000, "the second candidate");
    CHECK(e1.resign());
    th.join();
    CHECK(e2 && e2->leading() && e2->revision() > e1.revision());
    CHECK(c.leader("/xe/svc")->value == "two");
    CHECK(e1.check() == ETCD_SD_CLOSED);
    CHECK(throws<etcd_sd::Error>([&] { e1.proclaim("x"); }));
    CHECK(e1.resign());  // again: nothing to do

    // loss on revoke: told once, proclaim/resign say false, nobody leads
    c.lease_revoke(e2->lease());
    wait_until([&] { return !e2->leading(); }, 5000, "the loss");
    CHECK(e2->check() == ETCD_SD_LOST && !e2->proclaim("x"));
    CHECK(!c.leader("/xe/svc"));
    CHECK(!e2->resign());
    e2.reset();
    CHECK(log.size() == 0);  // e1 resigned: not a loss
}

void test_election_recampaign() {
    etcd_sd::Client c = client();
    Log log;
    std::thread::id cb_thread;
    etcd_sd::Election e(c, "/xr/svc", "me",
                        etcd_sd::ElectionOptions()
                            .ttl(5s)
                            .wait(std::chrono::milliseconds(bound(1000)))
                            .on_lost([&](const std::string &m) { log.add("lost:" + m); })
                            .recampaign([&](int64_t rev) { log.add("elected:" + std::to_string(rev)); }));
    const int64_t first = e.revision();
    CHECK(e.leading() && first > 0);

    // a loss with nobody else waiting: told it lost, then elected again (a new key, a larger
    // fencing token), both on the Election's worker thread
    c.lease_revoke(e.lease());
    wait_until([&] { return log.size() == 2; }, 10000, "lost then elected again");
    CHECK(log.at(0).rfind("lost:", 0) == 0 && log.at(1).rfind("elected:", 0) == 0);
    {
        std::lock_guard<std::mutex> g(log.mu);
        CHECK(log.threads[0] == log.threads[1] && log.threads[0] != std::this_thread::get_id());
    }
    CHECK(e.leading() && e.revision() > first);
    CHECK(log.at(1) == "elected:" + std::to_string(e.revision()));
    CHECK(c.leader("/xr/svc")->value == "me");

    // a second contender waits; on our loss it takes over, and we campaign behind it
    std::unique_ptr<etcd_sd::Election> other;
    std::thread th([&] {
        other.reset(new etcd_sd::Election(c, "/xr/svc", "other",
                                          etcd_sd::ElectionOptions().ttl(5s).wait(
                                              std::chrono::milliseconds(bound(10000)))));
    });
    wait_until([&] { return c.get_prefix("/xr/svc/").size() == 2; }, 5000, "the contender");
    c.lease_revoke(e.lease());
    th.join();
    CHECK(other && other->leading());
    wait_until([&] { return log.size() == 3; }, 5000, "the second loss");
    CHECK(log.at(2).rfind("lost:", 0) == 0);
    CHECK(c.leader("/xr/svc")->value == "other");
    CHECK(!e.leading() && !e.proclaim("x"));
    wait_until([&] { return e.key().empty() && e.revision() == 0; }, 5000, "the lost one freed");
    // the other one resigns: we lead again, told through on_elected
    CHECK(other->resign());
    wait_until([&] { return log.size() == 4; }, 10000, "elected after the hand-over");
    CHECK(log.at(3).rfind("elected:", 0) == 0 && e.leading());
    CHECK(c.leader("/xr/svc")->value == "me");
    CHECK(e.proclaim("me2") && c.leader("/xr/svc")->value == "me2");

    // resign stops the campaigning for good
    CHECK(e.resign());
    CHECK(e.check() == ETCD_SD_CLOSED && !c.leader("/xr/svc"));
    other.reset();
    CHECK(log.size() == 4);
    CHECK(throws<etcd_sd::Error>([&] {
        etcd_sd::Election(c, "/xr/svc", "x", etcd_sd::ElectionOptions().lease(1).recampaign());
    }));
}

void test_election_destroyed_in_callback() {
    etcd_sd::Client c = client();
    // without recampaign: from on_lost, on a library callback thread
    {
        std::mutex mu;
        std::unique_ptr<etcd_sd::Election> e;
        std::atomic<int> done{0};
        std::unique_lock<std::mutex> hold(mu);  // the callback waits until `e` is set
        e.reset(new etcd_sd::Election(
            c, "/xd/a", "v", etcd_sd::ElectionOptions().ttl(5s).on_lost([&](const std::string &) {
                std::unique_ptr<etcd_sd::Election> self;
                {
                    std::lock_guard<std::mutex> g(mu);
                    self = std::move(e);
                }
                self.reset();
                done++;
            })));
        const int64_t lease = e->lease();
        hold.unlock();
        c.lease_revoke(lease);
        wait_until([&] { return done.load() == 1; }, 5000, "destroyed in on_lost");
    }
    // with recampaign: from on_elected, on its worker thread (which then leaves by itself)
    {
        std::mutex mu;
        std::unique_ptr<etcd_sd::Election> e;
        std::atomic<int> done{0};
        std::unique_lock<std::mutex> hold(mu);
        e.reset(new etcd_sd::Election(
            c, "/xd/b", "v", etcd_sd::ElectionOptions().ttl(5s).recampaign([&](int64_t) {
                std::unique_ptr<etcd_sd::Election> self;
                {
                    std::lock_guard<std::mutex> g(mu);
                    self = std::move(e);
                }
                self.reset();  // resigns the new leadership
                done++;
            })));
        const int64_t lease = e->lease();
        hold.unlock();
        c.lease_revoke(lease);
        wait_until([&] { return done.load() == 1; }, 10000, "destroyed in on_elected");
        CHECK(!c.leader("/xd/b"));
    }
    // with recampaign, destroyed by its owner while its worker campaigns behind another
    // leader: the destructor waits for that one campaign (at most wait()) and no callback
    // runs afterwards
    {
        Log log;
        auto e = std::make_unique<etcd_sd::Election>(
            c, "/xd/c", "v",
            etcd_sd::ElectionOptions()
                .ttl(5s)
                .wait(std::chrono::milliseconds(bound(1000)))
                .on_lost([&](const std::string &) { log.add("lost"); })
                .recampaign([&](int64_t) { log.add("elected"); }));
        std::unique_ptr<etcd_sd::Election> holder;
        std::thread th([&] {
            holder.reset(new etcd_sd::Election(c, "/xd/c", "holder",
                                               etcd_sd::ElectionOptions().ttl(5s).wait(
                                                   std::chrono::milliseconds(bound(10000)))));
        });
        wait_until([&] { return c.get_prefix("/xd/c/").size() == 2; }, 5000, "the holder");
        c.lease_revoke(e->lease());
        th.join();
        wait_until([&] { return log.size() == 1; }, 5000, "the loss");
        const auto t0 = std::chrono::steady_clock::now();
        e.reset();
        CHECK(test_ms_since(t0) < bound(3000));
        CHECK(log.size() == 1 && log.at(0) == "lost");
        CHECK(holder->leading());
        wait_until([&] { return c.get_prefix("/xd/c/").size() == 1; }, 5000, "no candidate left");
    }
}

}  // namespace

int main() {
    static const test_case cases[] = {
        {"transaction", test_transaction},
        {"client_misc", test_client_misc},
        {"lock", test_lock},
        {"lock_destroyed_in_callback", test_lock_destroyed_in_callback},
        {"election", test_election},
        {"election_recampaign", test_election_recampaign},
        {"election_destroyed_in_callback", test_election_destroyed_in_callback},
    };
    return run_cases(cases);
}
