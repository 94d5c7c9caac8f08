// etcd/Client.hpp -- etcd::Client, the client whose calls return pplx::task<T> (eager: see etcd/detail/pplx.hpp).

#ifndef __ETCD_CLIENT_HPP__
#define __ETCD_CLIENT_HPP__

#include "etcd/detail/all.hpp"  // all four classes, Response, Value, pplx::task

#endif
