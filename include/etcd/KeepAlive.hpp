// etcd/KeepAlive.hpp -- etcd::KeepAlive, a lease kept alive that recovers by itself.

#ifndef __ETCD_KEEPALIVE_HPP__
#define __ETCD_KEEPALIVE_HPP__

#include "etcd/detail/all.hpp"  // all four classes, Response, Value, pplx::task

#endif
