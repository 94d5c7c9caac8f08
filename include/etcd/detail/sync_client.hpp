// etcd/detail/sync_client.hpp -- etcd::SyncClient (included by <etcd/SyncClient.hpp> and the
// other public headers; see there and docs/compat.md).

#ifndef ETCD_SD_COMPAT_SYNC_CLIENT_HPP
#define ETCD_SD_COMPAT_SYNC_CLIENT_HPP

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <ratio>
#include <string>
#include <utility>
#include <vector>

#include "etcd/Response.hpp"
#include "etcd/detail/capi.hpp"
#include "etcd/detail/members.hpp"
#include "etcd/detail/ranges.hpp"
#include "etcd/detail/txn.hpp"
#include "etcd/v3/action_constants.hpp"

namespace etcdv3 {
class Transaction;  // etcd/v3/Transaction.hpp
}

namespace etcd {
using etcdv3::ERROR_ACTION_CANCELLED;
using etcdv3::ERROR_COMPARE_FAILED;
using etcdv3::ERROR_KEY_ALREADY_EXISTS;
using etcdv3::ERROR_KEY_NOT_FOUND;

class KeepAlive;
class Watcher;
class Client;

/**
 * SyncClient: the blocking etcd client. Every call returns when etcd has answered, or with an
 * error Response within the connect timeout (no endpoint answers: error_code() 14) or the
 * request timeout (error_code() 4); none blocks longer. Calls may be made from any thread,
 * concurrently; the object is neither copyable nor movable (as in etcd-cpp-apiv3).
 *
 * The constructors do no network I/O. They throw std::invalid_argument for a malformed URL or
 * a bad ETCD_SD_* environment variable (docs/compat.md lists them).
 */
class SyncClient {
public:
    /**
     * @param etcd_url "http://127.0.0.1:2379", "127.0.0.1:2379", or several separated by ',' or
     * ';' (spaces allowed).
     * @param load_balancer ignored (etcd-sd uses one member at a time and fails over).
     */
    SyncClient(std::string const &etcd_url, std::string const &load_balancer = "round_robin")
        : SyncClient(make_settings(etcd_url, false)) {
        (void)load_balancer;
    }

    static SyncClient *WithUrl(std::string const &etcd_url,
                               std::string const &load_balancer = "round_robin") {
        return new SyncClient(etcd_url, load_balancer);
    }

    /**
     * With etcd authentication. The token is renewed by etcd-sd as needed: auth_token_ttl is
     * ignored.
     */
    SyncClient(std::string const &etcd_url, std::string const &username,
               std::string const &password, int const auth_token_ttl = 300,
               std::string const &load_balancer = "round_robin")
        : SyncClient(make_user_settings(etcd_url, username, password)) {
        (void)auth_token_ttl;
        (void)load_balancer;
    }

    static SyncClient *WithUser(std::string const &etcd_url, std::string const &username,
                                std::string const &password, int const auth_token_ttl = 300,
                                std::string const &load_balancer = "round_robin") {
        return new SyncClient(etcd_url, username, password, auth_token_ttl, load_balancer);
    }

    /**
     * With TLS: every endpoint is spoken to over https:// (an "http://" or bare endpoint is
     * taken as https://). ca: PEM file of the CA (empty: the system's roots); cert/privkey:
     * client certificate and key for mutual TLS (both or neither); target_name_override: the
     * name etcd's certificate is checked against (empty: the host of each endpoint).
     */
    SyncClient(std::string const &etcd_url, std::string const &ca, std::string const &cert,
               std::string const &privkey, std::string const &target_name_override,
               std::string const &load_balancer = "round_robin")
        : SyncClient(make_tls_settings(etcd_url, ca, cert, privkey, target_name_override)) {
        (void)load_balancer;
    }

    static SyncClient *WithSSL(std::string const &etcd_url, std::string const &ca,
                               std::string const &cert = "", std::string const &privkey = "",
                               std::string const &target_name_override = "",
                               std::string const &load_balancer = "round_robin") {
        return new SyncClient(etcd_url, ca, cert, privkey, target_name_override, load_balancer);
    }

    SyncClient(SyncClient const &) = delete;
    SyncClient &operator=(SyncClient const &) = delete;

    ~SyncClient() = default;

    /**
     * The current revision (index()); cluster_id/member_id/raft_term are 0.
     */
    Response head() {
        auto start = now();
        auto h = handle();
        etcd_sd_kvs *raw = nullptr;
        etcd_sd_result r = etcd_sd_client_get(h->get(), "\x01", &raw);
        detail::kvs_ptr kvs(raw);
        if (r != ETCD_SD_OK) {
            return detail::access::error(r, etcdv3::GET_ACTION, start);
        }
        return detail::access::ok(etcdv3::GET_ACTION, etcd_sd_kvs_revision(kvs.get()), start);
    }

    /**
     * One key (any bytes, NULs included): value(). A missing key: error_code() 100
     * (etcdv3::ERROR_KEY_NOT_FOUND, "etcd-cpp-apiv3: key not found").
     */
    Response get(std::string const &key) { return detail::kv_get(handle()->get(), key, 0); }

    /**
     * The key as it was at `revision` (0: now). A compacted or future revision: error_code()
     * 11 with etcd's message.
     */
    Response get(std::string const &key, int64_t revision) {
        return detail::kv_get(handle()->get(), key, revision);
    }

    /**
     * Puts key -> value (creates or replaces), under `leaseId` if not 0. action() "set";
     * prev_value() is the value replaced, if any.
     */
    Response set(std::string const &key, std::string const &value, const int64_t leaseId = 0) {
        return put_mode(key, value, leaseId, ETCD_SD_PUT_ALWAYS, etcdv3::SET_ACTION);
    }

    /**
     * Creates key -> value; if the key exists: error_code() 105 (ERROR_KEY_ALREADY_EXISTS),
     * nothing changed, value() is the existing entry. action() "create".
     */
    Response add(std::string const &key, std::string const &value, const int64_t leaseId = 0) {
        return put_mode(key, value, leaseId, ETCD_SD_PUT_IF_ABSENT, etcdv3::CREATE_ACTION);
    }

    /**
     * Puts key -> value. action() "set" (etcdv3::PUT_ACTION).
     */
    Response put(std::string const &key, std::string const &value) {
        return put_mode(key, value, 0, ETCD_SD_PUT_ALWAYS, etcdv3::PUT_ACTION);
    }

    /**
     * Puts key -> value under the lease `leaseId`. If a KeepAlive of this process replaced
     * that lease after losing it, the key goes under the current lease instead (and is put
     * back under each later one).
     */
    Response put(std::string const &key, std::string const &value, const int64_t leaseId) {
        return put_mode(key, value, leaseId, ETCD_SD_PUT_ALWAYS, etcdv3::PUT_ACTION);
    }

    /**
     * Replaces the value of an existing key; a missing key: error_code() 100, nothing
     * created. action() "update".
     */
    Response modify(std::string const &key, std::string const &value, const int64_t leaseId = 0) {
        return put_mode(key, value, leaseId, ETCD_SD_PUT_IF_PRESENT, etcdv3::UPDATE_ACTION);
    }

    /**
     * Replaces the value if it is `old_value` (by index: if the key's last modification is at
     * `old_index`). action() "compareAndSwap"; value() the entry written. Otherwise (a missing
     * key too) error_code() 101 (ERROR_COMPARE_FAILED) and value() the entry as it is.
     */
    Response modify_if(std::string const &key, std::string const &value,
                       std::string const &old_value, const int64_t leaseId = 0) {
        return detail::run_modify_if(handle()->get(), key, value, old_value, leaseId);
    }
    Response modify_if(std::string const &key, std::string const &value, int64_t old_index,
                       const int64_t leaseId = 0) {
        return detail::run_modify_if(handle()->get(), key, value, old_index, leaseId);
    }

    /**
     * Deletes one key; value() and prev_value() are the deleted entry. A missing key:
     * error_code() 100. action() "delete".
     */
    Response rm(std::string const &key) { return remove(key, false, etcdv3::ERROR_KEY_NOT_FOUND); }

    /**
     * Deletes the key if its value is `old_value` (by index: if its last modification is at
     * `old_index`). action() "compareAndDelete"; value()/prev_value() the deleted entry.
     * Otherwise error_code() 101 and value() the entry as it is.
     */
    Response rm_if(std::string const &key, std::string const &old_value) {
        return detail::run_rm_if(handle()->get(), key, old_value);
    }
    Response rm_if(std::string const &key, int64_t old_index) {
        return detail::run_rm_if(handle()->get(), key, old_index);
    }

    /**
     * recursive: deletes every key starting with `key` (every key when `key` is "");
     * values(): the deleted entries. Otherwise the key itself only. Nothing deleted:
     * error_code() 100.
     */
    Response rmdir(std::string const &key, bool recursive = false) {
        return remove(key, recursive, etcdv3::ERROR_KEY_NOT_FOUND);
    }

    /**
     * Deletes [key, range_end) (any bytes; "\0": every key from `key` on; "": `key` only).
     */
    Response rmdir(std::string const &key, const char *range_end) {
        return rmdir(key, std::string(range_end != nullptr ? range_end : ""));
    }

    Response rmdir(std::string const &key, std::string const &range_end) {
        return detail::kv_delete(handle()->get(), key, !range_end.empty(), range_end);
    }

    /**
     * Every key starting with `key`, in key order: values(), keys(), value() = the first.
     * Nothing there: is_ok(), empty. Listing a prefix also lets a Watcher created right
     * after on the same prefix (with no start revision) begin exactly after this listing, so
     * no change between the two is lost (see etcd/Watcher.hpp).
     */
    Response ls(std::string const &key) { return list(key, 0, false); }

    /**
     * At most `limit` entries (0: all).
     */
    Response ls(std::string const &key, size_t const limit) { return list(key, limit, false); }

    Response ls(std::string const &key, size_t const limit, int64_t revision) {
        return detail::kv_ls(handle()->get(), key, limit, revision, false);
    }

    /**
     * Keys in [key, range_end): any bytes; range_end "\0": every key from `key` on.
     */
    Response ls(std::string const &key, std::string const &range_end) {
        return list_range(key, range_end, 0, false);
    }

    Response ls(std::string const &key, std::string const &range_end, size_t const limit) {
        return list_range(key, range_end, limit, false);
    }

    Response ls(std::string const &key, std::string const &range_end, size_t const limit,
                int64_t revision) {
        return detail::kv_ls_range(handle()->get(), key, range_end, limit, revision, false);
    }

    /**
     * Like ls(); values() hold each entry without its value.
     */
    Response keys(std::string const &key) { return list(key, 0, true); }
    Response keys(std::string const &key, size_t const limit) { return list(key, limit, true); }
    Response keys(std::string const &key, size_t const limit, int64_t revision) {
        return detail::kv_ls(handle()->get(), key, limit, revision, true);
    }
    Response keys(std::string const &key, std::string const &range_end) {
        return list_range(key, range_end, 0, true);
    }
    Response keys(std::string const &key, std::string const &range_end, size_t const limit) {
        return list_range(key, range_end, limit, true);
    }
    Response keys(std::string const &key, std::string const &range_end, size_t const limit,
                  int64_t revision) {
        return detail::kv_ls_range(handle()->get(), key, range_end, limit, revision, true);
    }

    // One-shot watches: block until the first change (etcd/detail/oneshot_watch.hpp).
    Response watch(std::string const &key, bool recursive = false);
    Response watch(std::string const &key, int64_t fromIndex, bool recursive = false);
    Response watch(std::string const &key, const char *range_end);
    Response watch(std::string const &key, std::string const &range_end);
    Response watch(std::string const &key, std::string const &range_end, int64_t fromIndex);

    /**
     * Grants a lease of `ttl` seconds: value().lease() is its id, value().ttl() the TTL etcd
     * granted (etcd raises a TTL under its minimum, 2 s by default), index() the revision.
     * It is not kept alive (see leasekeepalive()).
     */
    Response leasegrant(int ttl) {
        auto start = now();
        auto h = handle();
        etcd_sd_lease_info info{};
        info.size = sizeof info;
        etcd_sd_result r = etcd_sd_client_lease_grant_info(h->get(), ttl, &info);
        if (r != ETCD_SD_OK) {
            return detail::access::error(r, etcdv3::LEASEGRANT, start);
        }
        Response resp = detail::access::ok(etcdv3::LEASEGRANT, info.revision, start);
        detail::access::set_value(resp, detail::access::lease_value(info));
        return resp;
    }

    /**
     * Grants a lease of `ttl` seconds and keeps it alive: see etcd/KeepAlive.hpp. Throws
     * std::runtime_error (never returns a KeepAlive of lease 0) when etcd does not answer
     * within the connect timeout or refuses the grant.
     */
    std::shared_ptr<KeepAlive> leasekeepalive(int ttl);

    /**
     * Revokes a lease (its keys are deleted); index() is the revision. An unknown or expired
     * lease: error_code() 5 (gRPC NOT_FOUND).
     */
    Response leaserevoke(int64_t lease_id) {
        auto start = now();
        auto h = handle();
        etcd_sd_lease_info info{};
        info.size = sizeof info;
        etcd_sd_result r = etcd_sd_client_lease_revoke_info(h->get(), lease_id, &info);
        if (r != ETCD_SD_OK) {
            return detail::access::error(r, etcdv3::LEASEREVOKE, start,
                                         etcdv3::ERROR_GRPC_NOT_FOUND);
        }
        return detail::access::ok(etcdv3::LEASEREVOKE, info.revision, start);
    }

    /**
     * value().lease(): the id (a lease kept by a KeepAlive of this process: its current id);
     * value().ttl(): seconds left (-1 once expired or unknown); value().granted_ttl(): the
     * TTL it was granted with (an etcd-sd addition); index(): the revision.
     */
    Response leasetimetolive(int64_t lease_id) {
        auto start = now();
        auto h = handle();
        etcd_sd_lease_info info{};
        info.size = sizeof info;
        etcd_sd_result r = etcd_sd_client_lease_ttl_info(h->get(), lease_id, &info);
        if (r != ETCD_SD_OK) {
            return detail::access::error(r, etcdv3::LEASETIMETOLIVE, start,
                                         etcdv3::ERROR_GRPC_NOT_FOUND);
        }
        Response resp = detail::access::ok(etcdv3::LEASETIMETOLIVE, info.revision, start);
        detail::access::set_value(resp, detail::access::lease_value(info));
        return resp;
    }

    /**
     * leases(): the ids of every lease etcd holds. action() "leaseleases".
     */
    Response leases() { return detail::list_leases(handle()->get()); }

    /**
     * The members of the cluster: members(). action() "listmember".
     */
    Response list_member() { return detail::list_members(handle()->get()); }

    /**
     * Adds a member (not started: until it is, a cluster counting on it may lose its quorum).
     * peer_urls: comma-separated. members(): the new member. action() "addmember".
     */
    Response add_member(std::string const &peer_urls, bool is_learner) {
        return detail::add_member(handle()->get(), peer_urls, is_learner);
    }

    /**
     * Removes member `member_id`. action() "removemember".
     */
    Response remove_member(const uint64_t member_id) {
        return detail::remove_member(handle()->get(), member_id);
    }

    // Locks, transactions and elections: not implemented (docs/compat.md).
    // Locks (etcd/detail/lock.hpp) and elections (etcd/detail/election.hpp): never taken
    // again behind the caller's back once lost.
    Response lock(std::string const &key);
    Response lock(std::string const &key, int lease_ttl);
    Response lock_with_lease(std::string const &key, int64_t lease_id);
    Response unlock(std::string const &lock_key);
    Response txn(etcdv3::Transaction const &txn) { return detail::run_txn(handle()->get(), txn); }
    Response campaign(std::string const &name, int64_t lease_id, std::string const &value);
    Response proclaim(std::string const &name, int64_t lease_id, std::string const &key,
                      int64_t revision, std::string const &value);
    Response leader(std::string const &name);
    class Observer;
    std::unique_ptr<Observer> observe(std::string const &name);
    Response resign(std::string const &name, int64_t lease_id, std::string const &key,
                    int64_t revision);

private:
    struct held;                  // the locks and leaderships taken through this client
    std::shared_ptr<held> held_;  // made on first use (guarded by mutex_)
    std::shared_ptr<held> held_state();
    uint64_t wait_bound_ms() const;
    Response locked(detail::handle_ptr h, etcd_sd_lock *raw, etcd_sd_result r,
                    std::chrono::high_resolution_clock::time_point start);

public:

    /**
     * Always "": etcd-sd manages the auth token itself.
     */
    const std::string &current_auth_token() const {
        static const std::string empty;
        return empty;
    }

    /**
     * Sets the bound on each request of this client (default: 3000 ms, or
     * ETCD_SD_REQUEST_TIMEOUT_MS); zero restores the default. KeepAlives and Watchers already
     * made keep the bound they were made with.
     */
    template <typename Period = std::micro>
    void set_grpc_timeout(
        std::chrono::duration<std::chrono::microseconds::rep, Period> const &timeout) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout);
        detail::settings s = handle()->config();
        s.request_timeout_ms = us.count() <= 0 ? 0 : static_cast<uint64_t>((us.count() + 999) / 1000);
        auto fresh = std::make_shared<detail::client_handle>(std::move(s));
        std::lock_guard<std::mutex> lock(mutex_);
        handle_ = std::move(fresh);
        grpc_timeout_ = us.count() <= 0 ? std::chrono::microseconds::zero() : us;
    }

    /**
     * What set_grpc_timeout() last set (zero: the default).
     */
    std::chrono::microseconds get_grpc_timeout() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return grpc_timeout_;
    }

    // (etcd-sd) The C client this object uses; shared with the KeepAlives and Watchers made
    // from it.
    detail::handle_ptr handle() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return handle_;
    }

private:
    explicit SyncClient(detail::settings s)
        : handle_(std::make_shared<detail::client_handle>(std::move(s))) {}

    static std::chrono::high_resolution_clock::time_point now() {
        return std::chrono::high_resolution_clock::now();
    }

    static detail::settings make_settings(std::string const &url, bool tls) {
        detail::settings s;
        s.endpoints = detail::normalize_endpoints(url, tls);
        if (s.endpoints.empty()) {
            throw std::invalid_argument("etcd-sd: no etcd endpoint in \"" + url + "\"");
        }
        return s;
    }

    static detail::settings make_user_settings(std::string const &url, std::string const &user,
                                               std::string const &password) {
        detail::settings s = make_settings(url, false);
        s.user = user;
        s.password = password;
        return s;
    }

    static detail::settings make_tls_settings(std::string const &url, std::string const &ca,
                                              std::string const &cert, std::string const &privkey,
                                              std::string const &server_name) {
        detail::settings s = make_settings(url, true);
        s.ca = ca;
        s.cert = cert;
        s.privkey = privkey;
        s.server_name = server_name;
        return s;
    }

    Response put_mode(std::string const &key, std::string const &value, int64_t lease,
                      etcd_sd_put_mode mode, char const *action) {
        return detail::kv_put(handle()->get(), key, value, lease, mode, action);
    }

    Response remove(std::string const &key, bool prefix, int not_found) {
        (void)not_found;  // always 100, "etcd-cpp-apiv3: key not found"
        if (!prefix) {
            return detail::kv_delete(handle()->get(), key, false, std::string());
        }
        auto range = detail::prefix_range(key);
        return detail::kv_delete(handle()->get(), range.first, true, range.second);
    }

    Response list(std::string const &prefix, size_t limit, bool keys_only) {
        return detail::kv_ls(handle()->get(), prefix, limit, 0, keys_only);
    }

    Response list_range(std::string const &key, std::string const &range_end, size_t limit,
                        bool keys_only) {
        return detail::kv_ls_range(handle()->get(), key, range_end, limit, 0, keys_only);
    }

    mutable std::mutex mutex_;
    detail::handle_ptr handle_;
    std::chrono::microseconds grpc_timeout_ = std::chrono::microseconds::zero();

    friend class KeepAlive;
    friend class Watcher;
    friend class Client;
};

}  // namespace etcd

#endif  // ETCD_SD_COMPAT_SYNC_CLIENT_HPP
