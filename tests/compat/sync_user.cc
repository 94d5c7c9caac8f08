// A SyncClient user, written against etcd-cpp-apiv3's blocking client; compiled unchanged
// with -std=c++17 only. Usage: sync_user ETCD_URL PREFIX. Prints "sync_user OK" or a
// "FAILED: ..." line (exit 1).
#include <etcd/SyncClient.hpp>
#include <etcd/Watcher.hpp>

#include <atomic>

#define EXPECT(c) do { if (!(c)) { std::cout << "FAILED: " #c << std::endl; return 1; } } while (0)

int main(int argc, char *argv[])
{
    if (argc != 3) return 1;
    etcd::SyncClient etcd(argv[1]);
    std::string p = argv[2];

    etcd::Response resp = etcd.put(p + "/config", "v1");
    EXPECT(resp.is_ok());
    resp = etcd.get(p + "/config");
    EXPECT(resp.is_ok() && resp.value().as_string() == "v1");
    resp = etcd.get(p + "/absent");
    EXPECT(resp.error_code() == etcd::ERROR_KEY_NOT_FOUND);

    std::atomic<int> seen{0};
    etcd::Watcher watcher(etcd, p, [&](etcd::Response r) { seen += (int)r.events().size(); }, true);

    etcd::Response lease = etcd.leasegrant(10);
    EXPECT(lease.is_ok());
    int64_t id = lease.value().lease();
    EXPECT(etcd.set(p + "/node", "up", id).is_ok());
    EXPECT(etcd.leasetimetolive(id).value().ttl() > 0);
    EXPECT(etcd.add(p + "/node", "again").error_code() == etcd::ERROR_KEY_ALREADY_EXISTS);
    EXPECT(etcd.modify(p + "/node", "up2", id).is_ok());
    etcd::Response list = etcd.ls(p);
    EXPECT(list.is_ok() && list.keys().size() == 2);
    for (size_t i = 0; i < list.keys().size(); i++) {
        std::cout << list.key(i) << " = " << list.value(i).as_string() << std::endl;
    }
    EXPECT(etcd.leaserevoke(id).is_ok());
    EXPECT(etcd.get(p + "/node").error_code() == 100);
    EXPECT(etcd.rmdir(p, true).is_ok());
    for (int i = 0; i < 100 && seen < 4; i++) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    // set, modify, delete (revoke), delete (rmdir)
    EXPECT(seen >= 4);
    watcher.Cancel();
    std::cout << "sync_user OK" << std::endl;
    return 0;
}
