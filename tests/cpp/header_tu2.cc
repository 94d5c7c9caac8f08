// Second translation unit for the two-TU header test (see header_tu1.cc). Instantiates the
// wrapper's classes here too, so their inline members are emitted in both objects. It
// includes etcd_sd_coord.hpp first, on its own (it brings etcd_sd.hpp itself).
#include "etcd_sd_coord.hpp"
#include "etcd_sd.hpp"

#include <chrono>
#include <string>
#include <type_traits>

static_assert(std::is_base_of<std::runtime_error, etcd_sd::Error>::value, "Error is-a runtime_error");
static_assert(!std::is_copy_constructible<etcd_sd::Options>::value, "Options is move-only");
static_assert(!std::is_copy_constructible<etcd_sd::Registry>::value, "Registry is move-only");
static_assert(!std::is_copy_constructible<etcd_sd::Discovery>::value, "Discovery is move-only");
static_assert(std::is_nothrow_move_constructible<etcd_sd::Options>::value, "Options moves");
static_assert(std::is_nothrow_move_constructible<etcd_sd::Registry>::value, "Registry moves");
static_assert(std::is_nothrow_move_constructible<etcd_sd::Discovery>::value, "Discovery moves");
static_assert(std::is_same<etcd_sd::Registry::ptr, std::shared_ptr<etcd_sd::Registry>>::value, "ptr");
static_assert(std::is_same<etcd_sd::Discovery::ptr, std::shared_ptr<etcd_sd::Discovery>>::value, "ptr");
static_assert(std::is_same<etcd_sd::Discovery::NotifyCallback,
                           std::function<void(std::string, std::string)>>::value, "callback type");

static_assert(!std::is_copy_constructible<etcd_sd::Client>::value, "Client is move-only");
static_assert(!std::is_copy_constructible<etcd_sd::Transaction>::value, "Transaction is move-only");
static_assert(!std::is_copy_constructible<etcd_sd::Lock>::value, "Lock is move-only");
static_assert(!std::is_copy_constructible<etcd_sd::Election>::value, "Election is move-only");
static_assert(std::is_nothrow_move_constructible<etcd_sd::Lock>::value, "Lock moves");
static_assert(std::is_nothrow_move_constructible<etcd_sd::Election>::value, "Election moves");
static_assert(static_cast<uint32_t>(etcd_sd::CompareOp::Less) == ETCD_SD_CMP_LESS, "CompareOp");

std::string tu2_version() { return etcd_sd::version(); }

bool tu2_options_reject_zero_ttl() {
    etcd_sd::Options opts;
    opts.endpoints("127.0.0.1:2379").connect_timeout(std::chrono::milliseconds(100));
    try {
        opts.ttl(0);
    } catch (const etcd_sd::Error &e) {
        return e.code() == ETCD_SD_INVALID_ARGUMENT;
    }
    return false;
}

// Never called: only makes sure these compile and link from this TU as well.
void tu2_unused(bool really) {
    if (!really) return;
    etcd_sd::Registry r("127.0.0.1:2379");
    r.registry("/k", "v");
    r.unregister("/k");
    (void)r.lease_id();
    (void)r.last_error();
    (void)r.last_error_code();
    etcd_sd::Discovery d("127.0.0.1:2379", "/k", nullptr, nullptr);
    (void)d.capi();
    etcd_sd_registry_free(r.release());
    etcd_sd::Client c("127.0.0.1:2379");
    etcd_sd::Transaction t;
    t.compare_mod("/k", etcd_sd::CompareOp::Greater, 1).then().put("/k", "v").get_prefix("/k");
    (void)c.txn(t).succeeded;
    etcd_sd::Lock l(c, "/lock");
    (void)l.revision();
    etcd_sd::Election e(c, "/election", "v",
                        etcd_sd::ElectionOptions().recampaign([](int64_t) {}));
    (void)e.proclaim("w");
}
