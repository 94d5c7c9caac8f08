// etcd/v3/action_constants.hpp -- the action strings and error codes of etcd-cpp-apiv3's
// Responses (part of the etcd-sd compatibility headers; see docs/compat.md).
//
// Same names and values as etcd-cpp-apiv3 v0.15.4, for code that compares
// `response.action()` or `response.error_code()` with them. They are C++17 inline constants
// here (the original declares them `extern` and defines them in its library). The internal
// gRPC stream tags of the original (KEEPALIVE_*, WATCH_CREATE, ...) are not provided.

#ifndef ETCD_SD_COMPAT_ACTION_CONSTANTS_HPP
#define ETCD_SD_COMPAT_ACTION_CONSTANTS_HPP

#include <cstdlib>
#include <string>

namespace etcdv3 {

// Response::action() of each call.
inline char const *const CREATE_ACTION = "create";          // add(); a watch PUT of a new key
inline char const *const COMPARESWAP_ACTION = "compareAndSwap";
inline char const *const UPDATE_ACTION = "update";          // modify()
inline char const *const SET_ACTION = "set";                // set(); a watch PUT of a key that existed
inline char const *const GET_ACTION = "get";                // get(), ls(), keys(), head()
inline char const *const PUT_ACTION = "set";                // put() (an alias of "set", as in the original)
inline char const *const DELETE_ACTION = "delete";          // rm(), rmdir(); a watch DELETE
inline char const *const COMPAREDELETE_ACTION = "compareAndDelete";
inline char const *const LOCK_ACTION = "lock";
inline char const *const UNLOCK_ACTION = "unlock";
inline char const *const TXN_ACTION = "txn";
inline char const *const WATCH_ACTION = "watch";

inline char const *const LEASEGRANT = "leasegrant";
inline char const *const LEASEREVOKE = "leaserevoke";
inline char const *const LEASEKEEPALIVE = "leasekeepalive";
inline char const *const LEASETIMETOLIVE = "leasetimetolive";
inline char const *const LEASELEASES = "leaseleases";

inline char const *const CAMPAIGN_ACTION = "campaign";
inline char const *const PROCLAIM_ACTION = "preclaim";   // sic, as in the original
inline char const *const LEADER_ACTION = "leader";
inline char const *const OBSERVE_ACTION = "obverse";     // sic, as in the original
inline char const *const RESIGN_ACTION = "resign";

inline char const *const ADDMEMBER = "addmember";        // add_member()
inline char const *const LISTMEMBER = "listmember";      // list_member()
inline char const *const REMOVEMEMBER = "removemember";  // remove_member()

// The smallest key: "\0" (used as a range end meaning "to the end of the keyspace").
inline std::string const NUL = std::string(1, '\x00');

// Response::error_code(): 0 is success; 1..16 are gRPC status codes (how etcd-sd's results
// map onto them is in docs/compat.md); 100.. are the library's own.
inline const int ERROR_GRPC_OK = 0;
inline const int ERROR_GRPC_CANCELLED = 1;
inline const int ERROR_GRPC_UNKNOWN = 2;
inline const int ERROR_GRPC_INVALID_ARGUMENT = 3;
inline const int ERROR_GRPC_DEADLINE_EXCEEDED = 4;
inline const int ERROR_GRPC_NOT_FOUND = 5;
inline const int ERROR_GRPC_ALREADY_EXISTS = 6;
inline const int ERROR_GRPC_PERMISSION_DENIED = 7;
inline const int ERROR_GRPC_RESOURCE_EXHAUSTED = 8;
inline const int ERROR_GRPC_FAILED_PRECONDITION = 9;
inline const int ERROR_GRPC_ABORTED = 10;
inline const int ERROR_GRPC_OUT_OF_RANGE = 11;
inline const int ERROR_GRPC_UNIMPLEMENTED = 12;
inline const int ERROR_GRPC_INTERNAL = 13;
inline const int ERROR_GRPC_UNAVAILABLE = 14;
inline const int ERROR_GRPC_DATA_LOSS = 15;
inline const int ERROR_GRPC_UNAUTHENTICATED = 16;

inline const int ERROR_KEY_NOT_FOUND = 100;       // get/modify/rm of a missing key; rmdir that deleted nothing
inline const int ERROR_COMPARE_FAILED = 101;
inline const int ERROR_KEY_ALREADY_EXISTS = 105;  // add() of a key that exists
inline const int ERROR_ACTION_CANCELLED = 106;

namespace detail {

// $ETCD_ENDPOINTS when it is set, else `default_endpoints`: how etcd-cpp-apiv3's own tests
// and examples pick their etcd. (Declared here, so <etcd/Client.hpp> and <etcd/SyncClient.hpp>
// both provide it, as the original's do.)
inline std::string resolve_etcd_endpoints(std::string const &default_endpoints) {
    char const *env = std::getenv("ETCD_ENDPOINTS");
    return env != nullptr ? std::string(env) : default_endpoints;
}

// The end of the range of keys starting with `value` (etcd's prefix end: the last byte that
// is not 0xff incremented, the rest dropped); NUL when there is none.
inline std::string string_plus_one(std::string const &value) {
    std::string s = value;
    while (!s.empty()) {
        unsigned char last = static_cast<unsigned char>(s.back());
        if (last < 0xff) {
            s.back() = static_cast<char>(last + 1);
            return s;
        }
        s.pop_back();
    }
    return NUL;
}

}  // namespace detail
}  // namespace etcdv3

#endif  // ETCD_SD_COMPAT_ACTION_CONSTANTS_HPP
