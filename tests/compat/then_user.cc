// A user of .then() that names pplx::task<etcd::Response>, as one of the code bases does;
// compiled unchanged with -std=c++17 only. Usage: then_user ETCD_URL PREFIX.
#include <etcd/Client.hpp>

int main(int argc, char *argv[])
{
    if (argc != 3) return 1;
    etcd::Client etcd(argv[1]);
    std::string key = std::string(argv[2]) + "/then";

    pplx::task<etcd::Response> put_task = etcd.set(key, "42");
    put_task.then([](pplx::task<etcd::Response> t) {
        etcd::Response r = t.get();
        std::cout << "set: " << (r.is_ok() ? "ok" : r.error_message()) << std::endl;
    }).wait();

    std::string got = etcd.get(key).then([](etcd::Response r) { return r.value().as_string(); }).get();
    std::cout << "get: " << got << std::endl;

    pplx::task<etcd::Response> chained = etcd.modify(key, "43").then([&](etcd::Response) {
        return etcd.get(key);
    });
    std::cout << "modified: " << chained.get().value().as_string() << std::endl;

    etcd.rm(key).then([](etcd::Response r) { std::cout << "rm: " << r.action() << std::endl; });
    bool ok = got == "42" && etcd.get(key).get().error_code() == etcd::ERROR_KEY_NOT_FOUND;
    std::cout << (ok ? "then_user OK" : "then_user FAILED") << std::endl;
    return ok ? 0 : 1;
}
