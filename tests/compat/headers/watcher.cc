// Compiles <etcd/Watcher.hpp> alone (-Wall -Wextra -Werror -pedantic); linked with the other
// headers' TUs into one program, which catches a non-inline definition in any of them.
#include <etcd/Watcher.hpp>

int use_watcher() {
    using Callback = std::function<void(etcd::Response)>;
    return std::is_constructible<etcd::Watcher, std::string, std::string, Callback, bool>::value ? 0 : 1;
}
