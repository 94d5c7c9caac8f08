// Builds its KeepAlive itself, KeepAlive(client, handler, ttl, lease), with an exception
// handler, as one of the code bases does; compiled unchanged with -std=c++17 only.
//
// Usage: keepalive_handler ETCD_URL KEY VALUE. Prints "registered <key> lease <id>", then for
// each stdin line prints "lease <current id> check ok" (Check() did not throw) -- the id changes
// after etcd-sd recovered a lost lease; "handler called: ..." if the handler runs. EOF exits.
#include <etcd/Client.hpp>
#include <etcd/KeepAlive.hpp>

int main(int argc, char *argv[])
{
    if (argc != 4) return 1;
    etcd::Client client(argv[1]);
    int ttl = 3;
    etcd::Response grant = client.leasegrant(ttl).get();
    if (!grant.is_ok()) {
        std::cout << "leasegrant failed: " << grant.error_message() << std::endl;
        return 1;
    }
    int64_t lease = grant.value().lease();
    std::function<void(std::exception_ptr)> handler = [](std::exception_ptr eptr) {
        try {
            if (eptr) std::rethrow_exception(eptr);
        } catch (const std::exception &e) {
            std::cout << "handler called: " << e.what() << std::endl;
        }
    };
    etcd::KeepAlive keepalive(client, handler, ttl, lease);
    client.put(argv[2], argv[3], lease).wait();
    std::cout << "registered " << argv[2] << " lease " << keepalive.Lease() << std::endl;
    std::string line;
    while (std::getline(std::cin, line)) {
        try {
            keepalive.Check();
            std::cout << "lease " << keepalive.Lease() << " check ok" << std::endl;
        } catch (const std::exception &e) {
            std::cout << "check threw: " << e.what() << std::endl;
        }
    }
    return 0;
}
