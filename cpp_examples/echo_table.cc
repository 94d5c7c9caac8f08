// Service table example: echo-service instances that register themselves, and a client that
// calls them through etcd_sd::ServiceManager + etcd_sd::ChannelPool (round robin, and by
// consistent hash on a user id), reporting each call's result for outlier ejection.
//
//   echo_table serve  <endpoints> <key> [port]             an instance: TCP echo on
//                                                            127.0.0.1:<port> (0/none: free
//                                                            port), registered as key ->
//                                                            127.0.0.1:<port> (lease TTL 3 s)
//   echo_table client <endpoints> <service> <seconds> [interval_ms]
//
// serve: SIGTERM/SIGINT drain first (the key stays, marked draining: tables stop picking the
// instance for new calls), answer for 500 ms more (calls already on their way), then
// unregister and stop; SIGUSR1 black-holes the instance
// (it keeps its registration and its connections but never answers), SIGUSR2 ends that.
// client: one call every interval_ms (default 20), alternately round robin and by hash on
// "user-<n % 5>"; each call has a 300 ms timeout. Prints one line per failed call and per
// change of the set ("instances: ..." lists the instances it may pick, then "draining: ..."
// when some are draining), and a summary at the end:
//   calls N ok N failed N; per address: <addr> ok N failed N ...
// Exit code 0, or 1 on a setup error. scripts/demo.sh runs three instances and one client,
// then stops one instance with SIGTERM and black-holes another.

#include "etcd_sd_table.hpp"

#include "echo_channel.hpp"

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <thread>

using Clock = std::chrono::steady_clock;

namespace {

std::string now_text() {
    long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    char buf[32];
    long long s = (ms / 1000) % 86400;
    std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld.%03lld", s / 3600, s / 60 % 60, s % 60,
                  ms % 1000);
    return buf;
}

int serve(const std::string &endpoints, const std::string &key, int port) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts: all inherit it

    echo::EchoServer server(port, key);
    etcd_sd::Registry reg(endpoints, 3);
    if (!reg.registry(key, server.address())) {
        std::fprintf(stderr, "register %s: %s\n", key.c_str(), reg.last_error().c_str());
        return 1;
    }
    std::printf("%s serving %s -> %s\n", now_text().c_str(), key.c_str(),
                server.address().c_str());
    std::fflush(stdout);
    for (;;) {
        int sig = 0;
        sigwait(&set, &sig);
        if (sig == SIGUSR1) {
            server.pause(true);
            std::printf("%s black-holed (registration kept)\n", now_text().c_str());
        } else if (sig == SIGUSR2) {
            server.pause(false);
            std::printf("%s answering again\n", now_text().c_str());
        } else {
            // The SIGTERM sequence: drain (tables stop picking us for new calls) ...
            if (!reg.drain()) {
                std::fprintf(stderr, "drain: %s\n", reg.last_error().c_str());
            }
            std::printf("%s draining %s; answering 500 ms more\n", now_text().c_str(),
                        key.c_str());
            std::fflush(stdout);
            // ... calls picked before the clients saw the mark still get answers ...
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            reg.unregister(key);  // ... then the key goes ...
            std::printf("%s unregistered %s\n", now_text().c_str(), key.c_str());
            server.stop();  // ... and we stop serving
            return 0;
        }
        std::fflush(stdout);
    }
}

struct Tally {
    long ok = 0;
    long failed = 0;
};

int client(const std::string &endpoints, const std::string &service, int seconds,
           int interval_ms) {
    auto mgr = std::make_shared<etcd_sd::ServiceManager>(endpoints, service + "/");
    mgr->declared(service);
    etcd_sd::ChannelPool<echo::EchoChannel> pool(mgr, [](const std::string &addr) {
        return std::make_shared<echo::EchoChannel>(addr);
    });
    std::mutex print_mu;
    auto print_set = [&](const std::string &svc) {
        std::string line = now_text() + " instances:", draining;
        for (const auto &i : mgr->instances(svc)) {
            (i.draining ? draining : line) += " " + i.address;
        }
        std::lock_guard<std::mutex> lock(print_mu);
        std::printf("%s\n", line.c_str());
        if (!draining.empty()) std::printf("%s draining:%s\n", now_text().c_str(), draining.c_str());
        std::fflush(stdout);
    };
    size_t sub = mgr->subscribe(print_set);
    print_set(service);

    std::map<std::string, Tally> per_address;
    std::map<std::string, std::string> first_home;
    long calls = 0, failed = 0, none = 0;
    auto end = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < end) {
        std::string user = "user-" + std::to_string(calls % 5);
        bool by_hash = calls % 2 == 1;
        auto picked = by_hash ? pool.pick(service, &user) : pool.pick(service);
        calls++;
        if (!picked.channel) {
            none++;
        } else {
            std::string reply;
            bool ok = picked.channel->call("call " + std::to_string(calls), &reply, 300);
            pool.report(service, picked.address, ok);
            Tally &t = per_address[picked.address];
            (ok ? t.ok : t.failed)++;
            if (!ok) {
                failed++;
                std::lock_guard<std::mutex> lock(print_mu);
                std::printf("%s call %ld to %s FAILED (%s)\n", now_text().c_str(), calls,
                            picked.address.c_str(), by_hash ? user.c_str() : "round robin");
                std::fflush(stdout);
            }
            if (by_hash && first_home.count(user) == 0) first_home[user] = picked.address;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    }
    mgr->unsubscribe(sub);
    std::printf("%s calls %ld ok %ld failed %ld no-instance %ld\n", now_text().c_str(), calls,
                calls - failed - none, failed, none);
    for (const auto &a : per_address) {
        std::printf("  %s ok %ld failed %ld\n", a.first.c_str(), a.second.ok, a.second.failed);
    }
    for (const auto &h : first_home) {
        std::printf("  %s first went to %s, now to %s\n", h.first.c_str(), h.second.c_str(),
                    mgr->choose(service, h.first).c_str());
    }
    return 0;
}

int usage() {
    std::fprintf(stderr,
                 "usage: echo_table serve <endpoints> <key> [port]\n"
                 "       echo_table client <endpoints> <service> <seconds> [interval_ms]\n");
    return 2;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        std::string mode = argc > 1 ? argv[1] : "";
        if (mode == "serve" && (argc == 4 || argc == 5)) {
            return serve(argv[2], argv[3], argc == 5 ? std::atoi(argv[4]) : 0);
        }
        if (mode == "client" && (argc == 5 || argc == 6)) {
            return client(argv[2], argv[3], std::atoi(argv[4]), argc == 6 ? std::atoi(argv[5]) : 20);
        }
        return usage();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "echo_table: %s\n", e.what());
        return 1;
    }
}
