// etcd/detail/lock.hpp -- lock(), lock_with_lease() and unlock() of etcd::SyncClient and
// etcd::Client, and what a client keeps of the locks and leaderships it holds (included by
// etcd/detail/all.hpp; see docs/compat.md, "Locks and leadership never heal").
//
// A lock is etcd_sd_lock (etcd's lock service under a lease). lock(key[, ttl]) holds it under
// a lease of its own (TTL 10 s, as etcd-cpp-apiv3's DEFAULT_LEASE_TTL_FOR_LOCK, or `ttl`),
// kept alive by etcd-sd and revoked by unlock(); lock_with_lease(key, id) under the caller's
// lease (kept alive and revoked by the caller). The client keeps each lock it took in a table
// keyed by the lock key, so that unlock(lock_key) releases that very lock; unlock() of a key
// this client did not take asks etcd to release it (etcd_sd_client_unlock).
//
// Never healed: when the lease under a held lock ends (revoked by anyone, or expired while
// etcd was unreachable) or its key is deleted, the lock is lost for good. etcd-sd does not
// take it again; the next unlock() of it returns an error Response (code 10, ABORTED, "...
// lost ..."), so the owner learns that something else may have held the lock meanwhile.

#ifndef ETCD_SD_COMPAT_LOCK_HPP
#define ETCD_SD_COMPAT_LOCK_HPP

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "etcd/Response.hpp"
#include "etcd/detail/capi.hpp"
#include "etcd/detail/client.hpp"
#include "etcd/detail/pplx.hpp"
#include "etcd/detail/sync_client.hpp"
#include "etcd/v3/action_constants.hpp"

namespace etcd {
namespace detail {

// The lease TTL of lock(key), as the original's DEFAULT_LEASE_TTL_FOR_LOCK.
inline constexpr int default_lock_ttl = 10;

// How long lock() and campaign() wait for others to let go when no set_grpc_timeout() was
// made: 10 minutes (the original waits without bound). With set_grpc_timeout(), that bound.
inline constexpr uint64_t default_wait_bound_ms = 600000;

struct lock_deleter {
    void operator()(etcd_sd_lock *l) const noexcept { etcd_sd_lock_free(l); }
};
struct election_deleter {
    void operator()(etcd_sd_election *e) const noexcept { etcd_sd_election_free(e); }
};

// One lock held; the C client it was taken through outlives it (declared first).
struct held_lock {
    handle_ptr client;
    std::unique_ptr<etcd_sd_lock, lock_deleter> lock;
};

// One leadership held.
struct held_election {
    handle_ptr client;
    std::unique_ptr<etcd_sd_election, election_deleter> election;
};

// "lost" (ETCD_SD_LOST) -> the code a Response reports it with.
inline int lost_code() { return etcdv3::ERROR_GRPC_ABORTED; }

// Why a lock or leadership is lost: the library's word, or what the read before the release saw.
inline std::string lost_why(etcd_sd_result r, std::string const &key) {
    if (r == ETCD_SD_LOST) {
        return last_error_message(r);
    }
    return "its key " + key + " is gone (its lease ended or was revoked, or it was deleted)";
}

// Whether `key` still exists with creation revision `revision` (true when etcd cannot tell:
// the release that follows then reports the error).
inline bool still_held(etcd_sd_client const *client, std::string const &key, int64_t revision) {
    etcd_sd_kvs *raw = nullptr;
    if (etcd_sd_client_get(client, key.c_str(), &raw) != ETCD_SD_OK) {
        return true;
    }
    kvs_ptr kvs(raw);
    etcd_sd_kv kv;
    return etcd_sd_kvs_at(kvs.get(), 0, &kv) && kv.create_revision == revision;
}

}  // namespace detail

// Everything this client holds: released (best effort, bounded) when the client is destroyed.
struct SyncClient::held {
    std::mutex mutex;
    // By lock key. A multimap: the same name locked twice under one given lease has one key.
    std::multimap<std::string, detail::held_lock> locks;
    // By (leader key, creation revision), the pair proclaim() and resign() name.
    std::multimap<std::pair<std::string, int64_t>, std::shared_ptr<detail::held_election>> elections;
};

inline std::shared_ptr<SyncClient::held> SyncClient::held_state() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!held_) {
        held_ = std::make_shared<held>();
    }
    return held_;
}

inline uint64_t SyncClient::wait_bound_ms() const {
    auto t = get_grpc_timeout();
    if (t.count() <= 0) {
        return detail::default_wait_bound_ms;
    }
    return static_cast<uint64_t>((t.count() + 999) / 1000);
}

/**
 * Takes lock `key` under a lease of its own (TTL 10 s, kept alive by etcd-sd until unlock()),
 * waiting while another holds it: at most the set_grpc_timeout() bound (then error_code() 4,
 * is_grpc_timeout(), and nothing is held or left waiting), or 10 minutes without one.
 * action() "lock"; lock_key() the owner key to unlock (`key` + "/" + the lease in hex), a real
 * etcd key; value().lease() the lease; index() and value().created_index() the revision the
 * lock key was created at (a fencing token).
 */
inline Response SyncClient::lock(std::string const &key) {
    return lock(key, detail::default_lock_ttl);
}

inline Response SyncClient::lock(std::string const &key, int lease_ttl) {
    auto start = now();
    auto h = handle();
    etcd_sd_lock *raw = nullptr;
    etcd_sd_result r = etcd_sd_lock_new(h->get(), key.c_str(), lease_ttl, 0, wait_bound_ms(),
                                        nullptr, nullptr, &raw);
    return locked(std::move(h), raw, r, start);
}

/**
 * As lock(key), under the caller's lease `lease_id` (which the caller keeps alive; unlock()
 * does not revoke it). A lease that does not exist: error_code() 5.
 */
inline Response SyncClient::lock_with_lease(std::string const &key, int64_t lease_id) {
    auto start = now();
    auto h = handle();
    etcd_sd_lock *raw = nullptr;
    etcd_sd_result r = etcd_sd_lock_new(h->get(), key.c_str(), 0, lease_id, wait_bound_ms(),
                                        nullptr, nullptr, &raw);
    if (r == ETCD_SD_TIMEOUT) {
        std::string why = detail::last_error_message(r);
        return detail::access::error(etcdv3::ERROR_GRPC_DEADLINE_EXCEEDED, why,
                                     etcdv3::LOCK_ACTION);
    }
    return locked(std::move(h), raw, r, start);
}

inline Response SyncClient::locked(detail::handle_ptr h, etcd_sd_lock *raw, etcd_sd_result r,
                                   std::chrono::high_resolution_clock::time_point start) {
    if (r != ETCD_SD_OK) {
        return detail::access::error(r, etcdv3::LOCK_ACTION, start, etcdv3::ERROR_GRPC_NOT_FOUND);
    }
    detail::held_lock held_lock{std::move(h), std::unique_ptr<etcd_sd_lock, detail::lock_deleter>(raw)};
    std::string lock_key = etcd_sd_lock_key(raw);
    int64_t revision = etcd_sd_lock_revision(raw);
    int64_t lease = etcd_sd_lock_lease(raw);
    Response resp = detail::access::ok(etcdv3::LOCK_ACTION, revision, start);
    resp._lock_key = lock_key;
    detail::access::set_value(resp, detail::access::made_value(lock_key, "", lease, revision, nullptr));
    auto st = held_state();
    std::lock_guard<std::mutex> lock(st->mutex);
    st->locks.emplace(lock_key, std::move(held_lock));
    return resp;
}

/**
 * Releases the lock whose owner key is `lock_key`. A lock this client took: released, and its
 * own lease (lock(key)) revoked; if it was lost while held (its lease ended or its key was
 * deleted), nothing is released and the answer is error_code() 10 (ABORTED) saying so.
 * Another lock key: etcd is asked to release it. action() "unlock".
 */
inline Response SyncClient::unlock(std::string const &lock_key) {
    auto start = now();
    detail::held_lock mine;
    {
        auto st = held_state();
        std::lock_guard<std::mutex> lock(st->mutex);
        auto it = st->locks.find(lock_key);
        if (it != st->locks.end()) {
            // the latest one taken under this key
            auto range = st->locks.equal_range(lock_key);
            auto last = range.first;
            for (auto i = range.first; i != range.second; ++i) {
                last = i;
            }
            mine = std::move(last->second);
            st->locks.erase(last);
        }
    }
    etcd_sd_result r;
    if (mine.lock) {
        // The loss may not have reached the lock's watch yet (a revoke just made): read the
        // key, so that a lock that is gone is never reported released.
        bool gone = !detail::still_held(mine.client->get(), lock_key,
                                        etcd_sd_lock_revision(mine.lock.get()));
        r = etcd_sd_lock_unlock(mine.lock.get());
        if (r == ETCD_SD_LOST || (gone && r == ETCD_SD_OK)) {
            return detail::access::error(detail::lost_code(),
                                         "etcd-sd: unlock: the lock was lost while held (not "
                                         "taken again): " + detail::lost_why(r, lock_key),
                                         etcdv3::UNLOCK_ACTION);
        }
    } else {
        auto h = handle();
        r = etcd_sd_client_unlock(h->get(), lock_key.c_str());
    }
    if (r != ETCD_SD_OK) {
        return detail::access::error(r, etcdv3::UNLOCK_ACTION, start);
    }
    return detail::access::ok(etcdv3::UNLOCK_ACTION, 0, start);
}

inline pplx::task<Response> Client::lock(std::string const &key) {
    return pplx::create_task([&] { return client_->lock(key); });
}

inline pplx::task<Response> Client::lock(std::string const &key, const bool sync) {
    (void)sync;
    return pplx::create_task([&] { return client_->lock(key); });
}

inline pplx::task<Response> Client::lock(std::string const &key, int lease_ttl) {
    return pplx::create_task([&] { return client_->lock(key, lease_ttl); });
}

inline pplx::task<Response> Client::lock(std::string const &key, int lease_ttl, const bool sync) {
    (void)sync;
    return pplx::create_task([&] { return client_->lock(key, lease_ttl); });
}

inline pplx::task<Response> Client::lock_with_lease(std::string const &key, int64_t lease_id) {
    return pplx::create_task([&] { return client_->lock_with_lease(key, lease_id); });
}

inline pplx::task<Response> Client::lock_with_lease(std::string const &key, int64_t lease_id,
                                                    const bool sync) {
    (void)sync;
    return pplx::create_task([&] { return client_->lock_with_lease(key, lease_id); });
}

inline pplx::task<Response> Client::unlock(std::string const &lock_key) {
    return pplx::create_task([&] { return client_->unlock(lock_key); });
}

}  // namespace etcd

#endif  // ETCD_SD_COMPAT_LOCK_HPP
