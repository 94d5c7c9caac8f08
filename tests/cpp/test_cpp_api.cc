// The C++ wrapper (etcd_sd.hpp) against a real etcd (started by tests/with_etcd.py).
//
// Environment: ETCD_SD_TEST_ENDPOINTS (required), ETCD_SD_TEST_SLOW=1 (relaxed time bounds),
// ETCD_SD_TEST_ONLY=name (run only the cases whose name contains it). The tls_options case
// also uses ETCD_SD_TEST_CA, _OTHER_CA, _CLIENT_CERT, _CLIENT_KEY from `with_etcd.py --tls`
// (CTest runs it that way as cpp_api_tls; run with a plain etcd it skips its TLS part).
// No framework (the harness is test_util.hpp): CHECK prints file:line and exits at the first
// failure.

#include "etcd_sd.hpp"

#include "test_util.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <pthread.h>
#include <iostream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// `expr` must throw etcd_sd::Error with one of the codes.
#define CHECK_THROWS(expr, code_a, code_b)                                                 \
    do {                                                                                   \
        bool thrown_ = false;                                                              \
        try {                                                                              \
            (void)(expr);                                                                  \
        } catch (const etcd_sd::Error &e_) {                                               \
            thrown_ = true;                                                                \
            if (e_.code() != (code_a) && e_.code() != (code_b))                            \
                fail(__FILE__, __LINE__,                                                   \
                     std::string(#expr " threw ") + e_.code_name() + ": " + e_.what());    \
            if (std::strlen(e_.what()) == 0)                                               \
                fail(__FILE__, __LINE__, #expr " threw an Error with an empty message");   \
        }                                                                                  \
        if (!thrown_) fail(__FILE__, __LINE__, #expr " did not throw etcd_sd::Error");     \
    } while (0)

// Events seen by a discovery's callbacks ("P key value" / "D key value"), thread-safe.
class Events {
public:
    etcd_sd::Discovery::NotifyCallback put() {
        return [this](std::string k, std::string v) { add('P', std::move(k), std::move(v)); };
    }
    etcd_sd::Discovery::NotifyCallback del() {
        return [this](std::string k, std::string v) { add('D', std::move(k), std::move(v)); };
    }

    void add(char kind, std::string key, std::string value) {
        std::lock_guard<std::mutex> lock(mu_);
        list_.push_back(std::string(1, kind) + " " + key + " " + value);
        cv_.notify_all();
    }

    bool wait(const std::string &event, std::chrono::milliseconds timeout) {
        std::unique_lock<std::mutex> lock(mu_);
        return cv_.wait_for(lock, bound(timeout), [&] {
            return std::find(list_.begin(), list_.end(), event) != list_.end();
        });
    }

    bool has(const std::string &event) {
        std::lock_guard<std::mutex> lock(mu_);
        return std::find(list_.begin(), list_.end(), event) != list_.end();
    }

    std::vector<std::string> snapshot() {
        std::lock_guard<std::mutex> lock(mu_);
        return list_;
    }

    size_t size() {
        std::lock_guard<std::mutex> lock(mu_);
        return list_.size();
    }

    std::string dump() {
        std::string s;
        for (const auto &e : snapshot()) s += "\n      " + e;
        return s;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::string> list_;
};

#define WAIT_EVENT(events, ev, timeout)                                                    \
    do {                                                                                   \
        if (!(events).wait((ev), (timeout)))                                               \
            fail(__FILE__, __LINE__, std::string("no event \"") + (ev) + "\"; got:" +       \
                                         (events).dump());                                 \
    } while (0)

// ---------------------------------------------------------------------------------------

void test_round_trip() {
    Events ev;
    // like the chat system: shared_ptr everywhere
    etcd_sd::Registry::ptr reg = std::make_shared<etcd_sd::Registry>(endpoints);
    CHECK(reg->registry("/rt/user/instance-1", "127.0.0.1:9000"));
    CHECK(reg->lease_id() != 0);
    CHECK(reg->last_error().empty() && reg->last_error_code() == ETCD_SD_OK);

    etcd_sd::Discovery::ptr disc =
        std::make_shared<etcd_sd::Discovery>(endpoints, "/rt/user/", ev.put(), ev.del());
    // the initial listing was delivered before the constructor returned
    CHECK(ev.has("P /rt/user/instance-1 127.0.0.1:9000"));
    CHECK(ev.size() == 1);

    etcd_sd::Registry::ptr other = std::make_shared<etcd_sd::Registry>(endpoints, 5);
    CHECK(other->registry("/rt/user/instance-2", "127.0.0.1:9001"));
    WAIT_EVENT(ev, "P /rt/user/instance-2 127.0.0.1:9001", 2000ms);
    CHECK(other->registry("/rt/user/instance-2", "127.0.0.1:9002"));  // update
    WAIT_EVENT(ev, "P /rt/user/instance-2 127.0.0.1:9002", 2000ms);
    CHECK(other->unregister("/rt/user/instance-2"));
    WAIT_EVENT(ev, "D /rt/user/instance-2 127.0.0.1:9002", 2000ms);

    // destroying the registry revokes its lease: its key goes at once
    auto t0 = Clock::now();
    reg.reset();
    WAIT_EVENT(ev, "D /rt/user/instance-1 127.0.0.1:9000", 1000ms);
    std::printf("    delete seen %lld ms after ~Registry\n",
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0)
                        .count()));
    disc.reset();
}

void test_errors() {
    CHECK_THROWS(etcd_sd::Registry("ftp://x:1"), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(etcd_sd::Registry(""), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(etcd_sd::Registry("127.0.0.1:notaport"), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(etcd_sd::Registry(endpoints, 0), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(etcd_sd::Discovery("http://", "/x", nullptr, nullptr), ETCD_SD_INVALID_ARGUMENT,
                 ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(etcd_sd::Discovery(endpoints, "", nullptr, nullptr), ETCD_SD_INVALID_ARGUMENT,
                 ETCD_SD_INVALID_ARGUMENT);

    // the message is the library's
    try {
        etcd_sd::Registry r("ftp://x:1");
        fail(__FILE__, __LINE__, "no throw");
    } catch (const std::runtime_error &e) {  // catchable as runtime_error too
        CHECK(std::string(e.what()).find("ftp") != std::string::npos);
    }

    // nothing listening: UNAVAILABLE (or TIMEOUT) within the connect timeout
    const std::string dead = "http://127.0.0.1:" + std::to_string(dead_port());
    auto t0 = Clock::now();
    CHECK_THROWS(etcd_sd::Registry(etcd_sd::Options().endpoints(dead).connect_timeout(1000ms)),
                 ETCD_SD_UNAVAILABLE, ETCD_SD_TIMEOUT);
    CHECK_THROWS(etcd_sd::Discovery(etcd_sd::Options().endpoints(dead).connect_timeout(1000ms),
                                    "/x", [](std::string, std::string) {}, nullptr),
                 ETCD_SD_UNAVAILABLE, ETCD_SD_TIMEOUT);
    CHECK(Clock::now() - t0 < bound(6000ms));

    // registry()/unregister() report failure by returning false, keeping the reason
    etcd_sd::Registry reg(endpoints);
    CHECK(!reg.registry("", "v"));
    CHECK(reg.last_error_code() == ETCD_SD_INVALID_ARGUMENT);
    CHECK(reg.last_error().find("key") != std::string::npos);
    CHECK(!reg.registry("/err/k", "\xff\xfe"));
    CHECK(reg.last_error().find("value") != std::string::npos);
    CHECK(!reg.unregister(""));
    CHECK(reg.last_error_code() == ETCD_SD_INVALID_ARGUMENT);
    CHECK(reg.registry("/err/k", "v"));  // still usable
    CHECK(reg.last_error_code() == ETCD_SD_INVALID_ARGUMENT);  // the last *failure* is kept
}

void test_options() {
    etcd_sd::Options opts;
    CHECK(opts.capi() != nullptr);
    CHECK_THROWS(opts.endpoints(""), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(opts.endpoints("ftp://x:1"), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(opts.ttl(0), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(opts.ttl(-3), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(opts.connect_timeout(0ms), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(opts.request_timeout(-5ms), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    // no endpoints set: constructors refuse
    CHECK_THROWS(etcd_sd::Registry(opts), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);

    opts.endpoints(endpoints).ttl(2).connect_timeout(2000ms).request_timeout(2000ms);
    etcd_sd::Registry reg(opts);
    CHECK(reg.registry("/opt/a", "1"));
    Events ev;
    etcd_sd::Discovery disc(opts, "/opt/", ev.put(), ev.del());
    CHECK(ev.has("P /opt/a 1"));

    // Options are move-only; a moved-to builder keeps its settings
    etcd_sd::Options moved(std::move(opts));
    CHECK(moved.capi() != nullptr && opts.capi() == nullptr);
    etcd_sd::Registry reg2(moved);
    CHECK(reg2.registry("/opt/b", "2"));
    WAIT_EVENT(ev, "P /opt/b 2", 2000ms);
}

// Issue 19: Go's naming JSON written by a Registry, a Kratos value read by the chosen scheme.
void test_value_formats() {
    etcd_sd::Options bad;
    CHECK_THROWS(bad.kratos_endpoint("grpc://"), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(bad.value_format(static_cast<etcd_sd_value_format>(9)), ETCD_SD_INVALID_ARGUMENT,
                 ETCD_SD_INVALID_ARGUMENT);

    Events ev;
    etcd_sd::Discovery disc(endpoints, "cppfmt/", ev.put(), ev.del());
    etcd_sd::Registry go(etcd_sd::Options().endpoints(endpoints).value_format(
        ETCD_SD_VALUE_GO_NAMING));
    CHECK(go.registry("cppfmt/greeter/1", "127.0.0.1:7201 3"));
    WAIT_EVENT(ev, R"(P cppfmt/greeter/1 {"Op":0,"Addr":"127.0.0.1:7201","Metadata":{"weight":3}})",
               2000ms);
    CHECK(!go.registry("cppfmt/greeter/2", "not an address"));

    etcd_sd::Registry plain(endpoints, 5);
    CHECK(plain.registry("/cppfmt/hello/i1",
                         R"({"id":"i1","endpoints":["http://127.0.0.1:8001","grpc://127.0.0.1:9001"]})"));
    etcd_sd::ServiceManager grpc(endpoints, "/cppfmt/");
    CHECK(grpc.choose("/cppfmt/hello") == "127.0.0.1:9001");
    etcd_sd::ServiceManager first(etcd_sd::Options().endpoints(endpoints).kratos_endpoint("first"),
                                  "/cppfmt/");
    CHECK(first.choose("/cppfmt/hello") == "127.0.0.1:8001");
}

void test_move_semantics() {
    Events ev;
    etcd_sd::Registry reg(endpoints, 5);
    CHECK(reg.registry("/mv/a", "1"));

    etcd_sd::Discovery first(endpoints, "/mv/", ev.put(), ev.del());
    CHECK(ev.has("P /mv/a 1"));
    etcd_sd_discovery *handle = first.capi();
    CHECK(handle != nullptr);

    etcd_sd::Discovery second(std::move(first));
    CHECK(first.capi() == nullptr && second.capi() == handle);
    CHECK(reg.registry("/mv/b", "2"));
    WAIT_EVENT(ev, "P /mv/b 2", 2000ms);

    std::vector<etcd_sd::Discovery> many;
    many.push_back(std::move(second));  // and into a container that reallocates
    for (int i = 0; i < 4; i++) {
        many.emplace_back(endpoints, "/mv-other/" + std::to_string(i) + "/", nullptr, nullptr);
    }
    CHECK(reg.registry("/mv/c", "3"));
    WAIT_EVENT(ev, "P /mv/c 3", 2000ms);

    // move assignment: the old target is freed, the new one keeps delivering
    Events ev2;
    etcd_sd::Discovery third(endpoints, "/mv2/", ev2.put(), ev2.del());
    many[0] = std::move(third);
    CHECK(reg.registry("/mv2/x", "y"));
    WAIT_EVENT(ev2, "P /mv2/x y", 2000ms);
    size_t before = ev.size();
    Events marker;  // a second observer of the prefix: delivery has gone past the put
    etcd_sd::Discovery witness(endpoints, "/mv/", marker.put(), marker.del());
    CHECK(reg.registry("/mv/d", "4"));
    WAIT_EVENT(marker, "P /mv/d 4", 2000ms);
    CHECK_MSG(ev.size() == before, "a replaced Discovery still delivered events");

    // a moved-from Registry owns nothing
    etcd_sd::Registry reg2(std::move(reg));
    CHECK(reg2.registry("/mv2/z", "z"));
    CHECK(!reg.registry("/mv2/w", "w"));
    CHECK_THROWS(reg.lease_id(), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    WAIT_EVENT(ev2, "P /mv2/z z", 2000ms);
    CHECK(!ev2.has("P /mv2/w w"));

    // release(): the caller owns the C handle (and the wrapper's status callback is removed)
    std::atomic<int> status_calls{0};
    reg2.on_status([&](etcd_sd_status) { ++status_calls; });
    etcd_sd_registry *raw = reg2.release();
    CHECK(raw != nullptr && reg2.capi() == nullptr);
    etcd_sd_registry_free(raw);
    WAIT_EVENT(ev2, "D /mv2/z z", 1000ms);
}

void test_throwing_callback() {
    Events ev;
    std::atomic<int> thrown{0};
    etcd_sd::Registry reg(endpoints, 5);
    CHECK(reg.registry("/throw/initial", "x"));
    etcd_sd::Discovery disc(
        endpoints, "/throw/",
        [&](std::string key, std::string value) {
            if (key.find("/throw/bad") == 0) {
                ++thrown;
                if (value == "int") throw 42;
                throw std::runtime_error("thrown on purpose by the test");
            }
            ev.add('P', key, value);
        },
        [&](std::string, std::string) {
            ++thrown;
            throw std::logic_error("del callback throws on purpose");
        });
    CHECK(ev.has("P /throw/initial x"));
    CHECK(reg.registry("/throw/bad1", "runtime_error"));
    CHECK(reg.registry("/throw/bad2", "int"));
    CHECK(reg.unregister("/throw/bad1"));
    CHECK(reg.registry("/throw/good", "ok"));
    WAIT_EVENT(ev, "P /throw/good ok", 2000ms);
    CHECK(thrown.load() == 3);

    // an exception in the initial listing does not fail the constructor
    etcd_sd::Discovery listing(endpoints, "/throw/bad",
                               [](std::string, std::string) { throw std::runtime_error("listing"); },
                               nullptr);
    CHECK(listing.capi() != nullptr);
}

void test_destroy_inside_own_callback() {
    // The Discovery is owned by a shared_ptr that its own callback drops.
    std::mutex mu;
    etcd_sd::Discovery::ptr holder;
    std::atomic<int> calls{0};
    std::atomic<bool> destroyed{false};
    etcd_sd::Registry reg(endpoints, 5);

    holder = std::make_shared<etcd_sd::Discovery>(
        endpoints, "/cppself/",
        [&](std::string key, std::string) {
            ++calls;
            if (key == "/cppself/stop") {
                etcd_sd::Discovery::ptr mine;
                {
                    std::lock_guard<std::mutex> lock(mu);
                    mine = std::move(holder);
                }
                mine.reset();  // ~Discovery inside its own callback: returns at once
                destroyed = true;
            }
        },
        nullptr);
    Events marker;  // a second observer of the prefix: delivery has gone past the last put
    etcd_sd::Discovery witness(endpoints, "/cppself/", marker.put(), marker.del());
    CHECK(reg.registry("/cppself/a", "1"));
    CHECK(reg.registry("/cppself/stop", "1"));
    CHECK_MSG(poll_until([&] { return destroyed.load(); }, 2000ms),
              "~Discovery did not return inside its own callback");
    int n = calls.load();
    CHECK(n == 2);
    CHECK(reg.registry("/cppself/after", "1"));
    WAIT_EVENT(marker, "P /cppself/after 1", 2000ms);
    CHECK_MSG(calls.load() == n, "a callback ran after the Discovery destroyed itself");
}

void test_no_callback_after_destruction() {
    // Destroy a Discovery while events stream in; afterwards nothing may touch its state.
    std::atomic<bool> stop{false};
    std::thread churn([&] {
        etcd_sd::Registry reg(endpoints, 5);
        for (int i = 0; !stop; i++) {
            reg.registry("/cppafter/k" + std::to_string(i % 5), std::to_string(i));
        }
    });
    std::atomic<bool> dead{false};
    std::atomic<bool> violated{false};
    etcd_sd::Registry marks(endpoints, 5);
    for (int round = 0; round < 3; round++) {
        std::atomic<int> seen{0};
        {
            auto state = std::make_shared<int>(0);  // captured: destroyed with the callbacks
            etcd_sd::Discovery disc(
                endpoints, "/cppafter/",
                [&, state](std::string, std::string) {
                    if (dead) violated = true;
                    ++*state;
                    ++seen;
                    std::this_thread::sleep_for(1ms);  // slow on purpose: events queue up
                    if (dead) violated = true;
                },
                nullptr);
            CHECK(poll_until([&] { return seen >= 5; }, 3000ms));
        }
        dead = true;
        {  // a second observer of the prefix sees a later put: the changes before it are in
            Events marker;
            etcd_sd::Discovery witness(endpoints, "/cppafter/", marker.put(), marker.del());
            const std::string end = "end" + std::to_string(round);
            CHECK(marks.registry("/cppafter/" + end, end));
            WAIT_EVENT(marker, "P /cppafter/" + end + " " + end, 3000ms);
        }
        CHECK_MSG(!violated, "a callback ran after ~Discovery returned");
        dead = false;
    }
    stop = true;
    churn.join();
}

void test_callbacks_on_library_thread() {
    Events ev;
    std::thread::id creator = std::this_thread::get_id();
    std::atomic<bool> initial_on_creator{false}, later_on_other{false};
    etcd_sd::Registry reg(endpoints, 5);
    CHECK(reg.registry("/thr/a", "1"));
    etcd_sd::Discovery disc(
        endpoints, "/thr/",
        [&](std::string key, std::string value) {
            if (key == "/thr/a") initial_on_creator = std::this_thread::get_id() == creator;
            if (key == "/thr/b") later_on_other = std::this_thread::get_id() != creator;
            ev.add('P', key, value);
        },
        nullptr);  // deletes ignored
    CHECK(initial_on_creator);
    CHECK(reg.registry("/thr/b", "2"));
    WAIT_EVENT(ev, "P /thr/b 2", 2000ms);
    CHECK(later_on_other);
    CHECK(reg.unregister("/thr/b"));
}

// Issue 20: Options::inline_callbacks() runs later callbacks on the I/O thread, where a
// blocking call fails (ETCD_SD_INTERNAL) instead of stalling the thread that would answer it.
void test_inline_callbacks() {
    Events ev;
    etcd_sd::Registry reg(endpoints, 5);
    etcd_sd::Registry inner(endpoints, 5);
    std::atomic<bool> on_io{false}, refused{false};
    etcd_sd::Options opts;
    opts.endpoints(endpoints).inline_callbacks();
    etcd_sd::Discovery disc(
        opts, "/inl/",
        [&](std::string key, std::string value) {
            if (key == "/inl/a") {
                char name[32] = "";
                pthread_getname_np(pthread_self(), name, sizeof name);
                on_io = std::string(name) == "etcd-sd-io";
                refused = !inner.registry("/inl-other/x", "1") &&
                          inner.last_error_code() == ETCD_SD_INTERNAL;
            }
            ev.add('P', key, value);
        },
        nullptr);
    CHECK(reg.registry("/inl/a", "1"));
    WAIT_EVENT(ev, "P /inl/a 1", 2000ms);
    CHECK(on_io);
    CHECK(refused);
    CHECK(reg.registry("/inl/b", "2"));  // the I/O thread goes on
    WAIT_EVENT(ev, "P /inl/b 2", 2000ms);
}

void test_status_callback() {
    const char *etcdctl = std::getenv("ETCDCTL");
    if (etcdctl == nullptr || *etcdctl == '\0') {
        std::printf("    SKIPPED: ETCDCTL is not set\n");
        return;
    }
    std::mutex mu;
    std::condition_variable cv;
    std::vector<etcd_sd_status> seen;
    auto wait_status = [&](size_t n) {
        std::unique_lock<std::mutex> lock(mu);
        return cv.wait_for(lock, bound(5000ms), [&] { return seen.size() >= n; });
    };

    Events ev;
    etcd_sd::Registry reg(endpoints, 2);
    // Same settings and TTL: the same (shared) lease. Its statuses are the marker below.
    etcd_sd::Registry witness(endpoints, 2);
    std::atomic<int> witnessed{0};
    witness.on_status([&](etcd_sd_status) { ++witnessed; });
    CHECK(witness.registry("/stw/a", "1"));
    CHECK(witness.lease_id() == reg.lease_id());
    reg.on_status([&](etcd_sd_status st) {
        {
            std::lock_guard<std::mutex> lock(mu);
            seen.push_back(st);
        }
        cv.notify_all();
        throw std::runtime_error("status callback throws on purpose");  // must be harmless
    });
    CHECK(reg.registry("/st/a", "1"));
    etcd_sd::Discovery disc(endpoints, "/st/", ev.put(), ev.del());
    CHECK(ev.has("P /st/a 1"));

    // Revoke the lease behind the library's back: LOST, then RESTORED with a new lease.
    const int64_t lease = reg.lease_id();
    char hex[32];
    std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(lease));
    const std::string cmd = std::string(etcdctl) + " --endpoints " + endpoints +
                            " lease revoke " + hex + " >/dev/null";
    CHECK(std::system(cmd.c_str()) == 0);
    WAIT_EVENT(ev, "D /st/a 1", 2000ms);
    CHECK_MSG(wait_status(2), "no LOST + RESTORED status after the lease was revoked");
    {
        std::lock_guard<std::mutex> lock(mu);
        CHECK(seen[0] == ETCD_SD_STATUS_LOST);
        CHECK(seen[1] == ETCD_SD_STATUS_RESTORED);
    }
    auto events = ev.snapshot();
    poll_until(
        [&] {
            events = ev.snapshot();
            return std::count(events.begin(), events.end(), "P /st/a 1") >= 2;
        },
        3000ms);
    CHECK_MSG(std::count(events.begin(), events.end(), "P /st/a 1") == 2,
              "the key was not put again after the lease was restored:" + ev.dump());
    CHECK(reg.lease_id() != lease);

    // Removed: no more status calls. A moved Registry keeps its callback.
    reg.on_status(nullptr);
    etcd_sd::Registry moved(std::move(reg));
    CHECK_THROWS(reg.on_status([](etcd_sd_status) {}), ETCD_SD_INVALID_ARGUMENT,
                 ETCD_SD_INVALID_ARGUMENT);
    std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(moved.lease_id()));
    const std::string cmd2 = std::string(etcdctl) + " --endpoints " + endpoints +
                             " lease revoke " + hex + " >/dev/null";
    size_t before = ev.size();
    CHECK(poll_until([&] { return witnessed >= 2; }, 3000ms));
    CHECK(std::system(cmd2.c_str()) == 0);
    WAIT_UNTIL("the key back", [&] { return ev.size() >= before + 2; }, 3000ms);
    // The witness's LOST + RESTORED for the same lease: the statuses have been reported.
    WAIT_UNTIL("the witness's statuses", [&] { return witnessed >= 4; });
    std::lock_guard<std::mutex> lock(mu);
    CHECK_MSG(seen.size() == 2, "a removed status callback was called");
}

void test_wait_for_etcd() {
    // Nothing listening, but wait_for_etcd: the constructors succeed and connect later.
    const std::string dead = "http://127.0.0.1:" + std::to_string(dead_port());
    etcd_sd::Options opts;
    opts.endpoints(dead).connect_timeout(500ms).request_timeout(500ms).wait_for_etcd(true);
    auto t0 = Clock::now();
    {
        etcd_sd::Registry reg(opts);
        etcd_sd::Discovery disc(opts, "/wait/", [](std::string, std::string) {}, nullptr);
    }
    CHECK(Clock::now() - t0 < bound(3000ms));
    CHECK_THROWS(etcd_sd::Registry(opts.wait_for_etcd(false)), ETCD_SD_UNAVAILABLE,
                 ETCD_SD_TIMEOUT);
}

// The TLS/auth setters of Options. The setters' input checks run everywhere; the TLS part
// needs the etcd of `with_etcd.py --tls` (CTest: cpp_api_tls) and is skipped otherwise.
void test_tls_options() {
    etcd_sd::Options bad;
    CHECK_THROWS(bad.ca_file(""), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(bad.client_cert("", "key.pem"), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(bad.client_cert("cert.pem", ""), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(bad.server_name(""), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(bad.user("", "pw"), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    CHECK_THROWS(bad.user("svc", "\xff\xfe"), ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);
    // the builder chains; the files are only read by a constructor
    bad.ca_file("/nonexistent/ca.pem").client_cert("/nonexistent/c.pem", "/nonexistent/k.pem")
        .server_name("etcd.test").user("svc", "pw");
    CHECK(std::string(etcd_sd::Error(ETCD_SD_AUTH, "x").code_name()) == "ETCD_SD_AUTH");
    CHECK(std::string(etcd_sd::Error(ETCD_SD_TLS, "x").code_name()) == "ETCD_SD_TLS");

    const char *ca = std::getenv("ETCD_SD_TEST_CA");
    const char *other_ca = std::getenv("ETCD_SD_TEST_OTHER_CA");
    const char *cert = std::getenv("ETCD_SD_TEST_CLIENT_CERT");
    const char *key = std::getenv("ETCD_SD_TEST_CLIENT_KEY");
    if (ca == nullptr || other_ca == nullptr || cert == nullptr || key == nullptr ||
        endpoints.compare(0, 8, "https://") != 0) {
        std::printf("    SKIPPED the TLS part: needs `with_etcd.py --tls` (CTest: cpp_api_tls)\n");
        return;
    }
    // TLS settings with http:// endpoints are refused
    const std::string http = "http://" + endpoints.substr(8);
    CHECK_THROWS(etcd_sd::Registry(etcd_sd::Options().endpoints(http).ca_file(ca)),
                 ETCD_SD_INVALID_ARGUMENT, ETCD_SD_INVALID_ARGUMENT);

    // A round trip, built in one expression each (the temporary Options outlives the call).
    // The server does not ask for a client certificate: offering one is harmless.
    Events ev;
    etcd_sd::Registry reg(etcd_sd::Options().endpoints(endpoints).ca_file(ca).ttl(3));
    CHECK(reg.registry("/tls_cpp/a", "1"));
    etcd_sd::Discovery disc(etcd_sd::Options()
                                .endpoints(endpoints)
                                .ca_file(ca)
                                .server_name("etcd.test")
                                .client_cert(cert, key),
                            "/tls_cpp/", ev.put(), ev.del());
    CHECK(ev.has("P /tls_cpp/a 1"));
    CHECK(reg.registry("/tls_cpp/b", "2"));
    WAIT_EVENT(ev, "P /tls_cpp/b 2", 2000ms);
    CHECK(reg.unregister("/tls_cpp/a"));
    WAIT_EVENT(ev, "D /tls_cpp/a 1", 2000ms);

    // Handshake failures throw Error(ETCD_SD_TLS), fast (the connect timeout is 5 s).
    auto t0 = Clock::now();
    CHECK_THROWS(etcd_sd::Registry(etcd_sd::Options().endpoints(endpoints).ca_file(other_ca)),
                 ETCD_SD_TLS, ETCD_SD_TLS);
    CHECK_THROWS(etcd_sd::Discovery(etcd_sd::Options().endpoints(endpoints).ca_file(ca)
                                        .server_name("wrong.example"),
                                    "/tls_cpp/", ev.put(), nullptr),
                 ETCD_SD_TLS, ETCD_SD_TLS);
    CHECK(Clock::now() - t0 < bound(3000ms));
    try {
        etcd_sd::Registry r(etcd_sd::Options().endpoints(endpoints).ca_file(other_ca));
        fail(__FILE__, __LINE__, "no throw");
    } catch (const etcd_sd::Error &e) {
        CHECK(std::string(e.code_name()) == "ETCD_SD_TLS");
    }

    // A missing file: INVALID_ARGUMENT naming it.
    try {
        etcd_sd::Registry r(etcd_sd::Options().endpoints(endpoints).ca_file(ca).client_cert(
            cert, "/nonexistent/etcd-sd/key.pem"));
        fail(__FILE__, __LINE__, "no throw");
    } catch (const etcd_sd::Error &e) {
        CHECK(e.code() == ETCD_SD_INVALID_ARGUMENT);
        CHECK(std::string(e.what()).find("/nonexistent/etcd-sd/key.pem") != std::string::npos);
    }
}

}  // namespace

int main() {
    const test_case cases[] = {
        {"round_trip", test_round_trip},
        {"errors", test_errors},
        {"options", test_options},
        {"value_formats", test_value_formats},
        {"move_semantics", test_move_semantics},
        {"throwing_callback", test_throwing_callback},
        {"destroy_inside_own_callback", test_destroy_inside_own_callback},
        {"no_callback_after_destruction", test_no_callback_after_destruction},
        {"callbacks_on_library_thread", test_callbacks_on_library_thread},
        {"inline_callbacks", test_inline_callbacks},
        {"status_callback", test_status_callback},
        {"wait_for_etcd", test_wait_for_etcd},
        {"tls_options", test_tls_options},
    };
    return run_cases(cases, [] {
        std::printf("etcd-sd %s, etcd at %s\n", etcd_sd::version().c_str(), endpoints.c_str());
    });
}
