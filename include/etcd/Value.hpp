// etcd/Value.hpp -- etcd::Value and etcd::Event, compatible with etcd-cpp-apiv3 v0.15.4
// (etcd-sd compatibility headers; the full list of what is implemented: docs/compat.md).
//
// A Value is one key-value pair as etcd returned it (a copy: it owns its strings); an Event is
// one change seen by an etcd::Watcher. Both are plain values, safe to copy and keep.

#ifndef __ETCD_VECTOR_HPP__
#define __ETCD_VECTOR_HPP__

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

namespace etcd {
class Value;
class Event;
class Response;
class Client;
class SyncClient;
class Watcher;
class KeepAlive;

namespace detail {
struct access;  // builds Values, Events and Responses from the C API's results
}

/**
 * Represents a value object received from the etcd server
 */
class Value {
public:
    /**
     * Always false: etcd v3 has no directories (kept for the original's API).
     */
    bool is_dir() const { return dir; }

    /**
     * The key.
     */
    std::string const &key() const { return _key; }

    /**
     * The value.
     */
    std::string const &as_string() const { return value; }

    /**
     * The key's create revision (0 for an empty Value).
     */
    int64_t created_index() const { return created; }

    /**
     * The key's last modification revision.
     */
    int64_t modified_index() const { return modified; }

    /**
     * The key's version (1 after it was created, +1 with each put).
     */
    int64_t version() const { return _version; }

    /**
     * The TTL (seconds) in the answer of leasegrant / leasetimetolive (-1: the lease has
     * expired or does not exist); 0 for keys.
     */
    int ttl() const { return _ttl; }

    /**
     * etcd-sd addition: the TTL (seconds) the lease was granted with, in the answer of
     * leasegrant (etcd's granted TTL, which etcd raises to its minimum) and leasetimetolive
     * (etcd-cpp-apiv3 drops it there); 0 for keys.
     */
    int64_t granted_ttl() const { return _granted_ttl; }

    /**
     * The lease the key is attached to (0: none); the lease id for leasegrant /
     * leasetimetolive answers.
     */
    int64_t lease() const { return leaseId; }

protected:
    friend class Client;
    friend class SyncClient;
    friend class Response;
    friend class Event;
    friend struct detail::access;

    Value() = default;

    std::string _key;
    bool dir = false;
    std::string value;
    int64_t created = 0;
    int64_t modified = 0;
    int64_t _version = 0;
    int _ttl = 0;
    int64_t leaseId = 0;
    int64_t _granted_ttl = 0;
};

using Values = std::vector<Value>;

inline std::ostream &operator<<(std::ostream &os, const Value &value) {
    return os << "Value(key: " << value.key() << ", value: " << value.as_string()
              << ", created: " << value.created_index() << ", modified: " << value.modified_index()
              << ", version: " << value.version() << ", ttl: " << value.ttl()
              << ", lease: " << value.lease() << ")";
}

/**
 * One change seen by a watch: a PUT (created or updated key) or a DELETE.
 */
class Event {
public:
    enum class EventType {
        PUT,
        DELETE_,
        INVALID,
    };

    enum EventType event_type() const { return event_type_; }

    /**
     * Always true for events from etcd-sd (a DELETE's kv has the key and the delete's
     * revision, with an empty value).
     */
    bool has_kv() const { return _has_kv; }

    /**
     * True when the watcher knew the key before this change (it keeps the values it has seen;
     * etcd is never asked for prev_kv): false for the PUT that created the key.
     */
    bool has_prev_kv() const { return _has_prev_kv; }

    const Value &kv() const { return _kv; }

    /**
     * The value before this change as the watcher last saw it; for a DELETE, the departed
     * value. Key and value are exact; its revisions, version and lease are 0.
     */
    const Value &prev_kv() const { return _prev_kv; }

protected:
    friend class Response;
    friend struct detail::access;

    Event() = default;

private:
    enum EventType event_type_ = EventType::INVALID;
    Value _kv, _prev_kv;
    bool _has_kv = false, _has_prev_kv = false;
};

using Events = std::vector<Event>;

inline std::ostream &operator<<(std::ostream &os, const Event::EventType &value) {
    switch (value) {
    case Event::EventType::PUT:
        return os << "PUT";
    case Event::EventType::DELETE_:
        return os << "DELETE";
    default:
        return os << "INVALID";
    }
}

inline std::ostream &operator<<(std::ostream &os, const Event &event) {
    os << "Event(type: " << event.event_type();
    if (event.has_kv()) {
        os << ", kv: " << event.kv();
    }
    if (event.has_prev_kv()) {
        os << ", prev_kv: " << event.prev_kv();
    }
    return os << ")";
}

}  // namespace etcd

#endif
