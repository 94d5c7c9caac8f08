// etcd/v3/Member.hpp -- etcdv3::Member, one member of the etcd cluster as
// Client::list_member() reports it in Response::members() (etcd-sd compatibility headers,
// etcd-cpp-apiv3's API after v0.15.4; see docs/compat.md).
//
// `using namespace std;` at global scope: etcd-cpp-apiv3's Member.hpp has it, and its
// Response.hpp includes Member.hpp, so every program including <etcd/Client.hpp> (or any other
// public header) got the whole of namespace std in the global namespace. Real programs came to
// rely on it (unqualified `string`, `vector`, `cout`), so it is reproduced here. A program that
// does not want it defines ETCD_SD_NO_USING_NAMESPACE_STD before including any etcd header (or
// with -DETCD_SD_NO_USING_NAMESPACE_STD); the compatibility headers themselves never need it.

#ifndef ETCD_SD_COMPAT_V3_MEMBER_HPP
#define ETCD_SD_COMPAT_V3_MEMBER_HPP

#include <cstdint>
#include <string>
#include <vector>

#ifndef ETCD_SD_NO_USING_NAMESPACE_STD
using namespace std;  // NOLINT: reproduces etcd-cpp-apiv3's header (see above)
#endif

namespace etcdv3 {

/**
 * One member: its id, name (empty while an added member has not started yet), peer and
 * client URLs (client URLs empty until it starts), and whether it is a learner.
 */
class Member {
public:
    Member() = default;

    void set_id(uint64_t const &id) { id_ = id; }
    uint64_t const &get_id() const { return id_; }

    void set_name(std::string const &name) { name_ = name; }
    std::string const &get_name() const { return name_; }

    void set_peerURLs(std::vector<std::string> const &peerURLs) { peer_urls_ = peerURLs; }
    std::vector<std::string> const &get_peerURLs() const { return peer_urls_; }

    void set_clientURLs(std::vector<std::string> const &clientURLs) { client_urls_ = clientURLs; }
    std::vector<std::string> const &get_clientURLs() const { return client_urls_; }

    void set_learner(bool isLearner) { learner_ = isLearner; }
    bool get_learner() const { return learner_; }

private:
    uint64_t id_ = 0;
    std::string name_;
    std::vector<std::string> peer_urls_;
    std::vector<std::string> client_urls_;
    bool learner_ = false;
};

}  // namespace etcdv3

#endif  // ETCD_SD_COMPAT_V3_MEMBER_HPP
