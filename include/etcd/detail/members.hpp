// etcd/detail/members.hpp -- list_member / add_member / remove_member and leases() of
// etcd::Client and etcd::SyncClient, over etcd_sd_client_members / _member_add /
// _member_remove / etcd_sd_client_leases. Internal to the compatibility headers.

#ifndef ETCD_SD_COMPAT_MEMBERS_HPP
#define ETCD_SD_COMPAT_MEMBERS_HPP

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "etcd/Response.hpp"
#include "etcd/detail/capi.hpp"
#include "etcd/detail/ranges.hpp"
#include "etcd/v3/Member.hpp"
#include "etcd/v3/action_constants.hpp"

namespace etcd {
namespace detail {

struct members_deleter {
    void operator()(etcd_sd_members *m) const noexcept { etcd_sd_members_free(m); }
};
using members_ptr = std::unique_ptr<etcd_sd_members, members_deleter>;

// "a,b" -> {"a", "b"} (empty parts dropped).
inline std::vector<std::string> split_urls(char const *urls) {
    std::vector<std::string> out;
    std::string cur;
    for (char const *p = urls != nullptr ? urls : ""; ; p++) {
        if (*p == ',' || *p == '\0') {
            if (!cur.empty()) {
                out.push_back(cur);
            }
            cur.clear();
            if (*p == '\0') {
                break;
            }
        } else {
            cur += *p;
        }
    }
    return out;
}

/**
 * list_member(): members() with id, name, peer and client URLs, and learner.
 */
inline Response list_members(etcd_sd_client *c) {
    auto start = clock_now();
    etcd_sd_members *raw = nullptr;
    etcd_sd_result r = etcd_sd_client_members(c, &raw);
    members_ptr list(raw);
    if (r != ETCD_SD_OK) {
        return failed(r, etcdv3::LISTMEMBER, start, etcdv3::ERROR_GRPC_NOT_FOUND);
    }
    std::vector<etcdv3::Member> members;
    size_t n = etcd_sd_members_len(list.get());
    for (size_t i = 0; i < n; i++) {
        etcd_sd_member m;
        if (!etcd_sd_members_at(list.get(), i, &m)) {
            continue;
        }
        etcdv3::Member one;
        one.set_id(m.id);
        one.set_name(m.name != nullptr ? m.name : "");
        one.set_peerURLs(split_urls(m.peer_urls));
        one.set_clientURLs(split_urls(m.client_urls));
        one.set_learner(m.is_learner);
        members.push_back(std::move(one));
    }
    Response resp = access::ok(etcdv3::LISTMEMBER, 0, start);
    access::set_members(resp, std::move(members));
    return resp;
}

/**
 * add_member(peer_urls, is_learner): peer_urls comma-separated. members() holds the new
 * member (id, peer URLs, learner).
 */
inline Response add_member(etcd_sd_client *c, std::string const &peer_urls, bool is_learner) {
    auto start = clock_now();
    uint64_t id = 0;
    etcd_sd_result r = etcd_sd_client_member_add(c, peer_urls.c_str(), is_learner, &id);
    if (r != ETCD_SD_OK) {
        return failed(r, etcdv3::ADDMEMBER, start, etcdv3::ERROR_GRPC_NOT_FOUND);
    }
    etcdv3::Member added;
    added.set_id(id);
    added.set_peerURLs(split_urls(peer_urls.c_str()));
    added.set_learner(is_learner);
    Response resp = access::ok(etcdv3::ADDMEMBER, 0, start);
    access::set_members(resp, std::vector<etcdv3::Member>{added});
    return resp;
}

/**
 * remove_member(id): an unknown id: 5 (etcd's "etcdserver: member not found").
 */
inline Response remove_member(etcd_sd_client *c, uint64_t id) {
    auto start = clock_now();
    etcd_sd_result r = etcd_sd_client_member_remove(c, id);
    if (r != ETCD_SD_OK) {
        return failed(r, etcdv3::REMOVEMEMBER, start, etcdv3::ERROR_GRPC_NOT_FOUND);
    }
    return access::ok(etcdv3::REMOVEMEMBER, 0, start);
}

/**
 * leases(): the ids of every lease etcd holds, in leases(). action "leaseleases".
 */
inline Response list_leases(etcd_sd_client *c) {
    auto start = clock_now();
    std::vector<int64_t> ids(64);
    size_t total = 0;
    int64_t revision = 0;
    for (;;) {
        etcd_sd_result r = etcd_sd_client_leases_info(c, ids.data(), ids.size(), &total, &revision);
        if (r != ETCD_SD_OK) {
            return failed(r, etcdv3::LEASELEASES, start, etcdv3::ERROR_GRPC_NOT_FOUND);
        }
        if (total <= ids.size()) {
            break;
        }
        ids.resize(total + total / 4 + 1);  // leases were granted in between: read again
    }
    ids.resize(total);
    Response resp = access::ok(etcdv3::LEASELEASES, revision, start);
    access::set_leases(resp, std::move(ids));
    return resp;
}

}  // namespace detail
}  // namespace etcd

#endif  // ETCD_SD_COMPAT_MEMBERS_HPP
