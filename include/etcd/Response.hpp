// etcd/Response.hpp -- etcd::Response, compatible with etcd-cpp-apiv3 v0.15.4 (etcd-sd
// compatibility headers; what is implemented and how it differs: docs/compat.md).
//
// The answer to one etcd::Client / etcd::SyncClient call, and what an etcd::Watcher hands to
// its callback. A plain value: safe to copy, keep and pass between threads.
//
// error_code(): 0 on success; etcdv3::ERROR_KEY_NOT_FOUND (100) for get/modify/rm of a missing
// key and an rmdir that deleted nothing; etcdv3::ERROR_KEY_ALREADY_EXISTS (105) for add() of an
// existing key; otherwise a gRPC status code: 14 (UNAVAILABLE) when no etcd endpoint answered
// within the connect timeout, 4 (DEADLINE_EXCEEDED) when etcd did not answer within the request
// timeout, 5 (NOT_FOUND) for leaserevoke of an unknown lease, 3 (INVALID_ARGUMENT), 16
// (UNAUTHENTICATED) / 7 (PERMISSION_DENIED), 2 (UNKNOWN) for other refusals by etcd.
// 101 (etcdv3::ERROR_COMPARE_FAILED) when the compares of txn(), modify_if() or rm_if() failed.
// error_message(): "etcd-cpp-apiv3: key not found" (100), "etcd-cpp-apiv3: compare failed"
// (101), "etcd-cpp-apiv3: key already exists" (105), etcd's own message when etcd refused the
// request (e.g. "etcdserver: requested lease not found", code 5), else etcd-sd's message.

#ifndef __ETCD_RESPONSE_HPP__
#define __ETCD_RESPONSE_HPP__

#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "etcd/Value.hpp"
#include "etcd/v3/Member.hpp"  // etcdv3::Member; also `using namespace std;` (see there)

namespace etcd {
typedef std::vector<std::string> Keys;

namespace detail {
// Compute the duration between given start time point and now
inline const std::chrono::microseconds duration_till_now(
    std::chrono::high_resolution_clock::time_point const &start_timepoint) {
    return std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::high_resolution_clock::now() - start_timepoint);
}
}  // namespace detail

/**
 * The Response object received for the requests of etcd::Client
 */
class Response {
public:
    Response() = default;
    Response(const Response &) = default;
    Response(Response &&) noexcept = default;
    Response &operator=(const Response &) = default;
    Response &operator=(Response &&) noexcept = default;

    /**
     * Returns the error code received from the etcd server. In case of success
     * the error code is 0.
     */
    int error_code() const { return _error_code; }

    /**
     * Returns the string representation of the error code
     */
    std::string const &error_message() const { return _error_message; }

    /**
     * Returns true if this is a successful response
     */
    bool is_ok() const { return _error_code == 0; }

    /**
     * Returns true if the error is a network unavailable error.
     */
    bool is_network_unavailable() const { return _error_code == 14; }

    /**
     * Check whether the response contains a grpc TIMEOUT error.
     */
    bool is_grpc_timeout() const { return _error_code == 4; }

    /**
     * Returns the action type of the operation that this response belongs to:
     * "get", "set", "create", "update", "delete", "leasegrant", ... (etcdv3::*_ACTION).
     * For a watch: "create" / "set" / "delete" after the first event.
     */
    std::string const &action() const { return _action; }

    /**
     * Returns the current index value of etcd (the revision of the answer).
     */
    int64_t index() const { return _index; }

    /**
     * Returns the value object of the response to a get/set/modify operation.
     */
    Value const &value() const { return _value; }

    /**
     * Returns the previous value object of the response to a set/modify/rm
     * operation.
     */
    Value const &prev_value() const { return _prev_value; }

    /**
     * Returns the index-th value of the response to an 'ls' operation. Equivalent
     * to values()[index]
     */
    Value const &value(int index) const { return _values[static_cast<size_t>(index)]; }

    /**
     * Returns the vector of values in a directory in response to an 'ls'
     * operation.
     */
    Values const &values() const { return _values; }

    /**
     * Returns the vector of keys in a directory in response to an 'ls' operation.
     */
    Keys const &keys() const { return _keys; }

    /**
     * Returns the index-th key in a directory listing. Same as keys()[index]
     */
    std::string const &key(int index) const { return _keys[static_cast<size_t>(index)]; }

    /**
     * Always -1 with etcd-sd: a Watcher whose revision was compacted does not stop; it lists
     * again and delivers the difference as ordinary events (see etcd/Watcher.hpp).
     */
    int64_t compact_revision() const { return _compact_revision; }

    /**
     * Returns the watcher id for Watcher callbacks (one id per Watcher); -1 otherwise.
     */
    int64_t watch_id() const { return _watch_id; }

    /**
     * Returns the lock key (always empty: locks are not implemented).
     */
    std::string const &lock_key() const { return _lock_key; }

    /**
     * Return the "name" in response (always empty: elections are not implemented).
     */
    std::string const &name() const { return _name; }

    /**
     * Returns the watched events.
     */
    std::vector<Event> const &events() const { return _events; }

    /**
     * Returns the duration of request execution in microseconds.
     */
    std::chrono::microseconds const &duration() const { return _duration; }

    /**
     * Always 0 with etcd-sd (the C API does not report the cluster id).
     */
    uint64_t cluster_id() const { return _cluster_id; }

    /**
     * Always 0 with etcd-sd.
     */
    uint64_t member_id() const { return _member_id; }

    /**
     * Always 0 with etcd-sd.
     */
    uint64_t raft_term() const { return _raft_term; }

    /**
     * The ids of the leases etcd holds, in the answer of Client::leases().
     */
    std::vector<int64_t> const &leases() const { return _leases; }

    /**
     * The members of the cluster, in the answer of Client::list_member().
     */
    std::vector<etcdv3::Member> const &members() const { return _members; }

protected:
    Response(int error_code, std::string const &error_message)
        : _error_code(error_code), _error_message(error_message) {}
    Response(int error_code, char const *error_message)
        : _error_code(error_code), _error_message(error_message) {}

    int _error_code = 0;
    std::string _error_message;
    int64_t _index = 0;
    std::string _action;
    Value _value;
    Value _prev_value;
    Values _values;
    Keys _keys;
    int64_t _compact_revision = -1;  // for watch
    int64_t _watch_id = -1;          // for watch
    std::string _lock_key;           // for lock
    std::string _name;               // for campaign (in v3election)
    std::vector<Event> _events;      // for watch
    std::chrono::microseconds _duration{0};

    uint64_t _cluster_id = 0;
    uint64_t _member_id = 0;
    uint64_t _raft_term = 0;

    std::vector<int64_t> _leases;
    std::vector<etcdv3::Member> _members;

    friend class Client;
    friend class SyncClient;
    friend class KeepAlive;
    friend class Watcher;
    friend struct detail::access;
};
}  // namespace etcd

#endif
