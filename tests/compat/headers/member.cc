// Compiles <etcd/v3/Member.hpp> alone (-Wall -Wextra -Werror -pedantic).
#include <etcd/v3/Member.hpp>

int use_member() {
    etcdv3::Member m;
    m.set_id(1);
    m.set_peerURLs({"http://127.0.0.1:2380"});
    return m.get_id() == 1 && m.get_peerURLs().size() == 1 && !m.get_learner() ? 0 : 1;
}
