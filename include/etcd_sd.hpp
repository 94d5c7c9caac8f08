// etcd_sd.hpp -- header-only C++17 wrapper over the etcd-sd C API (etcd_sd.h).
//
// Service registration and discovery over etcd:
//
//   auto reg = std::make_shared<etcd_sd::Registry>("http://127.0.0.1:2379");   // TTL 3 s
//   reg->registry("/service/user/instance-1", "127.0.0.1:9000");
//
//   etcd_sd::Discovery disc("http://127.0.0.1:2379", "/service/user/",
//       [](std::string key, std::string val) { /* online  */ },
//       [](std::string key, std::string val) { /* offline; val = the last value */ });
//
// TLS, mutual TLS and etcd users are set on an Options builder, passed to either class:
//
//   etcd_sd::Registry reg(etcd_sd::Options().endpoints("https://etcd.internal:2379")
//                             .ca_file("ca.pem").user("svc", password));
//
// Errors: constructors and the Options setters throw etcd_sd::Error (a std::runtime_error
// carrying the etcd_sd_result code and the library's message). Registry::registry() and
// Registry::unregister() return false instead, and keep the reason on the object
// (Registry::last_error(), Registry::last_error_code()).
//
// Ownership: every class is move-only and owns one C handle (RAII); a moved-from object owns
// nothing (its calls fail: false, or Error with ETCD_SD_INVALID_ARGUMENT) and may be
// destroyed or assigned to. Wrap an object in std::shared_ptr (the `ptr` aliases) to share it.
//
// Threads: see Discovery for where callbacks run. The library's own threads ("etcd-sd-io",
// two "etcd-sd-cb"; "etcd-sd-log" once anything is logged; a second "etcd-sd-io" resolving
// host names) are started on first use and are process-wide. The library is not
// fork-safe: after fork() a child must exec before using etcd-sd.
//
// Everything here is inline; the header may be included in any number of translation units.
// Link with the etcd_sd library (CMake: etcd_sd::etcd_sd or etcd_sd::etcd_sd_static).

#ifndef ETCD_SD_HPP
#define ETCD_SD_HPP

#include "etcd_sd.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace etcd_sd {

// ---------------------------------------------------------------------------------------
// Error

// Thrown when a call into the library fails. what() is the library's message for the
// failed call (etcd_sd_last_error()), code() its result code: ETCD_SD_INVALID_ARGUMENT,
// ETCD_SD_UNAVAILABLE, ETCD_SD_TIMEOUT, ETCD_SD_ETCD_ERROR, ETCD_SD_CLOSED, ETCD_SD_INTERNAL,
// ETCD_SD_AUTH (wrong user name or password, or no permission on the key/prefix) or
// ETCD_SD_TLS (the TLS handshake failed). The message never contains a password.
class Error : public std::runtime_error {
public:
    Error(etcd_sd_result code, const std::string &message)
        : std::runtime_error(message), code_(code) {}

    etcd_sd_result code() const noexcept { return code_; }

    // "ETCD_SD_UNAVAILABLE", "ETCD_SD_AUTH", "ETCD_SD_TLS", ... (etcd_sd_result_name()).
    const char *code_name() const noexcept { return etcd_sd_result_name(static_cast<int>(code_)); }

private:
    etcd_sd_result code_;
};

namespace detail {

// This thread's message for the call that just failed with `code`; never empty.
inline std::string last_error_message(etcd_sd_result code) {
    const char *msg = etcd_sd_last_error();
    if (msg != nullptr && msg[0] != '\0') {
        return std::string(msg);
    }
    return std::string(etcd_sd_result_name(static_cast<int>(code)));
}

// Throws Error for anything but ETCD_SD_OK. Must be called right after the failing call,
// on the same thread, so that etcd_sd_last_error() still describes it.
inline void check(etcd_sd_result code) {
    if (code != ETCD_SD_OK) {
        throw Error(code, last_error_message(code));
    }
}

// Reports an exception that a user callback let escape (it must not unwind into C).
inline void report_exception(const char *where, const char *what) noexcept {
    try {
        std::string line = std::string("etcd_sd: exception in ") + where + " callback: " + what + "\n";
        std::fputs(line.c_str(), stderr);  // one write, not interleaved
        std::fflush(stderr);
    } catch (...) {
    }
}

// Runs f(), reporting (as above) any exception it lets escape: the body of every callback
// the library calls, which must never unwind into C or Rust frames.
template <typename F>
inline void call_guarded(const char *where, F &&f) noexcept {
    try {
        std::forward<F>(f)();
    } catch (const std::exception &e) {
        report_exception(where, e.what());
    } catch (...) {
        report_exception(where, "unknown exception");
    }
}

struct OptionsDeleter {
    void operator()(etcd_sd_options *o) const noexcept { etcd_sd_options_free(o); }
};
struct RegistryDeleter {
    void operator()(etcd_sd_registry *r) const noexcept { etcd_sd_registry_free(r); }
};

}  // namespace detail

// The library version, e.g. "0.1.0".
inline std::string version() { return std::string(etcd_sd_version()); }

// The process's connections: settings in use, members connected, leases kept, requests
// retried. No I/O.
inline etcd_sd_process_stats process_stats() {
    etcd_sd_process_stats s{};
    s.size = sizeof s;
    detail::check(etcd_sd_process_stats_get(&s));
    return s;
}

// The process's counters in the Prometheus text exposition format (version 0.0.4): serve it
// at /metrics with Content-Type "text/plain; version=0.0.4". No I/O; any thread. Names and
// labels: the README's "Metrics".
inline std::string metrics_text() {
    std::string text(4096, '\0');
    for (;;) {
        size_t len = 0;
        detail::check(etcd_sd_metrics_text(&text[0], text.size(), &len));
        if (len < text.size()) {
            text.resize(len);
            return text;
        }
        text.resize(len + 1);  // grew meanwhile: ask again with room for all of it
    }
}

// Most verbose level the library logs (default: $ETCD_SD_LOG, else WARN). Log records go to
// stderr unless a logger is installed with the C function etcd_sd_set_logger().
inline void set_log_level(etcd_sd_log_level level) { detail::check(etcd_sd_set_log_level(level)); }

// ---------------------------------------------------------------------------------------
// Options

// Settings for Registry and Discovery, as a builder:
//
//   etcd_sd::Registry reg(etcd_sd::Options()
//                             .endpoints("http://10.0.0.1:2379,http://10.0.0.2:2379")
//                             .ttl(5)
//                             .connect_timeout(std::chrono::milliseconds(1000)));
//
// TLS and authentication are set the same way (ca_file, client_cert, server_name, user;
// see below). Defaults: no endpoints (one must be set), TTL 3 s, connect timeout 5000 ms,
// request timeout 3000 ms, no TLS settings, no user. Each setter throws Error (ETCD_SD_INVALID_ARGUMENT) on bad input and then
// leaves the options unchanged. Objects built from an Options copy what they need, so it may
// be destroyed right after. Not thread-safe: do not change one Options from two threads.
class Options {
public:
    Options() {
        etcd_sd_options *raw = nullptr;
        detail::check(etcd_sd_options_new(&raw));
        opts_.reset(raw);
    }

    Options(Options &&) noexcept = default;
    Options &operator=(Options &&) noexcept = default;
    Options(const Options &) = delete;
    Options &operator=(const Options &) = delete;

    // "http://host:port" or "host:port", several separated by commas.
    Options &endpoints(const std::string &endpoints) {
        detail::check(etcd_sd_options_set_endpoints(opts_.get(), endpoints.c_str()));
        return *this;
    }

    // Lease TTL of a Registry, in seconds (> 0).
    Options &ttl(int64_t seconds) {
        detail::check(etcd_sd_options_set_ttl(opts_.get(), seconds));
        return *this;
    }

    // How long a constructor waits for etcd to answer (> 0).
    Options &connect_timeout(std::chrono::milliseconds timeout) {
        detail::check(etcd_sd_options_set_connect_timeout_ms(opts_.get(), to_ms(timeout)));
        return *this;
    }

    // Bound on each request: register, unregister, the lease revoke on destruction (> 0).
    Options &request_timeout(std::chrono::milliseconds timeout) {
        detail::check(etcd_sd_options_set_request_timeout_ms(opts_.get(), to_ms(timeout)));
        return *this;
    }

    // Off (default): constructors throw Error(ETCD_SD_UNAVAILABLE) when etcd does not answer
    // within the connect timeout. On: they succeed while etcd is down and connect in the
    // background (a Registry puts its keys and reports ETCD_SD_STATUS_RESTORED, a Discovery
    // delivers its initial listing from a callback thread, when etcd comes up).
    Options &wait_for_etcd(bool wait) {
        detail::check(etcd_sd_options_set_wait_for_etcd(opts_.get(), wait));
        return *this;
    }

    // --- TLS (needs https:// endpoints) and authentication --------------------------------
    //
    //   etcd_sd::Registry reg(etcd_sd::Options()
    //                             .endpoints("https://10.0.0.1:2379")
    //                             .ca_file("/etc/etcd/ca.pem")
    //                             .client_cert("/etc/svc/client.pem", "/etc/svc/client-key.pem")
    //                             .server_name("etcd.internal")
    //                             .user("svc", password));
    //
    // The files are read when a Registry or Discovery connects, not by these setters: a
    // missing, unreadable or non-PEM file makes that constructor throw
    // Error(ETCD_SD_INVALID_ARGUMENT) whose message names the file. A failed TLS handshake
    // (untrusted or expired certificate, wrong server name, missing client certificate, TLS
    // spoken to a plain port or the reverse) throws Error(ETCD_SD_TLS); a wrong user name or
    // password, or a key outside the user's permissions, gives ETCD_SD_AUTH (thrown by
    // constructors; registry()/unregister() return false with last_error_code() ETCD_SD_AUTH).
    // TLS settings with http:// endpoints are an ETCD_SD_INVALID_ARGUMENT at construction.

    // PEM file of the CA certificate(s) that signed etcd's server certificate (default: the
    // system's roots). Throws Error(ETCD_SD_INVALID_ARGUMENT) for an empty path.
    Options &ca_file(const std::string &path) {
        detail::check(etcd_sd_options_set_ca_file(opts_.get(), path.c_str()));
        return *this;
    }

    // PEM files of the client certificate and its private key, for mutual TLS. Throws
    // Error(ETCD_SD_INVALID_ARGUMENT) for an empty path.
    Options &client_cert(const std::string &cert_path, const std::string &key_path) {
        detail::check(
            etcd_sd_options_set_client_cert(opts_.get(), cert_path.c_str(), key_path.c_str()));
        return *this;
    }

    // The name etcd's certificate is checked against, when it differs from the host in the
    // endpoints (e.g. endpoints given as IP addresses). Throws Error for an empty name.
    Options &server_name(const std::string &name) {
        detail::check(etcd_sd_options_set_server_name(opts_.get(), name.c_str()));
        return *this;
    }

    // etcd user and password (etcd with auth enabled). The library authenticates when it
    // connects and again whenever its token expires. The password is copied into the
    // library, never logged and never put in an error message. Throws Error for an empty
    // user name.
    Options &user(const std::string &name, const std::string &password) {
        detail::check(etcd_sd_options_set_user(opts_.get(), name.c_str(), password.c_str()));
        return *this;
    }

    // Off (default): every Registry of the process with the same settings and TTL puts its
    // keys under one shared lease, renewed once; destroying a Registry deletes its own keys.
    // On: the Registry gets a lease of its own, revoked when it is destroyed.
    Options &own_lease(bool own = true) {
        detail::check(etcd_sd_options_set_own_lease(opts_.get(), own));
        return *this;
    }

    // Off by default: a new connection starts on a random member of the endpoint list (a fleet
    // spreads over the members). On: it starts on the first endpoint and fails over in order.
    Options &prefer_first_member(bool first = true) {
        detail::check(etcd_sd_options_set_prefer_first_member(opts_.get(), first));
        return *this;
    }

    // Off by default: Discovery callbacks run on the library's callback threads and may block.
    // On: they run on the I/O thread ("etcd-sd-io") as each event arrives, saving the hand-off
    // to a callback thread, and MUST NOT BLOCK: while one runs no keep-alive, watch or request
    // of the process moves. No sleeping, I/O, slow locks, blocking Registry/Discovery calls
    // (they fail there with ETCD_SD_INTERNAL: registry() returns false, constructors throw)
    // or destroying another object whose callbacks run on the callback threads; destroying
    // its own Discovery is fine. Update your own table under a short lock or post to your
    // own queue. Order and exclusivity are unchanged.
    Options &inline_callbacks(bool on = true) {
        detail::check(etcd_sd_options_set_inline_callbacks(opts_.get(), on));
        return *this;
    }

    // Service tables only: keep the table's last-known snapshot in `path` and start from it
    // when etcd does not answer the first listing (the table is then stale until etcd
    // answers: ServiceManager::is_stale()). "" clears it. Written atomically after changes,
    // at most once a second.
    Options &snapshot_file(const std::string &path) {
        detail::check(etcd_sd_options_set_snapshot_file(opts_.get(),
                                                        path.empty() ? nullptr : path.c_str()));
        return *this;
    }

    // How a Registry writes its values. ETCD_SD_VALUE_GO_NAMING writes the JSON of Go's etcd
    // naming/endpoints ({"Op":0,"Addr":"host:port","Metadata":null}), so that Go programs
    // dialing "etcd:///TARGET" through etcd's gRPC resolver find keys TARGET/NAME:
    //
    //   etcd_sd::Registry reg(etcd_sd::Options().endpoints(url)
    //                             .value_format(ETCD_SD_VALUE_GO_NAMING));
    //   reg.registry("greeter/node-1", "10.0.0.5:9000"); // Go: grpc.Dial("etcd:///greeter")
    Options &value_format(etcd_sd_value_format format) {
        detail::check(
            etcd_sd_options_set_value_format(opts_.get(), static_cast<uint32_t>(format)));
        return *this;
    }

    // Which URL of a Kratos instance's "endpoints" gives its address in a ServiceTable made
    // with these options: a scheme ("grpc", the default; "http"; ...) or "first" (the first
    // URL whatever its scheme). Throws Error on anything else.
    Options &kratos_endpoint(const std::string &which) {
        detail::check(etcd_sd_options_set_kratos_endpoint(opts_.get(), which.c_str()));
        return *this;
    }

    // Applies ETCD_SD_CONNECT_TIMEOUT_MS, ETCD_SD_REQUEST_TIMEOUT_MS, ETCD_SD_TTL and
    // ETCD_SD_WAIT_FOR_ETCD from the environment (each only when set).
    Options &from_env() {
        detail::check(etcd_sd_options_apply_env(opts_.get()));
        return *this;
    }

    // The C handle, still owned by this object (nullptr if moved from).
    const etcd_sd_options *capi() const noexcept { return opts_.get(); }

private:
    // A negative duration becomes 0, which the library rejects as INVALID_ARGUMENT.
    static uint64_t to_ms(std::chrono::milliseconds d) {
        return d.count() <= 0 ? 0 : static_cast<uint64_t>(d.count());
    }

    std::unique_ptr<etcd_sd_options, detail::OptionsDeleter> opts_;
};

// ---------------------------------------------------------------------------------------
// Registry

// Keeps keys registered in etcd under a lease kept alive by the library's I/O thread (it
// never waits on your code). By default every Registry of the process with the same settings
// and TTL shares one lease, renewed once for all of them (Options::own_lease() gives a
// Registry its own). Destroying the Registry deletes its keys at once (one request; with an
// own lease, by revoking it), so watchers see them go (the destructor blocks at most about
// the request timeout). If the process dies instead, the keys disappear after the TTL.
//
// registry()/unregister() may be called from any thread; calls on one Registry are
// serialized by the library. Do not destroy or move a Registry while another thread uses it.
// If the lease is lost (e.g. it expired during an etcd outage) the library grants a new one
// and puts the keys again by itself; on_status() tells you when that happens.
class Registry {
public:
    using ptr = std::shared_ptr<Registry>;
    // ETCD_SD_STATUS_LOST: the lease is gone (etcd no longer holds the keys; the library is
    // already granting a new one). ETCD_SD_STATUS_RESTORED: every key is in etcd again.
    using StatusCallback = std::function<void(etcd_sd_status)>;

    // Connects to `endpoints`, grants a lease of `ttl_seconds`. Blocks until etcd answers
    // (at most 5 s); throws Error (ETCD_SD_INVALID_ARGUMENT, ETCD_SD_UNAVAILABLE, ...).
    explicit Registry(const std::string &endpoints, int ttl_seconds = 3)
        : state_(new State) {
        etcd_sd_registry *raw = nullptr;
        detail::check(etcd_sd_registry_new(endpoints.c_str(), ttl_seconds, &raw));
        handle_.reset(raw);
    }

    // Everything (endpoints, TTL, timeouts, TLS, user) from `opts`. Also throws
    // Error(ETCD_SD_TLS) / Error(ETCD_SD_AUTH) when the handshake or authentication fails.
    explicit Registry(const Options &opts) : state_(new State) {
        etcd_sd_registry *raw = nullptr;
        detail::check(etcd_sd_registry_new_with(opts.capi(), &raw));
        handle_.reset(raw);
    }

    Registry(Registry &&) noexcept = default;
    Registry &operator=(Registry &&other) noexcept {
        if (this != &other) {
            handle_.reset();
            retire(std::move(status_));
            state_ = std::move(other.state_);
            handle_ = std::move(other.handle_);
            status_ = std::move(other.status_);
        }
        return *this;
    }
    Registry(const Registry &) = delete;
    Registry &operator=(const Registry &) = delete;

    // Frees the handle (revokes the lease), then the status callback.
    ~Registry() {
        handle_.reset();
        retire(std::move(status_));
    }

    // Sets the callback told when the registration is lost and when it is restored; replaces
    // the previous one; an empty function removes it. It runs on a library callback thread,
    // never two at once for this Registry; an exception it throws is reported on stderr and
    // dropped. When on_status() or the destructor returns, the previous callback is not
    // running and will not run again (except when called from inside that very callback:
    // it is then destroyed as soon as it returns). Throws Error (e.g. on a moved-from object).
    void on_status(StatusCallback callback) {
        std::unique_ptr<Status> next;
        if (callback) next.reset(new Status(std::move(callback)));
        detail::check(etcd_sd_registry_set_status_fn(
            handle_.get(), next ? &Registry::status_trampoline : nullptr, next.get()));
        retire(std::move(status_));
        status_ = std::move(next);
    }

    // Puts key -> val under the lease (again: updates the value); the library keeps it
    // registered until unregister() or destruction. Returns false on failure; the reason
    // is then in last_error()/last_error_code(). Blocks at most the request timeout.
    bool registry(const std::string &key, const std::string &val) {
        return ok(etcd_sd_registry_register(handle_.get(), key.c_str(), val.c_str()));
    }

    // Deletes key from etcd and stops keeping it registered (an unknown key is not an
    // error). Returns false on failure, like registry().
    bool unregister(const std::string &key) {
        return ok(etcd_sd_registry_unregister(handle_.get(), key.c_str()));
    }

    // Marks every key of this registry as draining in etcd (metadata draining=true in the
    // value's own format): tables stop picking these instances for new calls while calls in
    // flight go on; keys registered later are put marked too. Then, once the calls in flight
    // are done, unregister() or destroy; or undrain(). The SIGTERM sequence: drain(), wait
    // for the calls in flight, destroy. Blocks one request timeout per key; returns false on
    // failure, like registry().
    bool drain() { return ok(etcd_sd_registry_drain(handle_.get())); }

    // Takes the draining mark away: the keys hold their values as registered again.
    bool undrain() { return ok(etcd_sd_registry_undrain(handle_.get())); }

    // The lease currently holding the keys (changes if the library had to grant a new one
    // after losing the old). Throws Error if the Registry was moved from or released.
    int64_t lease_id() const {
        int64_t id = 0;
        detail::check(etcd_sd_registry_lease_id(handle_.get(), &id));
        return id;
    }

    // What the registry is doing (lease, TTL left, keys, losses/restores, member in use); no
    // I/O. Throws Error if the Registry was moved from.
    etcd_sd_registry_stats stats() const {
        etcd_sd_registry_stats s{};
        s.size = sizeof s;
        detail::check(etcd_sd_registry_stats_get(handle_.get(), &s));
        return s;
    }

    // The message of the most recent failed registry()/unregister()/drain()/undrain() on this object (from
    // any thread), "" if none failed yet.
    std::string last_error() const {
        if (!state_) return std::string();
        std::lock_guard<std::mutex> lock(state_->mu);
        return state_->message;
    }

    // The code of that failure, ETCD_SD_OK if none failed yet.
    etcd_sd_result last_error_code() const {
        if (!state_) return ETCD_SD_OK;
        std::lock_guard<std::mutex> lock(state_->mu);
        return state_->code;
    }

    // The C handle, still owned by this object.
    etcd_sd_registry *capi() noexcept { return handle_.get(); }

    // Gives up ownership: the caller must etcd_sd_registry_free() the result. The status
    // callback set with on_status(), if any, is removed first (it belongs to this object).
    etcd_sd_registry *release() noexcept {
        if (status_ && handle_) {
            etcd_sd_registry_set_status_fn(handle_.get(), nullptr, nullptr);
        }
        retire(std::move(status_));
        return handle_.release();
    }

private:
    struct State {
        std::mutex mu;
        etcd_sd_result code = ETCD_SD_OK;
        std::string message;
    };

    struct Status {
        explicit Status(StatusCallback f) : fn(std::move(f)) {}
        StatusCallback fn;
        std::atomic<std::thread::id> running{std::thread::id()};
        bool delete_after_callback = false;
    };

    // Disposes of a status callback the library no longer calls: now, or, when we are inside
    // it, as soon as it returns.
    static void retire(std::unique_ptr<Status> old) noexcept {
        if (old && old->running.load() == std::this_thread::get_id()) {
            old->delete_after_callback = true;
            old.release();
        }
    }

    static void status_trampoline(void *user_data, etcd_sd_status status) noexcept {
        Status *st = static_cast<Status *>(user_data);
        st->running.store(std::this_thread::get_id());
        detail::call_guarded("Registry status", [&] { st->fn(status); });
        if (st->delete_after_callback) {
            delete st;
        } else {
            st->running.store(std::thread::id());
        }
    }

    bool ok(etcd_sd_result code) {
        if (code == ETCD_SD_OK) return true;
        std::string message = detail::last_error_message(code);
        if (state_) {
            std::lock_guard<std::mutex> lock(state_->mu);
            state_->code = code;
            state_->message = std::move(message);
        }
        return false;
    }

    // Heap-allocated so that the Registry stays cheaply movable and its callback's address
    // never changes. The destructor frees handle_ before status_.
    std::unique_ptr<State> state_;
    std::unique_ptr<etcd_sd_registry, detail::RegistryDeleter> handle_;
    std::unique_ptr<Status> status_;
};

// ---------------------------------------------------------------------------------------
// Discovery

// Watches every key under a prefix (etcd prefix semantics: "/svc" also matches "/svcX/a";
// end it with '/' to watch one directory) and calls put_cb(key, value) for each key that
// appears or changes and del_cb(key, last_value) for each key that disappears.
//
// Callbacks and threads:
// - The constructor first lists the existing keys and calls put_cb for each, in key order,
//   on the constructing thread, before the constructor returns.
// - Every later event runs on one of the library's callback threads ("etcd-sd-cb"), never
//   two at once for one Discovery, in etcd revision order. A callback may block (only this
//   Discovery's events wait) and may use Registry/Discovery objects. With
//   Options::inline_callbacks() they run on the I/O thread instead and must not block.
// - An exception thrown by a callback is caught, reported on std::cerr, and dropped; later
//   events are still delivered. It never propagates into the library.
// - An empty std::function means "ignore that kind of event".
//
// Lifetime: when the destructor returns, no callback of this Discovery is running or will
// run, so whatever the callbacks capture may be destroyed right after. The callbacks are
// kept in a heap object owned by the Discovery, so moving the Discovery (or holding it in a
// shared_ptr) never disturbs them. Destroying a Discovery from inside one of its own
// callbacks (e.g. by dropping the last shared_ptr to it there) is allowed: the destructor
// then returns at once, no further callback starts, and the callback objects are destroyed
// after the current callback returns. Destroying it from another Discovery's callback is
// fine too (it waits for this one's running callback, if any).
class Discovery {
public:
    using ptr = std::shared_ptr<Discovery>;
    using NotifyCallback = std::function<void(std::string, std::string)>;

    // Blocks until the listing is delivered (as etcd_sd_discovery_new: the connect timeout,
    // 5 s, for a prefix of up to 5,000 keys; up to 10 s more for each later page); throws Error
    // (ETCD_SD_INVALID_ARGUMENT, ETCD_SD_UNAVAILABLE, ...).
    Discovery(const std::string &endpoints, const std::string &basedir,
              const NotifyCallback &put_cb, const NotifyCallback &del_cb)
        : callbacks_(new Callbacks(put_cb, del_cb)) {
        etcd_sd_discovery *raw = nullptr;
        etcd_sd_result rc = etcd_sd_discovery_new(
            endpoints.c_str(), basedir.c_str(), put_cb ? &Discovery::on_put : nullptr,
            del_cb ? &Discovery::on_del : nullptr, callbacks_, &raw);
        finish_construction(rc, raw);
    }

    // Endpoints, timeouts, TLS and user from `opts`. Also throws Error(ETCD_SD_TLS) /
    // Error(ETCD_SD_AUTH), the latter also when the user may not read `basedir`.
    Discovery(const Options &opts, const std::string &basedir, const NotifyCallback &put_cb,
              const NotifyCallback &del_cb)
        : callbacks_(new Callbacks(put_cb, del_cb)) {
        etcd_sd_discovery *raw = nullptr;
        etcd_sd_result rc = etcd_sd_discovery_new_with(
            opts.capi(), basedir.c_str(), put_cb ? &Discovery::on_put : nullptr,
            del_cb ? &Discovery::on_del : nullptr, callbacks_, &raw);
        finish_construction(rc, raw);
    }

    Discovery(Discovery &&other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)),
          callbacks_(std::exchange(other.callbacks_, nullptr)) {}

    Discovery &operator=(Discovery &&other) noexcept {
        if (this != &other) {
            reset();
            handle_ = std::exchange(other.handle_, nullptr);
            callbacks_ = std::exchange(other.callbacks_, nullptr);
        }
        return *this;
    }

    Discovery(const Discovery &) = delete;
    Discovery &operator=(const Discovery &) = delete;

    ~Discovery() { reset(); }

    // The C handle, still owned by this object (nullptr if moved from).
    etcd_sd_discovery *capi() noexcept { return handle_; }

    // What the discovery is doing (revision reached, keys announced, resumes, relistings,
    // member, ms since the last event); no I/O. Throws Error if moved from.
    etcd_sd_discovery_stats stats() const {
        etcd_sd_discovery_stats s{};
        s.size = sizeof s;
        detail::check(etcd_sd_discovery_stats_get(handle_, &s));
        return s;
    }

private:
    struct Callbacks {
        Callbacks(const NotifyCallback &p, const NotifyCallback &d) : put(p), del(d) {}
        NotifyCallback put;
        NotifyCallback del;
        // The thread running a callback right now (default id: none). Callbacks of one
        // discovery never overlap, so one slot is enough.
        std::atomic<std::thread::id> running{std::thread::id()};
        // Set by a destructor that ran inside a callback: the trampoline deletes *this.
        bool delete_after_callback = false;
    };

    void finish_construction(etcd_sd_result rc, etcd_sd_discovery *raw) {
        if (rc != ETCD_SD_OK) {
            std::string message = detail::last_error_message(rc);
            delete callbacks_;  // no callback runs after a failed _new
            callbacks_ = nullptr;
            throw Error(rc, message);
        }
        handle_ = raw;
    }

    // Frees the C handle first (after which no callback runs), then the callbacks.
    void reset() noexcept {
        Callbacks *cb = std::exchange(callbacks_, nullptr);
        etcd_sd_discovery *h = std::exchange(handle_, nullptr);
        if (h != nullptr) {
            etcd_sd_discovery_free(h);
        }
        if (cb != nullptr) {
            if (cb->running.load() == std::this_thread::get_id()) {
                // Inside our own callback: etcd_sd_discovery_free returned without waiting
                // and the std::function running right now is in *cb; let the trampoline
                // delete it when the callback returns.
                cb->delete_after_callback = true;
            } else {
                delete cb;
            }
        }
    }

    static void report(const char *what, const char *kind, const char *key) noexcept {
        try {
            std::string where = std::string("Discovery ") + kind + " (key '" + key + "')";
            detail::report_exception(where.c_str(), what);
        } catch (...) {
        }
    }

    static void dispatch(bool is_put, void *user_data, const char *key, size_t key_len,
                         const char *value, size_t value_len) noexcept {
        Callbacks *cb = static_cast<Callbacks *>(user_data);
        const char *kind = is_put ? "put" : "del";
        cb->running.store(std::this_thread::get_id());
        try {
            const NotifyCallback &fn = is_put ? cb->put : cb->del;
            if (fn) {
                fn(std::string(key, key_len), std::string(value, value_len));
            }
        } catch (const std::exception &e) {
            report(e.what(), kind, key);
        } catch (...) {
            report("unknown exception", kind, key);
        }
        if (cb->delete_after_callback) {
            delete cb;
        } else {
            cb->running.store(std::thread::id());
        }
    }

    static void on_put(void *user_data, const char *key, size_t key_len, const char *value,
                       size_t value_len) noexcept {
        dispatch(true, user_data, key, key_len, value, value_len);
    }

    static void on_del(void *user_data, const char *key, size_t key_len, const char *value,
                       size_t value_len) noexcept {
        dispatch(false, user_data, key, key_len, value, value_len);
    }

    etcd_sd_discovery *handle_ = nullptr;
    Callbacks *callbacks_ = nullptr;
};

}  // namespace etcd_sd

#endif  // ETCD_SD_HPP
#include "etcd_sd_table.hpp"  // ServiceManager, ChannelPool (service table, load balancing)
#include "etcd_sd_coord.hpp"  // Client, Transaction, Lock, Election (coordination)
