// Written the way the chat systems' etcd guide writes its "discovery" sample against
// etcd-cpp-apiv3 (list a directory, then watch it with a callback and Wait());
// compiled unchanged against etcd-sd's compatibility headers with -std=c++17 only.
//
// Usage: discovery_sample [ETCD_URL [DIR]]; prints "initial: <key> -> <value>" per entry,
// "watching <dir>", then "online: <key> -> <value>" / "offline: <key> (was <value>)" lines.
#include <etcd/Client.hpp>
#include <etcd/KeepAlive.hpp>
#include <etcd/Response.hpp>
#include <etcd/Watcher.hpp>
#include <etcd/Value.hpp>

void callback(const etcd::Response &resp)
{
    if (resp.is_ok() == false) {
        std::cout << "error event: " << resp.error_message() << std::endl;
        return;
    }
    for (auto const &ev : resp.events()) {
        if (ev.event_type() == etcd::Event::EventType::PUT) {
            std::cout << "online: " << ev.kv().key() << " -> " << ev.kv().as_string() << std::endl;
        } else if (ev.event_type() == etcd::Event::EventType::DELETE_) {
            std::cout << "offline: " << ev.prev_kv().key() << " (was " << ev.prev_kv().as_string()
                      << ")" << std::endl;
        }
    }
}

int main(int argc, char *argv[])
{
    std::string etcd_host = "http://127.0.0.1:2379";
    std::string dir = "/service";
    if (argc > 1) etcd_host = argv[1];
    if (argc > 2) dir = argv[2];

    etcd::Client client(etcd_host);
    auto resp = client.ls(dir).get();
    if (resp.is_ok() == false) {
        std::cout << "ls failed: " << resp.error_message() << std::endl;
        return -1;
    }
    int sz = resp.keys().size();
    for (int i = 0; i < sz; ++i) {
        std::cout << "initial: " << resp.key(i) << " -> " << resp.value(i).as_string() << std::endl;
    }
    auto watcher = etcd::Watcher(etcd_host, dir, callback, true);
    std::cout << "watching " << dir << std::endl;
    watcher.Wait();
    return 0;
}
