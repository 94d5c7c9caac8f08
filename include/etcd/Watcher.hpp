// etcd/Watcher.hpp -- etcd::Watcher, a watch that resumes by itself.

#ifndef __ETCD_WATCHER_HPP__
#define __ETCD_WATCHER_HPP__

#include "etcd/detail/all.hpp"  // all four classes, Response, Value, pplx::task

#endif
