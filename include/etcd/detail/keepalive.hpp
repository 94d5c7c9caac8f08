// etcd/detail/keepalive.hpp -- etcd::KeepAlive (included by <etcd/KeepAlive.hpp> and the other
// public headers; see there and docs/compat.md).

#ifndef ETCD_SD_COMPAT_KEEPALIVE_HPP
#define ETCD_SD_COMPAT_KEEPALIVE_HPP

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "etcd/Response.hpp"
#include "etcd/detail/client.hpp"
#include "etcd/detail/sync_client.hpp"

namespace etcd {

/**
 * Keeps a lease alive (granted by the constructor when lease_id is 0, else the given one).
 *
 * Unlike etcd-cpp-apiv3's, it never dies silently: the renewals run on etcd-sd's I/O thread
 * and survive etcd restarts and member failover. When the lease is lost anyway (etcd was
 * down for longer than the TTL, or someone revoked it), etcd-sd grants a new lease at once,
 * puts back every key that this process put under the old lease (through any Client or
 * SyncClient with the same settings), and from then on
 *   - Lease() returns the new id, and
 *   - a put(k, v, old_id) still goes under the new lease (and is put back after each later
 *     loss), so code that copied the id into a member once keeps working.
 *
 * The handler (std::function<void(std::exception_ptr)>) is called only if etcd-sd gives up:
 * etcd refuses the grant of a new lease for good (authentication or permission denied) --
 * never for an outage, however long. It runs once, on one of etcd-sd's callback threads, with
 * a std::runtime_error saying why; Check() then rethrows it. The handler may destroy the
 * KeepAlive.
 *
 * Only a lease lost to the outside is recovered. A lease this process ended itself is not:
 * after leaserevoke(Lease()) through any client of the process, or Cancel(), the keep-alive
 * is over and Check() throws (as it does once etcd-sd gave up).
 *
 * The constructors block until the lease is granted (at most the connect timeout: 5 s, or
 * ETCD_SD_CONNECT_TIMEOUT_MS) and throw std::runtime_error if etcd does not answer or
 * refuses: there is no KeepAlive of lease 0. Cancel() and the destructor revoke the lease, so
 * the keys put under it leave etcd at once (a clean shutdown is offline at once); they return
 * within the request timeout, with etcd up or down. With ETCD_SD_KEEPALIVE_CANCEL=expire in
 * the environment (read by the constructor) they only stop renewing, as the original: the
 * keys expire after the TTL. Not copyable, not movable; its methods may be called from any
 * thread.
 */
class KeepAlive {
public:
    KeepAlive(Client const &client, int ttl, int64_t lease_id = 0)
        : KeepAlive(client.sync_client()->handle(), nullptr, ttl, lease_id) {}
    KeepAlive(SyncClient const &client, int ttl, int64_t lease_id = 0)
        : KeepAlive(client.handle(), nullptr, ttl, lease_id) {}
    KeepAlive(std::string const &address, int ttl, int64_t lease_id = 0)
        : KeepAlive(SyncClient(address).handle(), nullptr, ttl, lease_id) {}
    KeepAlive(std::string const &address, std::string const &username, std::string const &password,
              int ttl, int64_t lease_id = 0, int const auth_token_ttl = 300)
        : KeepAlive(SyncClient(address, username, password, auth_token_ttl).handle(), nullptr,
                    ttl, lease_id) {}

    KeepAlive(Client const &client, std::function<void(std::exception_ptr)> const &handler,
              int ttl, int64_t lease_id = 0)
        : KeepAlive(client.sync_client()->handle(), handler, ttl, lease_id) {}
    KeepAlive(SyncClient const &client, std::function<void(std::exception_ptr)> const &handler,
              int ttl, int64_t lease_id = 0)
        : KeepAlive(client.handle(), handler, ttl, lease_id) {}
    KeepAlive(std::string const &address, std::function<void(std::exception_ptr)> const &handler,
              int ttl, int64_t lease_id = 0)
        : KeepAlive(SyncClient(address).handle(), handler, ttl, lease_id) {}
    KeepAlive(std::string const &address, std::string const &username, std::string const &password,
              std::function<void(std::exception_ptr)> const &handler, int ttl,
              int64_t lease_id = 0, int const auth_token_ttl = 300)
        : KeepAlive(SyncClient(address, username, password, auth_token_ttl).handle(), handler,
                    ttl, lease_id) {}
    KeepAlive(std::string const &address, std::string const &ca, std::string const &cert,
              std::string const &privkey, std::function<void(std::exception_ptr)> const &handler,
              int ttl, int64_t lease_id = 0, std::string const &target_name_override = "")
        : KeepAlive(SyncClient(address, ca, cert, privkey, target_name_override).handle(),
                    handler, ttl, lease_id) {}

    KeepAlive(KeepAlive const &) = delete;
    KeepAlive(KeepAlive &&) = delete;

    /**
     * The lease currently kept alive: the id granted or given at construction, or the one
     * that replaced it after a loss. After Cancel(), the last one.
     */
    int64_t Lease() const {
        std::lock_guard<std::mutex> lock(mutex_);
        if (k_ != nullptr) {
            last_lease_ = etcd_sd_keepalive_lease(k_);
        }
        return last_lease_;
    }

    /**
     * Ends the keep-alive and revokes the lease: its keys leave etcd at once (with
     * ETCD_SD_KEEPALIVE_CANCEL=expire: only stops renewing). Check() throws from then on.
     * Idempotent; bounded by the request timeout (the revoke), with etcd up or down.
     */
    void Cancel() {
        etcd_sd_keepalive *k = nullptr;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (k_ == nullptr) {
                return;
            }
            last_lease_ = etcd_sd_keepalive_lease(k_);
            k = k_;
            k_ = nullptr;
            cancelled_ = true;
        }
        {
            // Our own revoke below ends the keep-alive: not a give-up for the handler.
            std::lock_guard<std::mutex> lock(state_->mutex);
            state_->cancelled = true;
        }
        if (revoke_on_cancel_ && etcd_sd_keepalive_check(k) == ETCD_SD_OK) {
            // Not after a give-up (nothing to revoke). On failure (etcd unreachable) the lease
            // expires after its TTL, as it would have.
            (void)etcd_sd_keepalive_revoke(k);
        }
        etcd_sd_keepalive_free(k);  // at once; may be called from the handler itself
    }

    /**
     * Nothing happens while the keep-alive works (an etcd outage, or a lease lost to the
     * outside and being replaced, is not a failure: it recovers). Throws std::runtime_error
     * once the keep-alive is over: this process revoked the lease (leaserevoke) or called
     * Cancel(), or etcd-sd gave up (then the handler's exception).
     */
    void Check() {
        std::exception_ptr e;
        {
            std::lock_guard<std::mutex> lock(state_->mutex);
            e = state_->error;
        }
        if (!e) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (k_ == nullptr && cancelled_) {
                e = std::make_exception_ptr(std::runtime_error(
                    "etcd-sd: the keep-alive of lease " + std::to_string(last_lease_) +
                    " was cancelled"));
            } else if (k_ != nullptr) {
                etcd_sd_result r = etcd_sd_keepalive_check(k_);
                if (r != ETCD_SD_OK) {
                    e = std::make_exception_ptr(std::runtime_error(
                        "etcd-sd: the keep-alive of lease " + std::to_string(last_lease_) +
                        " gave up: " + detail::last_error_message(r)));
                }
            }
        }
        if (e) {
            std::rethrow_exception(e);
        }
    }

    /**
     * Kept for the original API; etcd-sd bounds each renewal itself.
     */
    template <typename Rep, typename Period>
    void set_grpc_timeout(std::chrono::duration<Rep, Period> const &timeout) {
        grpc_timeout_ = std::chrono::duration_cast<std::chrono::microseconds>(timeout);
    }

    std::chrono::microseconds get_grpc_timeout() const { return grpc_timeout_; }

    ~KeepAlive() { Cancel(); }

private:
    // What the C callback sees (user_data); outlives the C keep-alive.
    struct state {
        std::mutex mutex;
        std::function<void(std::exception_ptr)> handler;
        std::exception_ptr error;
        bool cancelled = false;  // Cancel() began: a give-up from now on is its own revoke
    };

    KeepAlive(detail::handle_ptr handle, std::function<void(std::exception_ptr)> handler, int ttl,
              int64_t lease_id)
        : handle_(std::move(handle)), state_(std::make_shared<state>()) {
        revoke_on_cancel_ = revoke_on_cancel();
        state_->handler = std::move(handler);
        etcd_sd_keepalive *k = nullptr;
        etcd_sd_result r = etcd_sd_keepalive_new(handle_->get(), ttl, lease_id, &KeepAlive::on_give_up,
                                                 state_.get(), &k);
        if (r != ETCD_SD_OK) {
            std::string what = lease_id != 0
                                   ? "cannot keep lease " + std::to_string(lease_id) + " alive"
                                   : "cannot grant a lease of " + std::to_string(ttl) + " s";
            throw std::runtime_error("etcd-sd: leasekeepalive: " + what + ": " +
                                     detail::last_error_message(r));
        }
        k_ = k;
        last_lease_ = etcd_sd_keepalive_lease(k);
    }

    static void on_give_up(void *user_data, int64_t lease, int result, const char *message) noexcept {
        state *st = static_cast<state *>(user_data);
        try {
            std::string why = message != nullptr && message[0] != '\0'
                                  ? std::string(message)
                                  : std::string(etcd_sd_result_name(result));
            std::exception_ptr e = std::make_exception_ptr(std::runtime_error(
                "etcd-sd: the keep-alive of lease " + std::to_string(lease) + " gave up: " + why));
            std::function<void(std::exception_ptr)> handler;
            {
                std::lock_guard<std::mutex> lock(st->mutex);
                if (st->cancelled) {
                    return;
                }
                st->error = e;
                handler = st->handler;
            }
            if (handler) {
                detail::call_guarded("KeepAlive handler", [&] { handler(e); });
            }
        } catch (...) {
            detail::report_exception("KeepAlive handler", "cannot build the exception");
        }
    }

    // ETCD_SD_KEEPALIVE_CANCEL: "revoke" (default) or "expire".
    static bool revoke_on_cancel() {
        char const *v = std::getenv("ETCD_SD_KEEPALIVE_CANCEL");
        if (v == nullptr || v[0] == '\0' || std::string(v) == "revoke") {
            return true;
        }
        if (std::string(v) == "expire") {
            return false;
        }
        throw std::invalid_argument("etcd-sd: ETCD_SD_KEEPALIVE_CANCEL must be \"revoke\" or "
                                    "\"expire\", not \"" + std::string(v) + "\"");
    }

    detail::handle_ptr handle_;
    std::shared_ptr<state> state_;
    mutable std::mutex mutex_;
    bool revoke_on_cancel_ = true;
    bool cancelled_ = false;  // guarded by mutex_
    etcd_sd_keepalive *k_ = nullptr;
    mutable int64_t last_lease_ = 0;
    std::chrono::microseconds grpc_timeout_ = std::chrono::microseconds::zero();
};

inline std::shared_ptr<KeepAlive> SyncClient::leasekeepalive(int ttl) {
    return std::make_shared<KeepAlive>(*this, ttl);
}

inline pplx::task<std::shared_ptr<KeepAlive>> Client::leasekeepalive(int ttl) {
    return pplx::create_task([&] { return std::make_shared<KeepAlive>(*this, ttl); });
}

}  // namespace etcd

#endif  // ETCD_SD_COMPAT_KEEPALIVE_HPP
