// With ETCD_SD_NO_USING_NAMESPACE_STD defined before the first etcd header, the headers leave
// the global namespace alone: a global `string` of the program's own is then unambiguous (with
// `using namespace std;` in effect, unqualified `string` would be ambiguous and this would not
// compile).
#define ETCD_SD_NO_USING_NAMESPACE_STD
#include <etcd/Client.hpp>
#include <etcd/SyncClient.hpp>
#include <etcd/v3/Member.hpp>
#include <etcd/v3/Transaction.hpp>

struct string {
    int n = 3;
};

int own_string() {
    string s;  // ::string, not std::string
    return s.n;
}
