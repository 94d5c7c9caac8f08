// benches/anchors/native.cc -- the etcd-sd C API arm of scripts/anchors.sh (include/etcd_sd.h).
//
// put->callback: an etcd_sd_discovery on the run's prefix with a C callback; an
// etcd_sd_client with the same options (so the same shared connection) puts each key.
// Own-lease register: etcd_sd_registry_new_with (options with own_lease) +
// etcd_sd_registry_register, while the client and the discovery keep the connection open;
// each registry is freed after it is timed (which revokes its lease; not timed).
//
// Built a second time with ANCHORS_UPSTREAM_PUTTER (anchors_native_xput): the keys are then put
// by etcd-cpp-apiv3's etcd::SyncClient, the etcd-cpp-apiv3 arm's own putter, so that against
// that arm only the delivery differs (libetcd_sd.so exports only etcd_sd_*: the two libraries
// share no symbol).
//
// --inline: discovery callbacks on the I/O thread (etcd_sd_options_set_inline_callbacks),
// when the header has it (ANCHORS_HAVE_INLINE, set by CMakeLists.txt); `--has-inline` exits 0
// when this build has it, 1 when not.
#include "etcd_sd.h"

#ifdef ANCHORS_UPSTREAM_PUTTER
#include <etcd/SyncClient.hpp>
#define ANCHORS_NATIVE_ARM "etcd-sd native, etcd-cpp-apiv3 puts"
#else
#define ANCHORS_NATIVE_ARM "etcd-sd native"
#endif

#include <cstring>
#include <string>

#include "anchors.hpp"

namespace {

void check(etcd_sd_result r, const char *what) {
    if (r != ETCD_SD_OK) {
        anchors::die(std::string(what) + ": " + etcd_sd_result_name(r) + ": " + etcd_sd_last_error());
    }
}

extern "C" void on_put(void *user_data, const char *key, size_t key_len, const char *value,
                       size_t value_len) {
    (void)value;
    (void)value_len;
    try {
        static_cast<anchors::Arrivals *>(user_data)->on_put(key, key_len);
    } catch (...) {
        // Never unwind into the library (only a failing mutex could throw here).
    }
}

}  // namespace

int main(int argc, char **argv) {
    if (argc == 2 && std::strcmp(argv[1], "--has-inline") == 0) {
#ifdef ANCHORS_HAVE_INLINE
        return 0;
#else
        return 1;
#endif
    }
    const anchors::Args args = anchors::parse_args(argc, argv, ANCHORS_NATIVE_ARM);

    etcd_sd_options *opts = nullptr;
    check(etcd_sd_options_new(&opts), "options");
    check(etcd_sd_options_set_endpoints(opts, args.endpoints.c_str()), "endpoints");
    if (args.inline_callbacks) {
#ifdef ANCHORS_HAVE_INLINE
        check(etcd_sd_options_set_inline_callbacks(opts, true), "inline callbacks");
#else
        anchors::die("--inline: this build's etcd_sd.h has no etcd_sd_options_set_inline_callbacks");
#endif
    }
    etcd_sd_client *client = nullptr;
    check(etcd_sd_client_new(opts, &client), "client");

    anchors::Arrivals arrivals(anchors::pc_prefix(args), anchors::arrivals_needed(args));
    etcd_sd_discovery *discovery = nullptr;
    check(etcd_sd_discovery_new_with(opts, anchors::pc_prefix(args).c_str(), on_put, nullptr,
                                     &arrivals, &discovery),
          "discovery");

#ifdef ANCHORS_UPSTREAM_PUTTER
    etcd::SyncClient putter(args.endpoints);
    const anchors::PutCallback pc =
        anchors::run_put_callback(args, arrivals, [&](std::string const &k, std::string const &v) {
            etcd::Response r = putter.put(k, v);
            if (!r.is_ok()) anchors::die("put " + k + ": " + r.error_message());
        });
#else
    const anchors::PutCallback pc =
        anchors::run_put_callback(args, arrivals, [&](std::string const &k, std::string const &v) {
            check(etcd_sd_client_put(client, k.c_str(), v.data(), v.size(), 0, ETCD_SD_PUT_ALWAYS,
                                     nullptr),
                  "put");
        });
#endif
    const long threads = anchors::proc_status("Threads");

    etcd_sd_options *reg_opts = nullptr;
    check(etcd_sd_options_new(&reg_opts), "options");
    check(etcd_sd_options_set_endpoints(reg_opts, args.endpoints.c_str()), "endpoints");
    check(etcd_sd_options_set_ttl(reg_opts, args.ttl), "ttl");
    check(etcd_sd_options_set_own_lease(reg_opts, true), "own lease");
    etcd_sd_registry *registry = nullptr;
    const std::vector<int64_t> reg = anchors::run_register(
        args,
        [&](std::string const &key) {
            check(etcd_sd_registry_new_with(reg_opts, &registry), "registry");
            check(etcd_sd_registry_register(registry, key.c_str(), anchors::kValue.c_str()),
                  "register");
        },
        [&] {
            etcd_sd_registry_free(registry);
            registry = nullptr;
        });

    etcd_sd_discovery_free(discovery);
    etcd_sd_client_free(client);
    etcd_sd_options_free(reg_opts);
    etcd_sd_options_free(opts);
    anchors::emit(args, pc, reg, threads);
    return 0;
}
