// etcd/SyncClient.hpp -- etcd::SyncClient, the blocking client.

#ifndef __ETCD_SYNC_CLIENT_HPP__
#define __ETCD_SYNC_CLIENT_HPP__

#include "etcd/detail/all.hpp"  // all four classes, Response, Value, pplx::task

#endif
