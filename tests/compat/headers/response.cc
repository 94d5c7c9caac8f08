// Compiles <etcd/Response.hpp> alone (-Wall -Wextra -Werror -pedantic); linked with the other
// headers' TUs into one program, which catches a non-inline definition in any of them.
#include <etcd/Response.hpp>

int use_response() {
    etcd::Response r;
    return r.is_ok() && r.compact_revision() == -1 && r.events().empty() ? 0 : 1;
}
