// etcd_sd_table.hpp -- header-only C++17 service table and channel pool over etcd_sd.h.
//
// What every chat system's channel.hpp writes by hand, done once: a live table of the
// services under a prefix (kept by the library from an etcd watch), a load-balanced pick per
// call, outlier ejection from reported call results, and a pool of one channel per address.
//
//   etcd_sd::ServiceManager::ptr mgr =
//       std::make_shared<etcd_sd::ServiceManager>("http://127.0.0.1:2379", "/service");
//   mgr->declared("/service/user_service");            // keep only the services you use
//   std::string addr = mgr->choose("/service/user_service");          // round robin
//   std::string same = mgr->choose("/service/user_service", user_id);  // consistent hash
//   if (addr.empty()) { /* no instance */ }
//   mgr->report("/service/user_service", addr, call_ok);  // 5 failures in a row: ejected
//
//   etcd_sd::ChannelPool<brpc::Channel> pool(mgr, [](const std::string &addr) {
//       auto ch = std::make_shared<brpc::Channel>();
//       if (ch->Init(addr.c_str(), nullptr) != 0) return std::shared_ptr<brpc::Channel>();
//       return ch;
//   });
//   std::shared_ptr<brpc::Channel> ch = pool.choose("/service/user_service");
//
// Keys and values: a key /service/user_service/instance-1 is an instance of service
// /service/user_service (the key up to its last '/'). Its value is "host:port" (optionally
// followed by " WEIGHT" or " weight=N", then metadata tokens "key=value ...", e.g.
// "10.0.0.5:9000 weight=3 zone=a version=v2") or the JSON Go's etcd naming/endpoints writes,
// {"Op":0,"Addr":"host:port","Metadata":{...}} (weight: Metadata.weight; the metadata
// pairs: Metadata's members), or a Kratos or go-micro instance's JSON. Every format, with
// examples: docs/formats.md; see also etcd_sd_table.h.
//
// Which instances a pick may return (etcd_sd_table_pick_select):
//   1. with a Selector ("version=v2,canary=false": every pair must equal the instance's
//      metadata), the matching instances;
//   2. never a draining one (metadata draining=true or draining=1; it stays in instances()
//      with `draining` set). With no non-draining match left, the selector's Failover
//      decides: None (no instance), All (every instance), MissingKey (the instances that
//      have none of the selector's keys);
//   3. with a caller zone (set_locality(), default $ETCD_SD_ZONE), those whose metadata
//      `zone` is the caller's, unless the local zone has none, none healthy, or fewer than
//      min_healthy_percent (default 50) of its instances healthy (neither ejected nor
//      draining): then every zone's;
//   4. the policy picks among them, skipping ejected instances, with slow start: an
//      instance the table sees after its first listing takes a share that ramps from a
//      floor (default 10 %) to full over a window (default 30 s for WeightedRoundRobin, off
//      for the other policies; set_slow_start()). Picks by hash key are never ramped.
//   Selector picks take no lock and allocate nothing once a snapshot has met the selector:
//   build a Selector once and reuse it.
//
// Threads: every member function of ServiceManager and ChannelPool may be called from any
// thread at once. choose() reads an immutable snapshot without taking a lock the watch
// holds; ChannelPool::choose() takes the pool's own mutex only to find the channel.
// Errors: constructors throw etcd_sd::Error (see etcd_sd.hpp); choose() returns "" / nullptr
// when the service has no instance; the rest never throws except on a moved-from object.

#ifndef ETCD_SD_TABLE_HPP
#define ETCD_SD_TABLE_HPP

#include "etcd_sd.hpp"

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

namespace etcd_sd {

// How choose() without a hash key picks (etcd_sd_policy).
enum class Policy : uint32_t {
    RoundRobin = ETCD_SD_POLICY_ROUND_ROBIN,
    Random = ETCD_SD_POLICY_RANDOM,
    WeightedRoundRobin = ETCD_SD_POLICY_WEIGHTED_ROUND_ROBIN,
    ConsistentHash = ETCD_SD_POLICY_CONSISTENT_HASH,
};

// What a selector pick does when no (non-draining) instance matches (etcd_sd_failover).
enum class Failover : uint32_t {
    None = ETCD_SD_FAILOVER_NONE,              // no instance
    All = ETCD_SD_FAILOVER_ALL,                // every instance, as without a selector
    MissingKey = ETCD_SD_FAILOVER_MISSING_KEY, // the instances without the selector's keys
};

// One instance, as ServiceManager::instances() returns it (a copy: owns its strings).
struct Instance {
    using MetaPairs = std::vector<std::pair<std::string, std::string>>;

    std::string key;
    std::string address;
    std::string metadata;  // JSON text of Metadata, "" when none
    uint32_t weight = 1;
    uint32_t consecutive_failures = 0;
    bool ejected = false;
    bool draining = false;  // metadata draining=true/1: never picked for a new call
    MetaPairs meta_pairs;   // metadata, sorted by key, each key once

    // Every metadata pair, sorted by key.
    const MetaPairs &meta() const noexcept { return meta_pairs; }

    // The value of metadata `key`, or nullopt; the view points into this Instance.
    std::optional<std::string_view> meta(std::string_view key) const {
        auto it = std::lower_bound(
            meta_pairs.begin(), meta_pairs.end(), key,
            [](const std::pair<std::string, std::string> &p, std::string_view k) {
                return std::string_view(p.first) < k;
            });
        if (it == meta_pairs.end() || it->first != key) return std::nullopt;
        return std::string_view(it->second);
    }

    // Metadata `zone`, "" when none.
    std::string zone() const {
        auto z = meta("zone");
        return z ? std::string(*z) : std::string();
    }
};

namespace detail {
struct SelectorDeleter {
    void operator()(etcd_sd_selector *s) const noexcept { etcd_sd_selector_free(s); }
};
struct TableDeleter {
    void operator()(etcd_sd_table *t) const noexcept { etcd_sd_table_free(t); }
};
struct InstancesDeleter {
    void operator()(etcd_sd_instances *i) const noexcept { etcd_sd_instances_free(i); }
};
}  // namespace detail

// A compiled metadata selector ("version=v2,canary=false": every pair must match) with its
// failover. Move-only; immutable, so one Selector may serve any number of threads and
// ServiceManagers at once. Build it once and reuse it: the table caches per snapshot what
// each selector chooses (keyed by the selector's identity). Must outlive the picks that
// use it.
class Selector {
public:
    // Throws Error (ETCD_SD_INVALID_ARGUMENT) on malformed text, with the reason.
    explicit Selector(const std::string &text, Failover failover = Failover::None) {
        etcd_sd_selector *raw = nullptr;
        detail::check(
            etcd_sd_selector_new(text.c_str(), static_cast<uint32_t>(failover), &raw));
        sel_.reset(raw);
    }

    // The C handle, still owned by this object.
    const etcd_sd_selector *capi() const noexcept { return sel_.get(); }

private:
    std::unique_ptr<etcd_sd_selector, detail::SelectorDeleter> sel_;
};

// The live service table. Move-only; share it through `ptr`.
class ServiceManager {
public:
    using ptr = std::shared_ptr<ServiceManager>;
    // Told the name of a service whose instance set changed, on a library callback thread
    // ("etcd-sd-cb"), after the change is visible to choose()/instances(), never two at
    // once for one ServiceManager. An exception it throws is reported on stderr and dropped.
    using ChangedCallback = std::function<void(const std::string &service)>;

    // Lists `prefix` and follows it (blocks at most the connect timeout; throws Error).
    ServiceManager(const std::string &endpoints, const std::string &prefix,
                   Policy policy = Policy::RoundRobin)
        : ServiceManager(Options().endpoints(endpoints), prefix, policy) {}

    ServiceManager(const Options &opts, const std::string &prefix,
                   Policy policy = Policy::RoundRobin)
        : listeners_(new Listeners) {
        etcd_sd_table *raw = nullptr;
        detail::check(etcd_sd_table_new(opts.capi(), prefix.c_str(),
                                        static_cast<uint32_t>(policy), &raw));
        table_.reset(raw);
        detail::check(etcd_sd_table_set_changed_fn(table_.get(), &ServiceManager::on_changed,
                                                   listeners_.get()));
    }

    ServiceManager(ServiceManager &&) noexcept = default;
    ServiceManager &operator=(ServiceManager &&other) noexcept {
        if (this != &other) {
            table_.reset();  // no callback runs after this
            listeners_ = std::move(other.listeners_);
            table_ = std::move(other.table_);
        }
        return *this;
    }
    ServiceManager(const ServiceManager &) = delete;
    ServiceManager &operator=(const ServiceManager &) = delete;

    // Frees the table first (after which no callback runs), then the listeners.
    ~ServiceManager() { table_.reset(); }

    // Keep only declared services (once any is declared). Instances of a service declared
    // after construction are available at once.
    void declared(const std::string &name) {
        detail::check(etcd_sd_table_declare(table_.get(), name.c_str()));
    }

    // True until etcd has answered the table's listing: after a start from the last-known
    // snapshot while etcd was down (Options::snapshot_file), or with wait_for_etcd. The
    // snapshot's instances are chosen meanwhile. No I/O.
    bool is_stale() const {
        bool stale = false;
        detail::check(etcd_sd_table_is_stale(table_.get(), &stale));
        return stale;
    }

    // The address of an instance of `name` by the table's policy; "" when there is none.
    std::string choose(const std::string &name) const { return pick(name, nullptr, 0); }

    // By consistent hashing on `hash_key`: the same key reaches the same instance while it
    // lives; when one of N instances leaves, only about 1/N of the keys move.
    std::string choose(const std::string &name, const std::string &hash_key) const {
        return pick(name, hash_key.data(), hash_key.size());
    }

    // Among the instances `selector` chooses (see the rule at the top); "" when none.
    std::string choose(const std::string &name, const Selector &selector) const {
        return pick(name, nullptr, 0, selector.capi());
    }

    // By consistent hashing on `hash_key` among the instances `selector` chooses.
    std::string choose(const std::string &name, const Selector &selector,
                       const std::string &hash_key) const {
        return pick(name, hash_key.data(), hash_key.size(), selector.capi());
    }

    // The caller's zone ("" for none) and the spill-over threshold (0-100). Throws Error.
    void set_locality(const std::string &zone, uint32_t min_healthy_percent = 50) {
        detail::check(
            etcd_sd_table_set_locality(table_.get(), zone.c_str(), min_healthy_percent));
    }

    // Slow start: new instances ramp from floor_percent to full over `window` (0: off).
    // Throws Error.
    void set_slow_start(std::chrono::milliseconds window, uint32_t floor_percent = 10) {
        detail::check(etcd_sd_table_set_slow_start(
            table_.get(), static_cast<uint64_t>(window.count()), floor_percent));
    }

    // A snapshot of `name`'s instances, in key order (empty when unknown).
    std::vector<Instance> instances(const std::string &name) const {
        etcd_sd_instances *raw = nullptr;
        std::vector<Instance> out;
        if (etcd_sd_table_instances(table_.get(), name.c_str(), &raw) != ETCD_SD_OK) {
            return out;
        }
        std::unique_ptr<etcd_sd_instances, detail::InstancesDeleter> snap(raw);
        size_t n = etcd_sd_instances_len(raw);
        out.reserve(n);
        for (size_t i = 0; i < n; ++i) {
            etcd_sd_instance v;
            if (!etcd_sd_instances_at(raw, i, &v)) break;
            Instance inst;
            inst.key.assign(v.key, v.key_len);
            inst.address.assign(v.address, v.address_len);
            if (v.metadata != nullptr) inst.metadata.assign(v.metadata, v.metadata_len);
            inst.weight = v.weight;
            inst.consecutive_failures = v.consecutive_failures;
            inst.ejected = v.ejected;
            inst.draining = etcd_sd_instances_draining(raw, i);
            size_t m = etcd_sd_instances_meta_len(raw, i);
            inst.meta_pairs.reserve(m);
            for (size_t j = 0; j < m; ++j) {
                etcd_sd_meta_pair p;
                if (!etcd_sd_instances_meta_at(raw, i, j, &p)) break;
                inst.meta_pairs.emplace_back(std::string(p.key, p.key_len),
                                             std::string(p.value, p.value_len));
            }
            out.push_back(std::move(inst));
        }
        return out;
    }

    // Reports one call's result for `address` of `name`. After 5 failures in a row (default)
    // the instance is skipped for 30 s, doubling on repeats up to 300 s; never more than
    // half of a service's instances at once. An address that has left is ignored.
    void report(const std::string &name, const std::string &address, bool ok) const {
        etcd_sd_table_report(table_.get(), name.c_str(), address.c_str(), ok);
    }

    // Changes the ejection settings (see etcd_sd_table_set_ejection). Throws Error.
    void set_ejection(uint32_t consecutive_failures, std::chrono::milliseconds base,
                      std::chrono::milliseconds max, uint32_t max_ejected_percent = 50) {
        detail::check(etcd_sd_table_set_ejection(
            table_.get(), consecutive_failures, static_cast<uint64_t>(base.count()),
            static_cast<uint64_t>(max.count()), max_ejected_percent));
    }

    // Adds a listener told of every changed service; returns its id for unsubscribe().
    // Listeners must not call subscribe()/unsubscribe() themselves.
    size_t subscribe(ChangedCallback cb) {
        std::lock_guard<std::mutex> lock(listeners_->mu);
        size_t id = ++listeners_->next_id;
        listeners_->fns.emplace(id, std::move(cb));
        return id;
    }

    // Removes a listener; when it returns the listener is not running and will not run.
    void unsubscribe(size_t id) {
        if (!listeners_) return;
        std::lock_guard<std::mutex> lock(listeners_->mu);
        listeners_->fns.erase(id);
    }

    // The C handle, still owned by this object.
    etcd_sd_table *capi() const noexcept { return table_.get(); }

private:
    struct Listeners {
        std::mutex mu;  // held while listeners run: unsubscribe() waits for a running one
        size_t next_id = 0;
        std::map<size_t, ChangedCallback> fns;
    };

    std::string pick(const std::string &name, const void *key, size_t key_len,
                     const etcd_sd_selector *sel = nullptr) const {
        char buf[128];
        size_t len = 0;
        etcd_sd_result rc = etcd_sd_table_pick_select(table_.get(), name.c_str(), sel, key,
                                                      key_len, buf, sizeof buf, &len);
        if (rc == ETCD_SD_OK) return std::string(buf, len);
        if (rc == ETCD_SD_INVALID_ARGUMENT && len >= sizeof buf) {
            // A long address: it changed or left in between only if this one fails too.
            std::string big(len + 1, '\0');
            size_t len2 = 0;
            if (etcd_sd_table_pick_select(table_.get(), name.c_str(), sel, key, key_len,
                                          &big[0], big.size(), &len2) == ETCD_SD_OK) {
                big.resize(len2);
                return big;
            }
        }
        return std::string();
    }

    static void on_changed(void *user_data, const char *service, size_t len) noexcept {
        Listeners *l = static_cast<Listeners *>(user_data);
        try {
            std::string name(service, len);
            std::lock_guard<std::mutex> lock(l->mu);
            for (auto &entry : l->fns) {
                try {
                    entry.second(name);
                } catch (const std::exception &e) {
                    detail::report_exception("ServiceManager changed", e.what());
                } catch (...) {
                    detail::report_exception("ServiceManager changed", "unknown exception");
                }
            }
        } catch (...) {
            detail::report_exception("ServiceManager changed", "unknown exception");
        }
    }

    // Declared before table_ so that it is destroyed after it.
    std::unique_ptr<Listeners> listeners_;
    std::unique_ptr<etcd_sd_table, detail::TableDeleter> table_;
};

// One channel per instance address, created once by `factory` (on the first choose() that
// picks the address) and dropped when the address leaves its service or the instance moves
// to another address. A repeated PUT of the same value changes nothing, so it never leaks a
// channel. Channels still held by callers stay alive (shared_ptr) until they let go.
//
// A factory that returns nullptr or throws means "no channel now": choose() then returns
// nullptr (and tries the factory again next time).
template <class Channel>
class ChannelPool {
public:
    using ChannelPtr = std::shared_ptr<Channel>;
    using Factory = std::function<ChannelPtr(const std::string &address)>;

    struct Picked {
        std::string address;  // "" when there was no instance
        ChannelPtr channel;   // nullptr when no instance, or the factory gave none
    };

    ChannelPool(ServiceManager::ptr manager, Factory factory)
        : manager_(std::move(manager)), state_(std::make_shared<State>()) {
        state_->factory = std::move(factory);
        std::weak_ptr<State> weak = state_;
        ServiceManager *mgr = manager_.get();
        subscription_ = manager_->subscribe([weak, mgr](const std::string &service) {
            if (auto s = weak.lock()) s->reconcile(*mgr, service);
        });
    }

    ChannelPool(const ChannelPool &) = delete;
    ChannelPool &operator=(const ChannelPool &) = delete;

    // Unsubscribes (waiting for a running notification), then drops the pool's channels.
    ~ChannelPool() { manager_->unsubscribe(subscription_); }

    // The channel of an instance of `name` (round robin or the manager's policy).
    ChannelPtr choose(const std::string &name) { return pick(name).channel; }
    // The channel of the instance owning `hash_key` (consistent hashing).
    ChannelPtr choose(const std::string &name, const std::string &hash_key) {
        return pick(name, &hash_key).channel;
    }

    // The channel of an instance `selector` chooses.
    ChannelPtr choose(const std::string &name, const Selector &selector) {
        return pick(name, nullptr, &selector).channel;
    }

    // The channel and its address, for report(); with a selector when given.
    Picked pick(const std::string &name, const std::string *hash_key = nullptr,
                const Selector *selector = nullptr) {
        uint64_t gen = state_->generation.load(std::memory_order_acquire);
        Picked p;
        if (selector != nullptr) {
            p.address = hash_key ? manager_->choose(name, *selector, *hash_key)
                                 : manager_->choose(name, *selector);
        } else {
            p.address = hash_key ? manager_->choose(name, *hash_key) : manager_->choose(name);
        }
        if (p.address.empty()) return p;
        {
            std::lock_guard<std::mutex> lock(state_->mu);
            auto svc = state_->channels.find(name);
            if (svc != state_->channels.end()) {
                auto it = svc->second.find(p.address);
                if (it != svc->second.end()) {
                    p.channel = it->second;
                    return p;
                }
            }
        }
        try {
            p.channel = state_->factory(p.address);
        } catch (const std::exception &e) {
            detail::report_exception("ChannelPool factory", e.what());
        } catch (...) {
            detail::report_exception("ChannelPool factory", "unknown exception");
        }
        if (!p.channel) return p;
        std::lock_guard<std::mutex> lock(state_->mu);
        // Cache it only if no change was applied since the pick: otherwise the address may
        // already have left, and caching would leak a channel to a host that is gone.
        if (state_->generation.load(std::memory_order_acquire) == gen) {
            auto &per = state_->channels[name];
            auto ins = per.emplace(p.address, p.channel);
            p.channel = ins.first->second;  // another thread may have created it first
            state_->created += ins.second ? 1 : 0;
        }
        return p;
    }

    // Reports a call's result for ejection (see ServiceManager::report).
    void report(const std::string &name, const std::string &address, bool ok) {
        manager_->report(name, address, ok);
    }

    // Channels the pool holds now, over all services.
    size_t size() const {
        std::lock_guard<std::mutex> lock(state_->mu);
        size_t n = 0;
        for (const auto &svc : state_->channels) n += svc.second.size();
        return n;
    }

    // Channels the factory made and the pool kept, since construction.
    size_t created() const {
        std::lock_guard<std::mutex> lock(state_->mu);
        return state_->created;
    }

    const ServiceManager::ptr &manager() const noexcept { return manager_; }

private:
    struct State {
        Factory factory;
        mutable std::mutex mu;
        std::map<std::string, std::map<std::string, ChannelPtr>> channels;  // service -> addr
        std::atomic<uint64_t> generation{0};
        size_t created = 0;

        // Drops the channels of `service` whose address is no longer an instance.
        void reconcile(const ServiceManager &mgr, const std::string &service) {
            std::set<std::string> live;
            for (const Instance &i : mgr.instances(service)) live.insert(i.address);
            std::vector<ChannelPtr> dropped;  // destroyed outside the lock
            {
                std::lock_guard<std::mutex> lock(mu);
                generation.fetch_add(1, std::memory_order_acq_rel);
                auto svc = channels.find(service);
                if (svc == channels.end()) return;
                for (auto it = svc->second.begin(); it != svc->second.end();) {
                    if (live.count(it->first) == 0) {
                        dropped.push_back(std::move(it->second));
                        it = svc->second.erase(it);
                    } else {
                        ++it;
                    }
                }
                if (svc->second.empty()) channels.erase(svc);
            }
        }
    };

    ServiceManager::ptr manager_;
    std::shared_ptr<State> state_;
    size_t subscription_ = 0;
};

}  // namespace etcd_sd

#endif  // ETCD_SD_TABLE_HPP
