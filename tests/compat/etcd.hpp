// A template-style etcd.hpp, as the brpc chat-system templates write it against
// etcd-cpp-apiv3: a Registry holding shared_ptr<Client>, shared_ptr<KeepAlive> and the lease
// id in a uint64_t, and a Discovery that lists a base directory and then watches it with
// make_shared<Watcher>(*client, basedir, std::bind(...), true). Compiled unchanged against
// etcd-sd's compatibility headers with -std=c++17 only (a logger macro stands in for spdlog).
#pragma once
#include <etcd/Client.hpp>
#include <etcd/KeepAlive.hpp>
#include <etcd/Response.hpp>
#include <etcd/Watcher.hpp>
#include <etcd/Value.hpp>
#include <functional>

#define LOG_ERROR(msg) (std::cerr << "[error] " << msg << std::endl)
#define LOG_DEBUG(msg) (std::cerr << "[debug] " << msg << std::endl)

namespace chat {

// service registration
class Registry {
public:
    using ptr = std::shared_ptr<Registry>;
    Registry(const std::string &host)
        : _client(std::make_shared<etcd::Client>(host)),
          _keep_alive(_client->leasekeepalive(3).get()),
          _lease_id(_keep_alive->Lease()) {}
    ~Registry() { _keep_alive->Cancel(); }
    bool registry(const std::string &key, const std::string &val) {
        auto resp = _client->put(key, val, _lease_id).get();
        if (resp.is_ok() == false) {
            LOG_ERROR("registry " << key << " failed: " << resp.error_message());
            return false;
        }
        return true;
    }
    uint64_t lease() const { return _lease_id; }

private:
    std::shared_ptr<etcd::Client> _client;
    std::shared_ptr<etcd::KeepAlive> _keep_alive;
    uint64_t _lease_id;
};

// service discovery
class Discovery {
public:
    using ptr = std::shared_ptr<Discovery>;
    using NotifyCallback = std::function<void(std::string, std::string)>;
    Discovery(const std::string &host, const std::string &basedir,
              const NotifyCallback &put_cb, const NotifyCallback &del_cb)
        : _client(std::make_shared<etcd::Client>(host)), _put_cb(put_cb), _del_cb(del_cb) {
        // first the services online now
        auto resp = _client->ls(basedir).get();
        if (resp.is_ok() == false) {
            LOG_ERROR("ls " << basedir << " failed: " << resp.error_message());
        }
        int sz = resp.keys().size();
        for (int i = 0; i < sz; ++i) {
            if (_put_cb) _put_cb(resp.key(i), resp.value(i).as_string());
        }
        // then watch for changes
        _watcher = std::make_shared<etcd::Watcher>(*_client.get(), basedir,
            std::bind(&Discovery::callback, this, std::placeholders::_1), true);
    }
    ~Discovery() { _watcher->Cancel(); }

private:
    void callback(const etcd::Response &resp) {
        if (resp.is_ok() == false) {
            LOG_ERROR("watch error: " << resp.error_message());
            return;
        }
        for (auto const &ev : resp.events()) {
            if (ev.event_type() == etcd::Event::EventType::PUT) {
                if (_put_cb) _put_cb(ev.kv().key(), ev.kv().as_string());
                LOG_DEBUG("new service: " << ev.kv().key() << "-" << ev.kv().as_string());
            } else if (ev.event_type() == etcd::Event::EventType::DELETE_) {
                if (_del_cb) _del_cb(ev.prev_kv().key(), ev.prev_kv().as_string());
                LOG_DEBUG("service gone: " << ev.prev_kv().key() << "-" << ev.prev_kv().as_string());
            }
        }
    }

private:
    std::shared_ptr<etcd::Client> _client;
    NotifyCallback _put_cb;
    NotifyCallback _del_cb;
    std::shared_ptr<etcd::Watcher> _watcher;
};

}  // namespace chat
