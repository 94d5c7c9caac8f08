// Compiles <etcd/SyncClient.hpp> alone (-Wall -Wextra -Werror -pedantic); linked with the other
// headers' TUs into one program, which catches a non-inline definition in any of them.
#include <etcd/SyncClient.hpp>

int use_sync_client() {
    etcd::SyncClient s("http://127.0.0.1:1,127.0.0.1:2");
    return s.get_grpc_timeout().count() == 0 && s.current_auth_token().empty() ? 0 : 1;
}
