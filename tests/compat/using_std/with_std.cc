// etcd-cpp-apiv3's Response.hpp includes v3/Member.hpp, which says `using namespace std;`, and
// real programs (a brpc chat system's etcd wrapper) came to write unqualified `string`. The
// compatibility headers reproduce it: this translation unit must compile.
#include <etcd/Client.hpp>

int unqualified_std() {
    string s = "etcd";  // std::string, unqualified
    vector<string> v{s, s};
    return static_cast<int>(v.size() + s.size());
}
