// etcd/detail/election.hpp -- campaign(), proclaim(), leader(), observe() (with
// SyncClient::Observer) and resign() of etcd::SyncClient and etcd::Client (included by
// etcd/detail/all.hpp; see docs/compat.md, "Locks and leadership never heal").
//
// A campaign is etcd_sd_election (etcd's election service, under the caller's lease). The
// client keeps each leadership it won, by (leader key, creation revision): the pair that
// the original's proclaim() and resign() name. For a pair this client holds, they act on that
// leadership; for any other pair they do what etcd's election service does with it (a
// transaction comparing the key's creation revision): proclaim() then fails with etcd's
// "election: not leader" when the key no longer has that revision, and resign() deletes the
// key if it still has it.
//
// Never healed: a leadership this client won and then lost (its lease ended, or its key was
// deleted) is not taken again; proclaim() and resign() of it return error_code() 10
// (ABORTED) with "election: not leader" and why. To lead again, campaign again.
//
// observe(name) is one etcd-sd watch of the election's keys (`name` + "/"), subscribed
// before it returns, seeded by one read of those keys: each WaitOnce() returns the next
// leader change or proclamation, buffered in between (the current leader first, if any).

#ifndef ETCD_SD_COMPAT_ELECTION_HPP
#define ETCD_SD_COMPAT_ELECTION_HPP

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "etcd/Response.hpp"
#include "etcd/detail/capi.hpp"
#include "etcd/detail/client.hpp"
#include "etcd/detail/lock.hpp"
#include "etcd/detail/pplx.hpp"
#include "etcd/detail/sync_client.hpp"
#include "etcd/v3/action_constants.hpp"

namespace etcd {
namespace detail {

// etcd's election service on a leader key it was not asked through this client: if `key`
// still has creation revision `revision`, put `value` under `lease` (proclaim) or delete it
// (resign). `*succeeded`: whether the compare held; `*revision_out`: etcd's revision.
inline etcd_sd_result election_txn(etcd_sd_client const *client, std::string const &key,
                                   int64_t revision, std::string const *value, int64_t lease,
                                   bool *succeeded, int64_t *revision_out) {
    etcd_sd_txn *raw = nullptr;
    etcd_sd_result r = etcd_sd_txn_new(&raw);
    if (r != ETCD_SD_OK) {
        return r;
    }
    txn_ptr txn(raw);
    r = etcd_sd_txn_compare_number(txn.get(), key.c_str(), nullptr, ETCD_SD_CMP_CREATE_REVISION,
                                   ETCD_SD_CMP_EQUAL, revision);
    if (r == ETCD_SD_OK) {
        r = value != nullptr
                ? etcd_sd_txn_put(txn.get(), ETCD_SD_TXN_SUCCESS, key.c_str(), value->data(),
                                  value->size(), lease, false)
                : etcd_sd_txn_delete(txn.get(), ETCD_SD_TXN_SUCCESS, key.c_str(), nullptr, false);
    }
    if (r != ETCD_SD_OK) {
        return r;
    }
    etcd_sd_txn_response *out = nullptr;
    r = etcd_sd_client_txn(client, txn.get(), &out);
    txn_response_ptr resp(out);
    if (r == ETCD_SD_OK) {
        *succeeded = etcd_sd_txn_response_succeeded(resp.get());
        *revision_out = etcd_sd_txn_response_revision(resp.get());
    }
    return r;
}

inline std::string not_leader_lost(std::string const &why) {
    return "election: not leader (etcd-sd: the leadership was lost while held and is not taken "
           "again: " + why + ")";
}

}  // namespace detail

/**
 * Follows the leader of one election (SyncClient::observe). Not copyable.
 */
class SyncClient::Observer {
public:
    /**
     * An observer of nothing: WaitOnce() returns an empty Response.
     */
    Observer() = default;
    Observer(Observer const &) = delete;
    Observer &operator=(Observer const &) = delete;

    /**
     * Cancels the watch (bounded; no callback runs afterwards).
     */
    ~Observer() { etcd_sd_watch_free(w_); }

    /**
     * The next leader change or proclamation (buffered since observe() returned): action()
     * "obverse" (sic, as the original), value() the leader's key as etcd holds it (key,
     * value, revisions, lease), index() the revision of the change. Blocks until there is
     * one: at most the client's set_grpc_timeout() (then error_code() 4), without bound when
     * none was set. If observe() could not read the election: that error, every time.
     */
    Response WaitOnce() {
        if (!st_) {
            return Response();
        }
        std::unique_lock<std::mutex> lock(st_->mutex);
        auto ready = [this] { return !st_->queue.empty() || st_->failed; };
        if (timeout_.count() > 0) {
            if (!st_->cv.wait_for(lock, timeout_, ready)) {
                return detail::access::error(etcdv3::ERROR_GRPC_DEADLINE_EXCEEDED,
                                             "etcd-sd: observe: no leader change within the "
                                             "grpc timeout",
                                             etcdv3::OBSERVE_ACTION);
            }
        } else {
            st_->cv.wait(lock, ready);
        }
        if (st_->queue.empty()) {
            return st_->error;
        }
        Response resp = std::move(st_->queue.front());
        st_->queue.pop_front();
        return resp;
    }

private:
    friend class SyncClient;

    // What the watch callback sees (user_data).
    struct state {
        std::mutex mutex;
        std::condition_variable cv;
        std::deque<Response> queue;
        bool failed = false;
        Response error;
        std::map<std::string, Value> candidates;  // the election's keys, by key
        std::string leader_key;                   // "" : nobody leads
        int64_t leader_rev = 0;

        // The candidate with the lowest creation revision, or null.
        Value const *leader() const {
            Value const *best = nullptr;
            for (auto const &c : candidates) {
                if (best == nullptr || c.second.created_index() < best->created_index()) {
                    best = &c.second;
                }
            }
            return best;
        }

        // After a change (`put_key`: the key a PUT changed, else null): queue the leader if
        // it changed, or if the PUT was the leader's own (a proclamation). Under `mutex`.
        void report(std::string const *put_key, int64_t revision) {
            Value const *now = leader();
            if (now == nullptr) {
                leader_key.clear();
                leader_rev = 0;
                return;
            }
            bool changed = now->key() != leader_key || now->created_index() != leader_rev;
            if (changed || (put_key != nullptr && *put_key == now->key())) {
                leader_key = now->key();
                leader_rev = now->created_index();
                Response resp = detail::access::ok(etcdv3::OBSERVE_ACTION, revision,
                                                   std::chrono::high_resolution_clock::now());
                detail::access::set_value(resp, *now);
                queue.push_back(std::move(resp));
            }
        }
    };

    static void on_events(void *user_data, const etcd_sd_watch_event *events, size_t n_events,
                          int64_t revision, int64_t compact_revision) noexcept {
        (void)compact_revision;  // the difference arrives as ordinary events
        state *st = static_cast<state *>(user_data);
        detail::call_guarded("Observer", [&] {
            {
                std::lock_guard<std::mutex> lock(st->mutex);
                for (size_t i = 0; i < n_events; i++) {
                    Value kv = detail::access::value_of(events[i].kv);
                    std::string key = kv.key();
                    if (events[i].type == ETCD_SD_WATCH_DELETE) {
                        st->candidates.erase(key);
                        st->report(nullptr, revision);
                    } else {
                        st->candidates.insert_or_assign(key, std::move(kv));
                        st->report(&key, revision);
                    }
                }
            }
            st->cv.notify_all();
        });
    }

    detail::handle_ptr client_;  // outlives the watch
    std::unique_ptr<state> st_;
    etcd_sd_watch *w_ = nullptr;
    std::chrono::microseconds timeout_ = std::chrono::microseconds::zero();
};

/**
 * Campaigns in election `name` under the caller's lease `lease_id` with `value`, waiting until
 * every earlier candidate is gone: at most the set_grpc_timeout() bound (then error_code() 4,
 * and this client is no candidate any more), or 10 minutes without one. action() "campaign";
 * name() the election; value().key() the leader key, value().created_index() its creation
 * revision (a fencing token), value().lease() the lease: the (key, revision) proclaim() and
 * resign() take. A lease that does not exist: error_code() 5.
 */
inline Response SyncClient::campaign(std::string const &name, int64_t lease_id,
                                     std::string const &value) {
    auto start = now();
    auto h = handle();
    etcd_sd_election *raw = nullptr;
    etcd_sd_result r = etcd_sd_election_new(h->get(), name.c_str(), value.data(), value.size(), 0,
                                            lease_id, wait_bound_ms(), nullptr, nullptr, &raw);
    if (r == ETCD_SD_TIMEOUT) {
        std::string why = detail::last_error_message(r);
        return detail::access::error(etcdv3::ERROR_GRPC_DEADLINE_EXCEEDED, why,
                                     etcdv3::CAMPAIGN_ACTION);
    }
    if (r != ETCD_SD_OK) {
        return detail::access::error(r, etcdv3::CAMPAIGN_ACTION, start, etcdv3::ERROR_GRPC_NOT_FOUND);
    }
    auto e = std::make_shared<detail::held_election>();
    e->client = h;
    e->election.reset(raw);
    std::string key = etcd_sd_election_key(raw);
    int64_t revision = etcd_sd_election_revision(raw);
    int64_t lease = etcd_sd_election_lease(raw);
    Response resp = detail::access::ok(etcdv3::CAMPAIGN_ACTION, revision, start);
    resp._name = name;
    detail::access::set_value(resp, detail::access::made_value(key, value, lease, revision, nullptr));
    auto st = held_state();
    std::lock_guard<std::mutex> lock(st->mutex);
    st->elections.emplace(std::make_pair(key, revision), std::move(e));
    return resp;
}

/**
 * Announces `value` as the leader's. (key, revision) from campaign(): a leadership this client
 * holds, or else any leader key that still has that creation revision (else error_code() 2,
 * "election: not leader", as etcd). action() "preclaim" (sic, as the original).
 */
inline Response SyncClient::proclaim(std::string const &name, int64_t lease_id,
                                     std::string const &key, int64_t revision,
                                     std::string const &value) {
    (void)name;
    auto start = now();
    std::shared_ptr<detail::held_election> mine;
    {
        auto st = held_state();
        std::lock_guard<std::mutex> lock(st->mutex);
        auto it = st->elections.find(std::make_pair(key, revision));
        if (it != st->elections.end()) {
            mine = it->second;
        }
    }
    if (mine) {
        etcd_sd_result r =
            etcd_sd_election_proclaim(mine->election.get(), value.data(), value.size());
        if (r == ETCD_SD_LOST || r == ETCD_SD_CLOSED) {
            return detail::access::error(detail::lost_code(),
                                         detail::not_leader_lost(detail::last_error_message(r)),
                                         etcdv3::PROCLAIM_ACTION);
        }
        if (r != ETCD_SD_OK) {
            return detail::access::error(r, etcdv3::PROCLAIM_ACTION, start,
                                         etcdv3::ERROR_GRPC_NOT_FOUND);
        }
        return detail::access::ok(etcdv3::PROCLAIM_ACTION, 0, start);
    }
    auto h = handle();
    bool succeeded = false;
    int64_t rev = 0;
    etcd_sd_result r =
        detail::election_txn(h->get(), key, revision, &value, lease_id, &succeeded, &rev);
    if (r != ETCD_SD_OK) {
        return detail::access::error(r, etcdv3::PROCLAIM_ACTION, start, etcdv3::ERROR_GRPC_NOT_FOUND);
    }
    if (!succeeded) {
        return detail::access::error(etcdv3::ERROR_GRPC_UNKNOWN, "election: not leader",
                                     etcdv3::PROCLAIM_ACTION);
    }
    return detail::access::ok(etcdv3::PROCLAIM_ACTION, rev, start);
}

/**
 * The current leader of election `name`: value() its key as etcd holds it. Nobody leads:
 * error_code() 2, "election: no leader" (as etcd). action() "leader".
 */
inline Response SyncClient::leader(std::string const &name) {
    auto start = now();
    auto h = handle();
    etcd_sd_kvs *raw = nullptr;
    etcd_sd_result r = etcd_sd_client_leader(h->get(), name.c_str(), &raw);
    detail::kvs_ptr kvs(raw);
    if (r == ETCD_SD_NOT_FOUND) {
        return detail::access::error(etcdv3::ERROR_GRPC_UNKNOWN, "election: no leader",
                                     etcdv3::LEADER_ACTION);
    }
    if (r != ETCD_SD_OK) {
        return detail::access::error(r, etcdv3::LEADER_ACTION, start);
    }
    Response resp = detail::access::ok(etcdv3::LEADER_ACTION, etcd_sd_kvs_revision(kvs.get()), start);
    auto values = detail::access::values_of(kvs.get());
    if (!values.empty()) {
        detail::access::set_value(resp, values.front());
    }
    return resp;
}

/**
 * Follows the leader of election `name` from now on (see SyncClient::Observer). Subscribed
 * when it returns; never null. Destroying it cancels the watch.
 */
inline std::unique_ptr<SyncClient::Observer> SyncClient::observe(std::string const &name) {
    auto start = now();
    std::unique_ptr<Observer> obs(new Observer());
    obs->client_ = handle();
    obs->st_.reset(new Observer::state());
    obs->timeout_ = get_grpc_timeout();
    Observer::state &st = *obs->st_;
    std::string prefix = name + "/";
    etcd_sd_kvs *raw = nullptr;
    etcd_sd_result r = etcd_sd_client_range(obs->client_->get(), prefix.c_str(), 0, &raw);
    detail::kvs_ptr kvs(raw);
    if (r != ETCD_SD_OK) {
        st.failed = true;
        st.error = detail::access::error(r, etcdv3::OBSERVE_ACTION, start);
        return obs;
    }
    int64_t revision = etcd_sd_kvs_revision(kvs.get());
    for (auto &v : detail::access::values_of(kvs.get())) {
        std::string key = v.key();
        st.candidates.insert_or_assign(key, std::move(v));
    }
    st.report(nullptr, revision);  // the current leader first, as etcd's observe
    etcd_sd_watch *w = nullptr;
    r = etcd_sd_watch_new(obs->client_->get(), prefix.c_str(), true, revision + 1,
                          &Observer::on_events, obs->st_.get(), &w);
    if (r != ETCD_SD_OK) {
        std::lock_guard<std::mutex> lock(st.mutex);
        st.failed = true;
        st.queue.clear();
        st.error = detail::access::error(r, etcdv3::OBSERVE_ACTION, start);
        return obs;
    }
    obs->w_ = w;
    return obs;
}

/**
 * Gives up the leadership (key, revision) from campaign(). One this client holds: resigned
 * (the next candidate leads); if it was lost while held, error_code() 10 saying so. Any
 * other: the key is deleted if it still has that creation revision (as etcd; success either
 * way). action() "resign".
 */
inline Response SyncClient::resign(std::string const &name, int64_t lease_id,
                                   std::string const &key, int64_t revision) {
    (void)name;
    (void)lease_id;
    auto start = now();
    std::shared_ptr<detail::held_election> mine;
    {
        auto st = held_state();
        std::lock_guard<std::mutex> lock(st->mutex);
        auto it = st->elections.find(std::make_pair(key, revision));
        if (it != st->elections.end()) {
            mine = std::move(it->second);
            st->elections.erase(it);
        }
    }
    if (mine) {
        // As unlock(): a leadership whose key is gone is never reported resigned.
        bool gone = !detail::still_held(mine->client->get(), key, revision);
        etcd_sd_result r = etcd_sd_election_resign(mine->election.get());
        if (r == ETCD_SD_LOST || (gone && r == ETCD_SD_OK)) {
            return detail::access::error(detail::lost_code(),
                                         detail::not_leader_lost(detail::lost_why(r, key)),
                                         etcdv3::RESIGN_ACTION);
        }
        if (r != ETCD_SD_OK) {
            return detail::access::error(r, etcdv3::RESIGN_ACTION, start);
        }
        return detail::access::ok(etcdv3::RESIGN_ACTION, 0, start);
    }
    auto h = handle();
    bool succeeded = false;
    int64_t rev = 0;
    etcd_sd_result r = detail::election_txn(h->get(), key, revision, nullptr, 0, &succeeded, &rev);
    if (r != ETCD_SD_OK) {
        return detail::access::error(r, etcdv3::RESIGN_ACTION, start);
    }
    return detail::access::ok(etcdv3::RESIGN_ACTION, rev, start);
}

inline pplx::task<Response> Client::campaign(std::string const &name, int64_t lease_id,
                                              std::string const &value) {
    return pplx::create_task([&] { return client_->campaign(name, lease_id, value); });
}

inline pplx::task<Response> Client::proclaim(std::string const &name, int64_t lease_id,
                                              std::string const &key, int64_t revision,
                                              std::string const &value) {
    return pplx::create_task(
        [&] { return client_->proclaim(name, lease_id, key, revision, value); });
}

inline pplx::task<Response> Client::leader(std::string const &name) {
    return pplx::create_task([&] { return client_->leader(name); });
}

inline std::unique_ptr<Client::Observer> Client::observe(std::string const &name) {
    return client_->observe(name);
}

inline pplx::task<Response> Client::resign(std::string const &name, int64_t lease_id,
                                            std::string const &key, int64_t revision) {
    return pplx::create_task([&] { return client_->resign(name, lease_id, key, revision); });
}

}  // namespace etcd

#endif  // ETCD_SD_COMPAT_ELECTION_HPP
