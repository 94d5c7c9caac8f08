// ServiceManager and ChannelPool (etcd_sd_table.hpp) against a real etcd, with real TCP echo
// servers and channels (cpp_examples/echo_channel.hpp) standing in for brpc.
//
// Environment: ETCD_SD_TEST_ENDPOINTS (required), ETCD_SD_TEST_SLOW=1, ETCD_SD_TEST_ONLY=name.
// The harness (CHECK, bound, run_cases) is test_util.hpp.

#include "etcd_sd_table.hpp"

#include "echo_channel.hpp"
#include "test_util.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Pool = etcd_sd::ChannelPool<echo::EchoChannel>;

namespace {

// Registers an instance of `service` (under mgr's prefix) and waits until mgr's listeners are
// told of it. Listeners are told one change after the other, in order, so then every change
// before it has reached every listener (a pool's too). Used as the marker that a change which
// must NOT affect a listener would have by now.
void settle(etcd_sd::Registry &reg, const etcd_sd::ServiceManager::ptr &mgr,
            const std::string &service) {
    std::atomic<bool> seen{false};
    size_t id = mgr->subscribe([&](const std::string &s) {
        if (s == service) seen = true;
    });
    CHECK(reg.registry(service + "/marker", "127.0.0.1:1"));
    WAIT_UNTIL("the marker " + service, [&] { return seen.load(); });
    mgr->unsubscribe(id);
    CHECK(reg.unregister(service + "/marker"));
}

etcd_sd::ServiceManager::ptr manager(const std::string &prefix,
                                     etcd_sd::Policy p = etcd_sd::Policy::RoundRobin) {
    return std::make_shared<etcd_sd::ServiceManager>(endpoints, prefix, p);
}

Pool::Factory factory() {
    return [](const std::string &addr) { return std::make_shared<echo::EchoChannel>(addr); };
}

void test_manager() {
    etcd_sd::Registry reg(endpoints, 10);
    CHECK(reg.registry("/tm/user/1", "127.0.0.1:8101"));
    auto mgr = manager("/tm/");
    CHECK(mgr->choose("/tm/user") == "127.0.0.1:8101");
    CHECK(mgr->choose("/tm/none").empty());
    CHECK(reg.registry("/tm/user/2", "127.0.0.1:8102 weight=4"));
    WAIT_UNTIL("2 instances", [&] { return mgr->instances("/tm/user").size() == 2; });
    std::map<std::string, int> counts;
    for (int i = 0; i < 200; i++) counts[mgr->choose("/tm/user")]++;
    CHECK(counts.size() == 2 && counts["127.0.0.1:8101"] == 100);
    std::string a = mgr->choose("/tm/user", "user-42");
    for (int i = 0; i < 20; i++) CHECK(mgr->choose("/tm/user", "user-42") == a);
    auto list = mgr->instances("/tm/user/");
    CHECK(list[1].key == "/tm/user/2" && list[1].weight == 4 && !list[1].ejected);
    mgr->set_ejection(3, 60000ms, 60000ms, 50);
    for (int i = 0; i < 3; i++) mgr->report("/tm/user", "127.0.0.1:8102", false);
    CHECK(mgr->instances("/tm/user")[1].ejected);
    for (int i = 0; i < 10; i++) CHECK(mgr->choose("/tm/user") == "127.0.0.1:8101");
    mgr->report("/tm/user", "10.9.9.9:1", false);  // unknown: ignored
    mgr->declared("/tm/other");
    CHECK(mgr->choose("/tm/user").empty());
    bool threw = false;
    try {
        etcd_sd::ServiceManager bad(endpoints, "");
    } catch (const etcd_sd::Error &e) {
        threw = e.code() == ETCD_SD_INVALID_ARGUMENT;
    }
    CHECK(threw);
}

void test_channel_pool_lifecycle() {
    echo::EchoServer s1(0, "s1"), s2(0, "s2"), s3(0, "s3");
    etcd_sd::Registry reg(endpoints, 10);
    CHECK(reg.registry("/tp/echo/1", s1.address()));
    CHECK(reg.registry("/tp/echo/2", s2.address()));
    auto mgr = manager("/tp/");
    int alive_before = echo::EchoChannel::instances().load();
    {
        Pool pool(mgr, factory());
        std::set<std::string> names;
        for (int i = 0; i < 10; i++) {
            auto p = pool.pick("/tp/echo");
            CHECK(p.channel != nullptr);
            std::string reply;
            CHECK(p.channel->call("hi", &reply, 2000));
            names.insert(reply.substr(0, 2));
            pool.report("/tp/echo", p.address, true);
        }
        CHECK(names == (std::set<std::string>{"s1", "s2"}));
        CHECK(pool.size() == 2 && pool.created() == 2);
        // Repeated PUTs of the same value: nothing changes, no channel made or leaked.
        for (int i = 0; i < 5; i++) CHECK(reg.registry("/tp/echo/1", s1.address()));
        settle(reg, mgr, "/tp/mark");
        for (int i = 0; i < 10; i++) CHECK(pool.choose("/tp/echo") != nullptr);
        CHECK(pool.size() == 2 && pool.created() == 2);
        // Instance 1 moves to s3's address: its old channel is dropped, a new one made.
        std::weak_ptr<echo::EchoChannel> old;
        for (int i = 0; i < 4 && old.expired(); i++) {
            auto p = pool.pick("/tp/echo");
            if (p.address == s1.address()) old = p.channel;
        }
        CHECK(!old.expired());
        CHECK(reg.registry("/tp/echo/1", s3.address()));
        WAIT_UNTIL("s1's channel dropped", [&] { return old.expired(); });
        std::set<std::string> addrs;
        for (int i = 0; i < 10; i++) addrs.insert(pool.pick("/tp/echo").address);
        CHECK(addrs == (std::set<std::string>{s2.address(), s3.address()}));
        CHECK(pool.size() == 2 && pool.created() == 3);
        // The instance leaves: its channel goes; the last one leaving: none, nullptr.
        CHECK(reg.unregister("/tp/echo/2"));
        WAIT_UNTIL("s2's channel dropped", [&] { return pool.size() == 1; });
        CHECK(reg.unregister("/tp/echo/1"));
        WAIT_UNTIL("no channel", [&] { return pool.size() == 0; });
        CHECK(pool.choose("/tp/echo") == nullptr);
    }
    CHECK(echo::EchoChannel::instances().load() == alive_before);
}

void test_hash_and_black_hole() {
    echo::EchoServer s1(0, "s1"), s2(0, "s2"), s3(0, "s3");
    etcd_sd::Registry reg(endpoints, 10);
    CHECK(reg.registry("/th/echo/1", s1.address()));
    CHECK(reg.registry("/th/echo/2", s2.address()));
    CHECK(reg.registry("/th/echo/3", s3.address()));
    auto mgr = manager("/th/");
    Pool pool(mgr, factory());
    // The same user keeps reaching the same instance.
    std::map<std::string, std::string> home;
    for (int u = 0; u < 30; u++) {
        std::string key = "user-" + std::to_string(u);
        home[key] = pool.pick("/th/echo", &key).address;
    }
    for (auto &h : home) CHECK(pool.pick("/th/echo", &h.first).address == h.second);
    // s2 is black-holed: calls time out; after 5 failures it is skipped.
    s2.pause(true);
    int failed = 0;
    for (int i = 0; i < 60; i++) {
        auto p = pool.pick("/th/echo");
        std::string reply;
        bool ok = p.channel->call("x", &reply, 100);
        if (!ok) failed++;
        pool.report("/th/echo", p.address, ok);
    }
    CHECK_MSG(failed == 5, "failed calls: " + std::to_string(failed));
    CHECK(mgr->instances("/th/echo")[1].ejected);
    s2.pause(false);
}

void test_threads_and_churn() {
    echo::EchoServer s1(0, "s1"), s2(0, "s2");
    etcd_sd::Registry reg(endpoints, 10);
    CHECK(reg.registry("/tc/echo/a", s1.address()));
    auto mgr = manager("/tc/");
    auto pool = std::make_shared<Pool>(mgr, factory());
    std::atomic<bool> stop{false};
    std::atomic<long> picks{0};
    std::vector<std::thread> threads;
    // Under valgrind (slow) everything runs ~50x slower: fewer, gentler pickers, so the
    // registry's requests still fit in their timeout.
    const int n_threads = slow ? 2 : 8;
    for (int t = 0; t < n_threads; t++) {
        threads.emplace_back([&, t] {
            long n = 0;
            while (!stop.load()) {
                std::string key = "u" + std::to_string(n);
                auto p = (t % 2) ? pool->pick("/tc/echo", &key) : pool->pick("/tc/echo");
                if (p.channel) CHECK(p.channel->address() == p.address);
                n++;
                if (slow) std::this_thread::sleep_for(1ms);  // pacing under valgrind, no wait
            }
            picks += n;
        });
    }
    auto t0 = Clock::now();
    int changes = 0;
    while (Clock::now() - t0 < 2s) {
        const std::string &addr = (changes % 2) ? s1.address() : s2.address();
        CHECK(reg.registry("/tc/echo/b", addr));
        if (changes % 3 == 0) CHECK(reg.unregister("/tc/echo/b"));
        changes++;
    }
    stop = true;
    for (auto &t : threads) t.join();
    std::printf("    %d changes, %ld picks\n", changes, picks.load());
    // Settled: exactly one channel per live address, nothing leaked.
    CHECK(reg.registry("/tc/echo/b", s2.address()));
    WAIT_UNTIL("2 instances", [&] { return mgr->instances("/tc/echo").size() == 2; });
    for (int i = 0; i < 10; i++) pool->choose("/tc/echo");
    settle(reg, mgr, "/tc/mark");
    for (int i = 0; i < 10; i++) pool->choose("/tc/echo");
    CHECK_MSG(pool->size() == 2, "pool holds " + std::to_string(pool->size()));
    pool.reset();
}

// Picks `n` times (with `sel` when given) and counts by address; "" counts no instance.
std::map<std::string, int> counts(const etcd_sd::ServiceManager &mgr, const std::string &svc,
                                  int n, const etcd_sd::Selector *sel = nullptr) {
    std::map<std::string, int> c;
    for (int i = 0; i < n; i++) c[sel ? mgr.choose(svc, *sel) : mgr.choose(svc)]++;
    return c;
}

using Counts = std::map<std::string, int>;

bool draining(const etcd_sd::ServiceManager &mgr, const std::string &svc, size_t i) {
    auto v = mgr.instances(svc);
    return i < v.size() && v[i].draining;
}

void test_metadata_selector_failover() {
    etcd_sd::Registry reg(endpoints, 10);
    const std::string svc = "/tsel/svc";
    CHECK(reg.registry(svc + "/0", "127.0.0.1:8600 version=v1 zone=a"));
    CHECK(reg.registry(svc + "/1", "127.0.0.1:8601 version=v2 canary=false"));
    CHECK(reg.registry(svc + "/2",
                       R"({"Addr":"127.0.0.1:8602","Metadata":{"version":"v2","canary":true}})"));
    CHECK(reg.registry(svc + "/3", "127.0.0.1:8603"));
    auto mgr = manager("/tsel/");
    auto inst = mgr->instances(svc);
    CHECK_EQ(inst.size(), size_t(4));
    CHECK(inst[0].meta().size() == 2 && inst[0].meta()[0].first == "version");
    CHECK(inst[0].meta("zone") == std::optional<std::string_view>("a"));
    CHECK(inst[0].zone() == "a" && inst[3].zone().empty());
    CHECK(inst[2].meta("canary") == std::optional<std::string_view>("true"));
    CHECK(!inst[3].meta("version").has_value() && inst[3].meta().empty());
    CHECK(!inst[1].draining);

    bool threw = false;
    try {
        etcd_sd::Selector bad("version");
    } catch (const etcd_sd::Error &e) {
        threw = std::string(e.what()).find("key=value") != std::string::npos;
    }
    CHECK(threw);

    etcd_sd::Selector v2("version=v2");
    CHECK(counts(*mgr, svc, 1000, &v2) == (Counts{{"127.0.0.1:8601", 500}, {"127.0.0.1:8602", 500}}));
    etcd_sd::Selector stable("version=v2,canary=false");
    CHECK(counts(*mgr, svc, 100, &stable) == (Counts{{"127.0.0.1:8601", 100}}));
    etcd_sd::Selector none("version=v3");
    CHECK(counts(*mgr, svc, 10, &none) == (Counts{{"", 10}}));
    etcd_sd::Selector all("version=v3", etcd_sd::Failover::All);
    CHECK(counts(*mgr, svc, 400, &all) == (Counts{{"127.0.0.1:8600", 100},
                                                  {"127.0.0.1:8601", 100},
                                                  {"127.0.0.1:8602", 100},
                                                  {"127.0.0.1:8603", 100}}));
    etcd_sd::Selector missing("version=v3", etcd_sd::Failover::MissingKey);
    CHECK(counts(*mgr, svc, 100, &missing) == (Counts{{"127.0.0.1:8603", 100}}));
    std::string a = mgr->choose(svc, v2, "user-9");
    CHECK(a == "127.0.0.1:8601" || a == "127.0.0.1:8602");
    CHECK(mgr->choose(svc, v2, "user-9") == a);

    // Drain: the v2 instances drain; v2 fails over (None: nothing), listed with the flag.
    CHECK(reg.registry(svc + "/1", "127.0.0.1:8601 version=v2 canary=false draining=true"));
    CHECK(reg.registry(svc + "/2", "127.0.0.1:8602 version=v2 draining=1"));
    WAIT_UNTIL("both draining", [&] { return draining(*mgr, svc, 1) && draining(*mgr, svc, 2); });
    CHECK(counts(*mgr, svc, 10, &v2) == (Counts{{"", 10}}));
    CHECK(counts(*mgr, svc, 200) == (Counts{{"127.0.0.1:8600", 100}, {"127.0.0.1:8603", 100}}));
    CHECK_EQ(mgr->instances(svc).size(), size_t(4));

    // The pool with a selector.
    Pool pool(mgr, factory());
    auto ch = pool.choose(svc, missing);
    CHECK(ch != nullptr);
}

void test_zones_and_slow_start() {
    etcd_sd::Registry reg(endpoints, 10);
    const std::string svc = "/tzone/svc";
    CHECK(reg.registry(svc + "/0", "127.0.0.1:8700 zone=a"));
    CHECK(reg.registry(svc + "/1", "127.0.0.1:8701 zone=a"));
    CHECK(reg.registry(svc + "/2", "127.0.0.1:8702 zone=b"));
    auto mgr = manager("/tzone/");
    mgr->set_locality("a");
    CHECK(counts(*mgr, svc, 200) == (Counts{{"127.0.0.1:8700", 100}, {"127.0.0.1:8701", 100}}));
    // One of two local instances drains (50 %, not under 50 %): stay local.
    CHECK(reg.registry(svc + "/0", "127.0.0.1:8700 zone=a draining=true"));
    WAIT_UNTIL("draining", [&] { return draining(*mgr, svc, 0); });
    CHECK(counts(*mgr, svc, 100) == (Counts{{"127.0.0.1:8701", 100}}));
    // Under a 75 % threshold: spill over to zone b too.
    mgr->set_locality("a", 75);
    CHECK(counts(*mgr, svc, 200) == (Counts{{"127.0.0.1:8701", 100}, {"127.0.0.1:8702", 100}}));
    bool threw = false;
    try {
        mgr->set_locality("a", 101);
    } catch (const etcd_sd::Error &) {
        threw = true;
    }
    CHECK(threw);
    // Zone b with a selector.
    mgr->set_locality("b");
    etcd_sd::Selector any("zone=a", etcd_sd::Failover::All);
    CHECK(counts(*mgr, svc, 100, &any) == (Counts{{"127.0.0.1:8701", 100}}));

    // Slow start: 1 h from 10 %; a new instance of zone b is at the floor.
    mgr->set_slow_start(std::chrono::hours(1), 10);
    CHECK(reg.registry(svc + "/3", "127.0.0.1:8703 zone=b"));
    WAIT_UNTIL("4 instances", [&] { return mgr->instances(svc).size() == 4; });
    // Local (zone b) candidates 2 and 3: 3 takes 10 % of its turns, 2 the rest.
    CHECK(counts(*mgr, svc, 2000) == (Counts{{"127.0.0.1:8702", 1900}, {"127.0.0.1:8703", 100}}));
    mgr->set_slow_start(std::chrono::milliseconds(0));
    CHECK(counts(*mgr, svc, 2000) == (Counts{{"127.0.0.1:8702", 1000}, {"127.0.0.1:8703", 1000}}));
}


// A registry's drain: its instances stay listed (draining) and are never chosen for a new
// call; undrain brings them back. The metrics text counts the table and the drain.
void test_drain_and_metrics() {
    etcd_sd::Registry a(endpoints, 10), b(endpoints, 10);
    CHECK(a.registry("/td/echo/a", "127.0.0.1:8801 zone=x"));
    CHECK(b.registry("/td/echo/b", "127.0.0.1:8802"));
    auto mgr = manager("/td/");
    WAIT_UNTIL("2 instances", [&] { return mgr->instances("/td/echo").size() == 2; });
    CHECK(a.drain());
    WAIT_UNTIL("a draining", [&] {
        auto list = mgr->instances("/td/echo");
        return list.size() == 2 && list[0].draining && !list[1].draining;
    });
    std::map<std::string, int> counts;
    for (int i = 0; i < 200; i++) counts[mgr->choose("/td/echo")]++;
    CHECK(counts.size() == 1 && counts["127.0.0.1:8802"] == 200);
    CHECK(mgr->instances("/td/echo")[0].meta("zone") == std::string_view("x"));
    std::string text = etcd_sd::metrics_text();
    CHECK(text.find("# TYPE etcd_sd_table_instances gauge") != std::string::npos);
    CHECK(text.find("etcd_sd_registries_draining 1\n") != std::string::npos);
    CHECK(a.undrain());
    WAIT_UNTIL("a back", [&] { return !mgr->instances("/td/echo")[0].draining; });
    counts.clear();
    for (int i = 0; i < 200; i++) counts[mgr->choose("/td/echo")]++;
    CHECK(counts["127.0.0.1:8801"] == 100 && counts["127.0.0.1:8802"] == 100);
}

// A table with a snapshot file writes it; a table that cannot reach etcd starts from it,
// stale, and chooses among the last-known instances.
void test_snapshot() {
    etcd_sd::Registry reg(endpoints, 10);
    CHECK(reg.registry("/ts/echo/a", "127.0.0.1:8901"));
    char dir[] = "/tmp/etcd-sd-snap.XXXXXX";
    CHECK(mkdtemp(dir) != nullptr);
    std::string file = std::string(dir) + "/ts.snapshot";
    {
        etcd_sd::ServiceManager mgr(etcd_sd::Options().endpoints(endpoints).snapshot_file(file),
                                    "/ts/");
        CHECK(!mgr.is_stale());
        CHECK(mgr.choose("/ts/echo") == "127.0.0.1:8901");
    }  // written at the latest when the table is freed
    std::string dead = "http://127.0.0.1:" + std::to_string(dead_port());
    etcd_sd::ServiceManager offline(
        etcd_sd::Options().endpoints(dead).connect_timeout(1000ms).snapshot_file(file), "/ts/");
    CHECK(offline.is_stale());
    CHECK(offline.choose("/ts/echo") == "127.0.0.1:8901");
    CHECK(std::remove(file.c_str()) == 0);
    CHECK(throws<etcd_sd::Error>([&] {
        etcd_sd::ServiceManager none(
            etcd_sd::Options().endpoints(dead).connect_timeout(1000ms).snapshot_file(file),
            "/ts/");
    }));
    CHECK(rmdir(dir) == 0);
}

}  // namespace

int main() {
    const test_case cases[] = {
        {"manager", test_manager},
        {"channel_pool_lifecycle", test_channel_pool_lifecycle},
        {"hash_and_black_hole", test_hash_and_black_hole},
        {"threads_and_churn", test_threads_and_churn},
        {"metadata_selector_failover", test_metadata_selector_failover},
        {"zones_and_slow_start", test_zones_and_slow_start},
        {"drain_and_metrics", test_drain_and_metrics},
        {"snapshot", test_snapshot},
    };
    return run_cases(cases);
}
