// etcd/detail/watcher.hpp -- etcd::Watcher (included by <etcd/Watcher.hpp> and the other public
// headers; see there and docs/compat.md).

#ifndef ETCD_SD_COMPAT_WATCHER_HPP
#define ETCD_SD_COMPAT_WATCHER_HPP

#include <atomic>
#include <condition_variable>
#include <cstdint>
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
 * Watches a key, or every key under a prefix (recursive = true), and calls `callback` with a
 * Response per batch of changes: events() (PUT / DELETE_, each with kv() and prev_kv()),
 * and, like the original, action() / value() / prev_value() of the first event.
 *
 * Unlike etcd-cpp-apiv3's, it never goes silent:
 *   - a broken stream (etcd restarted, member lost) is resumed from the last revision seen, on
 *     another member if need be: no change is lost or repeated;
 *   - if that revision was compacted meanwhile, etcd-sd lists the key/prefix again and
 *     delivers the difference as ordinary PUT / DELETE_ events (with prev_kv), then goes on;
 *     the callback never sees a "compacted" error and the watch does not stop;
 *   - the list-then-watch gap: a Watcher with no start revision on a key or prefix that was
 *     listed (ls/get) in the last 60 s through a client with the same settings starts right
 *     after that listing's revision, so `client.ls(dir).get()` followed by
 *     `Watcher(client, dir, cb, true)` misses nothing in between. Otherwise it starts now.
 * prev_kv() is the previous value as this watcher last saw it (from its own table, not from
 * etcd: the library never asks etcd for prev_kv): its key and value are exact, its revisions,
 * version and lease are 0. prev_kv() of a DELETE_ is the departed value.
 *
 * Threads: the callback runs on one of etcd-sd's callback threads, never two at once for one
 * Watcher, in revision order. It may call any Client method, and may Cancel() or destroy its
 * own Watcher. An exception it throws is reported on stderr and dropped.
 *
 * The constructors do not wait for the watch stream to be established: they do one read of
 * the key or prefix (at most the connect timeout: it fixes the revision the watch starts
 * from and seeds prev_kv), then return while the stream is opened in the background; no
 * change after that revision is lost. With fromIndex > 1 the read is of the key or prefix as
 * it was at revision fromIndex - 1. With fromIndex == 1 there is nothing to read (nothing
 * existed before revision 1): they do no I/O at all, so they cannot fail against an
 * unreachable etcd; the stream then retries in the background. They throw
 * std::runtime_error if the read fails (etcd does not answer) and std::invalid_argument for
 * a bad key or range. Cancel() and the destructor stop it in
 * bounded time, with etcd up or down; afterwards no callback runs. Wait() blocks until
 * Cancel() is called (from another thread or from the callback): the watch does not end on
 * its own. Not copyable, not movable.
 */
class Watcher {
public:
    Watcher(Client const &client, std::string const &key, std::function<void(Response)> callback,
            bool recursive = false)
        : Watcher(client.sync_client()->handle(), key, "", -1, recursive, std::move(callback), nullptr) {}
    Watcher(SyncClient const &client, std::string const &key,
            std::function<void(Response)> callback, bool recursive = false)
        : Watcher(client.handle(), key, "", -1, recursive, std::move(callback), nullptr) {}
    Watcher(Client const &client, std::string const &key, std::string const &range_end,
            std::function<void(Response)> callback)
        : Watcher(client.sync_client()->handle(), key, range_end, -1, false, std::move(callback), nullptr) {}
    Watcher(SyncClient const &client, std::string const &key, std::string const &range_end,
            std::function<void(Response)> callback)
        : Watcher(client.handle(), key, range_end, -1, false, std::move(callback), nullptr) {}
    Watcher(Client const &client, std::string const &key, int64_t fromIndex,
            std::function<void(Response)> callback, bool recursive = false)
        : Watcher(client.sync_client()->handle(), key, "", fromIndex, recursive, std::move(callback), nullptr) {}
    Watcher(SyncClient const &client, std::string const &key, int64_t fromIndex,
            std::function<void(Response)> callback, bool recursive = false)
        : Watcher(client.handle(), key, "", fromIndex, recursive, std::move(callback), nullptr) {}
    Watcher(Client const &client, std::string const &key, std::string const &range_end,
            int64_t fromIndex, std::function<void(Response)> callback)
        : Watcher(client.sync_client()->handle(), key, range_end, fromIndex, false, std::move(callback), nullptr) {}
    Watcher(SyncClient const &client, std::string const &key, std::string const &range_end,
            int64_t fromIndex, std::function<void(Response)> callback)
        : Watcher(client.handle(), key, range_end, fromIndex, false, std::move(callback), nullptr) {}
    Watcher(std::string const &address, std::string const &key,
            std::function<void(Response)> callback, bool recursive = false)
        : Watcher(SyncClient(address).handle(), key, "", -1, recursive, std::move(callback), nullptr) {}
    Watcher(std::string const &address, std::string const &key, std::string const &range_end,
            std::function<void(Response)> callback)
        : Watcher(SyncClient(address).handle(), key, range_end, -1, false, std::move(callback), nullptr) {}
    Watcher(std::string const &address, std::string const &key, int64_t fromIndex,
            std::function<void(Response)> callback, bool recursive = false)
        : Watcher(SyncClient(address).handle(), key, "", fromIndex, recursive, std::move(callback), nullptr) {}
    Watcher(std::string const &address, std::string const &key, std::string const &range_end,
            int64_t fromIndex, std::function<void(Response)> callback)
        : Watcher(SyncClient(address).handle(), key, range_end, fromIndex, false, std::move(callback), nullptr) {}
    Watcher(std::string const &address, std::string const &username, std::string const &password,
            std::string const &key, std::function<void(Response)> callback, bool recursive = false,
            int const auth_token_ttl = 300)
        : Watcher(SyncClient(address, username, password, auth_token_ttl).handle(), key, "", -1,
                  recursive, std::move(callback), nullptr) {}
    Watcher(std::string const &address, std::string const &username, std::string const &password,
            std::string const &key, std::string const &range_end,
            std::function<void(Response)> callback, int const auth_token_ttl = 300)
        : Watcher(SyncClient(address, username, password, auth_token_ttl).handle(), key, range_end,
                  -1, false, std::move(callback), nullptr) {}
    Watcher(std::string const &address, std::string const &username, std::string const &password,
            std::string const &key, int64_t fromIndex, std::function<void(Response)> callback,
            bool recursive = false, int const auth_token_ttl = 300)
        : Watcher(SyncClient(address, username, password, auth_token_ttl).handle(), key, "",
                  fromIndex, recursive, std::move(callback), nullptr) {}
    Watcher(std::string const &address, std::string const &username, std::string const &password,
            std::string const &key, std::string const &range_end, int64_t fromIndex,
            std::function<void(Response)> callback, int const auth_token_ttl = 300)
        : Watcher(SyncClient(address, username, password, auth_token_ttl).handle(), key, range_end,
                  fromIndex, false, std::move(callback), nullptr) {}
    Watcher(std::string const &address, std::string const &ca, std::string const &cert,
            std::string const &privkey, std::string const &key, int64_t fromIndex,
            std::function<void(Response)> callback, bool recursive = false,
            std::string const &target_name_override = "")
        : Watcher(SyncClient(address, ca, cert, privkey, target_name_override).handle(), key, "",
                  fromIndex, recursive, std::move(callback), nullptr) {}
    Watcher(std::string const &address, std::string const &ca, std::string const &cert,
            std::string const &privkey, std::string const &key, std::string const &range_end,
            int64_t fromIndex, std::function<void(Response)> callback,
            std::string const &target_name_override = "")
        : Watcher(SyncClient(address, ca, cert, privkey, target_name_override).handle(), key,
                  range_end, fromIndex, false, std::move(callback), nullptr) {}

    // The same, with a wait_callback (as if set by Wait(wait_callback)).
    Watcher(Client const &client, std::string const &key, std::function<void(Response)> callback,
            std::function<void(bool)> wait_callback, bool recursive = false)
        : Watcher(client.sync_client()->handle(), key, "", -1, recursive, std::move(callback),
                  std::move(wait_callback)) {}
    Watcher(SyncClient const &client, std::string const &key,
            std::function<void(Response)> callback, std::function<void(bool)> wait_callback,
            bool recursive = false)
        : Watcher(client.handle(), key, "", -1, recursive, std::move(callback),
                  std::move(wait_callback)) {}
    Watcher(Client const &client, std::string const &key, std::string const &range_end,
            std::function<void(Response)> callback, std::function<void(bool)> wait_callback)
        : Watcher(client.sync_client()->handle(), key, range_end, -1, false, std::move(callback),
                  std::move(wait_callback)) {}
    Watcher(SyncClient const &client, std::string const &key, std::string const &range_end,
            std::function<void(Response)> callback, std::function<void(bool)> wait_callback)
        : Watcher(client.handle(), key, range_end, -1, false, std::move(callback),
                  std::move(wait_callback)) {}
    Watcher(Client const &client, std::string const &key, int64_t fromIndex,
            std::function<void(Response)> callback, std::function<void(bool)> wait_callback,
            bool recursive = false)
        : Watcher(client.sync_client()->handle(), key, "", fromIndex, recursive,
                  std::move(callback), std::move(wait_callback)) {}
    Watcher(SyncClient const &client, std::string const &key, int64_t fromIndex,
            std::function<void(Response)> callback, std::function<void(bool)> wait_callback,
            bool recursive = false)
        : Watcher(client.handle(), key, "", fromIndex, recursive, std::move(callback),
                  std::move(wait_callback)) {}
    Watcher(Client const &client, std::string const &key, std::string const &range_end,
            int64_t fromIndex, std::function<void(Response)> callback,
            std::function<void(bool)> wait_callback)
        : Watcher(client.sync_client()->handle(), key, range_end, fromIndex, false,
                  std::move(callback), std::move(wait_callback)) {}
    Watcher(SyncClient const &client, std::string const &key, std::string const &range_end,
            int64_t fromIndex, std::function<void(Response)> callback,
            std::function<void(bool)> wait_callback)
        : Watcher(client.handle(), key, range_end, fromIndex, false, std::move(callback),
                  std::move(wait_callback)) {}
    Watcher(std::string const &address, std::string const &key,
            std::function<void(Response)> callback, std::function<void(bool)> wait_callback,
            bool recursive = false)
        : Watcher(SyncClient(address).handle(), key, "", -1, recursive, std::move(callback),
                  std::move(wait_callback)) {}
    Watcher(std::string const &address, std::string const &key, std::string const &range_end,
            std::function<void(Response)> callback, std::function<void(bool)> wait_callback)
        : Watcher(SyncClient(address).handle(), key, range_end, -1, false, std::move(callback),
                  std::move(wait_callback)) {}
    Watcher(std::string const &address, std::string const &key, int64_t fromIndex,
            std::function<void(Response)> callback, std::function<void(bool)> wait_callback,
            bool recursive = false)
        : Watcher(SyncClient(address).handle(), key, "", fromIndex, recursive, std::move(callback),
                  std::move(wait_callback)) {}
    Watcher(std::string const &address, std::string const &key, std::string const &range_end,
            int64_t fromIndex, std::function<void(Response)> callback,
            std::function<void(bool)> wait_callback)
        : Watcher(SyncClient(address).handle(), key, range_end, fromIndex, false,
                  std::move(callback), std::move(wait_callback)) {}
    Watcher(std::string const &address, std::string const &username, std::string const &password,
            std::string const &key, std::function<void(Response)> callback,
            std::function<void(bool)> wait_callback, bool recursive = false,
            int const auth_token_ttl = 300)
        : Watcher(SyncClient(address, username, password, auth_token_ttl).handle(), key, "", -1,
                  recursive, std::move(callback), std::move(wait_callback)) {}
    Watcher(std::string const &address, std::string const &username, std::string const &password,
            std::string const &key, std::string const &range_end,
            std::function<void(Response)> callback, std::function<void(bool)> wait_callback,
            int const auth_token_ttl = 300)
        : Watcher(SyncClient(address, username, password, auth_token_ttl).handle(), key, range_end,
                  -1, false, std::move(callback), std::move(wait_callback)) {}
    Watcher(std::string const &address, std::string const &username, std::string const &password,
            std::string const &key, int64_t fromIndex, std::function<void(Response)> callback,
            std::function<void(bool)> wait_callback, bool recursive = false,
            int const auth_token_ttl = 300)
        : Watcher(SyncClient(address, username, password, auth_token_ttl).handle(), key, "",
                  fromIndex, recursive, std::move(callback), std::move(wait_callback)) {}
    Watcher(std::string const &address, std::string const &username, std::string const &password,
            std::string const &key, std::string const &range_end, int64_t fromIndex,
            std::function<void(Response)> callback, std::function<void(bool)> wait_callback,
            int const auth_token_ttl = 300)
        : Watcher(SyncClient(address, username, password, auth_token_ttl).handle(), key, range_end,
                  fromIndex, false, std::move(callback), std::move(wait_callback)) {}
    Watcher(std::string const &address, std::string const &ca, std::string const &cert,
            std::string const &privkey, std::string const &key, int64_t fromIndex,
            std::function<void(Response)> callback, std::function<void(bool)> wait_callback,
            bool recursive = false, std::string const &target_name_override = "")
        : Watcher(SyncClient(address, ca, cert, privkey, target_name_override).handle(), key, "",
                  fromIndex, recursive, std::move(callback), std::move(wait_callback)) {}
    Watcher(std::string const &address, std::string const &ca, std::string const &cert,
            std::string const &privkey, std::string const &key, std::string const &range_end,
            int64_t fromIndex, std::function<void(Response)> callback,
            std::function<void(bool)> wait_callback, std::string const &target_name_override = "")
        : Watcher(SyncClient(address, ca, cert, privkey, target_name_override).handle(), key,
                  range_end, fromIndex, false, std::move(callback), std::move(wait_callback)) {}

    Watcher(Watcher const &) = delete;
    Watcher(Watcher &&) = delete;

    /**
     * Blocks until the watcher is cancelled (Cancel() or destruction, from another thread or
     * from the callback); returns true (it was cancelled normally). The watch does not end on
     * its own: etcd-sd resumes it after any failure.
     */
    bool Wait() {
        std::unique_lock<std::mutex> lock(state_->mutex);
        state_->cv.wait(lock, [this] { return state_->stopped; });
        return true;
    }

    /**
     * Sets the callback called, with true, once the watcher is cancelled (at once if it
     * already is); it runs on a detached thread of its own, where the Watcher may already be
     * destroyed. Returns false (and changes nothing) if a wait callback was already set.
     */
    bool Wait(std::function<void(bool)> callback) {
        bool now = false;
        {
            std::lock_guard<std::mutex> lock(state_->mutex);
            if (state_->wait_callback) {
                return false;
            }
            state_->wait_callback = callback;
            now = state_->stopped;
        }
        if (now) {
            fire(std::move(callback));
        }
        return true;
    }

    /**
     * Stops the watch: when it returns, no callback is running (unless called from the
     * callback itself, which then finishes) and none will start. Idempotent, bounded; returns
     * true.
     */
    bool Cancel() {
        etcd_sd_watch *w = nullptr;
        {
            std::lock_guard<std::mutex> lock(state_->mutex);
            if (state_->cancelled) {
                return true;
            }
            state_->cancelled = true;
            w = w_;
            w_ = nullptr;
        }
        etcd_sd_watch_free(w);  // waits for a running callback (not when called from it)
        std::function<void(bool)> wait_callback;
        {
            std::lock_guard<std::mutex> lock(state_->mutex);
            state_->stopped = true;
            wait_callback = state_->wait_callback;
        }
        state_->cv.notify_all();
        if (wait_callback) {
            fire(std::move(wait_callback));
        }
        return true;
    }

    /**
     * Whether Cancel() was called (or the destructor ran).
     */
    bool Cancelled() const {
        std::lock_guard<std::mutex> lock(state_->mutex);
        return state_->cancelled;
    }

    ~Watcher() { Cancel(); }

private:
    // What the C callback sees (user_data). Shared: a callback that destroys its own Watcher
    // keeps it alive until the callback returns.
    struct state : std::enable_shared_from_this<state> {
        detail::handle_ptr client;  // the C client outlives a callback that destroys the Watcher
        std::function<void(Response)> callback;
        int64_t watch_id = 0;
        bool filter = false;  // a [key, range_end) watch read as a prefix watch: filter events
        std::string range_begin, range_end;

        mutable std::mutex mutex;
        std::condition_variable cv;
        bool cancelled = false;
        bool stopped = false;
        std::function<void(bool)> wait_callback;
    };

    Watcher(detail::handle_ptr handle, std::string const &key, std::string const &range_end,
            int64_t fromIndex, bool recursive, std::function<void(Response)> callback,
            std::function<void(bool)> wait_callback)
        : handle_(std::move(handle)), state_(std::make_shared<state>()) {
        static std::atomic<int64_t> next_id{1};
        state_->client = handle_;
        state_->callback = std::move(callback);
        state_->wait_callback = std::move(wait_callback);
        state_->watch_id = next_id.fetch_add(1);
        std::string watched = key;
        bool prefix = recursive;
        if (!range_end.empty()) {
            prefix = true;
            if (range_end != etcdv3::detail::string_plus_one(key)) {
                watched = detail::range_watch_prefix(key, range_end);
                if (watched.empty()) {
                    throw std::invalid_argument(
                        "etcd-sd: Watcher: a range whose ends share no prefix is not supported");
                }
                state_->filter = true;
                state_->range_begin = key;
                state_->range_end = range_end;
            }
        }
        etcd_sd_watch *w = nullptr;
        etcd_sd_result r = etcd_sd_watch_new(handle_->get(), watched.c_str(), prefix,
                                             fromIndex > 0 ? fromIndex : 0, &Watcher::on_events,
                                             state_.get(), &w);
        if (r != ETCD_SD_OK) {
            std::string msg = "etcd-sd: Watcher on \"" + key + "\": " + detail::last_error_message(r);
            if (r == ETCD_SD_INVALID_ARGUMENT) {
                throw std::invalid_argument(msg);
            }
            throw std::runtime_error(msg);
        }
        w_ = w;
    }

    static void fire(std::function<void(bool)> callback) {
        try {
            std::thread([callback]() {
                detail::call_guarded("Watcher wait", [&] { callback(true); });
            }).detach();
        } catch (std::exception const &e) {
            detail::report_exception("Watcher wait", e.what());
        }
    }

    static void on_events(void *user_data, const etcd_sd_watch_event *events, size_t n_events,
                          int64_t revision, int64_t compact_revision) noexcept {
        (void)compact_revision;  // the difference arrives as ordinary events
        state *st = static_cast<state *>(user_data);
        detail::call_guarded("Watcher", [&] {
            std::shared_ptr<state> self = st->shared_from_this();
            Response resp = detail::access::watch_response(
                events, n_events, revision, st->watch_id, st->filter ? &st->range_begin : nullptr,
                st->filter ? &st->range_end : nullptr);
            if (!resp.events().empty() && st->callback) {
                st->callback(std::move(resp));
            }
        });
    }

    detail::handle_ptr handle_;
    std::shared_ptr<state> state_;
    etcd_sd_watch *w_ = nullptr;  // guarded by state_->mutex
};

}  // namespace etcd

#endif  // ETCD_SD_COMPAT_WATCHER_HPP
