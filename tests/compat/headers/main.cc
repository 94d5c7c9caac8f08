// tests/compat/headers: each compat header compiled alone in its own translation unit, all
// linked together (ODR), and each used a little. No etcd needed.
#include <cstdio>

int use_client();
int use_sync_client();
int use_keepalive();
int use_watcher();
int use_response();
int use_value();
int use_transaction();
int use_member();

int main() {
    int failed = use_client() + use_sync_client() + use_keepalive() + use_watcher() +
                 use_response() + use_value() + use_transaction() + use_member();
    std::printf("compat headers: %s\n", failed == 0 ? "OK" : "FAILED");
    return failed == 0 ? 0 : 1;
}
