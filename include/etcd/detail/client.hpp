// etcd/detail/client.hpp -- etcd::Client (included by <etcd/Client.hpp> and the other public
// headers; see there and docs/compat.md).

#ifndef ETCD_SD_COMPAT_CLIENT_HPP
#define ETCD_SD_COMPAT_CLIENT_HPP

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>

#include "etcd/Response.hpp"
#include "etcd/detail/pplx.hpp"
#include "etcd/detail/sync_client.hpp"
#include "etcd/v3/action_constants.hpp"

namespace etcd {

/**
 * Client: the "asynchronous" etcd client of etcd-cpp-apiv3. Each call returns a
 * pplx::task<T> (etcd/detail/pplx.hpp) -- here an *eager* one: the request is made during the
 * call, bounded by the connect and request timeouts like SyncClient's, and the task holds the
 * answer. So `client.put(k, v).get()` behaves as before, `client.leaserevoke(id)` without
 * `.get()` still revokes, and `.then(f)` runs f before returning.
 *
 * A Client made from a URL owns its SyncClient; Client(SyncClient*) borrows one (which must
 * outlive it). Copies of a Client share the same connection. Thread-safe.
 */
class Client {
public:
    /**
     * Borrows `client` (not owned: it must outlive this Client).
     */
    Client(SyncClient *client) : client_(client) {}

    static Client *WithClient(SyncClient *client) { return new Client(client); }

    /**
     * See SyncClient: several URLs separated by ',' or ';'; load_balancer is ignored.
     */
    Client(std::string const &etcd_url, std::string const &load_balancer = "round_robin")
        : owned_(std::make_shared<SyncClient>(etcd_url, load_balancer)), client_(owned_.get()) {}

    static Client *WithUrl(std::string const &etcd_url,
                           std::string const &load_balancer = "round_robin") {
        return new Client(etcd_url, load_balancer);
    }

    Client(std::string const &etcd_url, std::string const &username, std::string const &password,
           int const auth_token_ttl = 300, std::string const &load_balancer = "round_robin")
        : owned_(std::make_shared<SyncClient>(etcd_url, username, password, auth_token_ttl,
                                              load_balancer)),
          client_(owned_.get()) {}

    static Client *WithUser(std::string const &etcd_url, std::string const &username,
                            std::string const &password, int const auth_token_ttl = 300,
                            std::string const &load_balancer = "round_robin") {
        return new Client(etcd_url, username, password, auth_token_ttl, load_balancer);
    }

    Client(std::string const &etcd_url, std::string const &ca, std::string const &cert,
           std::string const &privkey, std::string const &target_name_override,
           std::string const &load_balancer = "round_robin")
        : owned_(std::make_shared<SyncClient>(etcd_url, ca, cert, privkey, target_name_override,
                                              load_balancer)),
          client_(owned_.get()) {}

    static Client *WithSSL(std::string const &etcd_url, std::string const &ca,
                           std::string const &cert = "", std::string const &privkey = "",
                           std::string const &target_name_override = "",
                           std::string const &load_balancer = "round_robin") {
        return new Client(etcd_url, ca, cert, privkey, target_name_override, load_balancer);
    }

    ~Client() = default;

    pplx::task<Response> head() {
        return pplx::create_task([this] { return client_->head(); });
    }

    pplx::task<Response> get(std::string const &key) {
        return pplx::create_task([&] { return client_->get(key); });
    }

    pplx::task<Response> get(std::string const &key, int64_t revision) {
        return pplx::create_task([&] { return client_->get(key, revision); });
    }

    pplx::task<Response> set(std::string const &key, std::string const &value,
                             const int64_t leaseId = 0) {
        return pplx::create_task([&] { return client_->set(key, value, leaseId); });
    }

    pplx::task<Response> add(std::string const &key, std::string const &value,
                             const int64_t leaseId = 0) {
        return pplx::create_task([&] { return client_->add(key, value, leaseId); });
    }

    pplx::task<Response> put(std::string const &key, std::string const &value) {
        return pplx::create_task([&] { return client_->put(key, value); });
    }

    pplx::task<Response> put(std::string const &key, std::string const &value,
                             const int64_t leaseId) {
        return pplx::create_task([&] { return client_->put(key, value, leaseId); });
    }

    pplx::task<Response> modify(std::string const &key, std::string const &value,
                                const int64_t leaseId = 0) {
        return pplx::create_task([&] { return client_->modify(key, value, leaseId); });
    }

    pplx::task<Response> modify_if(std::string const &key, std::string const &value,
                                   std::string const &old_value, const int64_t leaseId = 0) {
        return pplx::create_task([&] { return client_->modify_if(key, value, old_value, leaseId); });
    }
    pplx::task<Response> modify_if(std::string const &key, std::string const &value,
                                   int64_t old_index, const int64_t leaseId = 0) {
        return pplx::create_task([&] { return client_->modify_if(key, value, old_index, leaseId); });
    }

    pplx::task<Response> rm(std::string const &key) {
        return pplx::create_task([&] { return client_->rm(key); });
    }

    pplx::task<Response> rm_if(std::string const &key, std::string const &old_value) {
        return pplx::create_task([&] { return client_->rm_if(key, old_value); });
    }
    pplx::task<Response> rm_if(std::string const &key, int64_t old_index) {
        return pplx::create_task([&] { return client_->rm_if(key, old_index); });
    }

    pplx::task<Response> rmdir(std::string const &key, bool recursive = false) {
        return pplx::create_task([&] { return client_->rmdir(key, recursive); });
    }

    pplx::task<Response> rmdir(std::string const &key, const char *range_end) {
        return pplx::create_task([&] { return client_->rmdir(key, range_end); });
    }

    pplx::task<Response> rmdir(std::string const &key, std::string const &range_end) {
        return pplx::create_task([&] { return client_->rmdir(key, range_end); });
    }

    pplx::task<Response> ls(std::string const &key) {
        return pplx::create_task([&] { return client_->ls(key); });
    }

    pplx::task<Response> ls(std::string const &key, size_t const limit) {
        return pplx::create_task([&] { return client_->ls(key, limit); });
    }

    pplx::task<Response> ls(std::string const &key, size_t const limit, int64_t revision) {
        return pplx::create_task([&] { return client_->ls(key, limit, revision); });
    }

    pplx::task<Response> ls(std::string const &key, std::string const &range_end) {
        return pplx::create_task([&] { return client_->ls(key, range_end); });
    }

    pplx::task<Response> ls(std::string const &key, std::string const &range_end,
                            size_t const limit) {
        return pplx::create_task([&] { return client_->ls(key, range_end, limit); });
    }

    pplx::task<Response> ls(std::string const &key, std::string const &range_end,
                            size_t const limit, int64_t revision) {
        return pplx::create_task([&] { return client_->ls(key, range_end, limit, revision); });
    }

    pplx::task<Response> keys(std::string const &key) {
        return pplx::create_task([&] { return client_->keys(key); });
    }

    pplx::task<Response> keys(std::string const &key, size_t const limit) {
        return pplx::create_task([&] { return client_->keys(key, limit); });
    }

    pplx::task<Response> keys(std::string const &key, size_t const limit, int64_t revision) {
        return pplx::create_task([&] { return client_->keys(key, limit, revision); });
    }

    pplx::task<Response> keys(std::string const &key, std::string const &range_end) {
        return pplx::create_task([&] { return client_->keys(key, range_end); });
    }

    pplx::task<Response> keys(std::string const &key, std::string const &range_end,
                              size_t const limit) {
        return pplx::create_task([&] { return client_->keys(key, range_end, limit); });
    }

    pplx::task<Response> keys(std::string const &key, std::string const &range_end,
                              size_t const limit, int64_t revision) {
        return pplx::create_task([&] { return client_->keys(key, range_end, limit, revision); });
    }

    // One-shot watches: a *pending* task, done at the first change; dropping every copy of it
    // cancels the watch (etcd/detail/oneshot_watch.hpp).
    pplx::task<Response> watch(std::string const &key, bool recursive = false);
    pplx::task<Response> watch(std::string const &key, int64_t fromIndex, bool recursive = false);
    pplx::task<Response> watch(std::string const &key, const char *range_end);
    pplx::task<Response> watch(std::string const &key, std::string const &range_end);
    pplx::task<Response> watch(std::string const &key, std::string const &range_end,
                               int64_t fromIndex);

    pplx::task<Response> leasegrant(int ttl) {
        return pplx::create_task([&] { return client_->leasegrant(ttl); });
    }

    /**
     * A KeepAlive of a new lease of `ttl` seconds (see etcd/KeepAlive.hpp). The task holds a
     * std::runtime_error, thrown by get(), if etcd did not answer within the connect timeout
     * or refused the grant: never a KeepAlive whose Lease() is 0.
     */
    pplx::task<std::shared_ptr<KeepAlive>> leasekeepalive(int ttl);

    pplx::task<Response> leaserevoke(int64_t lease_id) {
        return pplx::create_task([&] { return client_->leaserevoke(lease_id); });
    }

    pplx::task<Response> leasetimetolive(int64_t lease_id) {
        return pplx::create_task([&] { return client_->leasetimetolive(lease_id); });
    }

    pplx::task<Response> leases() {
        return pplx::create_task([this] { return client_->leases(); });
    }

    pplx::task<Response> list_member() {
        return pplx::create_task([this] { return client_->list_member(); });
    }

    pplx::task<Response> add_member(std::string const &peer_urls, bool is_learner) {
        return pplx::create_task([&] { return client_->add_member(peer_urls, is_learner); });
    }

    pplx::task<Response> remove_member(const uint64_t member_id) {
        return pplx::create_task([&] { return client_->remove_member(member_id); });
    }

    // Locks, transactions and elections: not implemented (docs/compat.md).
    // Locks (etcd/detail/lock.hpp) and elections (etcd/detail/election.hpp): eager, as every
    // call here; `sync` changes nothing.
    pplx::task<Response> lock(std::string const &key);
    pplx::task<Response> lock(std::string const &key, const bool sync);
    pplx::task<Response> lock(std::string const &key, int lease_ttl);
    pplx::task<Response> lock(std::string const &key, int lease_ttl, const bool sync);
    pplx::task<Response> lock_with_lease(std::string const &key, int64_t lease_id);
    pplx::task<Response> lock_with_lease(std::string const &key, int64_t lease_id,
                                         const bool sync);
    pplx::task<Response> unlock(std::string const &lock_key);
    pplx::task<Response> txn(etcdv3::Transaction const &txn) {
        return pplx::create_task([&] { return client_->txn(txn); });
    }
    pplx::task<Response> campaign(std::string const &name, int64_t lease_id,
                                  std::string const &value);
    pplx::task<Response> proclaim(std::string const &name, int64_t lease_id,
                                  std::string const &key, int64_t revision,
                                  std::string const &value);
    pplx::task<Response> leader(std::string const &name);
    using Observer = SyncClient::Observer;
    std::unique_ptr<Observer> observe(std::string const &name);
    pplx::task<Response> resign(std::string const &name, int64_t lease_id, std::string const &key,
                                int64_t revision);

    const std::string &current_auth_token() const { return client_->current_auth_token(); }

    template <typename Period = std::micro>
    void set_grpc_timeout(
        std::chrono::duration<std::chrono::microseconds::rep, Period> const &timeout) {
        client_->set_grpc_timeout(timeout);
    }

    std::chrono::microseconds get_grpc_timeout() const { return client_->get_grpc_timeout(); }

    /**
     * The underlying synchronous client.
     */
    SyncClient *sync_client() const { return client_; }

private:
    std::shared_ptr<SyncClient> owned_;  // null when borrowed
    SyncClient *client_ = nullptr;
};

}  // namespace etcd

#endif  // ETCD_SD_COMPAT_CLIENT_HPP
