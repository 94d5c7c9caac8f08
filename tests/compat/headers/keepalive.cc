// Compiles <etcd/KeepAlive.hpp> alone (-Wall -Wextra -Werror -pedantic); linked with the other
// headers' TUs into one program, which catches a non-inline definition in any of them.
#include <etcd/KeepAlive.hpp>

int use_keepalive() {
    std::function<void(std::exception_ptr)> handler = [](std::exception_ptr) {};
    (void)handler;
    return std::is_constructible<etcd::KeepAlive, etcd::Client const &, int>::value ? 0 : 1;
}
