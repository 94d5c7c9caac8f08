// benches/anchors/cppapi.cc -- the etcd-cpp-apiv3 API arm of scripts/anchors.sh, written the
// way a user of that API writes it. Built twice from this one source:
//   anchors_upstream  against etcd-cpp-apiv3 itself (its installed headers and library)
//   anchors_compat    against etcd-sd's drop-in headers (include/etcd/) and libetcd_sd.so
//
// put->callback: an etcd::Watcher on the run's prefix (recursive) of the process's one
// etcd::SyncClient; the same client puts each key. Own-lease register: leasegrant(ttl) +
// put(key, value, lease) + an etcd::KeepAlive of that lease, on the same (already connected)
// client -- what an etcd-sd registry with its own lease does. Each registration is freed
// after it is timed: the KeepAlive destroyed and the lease revoked (not timed).
#include <etcd/KeepAlive.hpp>
#include <etcd/SyncClient.hpp>
#include <etcd/Watcher.hpp>

#include <memory>
#include <string>

#include "anchors.hpp"

#ifndef ANCHORS_ARM
#error "define ANCHORS_ARM (the arm's name)"
#endif

int main(int argc, char **argv) {
    const anchors::Args args = anchors::parse_args(argc, argv, ANCHORS_ARM);
    etcd::SyncClient client(args.endpoints);

    anchors::Arrivals arrivals(anchors::pc_prefix(args), anchors::arrivals_needed(args));
    etcd::Watcher watcher(
        client, anchors::pc_prefix(args),
        [&arrivals](etcd::Response resp) {
            for (auto const &ev : resp.events()) {
                if (ev.event_type() == etcd::Event::EventType::PUT) {
                    std::string const &k = ev.kv().key();
                    arrivals.on_put(k.data(), k.size());
                }
            }
        },
        true);

    const anchors::PutCallback pc =
        anchors::run_put_callback(args, arrivals, [&](std::string const &k, std::string const &v) {
            etcd::Response r = client.put(k, v);
            if (!r.is_ok()) anchors::die("put " + k + ": " + r.error_message());
        });
    const long threads = anchors::proc_status("Threads");

    std::unique_ptr<etcd::KeepAlive> keepalive;
    int64_t lease = 0;
    const std::vector<int64_t> reg = anchors::run_register(
        args,
        [&](std::string const &key) {
            etcd::Response g = client.leasegrant(args.ttl);
            if (!g.is_ok()) anchors::die("leasegrant: " + g.error_message());
            lease = g.value().lease();
            etcd::Response p = client.put(key, anchors::kValue, lease);
            if (!p.is_ok()) anchors::die("put " + key + ": " + p.error_message());
            keepalive.reset(new etcd::KeepAlive(client, args.ttl, lease));
        },
        [&] {
            keepalive.reset();
            client.leaserevoke(lease);
        });

    watcher.Cancel();
    anchors::emit(args, pc, reg, threads);
    return 0;
}
