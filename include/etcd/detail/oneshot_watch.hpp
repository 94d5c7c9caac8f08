// etcd/detail/oneshot_watch.hpp -- the one-shot watch() of etcd::SyncClient and etcd::Client
// (included by etcd/detail/all.hpp; see docs/compat.md).
//
// A one-shot watch is one etcd-sd watch (etcd_sd_watch_new) that ends at the first batch of
// changes it reports: the Response holds every event of that batch (with fromIndex, the
// history since that revision arrives as one batch, as in the original), action(), value()
// and prev_value() of the first one, index() the revision. Client::watch() returns a
// *pending* pplx::task (etcd/detail/pplx.hpp): is_done() is false until that batch arrives;
// destroying every copy of the task before then cancels the watch. SyncClient::watch() waits
// for it.

#ifndef ETCD_SD_COMPAT_ONESHOT_WATCH_HPP
#define ETCD_SD_COMPAT_ONESHOT_WATCH_HPP

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "etcd/Response.hpp"
#include "etcd/detail/capi.hpp"
#include "etcd/detail/client.hpp"
#include "etcd/detail/pplx.hpp"
#include "etcd/detail/sync_client.hpp"
#include "etcd/v3/action_constants.hpp"

namespace etcd {
namespace detail {

// One pending one-shot watch, owned by its task.
class oneshot_watch {
public:
    // Starts watching `key` ([key, range_end) when range_end is not empty; every key under
    // `key` when recursive), from revision fromIndex (> 0) or from now.
    static pplx::task<Response> start(handle_ptr client, std::string const &key,
                                      std::string const &range_end, int64_t fromIndex,
                                      bool recursive) {
        static std::atomic<int64_t> next_id{1};
        auto begun = std::chrono::high_resolution_clock::now();
        auto op = std::make_shared<oneshot_watch>();
        op->client_ = client;
        op->watch_id_ = next_id.fetch_add(1);
        std::string watched = key;
        bool prefix = recursive;
        if (!range_end.empty()) {
            prefix = true;
            if (range_end != etcdv3::detail::string_plus_one(key)) {
                watched = range_watch_prefix(key, range_end);
                op->filter_ = true;
                op->begin_ = key;
                op->end_ = range_end;
            }
        }
        if (watched.empty()) {
            return pplx::task_from_result(access::error(
                etcdv3::ERROR_GRPC_UNIMPLEMENTED,
                "etcd-sd: watch: the whole key space, or a range whose ends share no prefix, "
                "cannot be watched",
                etcdv3::WATCH_ACTION));
        }
        int64_t from = fromIndex;
        if (from <= 0) {
            // "From now": the revision now, not the list-then-watch rule of etcd_sd_watch_new
            // (a one-shot watch waits for the *next* change).
            etcd_sd_kvs *raw = nullptr;
            etcd_sd_result r = etcd_sd_client_get(client->get(), "\x01", &raw);
            kvs_ptr kvs(raw);
            if (r != ETCD_SD_OK) {
                return pplx::task_from_result(access::error(r, etcdv3::WATCH_ACTION, begun));
            }
            from = etcd_sd_kvs_revision(kvs.get()) + 1;
        }
        pplx::task<Response> task = pplx::task<Response>::make_pending(&op->done_);
        etcd_sd_watch *w = nullptr;
        etcd_sd_result r = etcd_sd_watch_new(client->get(), watched.c_str(), prefix, from,
                                             &oneshot_watch::on_events, op.get(), &w);
        if (r != ETCD_SD_OK) {
            return pplx::task_from_result(access::error(r, etcdv3::WATCH_ACTION, begun));
        }
        bool finished = false;
        {
            std::lock_guard<std::mutex> lock(op->mutex_);
            finished = op->finished_;
            if (!finished) {
                op->w_ = w;
            }
        }
        if (finished) {
            etcd_sd_watch_free(w);  // done before we could keep it
        }
        task.own(op);
        return task;
    }

    ~oneshot_watch() {
        etcd_sd_watch *w = nullptr;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            w = w_;
            w_ = nullptr;
        }
        etcd_sd_watch_free(w);  // waits for a callback in progress (returns at once inside it)
    }

private:
    static void on_events(void *user_data, const etcd_sd_watch_event *events, size_t n_events,
                          int64_t revision, int64_t compact_revision) noexcept {
        oneshot_watch *op = static_cast<oneshot_watch *>(user_data);
        call_guarded("watch", [&] {
            if (op->done_.is_done()) {
                return;  // finished, or its task is gone
            }
            Response resp;
            if (compact_revision != 0) {
                resp = access::error(etcdv3::ERROR_GRPC_OUT_OF_RANGE,
                                     "etcdserver: mvcc: required revision has been compacted",
                                     etcdv3::WATCH_ACTION);
                access::set_compact_revision(resp, compact_revision);
            } else {
                resp = access::watch_response(events, n_events, revision, op->watch_id_,
                                              op->filter_ ? &op->begin_ : nullptr,
                                              op->filter_ ? &op->end_ : nullptr);
                if (resp.events().empty()) {
                    return;  // nothing inside [key, range_end)
                }
            }
            etcd_sd_watch *w = nullptr;
            {
                std::lock_guard<std::mutex> lock(op->mutex_);
                if (op->finished_) {
                    return;
                }
                op->finished_ = true;
                w = op->w_;
                op->w_ = nullptr;
            }
            etcd_sd_watch_free(w);  // inside its own callback: returns at once, none follows
            // May drop the last reference to the task, and so destroy *op: nothing after this.
            op->done_.set_value(std::move(resp));
        });
    }

    handle_ptr client_;  // outlives the watch
    pplx::details::completer<Response> done_;
    std::mutex mutex_;
    etcd_sd_watch *w_ = nullptr;
    bool finished_ = false;
    bool filter_ = false;
    std::string begin_, end_;
    int64_t watch_id_ = 0;
};

}  // namespace detail

/**
 * Waits for the next change of `key` (of every key under it when recursive): see
 * etcd/detail/oneshot_watch.hpp. Blocks until it comes, without bound, as the original.
 */
inline Response SyncClient::watch(std::string const &key, bool recursive) {
    return detail::oneshot_watch::start(handle(), key, "", 0, recursive).get();
}

/**
 * The first change at or after revision fromIndex (all of them, from that revision, in one
 * Response). A compacted fromIndex: error_code() 11, compact_revision() set.
 */
inline Response SyncClient::watch(std::string const &key, int64_t fromIndex, bool recursive) {
    return detail::oneshot_watch::start(handle(), key, "", fromIndex, recursive).get();
}

inline Response SyncClient::watch(std::string const &key, const char *range_end) {
    return watch(key, std::string(range_end != nullptr ? range_end : ""));
}

/**
 * Changes of the keys in [key, range_end) (read as a watch of their longest common prefix,
 * filtered; a range whose ends share no prefix: error_code() 12).
 */
inline Response SyncClient::watch(std::string const &key, std::string const &range_end) {
    return detail::oneshot_watch::start(handle(), key, range_end, 0, false).get();
}

inline Response SyncClient::watch(std::string const &key, std::string const &range_end,
                                  int64_t fromIndex) {
    return detail::oneshot_watch::start(handle(), key, range_end, fromIndex, false).get();
}

inline pplx::task<Response> Client::watch(std::string const &key, bool recursive) {
    return detail::oneshot_watch::start(client_->handle(), key, "", 0, recursive);
}

inline pplx::task<Response> Client::watch(std::string const &key, int64_t fromIndex,
                                          bool recursive) {
    return detail::oneshot_watch::start(client_->handle(), key, "", fromIndex, recursive);
}

inline pplx::task<Response> Client::watch(std::string const &key, const char *range_end) {
    return watch(key, std::string(range_end != nullptr ? range_end : ""));
}

inline pplx::task<Response> Client::watch(std::string const &key, std::string const &range_end) {
    return detail::oneshot_watch::start(client_->handle(), key, range_end, 0, false);
}

inline pplx::task<Response> Client::watch(std::string const &key, std::string const &range_end,
                                          int64_t fromIndex) {
    return detail::oneshot_watch::start(client_->handle(), key, range_end, fromIndex, false);
}

}  // namespace etcd

#endif  // ETCD_SD_COMPAT_ONESHOT_WATCH_HPP
