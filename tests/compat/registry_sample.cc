// Written the way the chat systems' etcd guide writes its "registry" sample against
// etcd-cpp-apiv3 (a lease kept alive, a key put under it, wait for a key press, revoke);
// compiled unchanged against etcd-sd's compatibility headers with -std=c++17 only.
// Note what it relies on: std::cout without <iostream>, getchar() without <cstdio>.
//
// Usage: registry_sample [ETCD_URL [KEY [VALUE]]]; prints "registered <key> lease <id>", waits
// for a line on stdin, revokes the lease and prints "revoked".
#include <etcd/Client.hpp>
#include <etcd/KeepAlive.hpp>
#include <etcd/Response.hpp>

int main(int argc, char *argv[])
{
    std::string etcd_host = "http://127.0.0.1:2379";
    std::string key = "/service/user/instance";
    std::string val = "127.0.0.1:8080";
    if (argc > 1) etcd_host = argv[1];
    if (argc > 2) key = argv[2];
    if (argc > 3) val = argv[3];

    // the client
    etcd::Client client(etcd_host);
    // a keep-alive, with a lease of 3 s created for it
    auto keep_alive = client.leasekeepalive(3).get();
    auto lease_id = keep_alive->Lease();
    // register the service under the lease
    auto resp1 = client.put(key, val, lease_id).get();
    if (resp1.is_ok() == false) {
        std::cout << "put failed: " << resp1.error_message() << std::endl;
        return -1;
    }
    // a key without a lease
    auto resp2 = client.put(key + "-config", "plain").get();
    if (resp2.is_ok() == false) {
        std::cout << "put failed: " << resp2.error_message() << std::endl;
        return -1;
    }
    std::cout << "registered " << key << " lease " << lease_id << std::endl;
    getchar();
    client.leaserevoke(lease_id);
    std::cout << "revoked" << std::endl;
    return 0;
}
