// A program written against etcd-cpp-apiv3, built by scripts/package-test.sh against an
// *installed* libetcd-sd-compat-dev three ways: CMake find_package(etcd-cpp-api) and
// find_package(etcd-cpp-apiv3), pkg-config etcd-cpp-api, and a plain Makefile with
// -letcd-cpp-api. Registers KEY -> VALUE under a kept-alive lease, sees it through a Watcher
// of KEY's directory, revokes the lease and sees the delete.
//
//   usage: app ENDPOINTS KEY VALUE        prints "ok: ..." and exits 0 on success
#include <etcd/Client.hpp>
#include <etcd/KeepAlive.hpp>
#include <etcd/Watcher.hpp>

#include <condition_variable>

int main(int argc, char **argv) {
    if (argc != 4) {
        std::cerr << "usage: " << argv[0] << " ENDPOINTS KEY VALUE\n";
        return 2;
    }
    const std::string endpoints = argv[1], key = argv[2], value = argv[3];
    const std::string dir = key.substr(0, key.rfind('/') + 1);

    std::mutex mu;
    std::condition_variable cv;
    bool put_seen = false, delete_seen = false;
    etcd::Client client(endpoints);
    etcd::Response listing = client.ls(dir).get();
    if (!listing.is_ok()) {
        std::cerr << "ls failed: " << listing.error_message() << "\n";
        return 1;
    }
    etcd::Watcher watcher(client, dir, [&](etcd::Response const &resp) {
        std::lock_guard<std::mutex> lock(mu);
        for (auto const &ev : resp.events()) {
            if (ev.event_type() == etcd::Event::EventType::PUT && ev.kv().key() == key &&
                ev.kv().as_string() == value) {
                put_seen = true;
            }
            if (ev.event_type() == etcd::Event::EventType::DELETE_ && ev.prev_kv().key() == key) {
                delete_seen = true;
            }
        }
        cv.notify_all();
    }, true);

    auto keepalive = client.leasekeepalive(5).get();
    uint64_t lease = keepalive->Lease();
    etcd::Response put = client.put(key, value, lease).get();
    if (!put.is_ok()) {
        std::cerr << "put failed: " << put.error_message() << "\n";
        return 1;
    }
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return put_seen; })) {
        std::cerr << "the Watcher did not see the put\n";
        return 1;
    }
    lock.unlock();
    client.leaserevoke(lease).wait();
    lock.lock();
    if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return delete_seen; })) {
        std::cerr << "the Watcher did not see the delete\n";
        return 1;
    }
    std::cout << "ok: " << key << " -> " << value << " registered under lease " << lease
              << ", watched, revoked" << std::endl;
    return 0;
}
