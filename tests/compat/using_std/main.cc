// tests/compat/using_std: the `using namespace std;` of the compatibility headers is there by
// default (with_std.cc) and gone with ETCD_SD_NO_USING_NAMESPACE_STD (without_std.cc); both
// must compile (-Wall -Wextra -Werror). No etcd needed.
#include <cstdio>

int unqualified_std();
int own_string();

int main() {
    bool ok = unqualified_std() == 6 && own_string() == 3;
    std::printf("compat using std: %s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
