// etcd/detail/ranges.hpp -- the key-value calls of etcd::SyncClient (get, put/add/modify/set,
// rm/rmdir, ls/keys, at a revision and over any byte range) and the mapping of etcd-sd's
// errors to etcd-cpp-apiv3's codes and messages. Internal to the compatibility headers.
//
// Keys are byte strings: every call goes through the C API's *_bytes functions, so a key may
// hold NUL bytes or be any bytes at all. Two exceptions keep etcd-sd's list-then-watch rule
// (see etcd/Watcher.hpp): get(key) and ls(key) of a plain key (no NUL, not empty) at the
// current revision use etcd_sd_client_get / etcd_sd_client_range, which remember the read.

#ifndef ETCD_SD_COMPAT_RANGES_HPP
#define ETCD_SD_COMPAT_RANGES_HPP

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "etcd/Response.hpp"
#include "etcd/detail/capi.hpp"
#include "etcd/v3/action_constants.hpp"

namespace etcd {
namespace detail {

inline char const *key_not_found_message() { return "etcd-cpp-apiv3: key not found"; }
inline char const *key_exists_message() { return "etcd-cpp-apiv3: key already exists"; }
inline char const *compare_failed_message() { return "etcd-cpp-apiv3: compare failed"; }

// etcd-sd's messages for a refusal by etcd read "<what failed>: <gRPC code name>: <etcd's
// message>". Finds that code and etcd's own text; false when the message has neither.
inline bool etcd_status(std::string const &msg, int &code, std::string &text) {
    static const struct {
        char const *name;
        int code;
    } names[] = {{"Cancelled", 1},          {"Unknown", 2},           {"InvalidArgument", 3},
                 {"DeadlineExceeded", 4},   {"NotFound", 5},          {"AlreadyExists", 6},
                 {"PermissionDenied", 7},   {"ResourceExhausted", 8}, {"FailedPrecondition", 9},
                 {"Aborted", 10},           {"OutOfRange", 11},       {"Unimplemented", 12},
                 {"Internal", 13},          {"Unavailable", 14},      {"DataLoss", 15},
                 {"Unauthenticated", 16}};
    size_t best = std::string::npos;
    for (auto const &n : names) {
        std::string needle = std::string(": ") + n.name + ": ";
        size_t at = msg.find(needle);
        if (at != std::string::npos && (best == std::string::npos || at < best)) {
            best = at;
            code = n.code;
            text = msg.substr(at + needle.size());
        }
    }
    return best != std::string::npos;
}

// The Response of a failed C call, as etcd-cpp-apiv3 reports it: 105 "etcd-cpp-apiv3: key
// already exists"; for a refusal by etcd its gRPC code and etcd's message verbatim (a lease
// that does not exist: 5 "etcdserver: requested lease not found"; a compacted revision: 11);
// `not_found` (100 with "etcd-cpp-apiv3: key not found" for keys) for etcd-sd's own "not
// found"; otherwise the code of error_code_of() with etcd-sd's message. Call it right after
// the failed call (the message is per thread).
inline Response failed(etcd_sd_result r, char const *action,
                       std::chrono::high_resolution_clock::time_point start,
                       int not_found = etcdv3::ERROR_KEY_NOT_FOUND) {
    Response resp = access::error(r, action, start, not_found);
    std::string msg = resp.error_message();
    int code = 0;
    std::string text;
    if (r == ETCD_SD_EXISTS) {
        access::set_error(resp, etcdv3::ERROR_KEY_ALREADY_EXISTS, key_exists_message());
    } else if ((r == ETCD_SD_NOT_FOUND || r == ETCD_SD_INVALID_ARGUMENT ||
                r == ETCD_SD_ETCD_ERROR) &&
               etcd_status(msg, code, text)) {
        access::set_error(resp, code, text);
    } else if (r == ETCD_SD_NOT_FOUND && not_found == etcdv3::ERROR_KEY_NOT_FOUND) {
        access::set_error(resp, not_found, key_not_found_message());
    }
    return resp;
}

inline std::chrono::high_resolution_clock::time_point clock_now() {
    return std::chrono::high_resolution_clock::now();
}

// A key the C string calls take: not empty, no NUL.
inline bool plain_key(std::string const &key) {
    return !key.empty() && key.find('\0') == std::string::npos;
}

// [begin, end) of every key starting with `key` (every key for "": NUL..NUL).
inline std::pair<std::string, std::string> prefix_range(std::string const &key) {
    if (key.empty()) {
        return {etcdv3::NUL, etcdv3::NUL};
    }
    return {key, etcdv3::detail::string_plus_one(key)};
}

/**
 * get(key[, revision]): value(); a missing key: 100.
 */
inline Response kv_get(etcd_sd_client *c, std::string const &key, int64_t revision) {
    auto start = clock_now();
    etcd_sd_kvs *raw = nullptr;
    etcd_sd_result r = revision == 0 && plain_key(key)
                           ? etcd_sd_client_get(c, key.c_str(), &raw)
                           : etcd_sd_client_get_bytes(c, key.data(), key.size(), revision, &raw);
    kvs_ptr kvs(raw);
    if (r != ETCD_SD_OK) {
        return failed(r, etcdv3::GET_ACTION, start);
    }
    Response resp = access::ok(etcdv3::GET_ACTION, etcd_sd_kvs_revision(kvs.get()), start);
    auto values = access::values_of(kvs.get());
    if (values.empty()) {
        access::set_error(resp, etcdv3::ERROR_KEY_NOT_FOUND, key_not_found_message());
    } else {
        access::set_value(resp, values.front());
    }
    return resp;
}

/**
 * Reads [begin, end) (end "\0": every key from begin on) at `revision` (0: now), at most
 * `limit` (0: all); `prefix`: the range is every key starting with `begin` (so a plain key
 * at the current revision may go through etcd_sd_client_range). values(), keys(), value();
 * keys_only: the values are emptied.
 */
inline Response kv_list(etcd_sd_client *c, std::string const &begin, std::string const &end,
                        bool prefix, size_t limit, int64_t revision, bool keys_only) {
    auto start = clock_now();
    etcd_sd_kvs *raw = nullptr;
    etcd_sd_result r = ETCD_SD_INVALID_ARGUMENT;
    bool done = false;
    if (prefix && revision == 0 && plain_key(begin)) {
        r = etcd_sd_client_range(c, begin.c_str(), static_cast<int64_t>(limit), &raw);
        done = r != ETCD_SD_INVALID_ARGUMENT;  // e.g. not UTF-8: read it as bytes below
    }
    if (!done) {
        etcd_sd_kvs_free(raw);
        raw = nullptr;
        r = etcd_sd_client_range_bytes(c, begin.data(), begin.size(), end.data(), end.size(),
                                       static_cast<int64_t>(limit), revision, &raw);
    }
    kvs_ptr kvs(raw);
    if (r != ETCD_SD_OK) {
        return failed(r, etcdv3::GET_ACTION, start);
    }
    Response resp = access::ok(etcdv3::GET_ACTION, etcd_sd_kvs_revision(kvs.get()), start);
    access::set_values(resp, access::values_of(kvs.get()), keys_only);
    return resp;
}

// ls(key, ...) / keys(key, ...): every key starting with `key` ("" : every key).
inline Response kv_ls(etcd_sd_client *c, std::string const &key, size_t limit, int64_t revision,
                      bool keys_only) {
    auto range = prefix_range(key);
    return kv_list(c, range.first, range.second, true, limit, revision, keys_only);
}

// ls(key, range_end, ...) / keys(key, range_end, ...): [key, range_end), any bytes ("\0":
// every key from `key` on). An empty range_end reads the key alone, as the original does
// (value(), no values(); missing: 100).
inline Response kv_ls_range(etcd_sd_client *c, std::string const &key,
                            std::string const &range_end, size_t limit, int64_t revision,
                            bool keys_only) {
    if (range_end.empty()) {
        Response resp = kv_get(c, key, revision);
        if (keys_only && resp.is_ok()) {  // value() without its value
            access::set_values(resp, std::vector<Value>{resp.value()}, true);
            Value emptied = resp.values().front();
            access::set_values(resp, std::vector<Value>());
            access::set_value(resp, emptied);
        }
        return resp;
    }
    return kv_list(c, key, range_end, false, limit, revision, keys_only);
}

/**
 * Deletes `key` (has_range false) or [key, range_end): values(), keys(), value() and
 * prev_value() are the deleted entries; nothing deleted: 100 "etcd-cpp-apiv3: key not found".
 */
inline Response kv_delete(etcd_sd_client *c, std::string const &key, bool has_range,
                          std::string const &range_end) {
    auto start = clock_now();
    etcd_sd_kvs *raw = nullptr;
    etcd_sd_result r =
        etcd_sd_client_delete_bytes(c, key.data(), key.size(), has_range ? range_end.data() : "",
                                    has_range ? range_end.size() : 0, &raw);
    kvs_ptr deleted(raw);
    if (r != ETCD_SD_OK) {
        return failed(r, etcdv3::DELETE_ACTION, start);
    }
    Response resp = access::ok(etcdv3::DELETE_ACTION, etcd_sd_kvs_revision(deleted.get()), start);
    auto values = access::values_of(deleted.get());
    if (values.empty()) {
        access::set_error(resp, etcdv3::ERROR_KEY_NOT_FOUND, key_not_found_message());
        return resp;
    }
    access::set_prev_value(resp, values.front());
    access::set_values(resp, std::move(values));
    return resp;
}

/**
 * set/add/put/modify: puts key -> value under `lease` when `mode` allows. value() is the
 * entry written, prev_value() the one replaced. add() of an existing key: 105 and value() the
 * existing entry; modify() of a missing key: 100; a lease that does not exist: 5.
 */
inline Response kv_put(etcd_sd_client *c, std::string const &key, std::string const &value,
                       int64_t lease, etcd_sd_put_mode mode, char const *action) {
    auto start = clock_now();
    etcd_sd_put_info info{};
    info.size = sizeof info;
    etcd_sd_kvs *raw = nullptr;
    etcd_sd_result r = etcd_sd_client_put_info(c, key.data(), key.size(), value.data(),
                                               value.size(), lease, mode, &info, &raw);
    kvs_ptr found(raw);
    auto values = access::values_of(found.get());
    Value const *v = values.empty() ? nullptr : &values.front();
    if (r == ETCD_SD_OK && info.applied) {
        // value(): what was put, under the lease it went under (a KeepAlive's current one)
        Response resp = access::ok(action, info.revision, start);
        access::set_value(resp, access::made_value(key, value, info.lease, resp.index(), v));
        if (v != nullptr) {
            access::set_prev_value(resp, *v);
        }
        return resp;
    }
    if (r == ETCD_SD_OK) {  // refused by the mode: add() found the key, modify() did not
        Response resp = access::ok(action, info.revision, start);
        if (mode == ETCD_SD_PUT_IF_ABSENT) {
            access::set_error(resp, etcdv3::ERROR_KEY_ALREADY_EXISTS, key_exists_message());
        } else {
            access::set_error(resp, etcdv3::ERROR_KEY_NOT_FOUND, key_not_found_message());
        }
        if (v != nullptr) {  // add(): value() is what is there, read in the same request
            access::set_value(resp, *v);
            access::set_prev_value(resp, *v);
        }
        return resp;
    }
    // etcd refused (a lease that does not exist: 5 and etcd's message) or did not answer
    return failed(r, action, start, etcdv3::ERROR_GRPC_NOT_FOUND);
}

}  // namespace detail
}  // namespace etcd

#endif  // ETCD_SD_COMPAT_RANGES_HPP
