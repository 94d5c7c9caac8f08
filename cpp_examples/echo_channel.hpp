// A tiny line-based TCP echo service and its client channel, for the service-table example
// (echo_table.cc) and tests (tests/cpp/test_table.cc). POSIX sockets, loopback, no framework:
// the stand-in for brpc::Server / brpc::Channel.
//
//   EchoServer server(0);                       // listens on 127.0.0.1:<free port>
//   EchoChannel ch("127.0.0.1:" + std::to_string(server.port()));
//   std::string reply;
//   bool ok = ch.call("hello", &reply, 300);  // reply == "<server name> hello"
#ifndef ETCD_SD_EXAMPLE_ECHO_CHANNEL_HPP
#define ETCD_SD_EXAMPLE_ECHO_CHANNEL_HPP

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace echo {

// Writes all of `data`; false on error. MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE.
inline bool send_all(int fd, const std::string &data) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

// Answers each line "x" with "<name> x". While paused (black-holed) it reads and drops
// everything: clients connect and send, and never get an answer.
class EchoServer {
public:
    explicit EchoServer(int port, std::string name = "echo") : name_(std::move(name)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0) throw std::runtime_error("socket failed");
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
            ::listen(fd_, 64) != 0) {
            ::close(fd_);
            throw std::runtime_error("bind/listen on 127.0.0.1:" + std::to_string(port) +
                                     " failed: " + std::strerror(errno));
        }
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len);
        port_ = ntohs(a.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }

    EchoServer(const EchoServer &) = delete;
    EchoServer &operator=(const EchoServer &) = delete;

    ~EchoServer() { stop(); }

    int port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

    // Black-holes (true) or resumes (false) the service.
    void pause(bool paused) { paused_.store(paused); }

    // Closes the listener and every connection; joins the threads.
    void stop() {
        if (stopped_.exchange(true)) return;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        if (acceptor_.joinable()) acceptor_.join();
        std::vector<std::thread> workers;
        {
            std::lock_guard<std::mutex> lock(mu_);
            for (int c : conns_) ::shutdown(c, SHUT_RDWR);
            workers.swap(workers_);
        }
        for (auto &w : workers) w.join();
    }

private:
    void accept_loop() {
        while (!stopped_.load()) {
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) {
                if (errno == EINTR) continue;
                return;
            }
            std::lock_guard<std::mutex> lock(mu_);
            if (stopped_.load()) {
                ::close(c);
                return;
            }
            conns_.push_back(c);
            workers_.emplace_back([this, c] { serve(c); });
        }
    }

    void serve(int c) {
        std::string buf;
        char chunk[4096];
        for (;;) {
            ssize_t n = ::recv(c, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            if (paused_.load()) continue;  // black hole
            buf.append(chunk, static_cast<size_t>(n));
            size_t nl;
            while ((nl = buf.find('\n')) != std::string::npos) {
                std::string line = buf.substr(0, nl);
                buf.erase(0, nl + 1);
                if (!send_all(c, name_ + " " + line + "\n")) break;
            }
        }
        std::lock_guard<std::mutex> lock(mu_);
        for (auto it = conns_.begin(); it != conns_.end(); ++it) {
            if (*it == c) {
                conns_.erase(it);
                break;
            }
        }
        ::close(c);
    }

    std::string name_;
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> paused_{false};
    std::atomic<bool> stopped_{false};
    std::thread acceptor_;
    std::mutex mu_;
    std::vector<int> conns_;
    std::vector<std::thread> workers_;
};

// A client connection to one echo instance ("127.0.0.1:port"). Calls are serialized; a
// broken connection is reopened on the next call.
class EchoChannel {
public:
    explicit EchoChannel(std::string address) : address_(std::move(address)) {
        instances().fetch_add(1);
    }
    ~EchoChannel() {
        if (fd_ >= 0) ::close(fd_);
        instances().fetch_sub(1);
    }
    EchoChannel(const EchoChannel &) = delete;
    EchoChannel &operator=(const EchoChannel &) = delete;

    const std::string &address() const { return address_; }

    // Sends `msg`, waits up to `timeout_ms` for the reply line. False on any failure.
    bool call(const std::string &msg, std::string *reply, int timeout_ms) {
        std::lock_guard<std::mutex> lock(mu_);
        if (fd_ < 0 && !connect_locked()) return false;
        if (!send_all(fd_, msg + "\n")) return reset();
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        std::string buf;
        char chunk[4096];
        for (;;) {
            size_t nl = buf.find('\n');
            if (nl != std::string::npos) {
                if (reply) *reply = buf.substr(0, nl);
                return true;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return reset();
            pollfd p{fd_, POLLIN, 0};
            int r = ::poll(&p, 1, static_cast<int>(left.count()));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return reset();
            ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n <= 0) return reset();
            buf.append(chunk, static_cast<size_t>(n));
        }
    }

    // Channels alive in this process (tests check that none leak).
    static std::atomic<int> &instances() {
        static std::atomic<int> n{0};
        return n;
    }

private:
    bool connect_locked() {
        size_t colon = address_.rfind(':');
        if (colon == std::string::npos) return false;
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(std::stoi(address_.substr(colon + 1))));
        if (::inet_pton(AF_INET, address_.substr(0, colon).c_str(), &a.sin_addr) != 1) {
            return false;
        }
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0) return false;
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) return reset();
        return true;
    }

    bool reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        return false;
    }

    std::string address_;
    std::mutex mu_;
    int fd_ = -1;
};

}  // namespace echo

#endif  // ETCD_SD_EXAMPLE_ECHO_CHANNEL_HPP
