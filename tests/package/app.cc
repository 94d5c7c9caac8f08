// A program using an *installed* etcd-sd, built by scripts/package-test.sh three ways:
// CMake find_package (etcd_sd::etcd_sd and etcd_sd::etcd_sd_static) and plain g++ with
// pkg-config. It registers KEY -> VALUE, sees it come back through a Discovery of KEY's
// directory, unregisters it and sees the delete.
//
//   usage: app ENDPOINTS KEY VALUE        prints "ok: ..." and exits 0 on success

#include <etcd_sd.hpp>

#include <chrono>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <string>

int main(int argc, char **argv) {
    if (argc != 4) {
        std::cerr << "usage: " << argv[0] << " ENDPOINTS KEY VALUE\n";
        return 2;
    }
    const std::string endpoints = argv[1], key = argv[2], value = argv[3];
    const std::string prefix = key.substr(0, key.rfind('/') + 1);

    std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, std::string> live;  // what the Discovery announced
    bool deleted = false;
    const auto put_cb = [&](std::string k, std::string v) {
        std::lock_guard<std::mutex> lock(mu);
        live[k] = v;
        cv.notify_all();
    };
    const auto del_cb = [&](std::string k, std::string) {
        std::lock_guard<std::mutex> lock(mu);
        live.erase(k);
        if (k == key) deleted = true;
        cv.notify_all();
    };
    const auto wait_for = [&](const char *what, auto done) {
        std::unique_lock<std::mutex> lock(mu);
        if (!cv.wait_for(lock, std::chrono::seconds(10), done)) {
            std::cerr << "timed out waiting for " << what << "\n";
            return false;
        }
        return true;
    };

    try {
        etcd_sd::Registry reg(endpoints, 5);
        if (!reg.registry(key, value)) {
            std::cerr << "register: " << reg.last_error() << "\n";
            return 1;
        }
        etcd_sd::Discovery disc(endpoints, prefix, put_cb, del_cb);
        auto seen = [&] {
            auto it = live.find(key);
            return it != live.end() && it->second == value;
        };
        if (!wait_for("the registered key", seen)) return 1;
        if (!reg.unregister(key)) {
            std::cerr << "unregister: " << reg.last_error() << "\n";
            return 1;
        }
        if (!wait_for("the delete", [&] { return deleted; })) return 1;
    } catch (const etcd_sd::Error &e) {
        std::cerr << "etcd_sd error " << etcd_sd_result_name(e.code()) << ": " << e.what()
                  << "\n";
        return 1;
    }
    std::cout << "ok: " << key << " -> " << value << " seen through a Discovery, then deleted\n";
    return 0;
}
