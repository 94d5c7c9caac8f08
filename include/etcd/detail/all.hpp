// etcd/detail/all.hpp -- the one header behind <etcd/Client.hpp>, <etcd/SyncClient.hpp>,
// <etcd/KeepAlive.hpp> and <etcd/Watcher.hpp> (each of them only includes this).
//
// Part of etcd-sd's drop-in replacement for the etcd-cpp-apiv3 (v0.15.4) headers: the same
// #include lines and calls compile unchanged and link against libetcd_sd (or the
// libetcd-cpp-api.so name installed by libetcd-sd-compat-dev). What is implemented, what is
// not, and every difference in behaviour: docs/compat.md. Header-only C++17 over etcd_sd.h.
//
// Each of <etcd/Client.hpp>, <etcd/SyncClient.hpp>, <etcd/KeepAlive.hpp> and
// <etcd/Watcher.hpp> provides all four classes (they depend on each other), plus Response,
// Value, Event and pplx::task, and the standard headers the originals pulled in
// (<iostream>, <string>, <vector>, <memory>, <functional>, <chrono>, <map>, <mutex>, ...).
//
// Settings a program cannot pass in code come from the environment (read when a client is
// made): ETCD_SD_CONNECT_TIMEOUT_MS, ETCD_SD_REQUEST_TIMEOUT_MS, ETCD_SD_WAIT_FOR_ETCD,
// ETCD_SD_LOG and, for KeepAlive, ETCD_SD_KEEPALIVE_CANCEL (docs/compat.md, "Environment").

#ifndef ETCD_SD_COMPAT_ALL_HPP
#define ETCD_SD_COMPAT_ALL_HPP

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <ratio>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "etcd/Response.hpp"
#include "etcd/Value.hpp"
#include "etcd/detail/client.hpp"
#include "etcd/detail/election.hpp"
#include "etcd/detail/keepalive.hpp"
#include "etcd/detail/lock.hpp"
#include "etcd/detail/members.hpp"
#include "etcd/detail/oneshot_watch.hpp"
#include "etcd/detail/pplx.hpp"
#include "etcd/detail/ranges.hpp"
#include "etcd/detail/sync_client.hpp"
#include "etcd/detail/txn.hpp"
#include "etcd/detail/watcher.hpp"
#include "etcd/v3/Member.hpp"
#include "etcd/v3/Transaction.hpp"
#include "etcd/v3/action_constants.hpp"

#endif  // ETCD_SD_COMPAT_ALL_HPP
