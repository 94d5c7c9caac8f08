// Compiles <etcd/Client.hpp> alone (-Wall -Wextra -Werror -pedantic); linked with the other
// headers' TUs into one program, which catches a non-inline definition in any of them.
#include <etcd/Client.hpp>

int use_client() {
    etcd::Client c("127.0.0.1:1");  // no I/O in the constructor
    pplx::task<int> t = pplx::task_from_result(1);
    return t.then([](int v) { return v + 1; }).get() == 2 && c.sync_client() != nullptr ? 0 : 1;
}
