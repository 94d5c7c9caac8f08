// etcd/detail/capi.hpp -- glue between the etcd-cpp-apiv3 compatible classes and etcd-sd's
// C API (etcd_sd.h). Internal to the compatibility headers: nothing here is part of the
// etcd-cpp-apiv3 API.

#ifndef ETCD_SD_COMPAT_CAPI_HPP
#define ETCD_SD_COMPAT_CAPI_HPP

#include "etcd_sd.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "etcd/Response.hpp"
#include "etcd/Value.hpp"
#include "etcd/v3/action_constants.hpp"
#include "etcd/v3/action_constants.hpp"

namespace etcd {
namespace detail {

// Shared with etcd_sd.hpp: this thread's message for the call that just failed (never
// empty); reporting an exception that a user callback let escape (it must not unwind into
// C), and running a callback body under that guard; the RAII deleter of etcd_sd_options.
using ::etcd_sd::detail::call_guarded;
using ::etcd_sd::detail::last_error_message;
using ::etcd_sd::detail::report_exception;
using options_ptr = std::unique_ptr<etcd_sd_options, ::etcd_sd::detail::OptionsDeleter>;

// etcd-sd result -> the error code etcd-cpp-apiv3 would have put in its Response.
// `not_found` is the code for ETCD_SD_NOT_FOUND (100 for keys, gRPC NOT_FOUND for leases).
inline int error_code_of(etcd_sd_result r, int not_found = etcdv3::ERROR_KEY_NOT_FOUND) {
    switch (r) {
    case ETCD_SD_OK:
        return 0;
    case ETCD_SD_INVALID_ARGUMENT:
        return etcdv3::ERROR_GRPC_INVALID_ARGUMENT;
    case ETCD_SD_UNAVAILABLE:
        return etcdv3::ERROR_GRPC_UNAVAILABLE;
    case ETCD_SD_TIMEOUT:
        return etcdv3::ERROR_GRPC_DEADLINE_EXCEEDED;
    case ETCD_SD_CLOSED:
        return etcdv3::ERROR_GRPC_CANCELLED;
    case ETCD_SD_INTERNAL:
        return etcdv3::ERROR_GRPC_INTERNAL;
    case ETCD_SD_AUTH:
        return etcdv3::ERROR_GRPC_UNAUTHENTICATED;
    case ETCD_SD_TLS:
        return etcdv3::ERROR_GRPC_UNAVAILABLE;
    case ETCD_SD_NOT_FOUND:
        return not_found;
    case ETCD_SD_EXISTS:
        return etcdv3::ERROR_KEY_ALREADY_EXISTS;
    default:  // ETCD_SD_ETCD_ERROR and anything newer
        return etcdv3::ERROR_GRPC_UNKNOWN;
    }
}

struct kvs_deleter {
    void operator()(etcd_sd_kvs *r) const noexcept { etcd_sd_kvs_free(r); }
};
using kvs_ptr = std::unique_ptr<etcd_sd_kvs, kvs_deleter>;

struct txn_deleter {
    void operator()(etcd_sd_txn *t) const noexcept { etcd_sd_txn_free(t); }
};
struct txn_response_deleter {
    void operator()(etcd_sd_txn_response *r) const noexcept { etcd_sd_txn_response_free(r); }
};
using txn_ptr = std::unique_ptr<etcd_sd_txn, txn_deleter>;
using txn_response_ptr = std::unique_ptr<etcd_sd_txn_response, txn_response_deleter>;

// The prefix a watch of [key, range_end) follows: `key` itself when range_end is key's own
// prefix end, else the longest prefix both ends share (the events are then filtered to the
// range by the caller; "" when they share none).
inline std::string range_watch_prefix(std::string const &key, std::string const &range_end) {
    if (range_end == etcdv3::detail::string_plus_one(key)) {
        return key;
    }
    size_t common = 0;
    while (common < key.size() && common < range_end.size() && key[common] == range_end[common]) {
        common++;
    }
    return key.substr(0, common);
}

// What a client is made of; kept so that set_grpc_timeout() can make a new C client.
struct settings {
    std::string endpoints;  // normalised: comma-separated
    std::string user, password;
    std::string ca, cert, privkey, server_name;
    uint64_t request_timeout_ms = 0;  // 0: the library's default / ETCD_SD_REQUEST_TIMEOUT_MS
};

// "http://a:1, b:2;c:3" -> "http://a:1,b:2,c:3" (with `tls`, every endpoint becomes https://).
inline std::string normalize_endpoints(std::string const &urls, bool tls) {
    std::string out, cur;
    auto flush = [&]() {
        size_t b = cur.find_first_not_of(" \t\r\n");
        size_t e = cur.find_last_not_of(" \t\r\n");
        std::string one = b == std::string::npos ? std::string() : cur.substr(b, e - b + 1);
        cur.clear();
        if (one.empty()) {
            return;
        }
        if (tls) {
            if (one.compare(0, 7, "http://") == 0) {
                one = "https://" + one.substr(7);
            } else if (one.find("://") == std::string::npos) {
                one = "https://" + one;
            }
        }
        if (!out.empty()) {
            out += ',';
        }
        out += one;
    };
    for (char ch : urls) {
        if (ch == ',' || ch == ';') {
            flush();
        } else {
            cur += ch;
        }
    }
    flush();
    return out;
}

// One C client (etcd_sd_client), shared by the SyncClient that made it and by every
// KeepAlive and Watcher made from it, so it outlives all of them whatever the order of
// destruction.
class client_handle {
public:
    explicit client_handle(settings s) : settings_(std::move(s)) {
        etcd_sd_options *raw = nullptr;
        check_ctor(etcd_sd_options_new(&raw));
        options_ptr opts(raw);
        check_ctor(etcd_sd_options_set_endpoints(opts.get(), settings_.endpoints.c_str()));
        // ETCD_SD_CONNECT_TIMEOUT_MS, ETCD_SD_REQUEST_TIMEOUT_MS, ETCD_SD_WAIT_FOR_ETCD, ...
        check_ctor(etcd_sd_options_apply_env(opts.get()));
        if (!settings_.ca.empty()) {
            check_ctor(etcd_sd_options_set_ca_file(opts.get(), settings_.ca.c_str()));
        }
        if (!settings_.cert.empty() && !settings_.privkey.empty()) {
            check_ctor(etcd_sd_options_set_client_cert(opts.get(), settings_.cert.c_str(),
                                                       settings_.privkey.c_str()));
        }
        if (!settings_.server_name.empty()) {
            check_ctor(etcd_sd_options_set_server_name(opts.get(), settings_.server_name.c_str()));
        }
        if (!settings_.user.empty()) {
            check_ctor(etcd_sd_options_set_user(opts.get(), settings_.user.c_str(),
                                                settings_.password.c_str()));
        }
        if (settings_.request_timeout_ms > 0) {
            check_ctor(etcd_sd_options_set_request_timeout_ms(opts.get(),
                                                              settings_.request_timeout_ms));
        }
        etcd_sd_client *c = nullptr;
        check_ctor(etcd_sd_client_new(opts.get(), &c));
        c_ = c;
    }

    client_handle(const client_handle &) = delete;
    client_handle &operator=(const client_handle &) = delete;

    ~client_handle() { etcd_sd_client_free(c_); }

    etcd_sd_client *get() const { return c_; }
    settings const &config() const { return settings_; }

private:
    static void check_ctor(etcd_sd_result r) {
        if (r != ETCD_SD_OK) {
            std::string msg = "etcd-sd: cannot create the etcd client: " + last_error_message(r);
            if (r == ETCD_SD_INVALID_ARGUMENT) {
                throw std::invalid_argument(msg);
            }
            throw std::runtime_error(msg);
        }
    }

    settings settings_;
    etcd_sd_client *c_ = nullptr;
};

using handle_ptr = std::shared_ptr<client_handle>;

// Builds Values, Events and Responses (friend of each).
struct access {
    static Value value_of(etcd_sd_kv const &kv) {
        Value v;
        v._key.assign(kv.key != nullptr ? kv.key : "", kv.key_len);
        v.value.assign(kv.value != nullptr ? kv.value : "", kv.value_len);
        v.created = kv.create_revision;
        v.modified = kv.mod_revision;
        v._version = kv.version;
        v.leaseId = kv.lease;
        return v;
    }

    static Value lease_value(etcd_sd_lease_info const &info) {
        Value v;
        v.leaseId = info.id;
        v._ttl = static_cast<int>(info.ttl);
        v._granted_ttl = info.granted_ttl;
        return v;
    }

    static Value made_value(std::string const &key, std::string const &value, int64_t lease,
                            int64_t revision, Value const *prev) {
        Value v;
        v._key = key;
        v.value = value;
        v.leaseId = lease;
        v.modified = revision;
        v.created = prev != nullptr ? prev->created : revision;
        v._version = prev != nullptr ? prev->_version + 1 : 1;
        return v;
    }

    static std::vector<Value> values_of(etcd_sd_kvs const *r) {
        std::vector<Value> out;
        size_t n = etcd_sd_kvs_len(r);
        out.reserve(n);
        for (size_t i = 0; i < n; i++) {
            etcd_sd_kv kv;
            if (etcd_sd_kvs_at(r, i, &kv)) {
                out.push_back(value_of(kv));
            }
        }
        return out;
    }

    static Response error(etcd_sd_result r, char const *action,
                          std::chrono::high_resolution_clock::time_point start,
                          int not_found = etcdv3::ERROR_KEY_NOT_FOUND) {
        Response resp(error_code_of(r, not_found), last_error_message(r));
        resp._action = action;
        resp._duration = duration_till_now(start);
        return resp;
    }

    static Response error(int code, std::string const &message, char const *action) {
        Response resp(code, message);
        resp._action = action;
        return resp;
    }

    static Response ok(char const *action, int64_t index,
                       std::chrono::high_resolution_clock::time_point start) {
        Response resp;
        resp._action = action;
        resp._index = index;
        resp._duration = duration_till_now(start);
        return resp;
    }

    // value(), values() and keys() for a listing (value() is the first entry, if any);
    // keys_only: each entry without its value, as etcd's keys_only reads answer.
    static void set_values(Response &resp, std::vector<Value> values, bool keys_only = false) {
        resp._keys.clear();
        for (auto &v : values) {
            resp._keys.push_back(v.key());
            if (keys_only) {
                v.value.clear();
            }
        }
        resp._value = values.empty() ? Value() : values.front();
        resp._values = std::move(values);
    }

    static void set_value(Response &resp, Value v) { resp._value = std::move(v); }
    static void set_prev_value(Response &resp, Value v) { resp._prev_value = std::move(v); }
    static Value &prev_value(Response &resp) { return resp._prev_value; }
    static void set_compact_revision(Response &resp, int64_t r) { resp._compact_revision = r; }
    static void set_error(Response &resp, int code, std::string message) {
        resp._error_code = code;
        resp._error_message = std::move(message);
    }
    static void set_members(Response &resp, std::vector<etcdv3::Member> members) {
        resp._members = std::move(members);
    }
    static void set_leases(Response &resp, std::vector<int64_t> leases) {
        resp._leases = std::move(leases);
    }

    // A Watcher's Response for one batch of events.
    static Response watch_response(etcd_sd_watch_event const *events, size_t n, int64_t revision,
                                   int64_t watch_id, std::string const *range_begin,
                                   std::string const *range_end) {
        Response resp;
        resp._action = etcdv3::WATCH_ACTION;
        resp._index = revision;
        resp._watch_id = watch_id;
        for (size_t i = 0; i < n; i++) {
            etcd_sd_watch_event const &e = events[i];
            Event ev;
            ev._kv = value_of(e.kv);
            if (range_begin != nullptr &&
                (ev._kv.key() < *range_begin ||
                 (!range_end->empty() && *range_end != etcdv3::NUL && ev._kv.key() >= *range_end))) {
                continue;  // outside [key, range_end) of a range Watcher
            }
            ev._has_kv = true;
            ev.event_type_ = e.type == ETCD_SD_WATCH_DELETE ? Event::EventType::DELETE_
                                                             : Event::EventType::PUT;
            ev._has_prev_kv = e.has_prev_kv;
            if (e.has_prev_kv) {
                ev._prev_kv = value_of(e.prev_kv);
            }
            if (resp._events.empty()) {
                // Like the original: action, value() and prev_value() from the first event.
                if (ev.event_type_ == Event::EventType::DELETE_) {
                    resp._action = etcdv3::DELETE_ACTION;
                } else {
                    resp._action = ev._kv.version() == 1 ? etcdv3::CREATE_ACTION
                                                        : etcdv3::SET_ACTION;
                }
                resp._value = ev._kv;
                if (ev._has_prev_kv) {
                    resp._prev_value = ev._prev_kv;
                }
            }
            resp._events.push_back(std::move(ev));
        }
        return resp;
    }
};

}  // namespace detail
}  // namespace etcd

#endif  // ETCD_SD_COMPAT_CAPI_HPP
