// registry: registers one service instance in etcd until Enter, SIGINT or SIGTERM.
//
//   usage: registry [endpoints] [key] [value] [ttl]
//   defaults:        http://127.0.0.1:2379 /service/user/instance-1 127.0.0.1:9000 3
//
// The key lives under a lease of `ttl` seconds that the library keeps alive; on exit the
// Registry's destructor revokes the lease so watchers see the key go at once. If the
// process is killed instead, the key disappears after the TTL.
//
// If stdin reaches EOF (e.g. started in the background with </dev/null) it keeps running
// until a signal arrives.

#include "etcd_sd.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace {

// Blocks SIGINT/SIGTERM in this thread (so in every thread started later, the library's
// included) and returns a signalfd that becomes readable when one of them arrives.
int make_signal_fd() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) return -1;
    return signalfd(-1, &set, SFD_CLOEXEC);
}

// Waits until a line is entered on stdin or a signal arrives. Returns the signal number,
// or 0 for Enter.
int wait_for_enter_or_signal(int sfd) {
    bool stdin_open = true;
    for (;;) {
        struct pollfd fds[2];
        fds[0].fd = sfd;
        fds[0].events = POLLIN;
        fds[0].revents = 0;
        fds[1].fd = stdin_open ? STDIN_FILENO : -1;  // poll ignores negative fds
        fds[1].events = POLLIN;
        fds[1].revents = 0;
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            std::perror("poll");
            return SIGTERM;
        }
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
                return static_cast<int>(si.ssi_signo);
            }
        }
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
            char buf[256];
            ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                stdin_open = false;  // EOF or error: from now on only a signal ends us
                continue;
            }
            for (ssize_t i = 0; i < n; ++i) {
                if (buf[i] == '\n') return 0;
            }
        }
    }
}

}  // namespace

int main(int argc, char **argv) {
    // First, before the library starts its threads: they inherit the blocked signals.
    int sfd = make_signal_fd();
    if (sfd < 0) {
        std::perror("signalfd");
        return 1;
    }

    const std::string endpoints = argc > 1 ? argv[1] : "http://127.0.0.1:2379";
    const std::string key = argc > 2 ? argv[2] : "/service/user/instance-1";
    const std::string value = argc > 3 ? argv[3] : "127.0.0.1:9000";
    int ttl = 3;
    if (argc > 4) {
        char *end = nullptr;
        long t = std::strtol(argv[4], &end, 10);
        if (end == argv[4] || *end != '\0' || t <= 0 || t > 1000000) {
            std::cerr << "registry: bad ttl '" << argv[4] << "' (want seconds > 0)\n";
            return 1;
        }
        ttl = static_cast<int>(t);
    }
    if (argc > 5) {
        std::cerr << "usage: registry [endpoints] [key] [value] [ttl]\n";
        return 1;
    }

    try {
        auto registry = std::make_shared<etcd_sd::Registry>(endpoints, ttl);
        if (!registry->registry(key, value)) {
            std::cerr << "registry: cannot register " << key << ": " << registry->last_error()
                      << " (" << etcd_sd_result_name(registry->last_error_code()) << ")\n";
            return 1;
        }
        std::cout << "registered " << key << " -> " << value << " (lease "
                  << registry->lease_id() << ")" << std::endl;

        wait_for_enter_or_signal(sfd);
        // What the library did meanwhile (introspection, no I/O).
        const etcd_sd_registry_stats st = registry->stats();
        std::cout << "stats: lease " << std::hex << st.lease_id << std::dec << " ttl_left_ms "
                  << st.lease_ttl_left_ms << " keys " << st.keys << " losses " << st.lease_losses
                  << " restores " << st.lease_restores << " shared_lease "
                  << (st.shared_lease ? "yes" : "no") << " member " << st.member << std::endl;
        registry.reset();  // deletes the key now
        std::cout << "unregistered " << key << std::endl;
    } catch (const etcd_sd::Error &e) {
        std::cerr << "registry: " << e.what() << " (" << e.code_name() << ")\n";
        return 1;
    }
    close(sfd);
    return 0;
}
