// benches/anchors/anchors.hpp -- the code every arm of scripts/anchors.sh shares: arguments,
// the clock, the arrival slots the watch callbacks stamp, the put->callback and register loops,
// the percentiles and the JSON line. Each arm (cppapi.cc for etcd-cpp-apiv3 and for etcd-sd's
// drop-in headers, native.cc for etcd-sd's C API) only supplies the library calls, so the
// workload, the pacing and the timing are the same code in every arm.
//
// Header-only, C++17, no dependency beyond the standard library.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace anchors {

// The value every arm puts (the length of a typical host:port).
inline const std::string kValue = "10.0.0.1:5000";

[[noreturn]] inline void die(const std::string &what) {
    std::fprintf(stderr, "anchors: %s\n", what.c_str());
    std::exit(1);
}

// Monotonic nanoseconds (steady_clock is CLOCK_MONOTONIC on Linux).
inline int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

struct Args {
    std::string arm;        // the name written in the JSON line
    std::string endpoints;  // e.g. http://127.0.0.1:2379
    std::string prefix;     // every key of this run starts with it; ends with '/'
    int events = 2000;      // measured put->callback events
    int warmup = 200;       // put->callback events before them, not measured
    int registrations = 500;
    int reg_warmup = 20;
    int ttl = 10;                  // lease TTL of a registration, seconds
    bool inline_callbacks = false; // native arm only
    std::string out;               // JSON output file ("" = stdout)
};

inline void usage(const char *argv0) {
    std::fprintf(stderr,
                 "usage: %s --endpoints URL --prefix /p/ [--arm NAME] [--events N] "
                 "[--warmup N] [--registrations N] [--reg-warmup N] [--ttl S] [--inline] "
                 "[--out FILE]\n",
                 argv0);
}

inline Args parse_args(int argc, char **argv, const char *default_arm) {
    Args a;
    a.arm = default_arm;
    auto num = [&](int &i) {
        if (i + 1 >= argc) {
            usage(argv[0]);
            std::exit(2);
        }
        char *end = nullptr;
        long v = std::strtol(argv[++i], &end, 10);
        if (*end != '\0' || v < 0 || v > 10000000) die(std::string("bad number: ") + argv[i]);
        return static_cast<int>(v);
    };
    auto str = [&](int &i) -> std::string {
        if (i + 1 >= argc) {
            usage(argv[0]);
            std::exit(2);
        }
        return argv[++i];
    };
    for (int i = 1; i < argc; ++i) {
        std::string f = argv[i];
        if (f == "--arm") a.arm = str(i);
        else if (f == "--endpoints") a.endpoints = str(i);
        else if (f == "--prefix") a.prefix = str(i);
        else if (f == "--events") a.events = num(i);
        else if (f == "--warmup") a.warmup = num(i);
        else if (f == "--registrations") a.registrations = num(i);
        else if (f == "--reg-warmup") a.reg_warmup = num(i);
        else if (f == "--ttl") a.ttl = num(i);
        else if (f == "--inline") a.inline_callbacks = true;
        else if (f == "--out") a.out = str(i);
        else {
            usage(argv[0]);
            std::exit(2);
        }
    }
    if (a.endpoints.empty() || a.prefix.empty() || a.prefix.back() != '/' || a.ttl < 2) {
        usage(argv[0]);
        std::exit(2);
    }
    return a;
}

// put->callback keys are <prefix>pc/<8 digits>; registrations <prefix>reg/<8 digits>.
inline std::string pc_prefix(const Args &a) { return a.prefix + "pc/"; }
inline std::string seq_key(const std::string &prefix, size_t seq) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%08zu", seq);
    return prefix + buf;
}

// One slot per put->callback key: the library's callback stamps the moment the event
// reached user code; the main thread waits for the slot. The stamp is taken first thing in
// the callback, so the wake-up of the main thread (which only paces the next put) is not in
// the figure.
class Arrivals {
  public:
    Arrivals(std::string prefix, size_t capacity)
        : prefix_(std::move(prefix)), slots_(new std::atomic<int64_t>[capacity]),
          capacity_(capacity) {
        for (size_t i = 0; i < capacity_; ++i) slots_[i].store(0, std::memory_order_relaxed);
    }

    // From the library's callback, on whatever thread it runs: no allocation, one short lock.
    void on_put(const char *key, size_t len) {
        const int64_t t = now_ns();
        if (len <= prefix_.size() || std::memcmp(key, prefix_.data(), prefix_.size()) != 0) {
            return;
        }
        size_t seq = 0;
        for (size_t i = prefix_.size(); i < len; ++i) {
            if (key[i] < '0' || key[i] > '9') return;
            seq = seq * 10 + static_cast<size_t>(key[i] - '0');
        }
        if (seq >= capacity_) return;
        int64_t zero = 0;
        slots_[seq].compare_exchange_strong(zero, t, std::memory_order_release);
        { std::lock_guard<std::mutex> g(m_); }
        cv_.notify_all();
    }

    // The stamp of key `seq`, or 0 if it did not arrive within `timeout_ms`.
    int64_t wait(size_t seq, int timeout_ms) {
        std::unique_lock<std::mutex> g(m_);
        cv_.wait_for(g, std::chrono::milliseconds(timeout_ms),
                     [&] { return slots_[seq].load(std::memory_order_acquire) != 0; });
        return slots_[seq].load(std::memory_order_acquire);
    }

    size_t capacity() const { return capacity_; }

  private:
    std::string prefix_;
    std::unique_ptr<std::atomic<int64_t>[]> slots_;
    size_t capacity_;
    std::mutex m_;
    std::condition_variable cv_;
};

inline size_t arrivals_needed(const Args &a) {
    // The readiness probes (at most 100) + warm-up + measured events.
    return 100 + static_cast<size_t>(a.warmup) + static_cast<size_t>(a.events);
}

struct PutCallback {
    std::vector<int64_t> latency_ns;  // put issued -> callback entered
    std::vector<int64_t> put_rtt_ns;  // put issued -> put returned
    int ready_probes = 0;             // puts until the watch delivered the first event
    size_t before_ack = 0;            // events whose callback ran before their put returned
};

// The put->callback loop. `put(key, value)` is the arm's own client's blocking put (it dies on
// failure). One event in flight at a time: the next put is issued once the previous event
// reached the callback and its put returned.
template <class Put> PutCallback run_put_callback(const Args &a, Arrivals &arr, Put put) {
    const std::string prefix = pc_prefix(a);
    PutCallback r;
    size_t seq = 0;
    // Readiness: a watch reports nothing put before it exists, and a library may return from
    // its constructor before etcd confirmed the watch. Probe every 100 ms, for 10 s at most.
    for (;; ++seq) {
        if (seq >= 100) die("the watch delivered none of 100 probe puts (10 s)");
        put(seq_key(prefix, seq), kValue);
        ++r.ready_probes;
        if (arr.wait(seq, 100) != 0) break;
    }
    ++seq;
    const size_t total = static_cast<size_t>(a.warmup) + static_cast<size_t>(a.events);
    r.latency_ns.reserve(static_cast<size_t>(a.events));
    r.put_rtt_ns.reserve(static_cast<size_t>(a.events));
    for (size_t i = 0; i < total; ++i, ++seq) {
        const std::string key = seq_key(prefix, seq);
        const int64_t t0 = now_ns();
        put(key, kValue);
        const int64_t t1 = now_ns();
        const int64_t tc = arr.wait(seq, 5000);
        if (tc == 0) die("no callback for " + key + " within 5 s");
        if (i >= static_cast<size_t>(a.warmup)) {
            r.latency_ns.push_back(tc - t0);
            r.put_rtt_ns.push_back(t1 - t0);
            if (tc < t1) ++r.before_ack;
        }
    }
    return r;
}

// The register loop: `reg(key)` is timed (the arm's whole registration), `release()` is not
// (it frees what `reg` made, so registrations do not pile up: every arm frees each one before
// the next, revoking its lease).
template <class Reg, class Release>
std::vector<int64_t> run_register(const Args &a, Reg reg, Release release) {
    const std::string prefix = a.prefix + "reg/";
    std::vector<int64_t> v;
    v.reserve(static_cast<size_t>(a.registrations));
    const size_t total = static_cast<size_t>(a.reg_warmup) + static_cast<size_t>(a.registrations);
    for (size_t i = 0; i < total; ++i) {
        const std::string key = seq_key(prefix, i);
        const int64_t t0 = now_ns();
        reg(key);
        const int64_t t1 = now_ns();
        release();
        if (i >= static_cast<size_t>(a.reg_warmup)) v.push_back(t1 - t0);
    }
    return v;
}

// Nearest-rank percentiles in ms (as benches/report/util.rs computes them).
inline std::string stats_json(std::vector<int64_t> v) {
    if (v.empty()) return "null";
    std::sort(v.begin(), v.end());
    auto rank = [&](double p) {
        size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
        i = std::min(std::max<size_t>(i, 1), v.size());
        return static_cast<double>(v[i - 1]) / 1e6;
    };
    double sum = 0;
    for (int64_t x : v) sum += static_cast<double>(x);
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"n\": %zu, \"min\": %.4f, \"p50\": %.4f, \"p90\": %.4f, \"p99\": %.4f, "
                  "\"max\": %.4f, \"mean\": %.4f}",
                  v.size(), static_cast<double>(v.front()) / 1e6, rank(50), rank(90), rank(99),
                  static_cast<double>(v.back()) / 1e6, sum / static_cast<double>(v.size()) / 1e6);
    return buf;
}

// A line of /proc/self/status ("Threads", "VmRSS"), as a number; -1 if absent.
inline long proc_status(const char *field) {
    std::ifstream f("/proc/self/status");
    std::string line;
    const std::string want = std::string(field) + ":";
    while (std::getline(f, line)) {
        if (line.compare(0, want.size(), want) == 0) return std::atol(line.c_str() + want.size());
    }
    return -1;
}

// The arm's one JSON object, on one line, to --out or stdout.
inline void emit(const Args &a, const PutCallback &pc, const std::vector<int64_t> &reg,
                 long threads) {
    std::ostringstream o;
    o << "{\"arm\": \"" << a.arm << "\", \"events\": " << a.events
      << ", \"registrations\": " << a.registrations << ", \"ttl\": " << a.ttl
      << ", \"ready_probes\": " << pc.ready_probes
      << ", \"put_callback_ms\": " << stats_json(pc.latency_ns)
      << ", \"put_rtt_ms\": " << stats_json(pc.put_rtt_ns)
      << ", \"callback_before_put_returned\": "
      << (pc.latency_ns.empty() ? 0.0
                                : static_cast<double>(pc.before_ack) /
                                      static_cast<double>(pc.latency_ns.size()))
      << ", \"register_ms\": " << stats_json(reg) << ", \"threads\": " << threads
      << ", \"rss_kb\": " << proc_status("VmRSS") << "}\n";
    if (a.out.empty()) {
        std::fputs(o.str().c_str(), stdout);
        std::fflush(stdout);
        return;
    }
    std::ofstream f(a.out);
    f << o.str();
    if (!f) die("cannot write " + a.out);
}

}  // namespace anchors
