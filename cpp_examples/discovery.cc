// discovery: prints the service instances under a prefix, then every change, until SIGINT
// or SIGTERM.
//
//   usage: discovery [endpoints] [prefix]
//   defaults:         http://127.0.0.1:2379 /service
//
// Output, one line each, flushed:
//   initial: <key> -> <value>      keys present at start (in key order)
//   watching <prefix>
//   online: <key> -> <value>       a key appeared or changed
//   offline: <key> (was <value>)   a key disappeared (its last value)
//   stats: ...                     on SIGUSR1: what the library is doing (no I/O)

#include "etcd_sd.hpp"

#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include <signal.h>

namespace {

std::mutex out_mu;  // callbacks run on a library thread, main prints too

void say(const std::string &line) {
    std::lock_guard<std::mutex> lock(out_mu);
    std::cout << line << std::endl;  // endl flushes
}

}  // namespace

int main(int argc, char **argv) {
    // Block SIGINT/SIGTERM before the library starts its threads (they inherit the mask),
    // so that sigwait() below receives them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    if (argc > 3) {
        std::cerr << "usage: discovery [endpoints] [prefix]\n";
        return 1;
    }
    const std::string endpoints = argc > 1 ? argv[1] : "http://127.0.0.1:2379";
    const std::string prefix = argc > 2 ? argv[2] : "/service";

    // The initial listing is delivered on this thread while the constructor runs; later
    // events come from a library callback thread.
    const std::thread::id main_thread = std::this_thread::get_id();

    try {
        etcd_sd::Discovery::ptr discovery = std::make_shared<etcd_sd::Discovery>(
            endpoints, prefix,
            [main_thread](std::string key, std::string value) {
                const char *what =
                    std::this_thread::get_id() == main_thread ? "initial: " : "online: ";
                say(what + key + " -> " + value);
            },
            [](std::string key, std::string value) {
                say("offline: " + key + " (was " + value + ")");
            });
        say("watching " + prefix);

        int sig = 0;
        while (sigwait(&set, &sig) != 0 || sig == SIGUSR1) {
            if (sig != SIGUSR1) continue;
            const etcd_sd_discovery_stats st = discovery->stats();
            const etcd_sd_process_stats ps = etcd_sd::process_stats();
            say("stats: revision " + std::to_string(st.revision) + " keys " +
                std::to_string(st.keys) + " events " + std::to_string(st.events) + " resumes " +
                std::to_string(st.resumes) + " relists " + std::to_string(st.relists) +
                " ms_since_last_event " + std::to_string(st.ms_since_last_event) + " member " +
                st.member + " | process: connections " + std::to_string(ps.connections) +
                " leases_kept " + std::to_string(ps.leases_kept) + " requests_retried " +
                std::to_string(ps.requests_retried));
            sig = 0;
        }
        discovery.reset();  // no callback runs after this
    } catch (const etcd_sd::Error &e) {
        std::cerr << "discovery: " << e.what() << " (" << e.code_name() << ")\n";
        return 1;
    }
    return 0;
}
