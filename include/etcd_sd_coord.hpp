// etcd_sd_coord.hpp -- header-only C++17 coordination over etcd_sd.h: a general Client,
// transactions, locks and elections. Included by etcd_sd.hpp; may be included on its own.
//
//   etcd_sd::Client client(etcd_sd::Options().endpoints("http://127.0.0.1:2379"));
//
//   etcd_sd::Transaction t;                     // compare-and-swap
//   t.compare_value("/cfg/x", etcd_sd::CompareOp::Equal, "old");
//   t.then().put("/cfg/x", "new");
//   t.otherwise().get("/cfg/x");
//   etcd_sd::TxnResponse r = client.txn(t);    // r.succeeded, r.revision, r.ops[i].kvs
//
//   etcd_sd::Lock lock(client, "/locks/job", std::chrono::seconds(10),
//                      std::chrono::milliseconds(2000),
//                      [](const std::string &why) { /* stop the guarded work */ });
//   write_guarded(lock.revision());             // the fencing token
//   lock.unlock();                              // or let the destructor release it
//
//   etcd_sd::Election e(client, "/elect/svc", "me:9000",
//                       etcd_sd::ElectionOptions().on_lost(...).recampaign(...));
//
// Losses are never repaired behind the owner's back: a Lock or an Election whose lease ends
// (revoked, expired while etcd was unreachable, not renewed for its whole TTL) or whose key
// is deleted calls its on_lost callback once, and from then on check() returns
// ETCD_SD_LOST. A Lock is never taken again by itself; an Election campaigns again only when
// asked to (ElectionOptions::recampaign), and always after telling the owner it lost.
//
// Errors: constructors and Client calls throw etcd_sd::Error; Lock::unlock(),
// Election::proclaim() and Election::resign() return false for a loss (ETCD_SD_LOST) and
// throw Error for anything else; check() never throws.
//
// Ownership: Transaction, Client, Lock and Election are move-only and own one C handle each
// (RAII); a moved-from object owns nothing (its calls fail with ETCD_SD_INVALID_ARGUMENT)
// and may be destroyed or assigned to. Results (TxnResponse, KeyValue, Member) are plain
// copies that own their data.
//
// Threads: see Lock and Election for which thread runs which callback. A callback that lets
// an exception escape has it reported on stderr and dropped: nothing unwinds into the
// library.

#ifndef ETCD_SD_COORD_HPP
#define ETCD_SD_COORD_HPP

#include "etcd_sd.hpp"

#include <condition_variable>
#include <algorithm>
#include <cstddef>
#include <deque>
#include <optional>
#include <vector>

namespace etcd_sd {

// ---------------------------------------------------------------------------------------
// Values

// One key as etcd stores it (a copy).
struct KeyValue {
    std::string key;
    std::string value;          // may hold any bytes, NULs included
    int64_t create_revision = 0;
    int64_t mod_revision = 0;
    int64_t version = 0;        // changes since creation; 1 after the first put
    int64_t lease = 0;          // 0: none
};

// One member of the cluster (a copy).
struct Member {
    uint64_t id = 0;
    std::string name;         // empty for a member added but not started
    std::string peer_urls;    // comma-separated
    std::string client_urls;  // comma-separated, empty until it starts
    bool is_learner = false;
};

namespace detail {

struct ClientDeleter {
    void operator()(etcd_sd_client *c) const noexcept { etcd_sd_client_free(c); }
};
struct KvsDeleter {
    void operator()(etcd_sd_kvs *k) const noexcept { etcd_sd_kvs_free(k); }
};
struct TxnDeleter {
    void operator()(etcd_sd_txn *t) const noexcept { etcd_sd_txn_free(t); }
};
struct TxnResponseDeleter {
    void operator()(etcd_sd_txn_response *r) const noexcept { etcd_sd_txn_response_free(r); }
};
struct MembersDeleter {
    void operator()(etcd_sd_members *m) const noexcept { etcd_sd_members_free(m); }
};

inline KeyValue to_key_value(const etcd_sd_kv &kv) {
    KeyValue out;
    out.key.assign(kv.key, kv.key_len);
    out.value.assign(kv.value, kv.value_len);
    out.create_revision = kv.create_revision;
    out.mod_revision = kv.mod_revision;
    out.version = kv.version;
    out.lease = kv.lease;
    return out;
}

// Every entry of a (borrowed) result.
inline std::vector<KeyValue> to_key_values(const etcd_sd_kvs *kvs) {
    std::vector<KeyValue> out;
    const size_t n = etcd_sd_kvs_len(kvs);
    out.reserve(n);
    etcd_sd_kv kv{};
    for (size_t i = 0; i < n; i++) {
        if (etcd_sd_kvs_at(kvs, i, &kv)) out.push_back(to_key_value(kv));
    }
    return out;
}

// Milliseconds for a C `wait_ms`: a negative duration becomes 0 (the library's default).
inline uint64_t wait_ms(std::chrono::milliseconds d) {
    return d.count() <= 0 ? 0 : static_cast<uint64_t>(d.count());
}

// The end of the range of keys starting with `prefix`: the prefix with its last byte
// incremented. The C API takes range ends as UTF-8, so the last byte must be ASCII (< 0x7f).
// Throws Error(ETCD_SD_INVALID_ARGUMENT) otherwise, and for an empty prefix (every key: use
// get_from() with the smallest key you have).
inline std::string prefix_end(const std::string &prefix) {
    if (prefix.empty()) throw Error(ETCD_SD_INVALID_ARGUMENT, "prefix is empty");
    const unsigned char last = static_cast<unsigned char>(prefix.back());
    if (last >= 0x7f) {
        throw Error(ETCD_SD_INVALID_ARGUMENT,
                    "prefix must end in an ASCII character below 0x7f: '" + prefix + "'");
    }
    std::string end = prefix;
    end.back() = static_cast<char>(last + 1);
    return end;
}

// A heap-held user callback for the C `etcd_sd_lost_fn`, deleted by its owner after the C
// handle is freed -- or, when the owner is destroyed from inside this very callback, by the
// trampoline once the callback returns (the Discovery pattern of etcd_sd.hpp).
struct LostFunctor {
    explicit LostFunctor(std::function<void(const std::string &)> f, const char *w)
        : fn(std::move(f)), where(w) {}
    std::function<void(const std::string &)> fn;
    const char *where;
    std::atomic<std::thread::id> running{std::thread::id()};
    bool delete_after_callback = false;

    static void trampoline(void *user_data, int result, const char *message) noexcept {
        (void)result;  // always ETCD_SD_LOST
        LostFunctor *self = static_cast<LostFunctor *>(user_data);
        self->running.store(std::this_thread::get_id());
        call_guarded(self->where, [&] {
            if (self->fn) self->fn(std::string(message != nullptr ? message : "lost"));
        });
        if (self->delete_after_callback) {
            delete self;
        } else {
            self->running.store(std::thread::id());
        }
    }

    // Disposes of it after its C handle was freed: now, or after the running callback.
    static void retire(LostFunctor *f) noexcept {
        if (f == nullptr) return;
        if (f->running.load() == std::this_thread::get_id()) {
            f->delete_after_callback = true;
        } else {
            delete f;
        }
    }
};

}  // namespace detail

// ---------------------------------------------------------------------------------------
// Transaction

// How a compare relates the key's field to the given value.
enum class CompareOp : uint32_t {
    Equal = ETCD_SD_CMP_EQUAL,
    NotEqual = ETCD_SD_CMP_NOT_EQUAL,
    Greater = ETCD_SD_CMP_GREATER,
    Less = ETCD_SD_CMP_LESS,
};

// What one operation of a TxnResponse was.
enum class TxnOpKind : int32_t {
    Put = ETCD_SD_TXN_OP_PUT,
    Range = ETCD_SD_TXN_OP_RANGE,
    Delete = ETCD_SD_TXN_OP_DELETE,
    Txn = ETCD_SD_TXN_OP_TXN,
};

struct TxnResponse;

// The result of one operation of the branch that ran.
struct TxnOpResponse {
    TxnOpKind kind = TxnOpKind::Put;
    // Range: the keys read. Put with prev_kv: the value replaced (0 or 1). Delete with
    // prev_kv: the deleted entries. Nested transaction: empty.
    std::vector<KeyValue> kvs;
    // Range: how many keys match (beyond any limit). Delete: how many were deleted.
    int64_t count = 0;
    // Nested transaction: its response (non-null exactly when kind == TxnOpKind::Txn).
    std::shared_ptr<const TxnResponse> nested;
};

// What etcd answered to a transaction (a copy; owns its data).
struct TxnResponse {
    bool succeeded = false;  // every compare held: the `then()` branch ran
    int64_t revision = 0;    // the store's revision after the transaction
    std::vector<TxnOpResponse> ops;

    static TxnResponse from_capi(const etcd_sd_txn_response *r) {
        TxnResponse out;
        out.succeeded = etcd_sd_txn_response_succeeded(r);
        out.revision = etcd_sd_txn_response_revision(r);
        const size_t n = etcd_sd_txn_response_len(r);
        out.ops.reserve(n);
        for (size_t i = 0; i < n; i++) {
            TxnOpResponse op;
            op.kind = static_cast<TxnOpKind>(etcd_sd_txn_response_kind(r, i));
            op.kvs = detail::to_key_values(etcd_sd_txn_response_kvs(r, i));
            op.count = etcd_sd_txn_response_count(r, i);
            if (const etcd_sd_txn_response *nested = etcd_sd_txn_response_nested(r, i)) {
                op.nested = std::make_shared<const TxnResponse>(from_capi(nested));
            }
            out.ops.push_back(std::move(op));
        }
        return out;
    }
};

// A transaction being built: compares, then the operations of each branch.
//
//   etcd_sd::Transaction t;
//   t.compare_version("/k", etcd_sd::CompareOp::Equal, 0);     // "/k" does not exist
//   t.then().put("/k", "v").get("/k");
//   t.otherwise().get("/k");
//   etcd_sd::TxnResponse r = client.txn(t);
//
// Every compare must hold for the then() branch to run; else the otherwise() branch runs.
// A compare may cover a range of keys (range_end, exclusive; "" for one key). Builder calls
// throw Error(ETCD_SD_INVALID_ARGUMENT) on bad input (empty key, invalid UTF-8) and leave the
// transaction as it was. Move-only; not thread-safe while being built; reusable: Client::txn
// and Ops::nest only read it.
class Transaction {
public:
    // The operations of one branch, added in order (returned by then() and otherwise()).
    // Refers to its Transaction: do not keep it past the Transaction's life or a move.
    class Ops {
    public:
        // Puts key -> value (under `lease` unless 0); with prev_kv the result holds the
        // value replaced.
        Ops &put(const std::string &key, const std::string &value, int64_t lease = 0,
                 bool prev_kv = false) {
            detail::check(etcd_sd_txn_put(txn_, branch_, key.c_str(), value.data(), value.size(),
                                          lease, prev_kv));
            return *this;
        }

        // Reads `key`, or `[key, range_end)` when range_end is not empty; at most `limit`
        // keys when > 0; at `revision` when > 0; without values with keys_only.
        Ops &get(const std::string &key, const std::string &range_end = std::string(),
                 int64_t limit = 0, int64_t revision = 0, bool keys_only = false) {
            detail::check(etcd_sd_txn_range(txn_, branch_, key.c_str(),
                                            range_end.empty() ? nullptr : range_end.c_str(),
                                            limit, revision, keys_only));
            return *this;
        }

        // Reads every key starting with `prefix` (not empty; its last byte must be ASCII).
        Ops &get_prefix(const std::string &prefix, int64_t limit = 0, int64_t revision = 0,
                        bool keys_only = false) {
            return get(prefix, detail::prefix_end(prefix), limit, revision, keys_only);
        }

        // Reads every key from `key` on (range end "\0").
        Ops &get_from(const std::string &key, int64_t limit = 0, int64_t revision = 0) {
            detail::check(etcd_sd_txn_range_from(txn_, branch_, key.c_str(), limit, revision));
            return *this;
        }

        // Deletes `key`, or `[key, range_end)`; with prev_kv the result holds what was
        // deleted.
        Ops &del(const std::string &key, const std::string &range_end = std::string(),
                 bool prev_kv = false) {
            detail::check(etcd_sd_txn_delete(txn_, branch_, key.c_str(),
                                             range_end.empty() ? nullptr : range_end.c_str(),
                                             prev_kv));
            return *this;
        }

        // Deletes every key starting with `prefix` (not empty; its last byte must be ASCII).
        Ops &del_prefix(const std::string &prefix, bool prev_kv = false) {
            return del(prefix, detail::prefix_end(prefix), prev_kv);
        }

        // Runs `nested` (copied now: it may be changed or destroyed afterwards) as one
        // operation; its response is TxnOpResponse::nested.
        Ops &nest(const Transaction &nested) {
            detail::check(etcd_sd_txn_nest(txn_, branch_, nested.capi()));
            return *this;
        }

    private:
        friend class Transaction;
        Ops(etcd_sd_txn *txn, uint32_t branch) : txn_(txn), branch_(branch) {}
        etcd_sd_txn *txn_;
        uint32_t branch_;
    };

    Transaction() {
        etcd_sd_txn *raw = nullptr;
        detail::check(etcd_sd_txn_new(&raw));
        txn_.reset(raw);
    }

    Transaction(Transaction &&) noexcept = default;
    Transaction &operator=(Transaction &&) noexcept = default;
    Transaction(const Transaction &) = delete;
    Transaction &operator=(const Transaction &) = delete;

    // The value of `key` (every key of `[key, range_end)`) compared with `value`. A missing
    // key makes a value compare fail.
    Transaction &compare_value(const std::string &key, CompareOp op, const std::string &value,
                               const std::string &range_end = std::string()) {
        detail::check(etcd_sd_txn_compare_value(txn_.get(), key.c_str(), opt(range_end),
                                                static_cast<uint32_t>(op), value.data(),
                                                value.size()));
        return *this;
    }

    // The key's version (changes since creation; 0: it does not exist).
    Transaction &compare_version(const std::string &key, CompareOp op, int64_t version,
                                 const std::string &range_end = std::string()) {
        return number(key, range_end, ETCD_SD_CMP_VERSION, op, version);
    }

    // The revision the key was created at (0: it does not exist).
    Transaction &compare_create(const std::string &key, CompareOp op, int64_t revision,
                                const std::string &range_end = std::string()) {
        return number(key, range_end, ETCD_SD_CMP_CREATE_REVISION, op, revision);
    }

    // The revision of the key's last change.
    Transaction &compare_mod(const std::string &key, CompareOp op, int64_t revision,
                             const std::string &range_end = std::string()) {
        return number(key, range_end, ETCD_SD_CMP_MOD_REVISION, op, revision);
    }

    // The lease the key is attached to (0: none).
    Transaction &compare_lease(const std::string &key, CompareOp op, int64_t lease,
                               const std::string &range_end = std::string()) {
        return number(key, range_end, ETCD_SD_CMP_LEASE, op, lease);
    }

    // The operations run when every compare holds.
    Ops then() { return Ops(txn_.get(), ETCD_SD_TXN_SUCCESS); }

    // The operations run when a compare fails.
    Ops otherwise() { return Ops(txn_.get(), ETCD_SD_TXN_FAILURE); }

    // The C handle, still owned by this object (nullptr if moved from).
    const etcd_sd_txn *capi() const noexcept { return txn_.get(); }
    etcd_sd_txn *capi() noexcept { return txn_.get(); }

    // Gives up ownership: the caller must etcd_sd_txn_free() the result.
    etcd_sd_txn *release() noexcept { return txn_.release(); }

private:
    static const char *opt(const std::string &s) { return s.empty() ? nullptr : s.c_str(); }

    Transaction &number(const std::string &key, const std::string &range_end, uint32_t target,
                        CompareOp op, int64_t n) {
        detail::check(etcd_sd_txn_compare_number(txn_.get(), key.c_str(), opt(range_end),
                                                 target, static_cast<uint32_t>(op), n));
        return *this;
    }

    std::unique_ptr<etcd_sd_txn, detail::TxnDeleter> txn_;
};

// ---------------------------------------------------------------------------------------
// Client

// A general etcd client: KV and lease calls, transactions, cluster members, over the same
// shared connections, retry and failover as Registry and Discovery. No network I/O at
// construction (the first call dials). Thread-safe: one Client may be used from any number
// of threads at once, including from inside callbacks (not from a log callback). Each call
// blocks at most the request timeout (plus, for the first call of a connection, the connect
// timeout) and throws Error on failure. Locks and elections made from a Client hold their
// own reference to it: they may outlive it. Move-only.
class Client {
public:
    // Everything (endpoints, timeouts, TLS, user) from `opts`, which may be destroyed after.
    explicit Client(const Options &opts) {
        etcd_sd_client *raw = nullptr;
        detail::check(etcd_sd_client_new(opts.capi(), &raw));
        handle_.reset(raw, detail::ClientDeleter());
    }

    // "http://host:port" or "host:port", several separated by commas; default timeouts.
    explicit Client(const std::string &endpoints) : Client(Options().endpoints(endpoints)) {}

    Client(Client &&) noexcept = default;
    Client &operator=(Client &&) noexcept = default;
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;

    // Runs `t` (left as it was). A transaction that writes is sent once: a lost answer is
    // Error(ETCD_SD_TIMEOUT / ETCD_SD_UNAVAILABLE) and it may or may not have applied.
    TxnResponse txn(const Transaction &t) const {
        etcd_sd_txn_response *raw = nullptr;
        detail::check(etcd_sd_client_txn(handle_.get(), t.capi(), &raw));
        std::unique_ptr<etcd_sd_txn_response, detail::TxnResponseDeleter> r(raw);
        return TxnResponse::from_capi(r.get());
    }

    // Puts key -> value (under `lease` unless 0).
    void put(const std::string &key, const std::string &value, int64_t lease = 0) const {
        detail::check(etcd_sd_client_put(handle_.get(), key.c_str(), value.data(), value.size(),
                                         lease, ETCD_SD_PUT_ALWAYS, nullptr));
    }

    // The key as it is now, or as it was at `revision` (> 0); nullopt when it does not
    // (did not) exist. Error(ETCD_SD_INVALID_ARGUMENT) for a compacted revision.
    std::optional<KeyValue> get(const std::string &key, int64_t revision = 0) const {
        std::vector<KeyValue> kvs = take(etcd_sd_client_get_at, key.c_str(), revision);
        if (kvs.empty()) return std::nullopt;
        return std::move(kvs.front());
    }

    // Every key starting with `prefix` (at most `limit` when > 0), in key order, now or at
    // `revision` (> 0).
    std::vector<KeyValue> get_prefix(const std::string &prefix, int64_t limit = 0,
                                     int64_t revision = 0) const {
        etcd_sd_kvs *raw = nullptr;
        detail::check(etcd_sd_client_range_at(handle_.get(), prefix.c_str(), nullptr, limit,
                                              revision, &raw));
        std::unique_ptr<etcd_sd_kvs, detail::KvsDeleter> r(raw);
        return detail::to_key_values(r.get());
    }

    // Every key in [key, range_end), as get_prefix.
    std::vector<KeyValue> get_range(const std::string &key, const std::string &range_end,
                                    int64_t limit = 0, int64_t revision = 0) const {
        etcd_sd_kvs *raw = nullptr;
        detail::check(etcd_sd_client_range_at(handle_.get(), key.c_str(), range_end.c_str(),
                                              limit, revision, &raw));
        std::unique_ptr<etcd_sd_kvs, detail::KvsDeleter> r(raw);
        return detail::to_key_values(r.get());
    }

    // Deletes `key` (every key under it with `prefix`); returns how many were deleted.
    size_t del(const std::string &key, bool prefix = false) const {
        etcd_sd_kvs *raw = nullptr;
        detail::check(etcd_sd_client_delete(handle_.get(), key.c_str(), prefix, &raw));
        std::unique_ptr<etcd_sd_kvs, detail::KvsDeleter> r(raw);
        return etcd_sd_kvs_len(r.get());
    }

    // Grants a lease of `ttl` (nothing keeps it alive) and returns its id.
    int64_t lease_grant(std::chrono::seconds ttl) const {
        int64_t id = 0;
        detail::check(etcd_sd_client_lease_grant(handle_.get(), ttl.count(), &id));
        return id;
    }

    // Revokes a lease (its keys are deleted). Error(ETCD_SD_NOT_FOUND) when it is gone.
    void lease_revoke(int64_t id) const {
        detail::check(etcd_sd_client_lease_revoke(handle_.get(), id));
    }

    // The ids of every lease etcd holds.
    std::vector<int64_t> leases() const {
        std::vector<int64_t> ids(16);
        for (;;) {
            size_t total = 0;
            detail::check(etcd_sd_client_leases(handle_.get(), ids.data(), ids.size(), &total));
            if (total <= ids.size()) {
                ids.resize(total);
                return ids;
            }
            ids.resize(total + 16);  // more were granted meanwhile: ask again
        }
    }

    // The members of the cluster.
    std::vector<Member> members() const {
        etcd_sd_members *raw = nullptr;
        detail::check(etcd_sd_client_members(handle_.get(), &raw));
        std::unique_ptr<etcd_sd_members, detail::MembersDeleter> m(raw);
        std::vector<Member> out;
        etcd_sd_member v{};
        for (size_t i = 0; etcd_sd_members_at(m.get(), i, &v); i++) {
            Member one;
            one.id = v.id;
            one.name = v.name;
            one.peer_urls = v.peer_urls;
            one.client_urls = v.client_urls;
            one.is_learner = v.is_learner;
            out.push_back(std::move(one));
        }
        return out;
    }

    // The current leader of election `name` (its key and value), nullopt when none leads.
    std::optional<KeyValue> leader(const std::string &name) const {
        etcd_sd_kvs *raw = nullptr;
        etcd_sd_result rc = etcd_sd_client_leader(handle_.get(), name.c_str(), &raw);
        if (rc == ETCD_SD_NOT_FOUND) return std::nullopt;
        detail::check(rc);
        std::unique_ptr<etcd_sd_kvs, detail::KvsDeleter> r(raw);
        std::vector<KeyValue> kvs = detail::to_key_values(r.get());
        if (kvs.empty()) return std::nullopt;
        return std::move(kvs.front());
    }

    // Releases the lock whose owner key is `lock_key` (Lock::key()), held by any process.
    void unlock(const std::string &lock_key) const {
        detail::check(etcd_sd_client_unlock(handle_.get(), lock_key.c_str()));
    }

    // The C handle, still owned by this object (nullptr if moved from).
    const etcd_sd_client *capi() const noexcept { return handle_.get(); }

private:
    friend class Election;

    template <typename F>
    std::vector<KeyValue> take(F f, const char *key, int64_t revision) const {
        etcd_sd_kvs *raw = nullptr;
        detail::check(f(handle_.get(), key, revision, &raw));
        std::unique_ptr<etcd_sd_kvs, detail::KvsDeleter> r(raw);
        return detail::to_key_values(r.get());
    }

    // Shared with the Elections that campaign again on their own (they need the client
    // after the Client object may be gone).
    std::shared_ptr<etcd_sd_client> handle_;
};

// ---------------------------------------------------------------------------------------
// Lock

// A held distributed lock (etcd's lock service), under a lease of its own (kept alive by the
// library, revoked on release) or under a lease you give and keep alive.
//
// Acquiring waits at most `wait` (0: the request timeout) while others hold the lock or wait
// for it before us; Error(ETCD_SD_TIMEOUT) then, and nothing is held or left waiting.
//
// Loss: when the lease ends (revoked by anyone, expired while etcd was unreachable, not
// renewed for its whole TTL) or the lock's key is deleted, `on_lost(message)` is called once
// and check() returns ETCD_SD_LOST from then on. The lock is NEVER taken again by itself:
// another process may hold it now. Stop the guarded work; acquire a new Lock to go on.
//
// Fencing: revision() is the revision the lock's key was created at, larger for every later
// holder of the same lock. Hand it to the resource the lock guards and have it refuse
// smaller ones (or compare it in a Transaction: compare_create(key(), Equal, revision())),
// so a holder that lost the lock without noticing yet cannot overwrite a newer holder's work.
//
// Threads: on_lost runs on one of the library's callback threads ("etcd-sd-cb"), never on
// the thread that drives keep-alives; it may block and may call any etcd_sd function. When
// the destructor (or unlock()) returns it is not running and will not run, except when the
// Lock is destroyed from inside its own on_lost (allowed: the destructor then returns at
// once and the callback object is deleted when the callback returns). key(), revision(),
// lease(), check() and held() may be called from any thread; unlock() and the destructor from
// one thread at a time, never while another thread uses the Lock. Move-only.
class Lock {
public:
    using LostCallback = std::function<void(const std::string &message)>;

    // Acquires lock `name` under a lease of its own of `ttl` seconds. Throws Error:
    // ETCD_SD_TIMEOUT (still held by another after `wait`), ETCD_SD_INVALID_ARGUMENT (empty
    // name, ttl <= 0), ETCD_SD_UNAVAILABLE, ETCD_SD_AUTH.
    Lock(const Client &client, const std::string &name,
         std::chrono::seconds ttl = std::chrono::seconds(10),
         std::chrono::milliseconds wait = std::chrono::milliseconds(0),
         LostCallback on_lost = nullptr) {
        init(client, name, ttl.count(), 0, wait, std::move(on_lost));
    }

    // The same, as a factory.
    static Lock acquire(const Client &client, const std::string &name, std::chrono::seconds ttl,
                        std::chrono::milliseconds wait, LostCallback on_lost = nullptr) {
        return Lock(client, name, ttl, wait, std::move(on_lost));
    }

    // Acquires lock `name` under `lease`, which the caller keeps alive (and revokes). Also
    // throws Error(ETCD_SD_NOT_FOUND) when that lease does not exist.
    static Lock acquire_under_lease(const Client &client, const std::string &name, int64_t lease,
                                    std::chrono::milliseconds wait,
                                    LostCallback on_lost = nullptr) {
        Lock l;
        l.init(client, name, 0, lease, wait, std::move(on_lost));
        return l;
    }

    Lock(Lock &&other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)), lost_(std::exchange(other.lost_, nullptr)) {}
    Lock &operator=(Lock &&other) noexcept {
        if (this != &other) {
            reset();
            handle_ = std::exchange(other.handle_, nullptr);
            lost_ = std::exchange(other.lost_, nullptr);
        }
        return *this;
    }
    Lock(const Lock &) = delete;
    Lock &operator=(const Lock &) = delete;

    // Releases the lock if still held (best effort, at most the request timeout), then
    // disposes of on_lost.
    ~Lock() { reset(); }

    // The owner key (the name, '/', the lease id in hex): what Client::unlock() takes. ""
    // if moved from.
    std::string key() const {
        const char *k = etcd_sd_lock_key(handle_);
        return k != nullptr ? std::string(k) : std::string();
    }

    // The fencing token: the revision the lock's key was created at (see above). 0 if
    // moved from.
    int64_t revision() const noexcept { return etcd_sd_lock_revision(handle_); }

    // The lease the lock is held under. 0 if moved from.
    int64_t lease() const noexcept { return etcd_sd_lock_lease(handle_); }

    // ETCD_SD_OK while held, ETCD_SD_LOST once lost, ETCD_SD_CLOSED after unlock(),
    // ETCD_SD_INVALID_ARGUMENT if moved from. Never blocks, never throws.
    etcd_sd_result check() const noexcept { return etcd_sd_lock_check(handle_); }

    // check() == ETCD_SD_OK.
    bool held() const noexcept { return check() == ETCD_SD_OK; }

    // Releases the lock (and revokes its own lease). True when it was released (or had been
    // already), false when it had been lost (nothing was held). Throws Error for anything
    // else (ETCD_SD_UNAVAILABLE, ETCD_SD_TIMEOUT: etcd will end it with its lease). Blocks
    // at most the request timeout.
    bool unlock() {
        etcd_sd_result rc = etcd_sd_lock_unlock(handle_);
        if (rc == ETCD_SD_LOST) return false;
        detail::check(rc);
        return true;
    }

    // The C handle, still owned by this object (nullptr if moved from).
    etcd_sd_lock *capi() noexcept { return handle_; }

private:
    Lock() = default;

    void init(const Client &client, const std::string &name, int64_t ttl, int64_t lease,
              std::chrono::milliseconds wait, LostCallback on_lost) {
        std::unique_ptr<detail::LostFunctor> f;
        if (on_lost) f.reset(new detail::LostFunctor(std::move(on_lost), "Lock on_lost"));
        etcd_sd_lock *raw = nullptr;
        detail::check(etcd_sd_lock_new(client.capi(), name.c_str(), ttl, lease,
                                       detail::wait_ms(wait),
                                       f ? &detail::LostFunctor::trampoline : nullptr, f.get(),
                                       &raw));
        handle_ = raw;
        lost_ = f.release();
    }

    // Frees the C handle first (after which on_lost does not run), then the callback.
    void reset() noexcept {
        etcd_sd_lock *h = std::exchange(handle_, nullptr);
        detail::LostFunctor *f = std::exchange(lost_, nullptr);
        etcd_sd_lock_free(h);
        detail::LostFunctor::retire(f);
    }

    etcd_sd_lock *handle_ = nullptr;
    detail::LostFunctor *lost_ = nullptr;
};

// ---------------------------------------------------------------------------------------
// Election

// How an Election campaigns and what it reports, as a builder:
//
//   etcd_sd::ElectionOptions()
//       .ttl(std::chrono::seconds(5))
//       .wait(std::chrono::milliseconds(2000))
//       .on_lost([](const std::string &why) { stop_leading(); })
//       .recampaign([](int64_t revision) { start_leading(revision); });
class ElectionOptions {
public:
    using LostCallback = std::function<void(const std::string &message)>;
    using ElectedCallback = std::function<void(int64_t revision)>;

    // The TTL of the leadership's own lease (default 10 s), granted and kept alive by the
    // library and revoked on resign.
    ElectionOptions &ttl(std::chrono::seconds t) {
        ttl_ = t;
        return *this;
    }

    // Campaign under the caller's lease instead (kept alive and revoked by the caller).
    // Not with recampaign(): a revoked lease cannot be campaigned under again.
    ElectionOptions &lease(int64_t id) {
        lease_ = id;
        return *this;
    }

    // How long one campaign waits while another leads (0, the default: the request
    // timeout). The constructor throws Error(ETCD_SD_TIMEOUT) after it; a recampaign tries
    // again.
    ElectionOptions &wait(std::chrono::milliseconds w) {
        wait_ = w;
        return *this;
    }

    // Told (once per leadership) that leadership was lost.
    ElectionOptions &on_lost(LostCallback f) {
        on_lost_ = std::move(f);
        return *this;
    }

    // After each loss (and after on_lost returned), campaign again on the Election's own
    // worker thread until elected, resigned or destroyed, then call `on_elected(revision)`
    // with the new fencing token. `on_elected` may be empty.
    ElectionOptions &recampaign(ElectedCallback on_elected = nullptr) {
        recampaign_ = true;
        on_elected_ = std::move(on_elected);
        return *this;
    }

private:
    friend class Election;
    std::chrono::seconds ttl_{10};
    int64_t lease_ = 0;
    std::chrono::milliseconds wait_{0};
    LostCallback on_lost_;
    ElectedCallback on_elected_;
    bool recampaign_ = false;
};

// A leadership in an election (etcd's election service): the constructor campaigns and
// returns once this process leads, holding it under a lease as Lock does.
//
// Loss: when the lease ends or the leader key is deleted, on_lost(message) is called once and
// check() returns ETCD_SD_LOST; proclaim() and resign() return false. Nothing is done behind
// the owner's back -- except what the owner asked for with ElectionOptions::recampaign():
// then, after on_lost has returned, the Election campaigns again by itself (as a new
// candidate, behind any waiting one) and calls on_elected(revision) when it leads again;
// key(), revision() and lease() then describe the new leadership. While it campaigns,
// check() returns ETCD_SD_LOST.
//
// Threads:
// - Without recampaign, on_lost runs on one of the library's callback threads
//   ("etcd-sd-cb"), like Lock's.
// - With recampaign, the Election has a worker thread of its own (started by the
//   constructor): on_lost and on_elected both run there, in order (a loss is always reported
//   before the next election), never two at once, and the campaigns run there too.
// - Callbacks may block and may call any etcd_sd function, this Election's included. The
//   Election may be destroyed from inside its own callback: the destructor then resigns if
//   needed and returns at once; the callback objects are deleted when the callback returns.
// - The destructor resigns if still leading (at most the request timeout), stops the worker
//   and waits for it -- which, if it is campaigning, takes at most one campaign's wait(). When
//   it returns no callback runs or will run (except from inside one, as above).
// - key(), revision(), lease(), check() and leading() may be called from any thread;
//   proclaim() and resign() from any thread too (they are serialized with the worker's
//   change of leadership). Do not move or destroy it while another thread uses it. Move-only.
class Election {
public:
    using LostCallback = ElectionOptions::LostCallback;
    using ElectedCallback = ElectionOptions::ElectedCallback;

    // Campaigns in election `name` with `value` and returns once leading. Throws Error:
    // ETCD_SD_TIMEOUT (another still leads after `wait`: this process is no candidate),
    // ETCD_SD_INVALID_ARGUMENT (empty name, ttl <= 0, recampaign with a given lease),
    // ETCD_SD_NOT_FOUND (a given lease does not exist), ETCD_SD_UNAVAILABLE, ETCD_SD_AUTH.
    Election(const Client &client, const std::string &name, const std::string &value,
             ElectionOptions opts = ElectionOptions()) {
        if (opts.recampaign_ && opts.lease_ != 0) {
            throw Error(ETCD_SD_INVALID_ARGUMENT,
                        "recampaign needs a lease of the election's own (no lease())");
        }
        std::unique_ptr<State> st(new State);
        st->client = client.handle_;
        st->name = name;
        st->value = value;
        st->ttl = opts.ttl_.count();
        st->lease = opts.lease_;
        st->wait_ms = detail::wait_ms(opts.wait_);
        st->on_lost = std::move(opts.on_lost_);
        st->on_elected = std::move(opts.on_elected_);
        st->recampaign = opts.recampaign_;
        const bool want_lost = st->on_lost || st->recampaign;
        etcd_sd_election *raw = nullptr;
        detail::check(etcd_sd_election_new(st->client.get(), name.c_str(), value.data(),
                                           value.size(), st->ttl, st->lease, st->wait_ms,
                                           want_lost ? &Election::lost_trampoline : nullptr,
                                           st.get(), &raw));
        st->handle = raw;
        if (st->recampaign) {
            try {
                State *p = st.get();
                st->worker = std::thread([p] { worker(p); });
            } catch (...) {
                etcd_sd_election_free(raw);  // no worker: no one to report a loss to
                throw;
            }
        }
        st_ = st.release();
    }

    // The same, as a factory.
    static Election campaign(const Client &client, const std::string &name,
                             const std::string &value, ElectionOptions opts = ElectionOptions()) {
        return Election(client, name, value, std::move(opts));
    }

    Election(Election &&other) noexcept : st_(std::exchange(other.st_, nullptr)) {}
    Election &operator=(Election &&other) noexcept {
        if (this != &other) {
            reset();
            st_ = std::exchange(other.st_, nullptr);
        }
        return *this;
    }
    Election(const Election &) = delete;
    Election &operator=(const Election &) = delete;

    ~Election() { reset(); }

    // This leader's own key (under the election's name); "" while campaigning again or if
    // moved from.
    std::string key() const {
        return with_handle([](etcd_sd_election *h) {
            const char *k = etcd_sd_election_key(h);
            return k != nullptr ? std::string(k) : std::string();
        });
    }

    // The fencing token: the revision the leader key was created at, larger for every later
    // leader. 0 while campaigning again or if moved from.
    int64_t revision() const {
        return with_handle([](etcd_sd_election *h) { return etcd_sd_election_revision(h); });
    }

    // The lease the leadership is held under; 0 while campaigning again or if moved from.
    int64_t lease() const {
        return with_handle([](etcd_sd_election *h) { return etcd_sd_election_lease(h); });
    }

    // ETCD_SD_OK while leading; ETCD_SD_LOST once lost (and while campaigning again);
    // ETCD_SD_CLOSED after resign(); ETCD_SD_INVALID_ARGUMENT if moved from. Never throws;
    // may wait for a proclaim() or resign() running on another thread.
    etcd_sd_result check() const noexcept {
        if (st_ == nullptr) return ETCD_SD_INVALID_ARGUMENT;
        std::lock_guard<std::mutex> g(st_->handle_mu);
        if (st_->handle == nullptr) return st_->resigned ? ETCD_SD_CLOSED : ETCD_SD_LOST;
        return etcd_sd_election_check(st_->handle);
    }

    // check() == ETCD_SD_OK.
    bool leading() const noexcept { return check() == ETCD_SD_OK; }

    // Announces a new value without another election. False when no longer leading
    // (ETCD_SD_LOST); throws Error for anything else (ETCD_SD_CLOSED after resign()).
    // Blocks at most the request timeout.
    bool proclaim(const std::string &value) {
        State *st = state();
        std::lock_guard<std::mutex> g(st->handle_mu);
        if (st->handle == nullptr && !st->resigned) return false;
        etcd_sd_result rc = st->handle == nullptr
                                ? ETCD_SD_CLOSED
                                : etcd_sd_election_proclaim(st->handle, value.data(), value.size());
        if (rc == ETCD_SD_LOST) return false;
        if (rc == ETCD_SD_CLOSED) throw Error(rc, "the election was resigned");
        detail::check(rc);
        return true;
    }

    // Gives up leadership (and revokes its own lease): the next candidate leads, and a
    // recampaigning Election stops campaigning. True when it resigned (or had already),
    // false when leadership had been lost. Throws Error for anything else. Blocks at most the
    // request timeout.
    bool resign() {
        State *st = state();
        {
            std::lock_guard<std::mutex> g(st->mu);
            st->stop_campaigning = true;
        }
        st->cv.notify_all();
        std::lock_guard<std::mutex> g(st->handle_mu);
        const bool was_resigned = st->resigned;
        st->resigned = true;
        if (st->handle == nullptr) return was_resigned;  // lost (or campaigning): nothing held
        etcd_sd_result rc = etcd_sd_election_resign(st->handle);
        if (rc == ETCD_SD_LOST) return false;
        detail::check(rc);
        return true;
    }

private:
    struct State {
        std::shared_ptr<etcd_sd_client> client;
        std::string name, value;
        int64_t ttl = 0, lease = 0;
        uint64_t wait_ms = 0;
        LostCallback on_lost;
        ElectedCallback on_elected;
        bool recampaign = false;

        // The current leadership (null while campaigning again); guarded by handle_mu, which
        // proclaim() and resign() hold while they use it.
        std::mutex handle_mu;
        etcd_sd_election *handle = nullptr;
        bool resigned = false;

        // The worker's queue and flags; guarded by mu (the trampoline takes only this one).
        std::mutex mu;
        std::condition_variable cv;
        std::deque<std::string> losses;
        bool stop = false;              // destroyed: the worker leaves
        bool stop_campaigning = false;  // resigned: no campaign any more
        bool orphaned = false;          // destroyed from the worker: it deletes the state
        std::thread worker;

        // Without recampaign: the thread running on_lost now (the Discovery pattern).
        std::atomic<std::thread::id> running{std::thread::id()};
        bool delete_after_callback = false;
    };

    State *state() const {
        if (st_ == nullptr) throw Error(ETCD_SD_INVALID_ARGUMENT, "election is moved from");
        return st_;
    }

    template <typename F>
    auto with_handle(F f) const -> decltype(f(nullptr)) {
        if (st_ == nullptr) return f(nullptr);
        std::lock_guard<std::mutex> g(st_->handle_mu);
        return f(st_->handle);
    }

    // The C loss callback (on an "etcd-sd-cb" thread).
    static void lost_trampoline(void *user_data, int result, const char *message) noexcept {
        (void)result;
        State *st = static_cast<State *>(user_data);
        if (st->recampaign) {
            try {
                std::lock_guard<std::mutex> g(st->mu);
                st->losses.emplace_back(message != nullptr ? message : "lost");
            } catch (...) {
                detail::report_exception("Election on_lost", "out of memory; loss not queued");
                return;
            }
            st->cv.notify_all();
            return;
        }
        st->running.store(std::this_thread::get_id());
        detail::call_guarded("Election on_lost", [&] {
            if (st->on_lost) st->on_lost(std::string(message != nullptr ? message : "lost"));
        });
        if (st->delete_after_callback) {
            delete st;
        } else {
            st->running.store(std::thread::id());
        }
    }

    // Whether the worker must leave now; deletes the state when it was orphaned.
    static bool leave(State *st) {
        std::unique_lock<std::mutex> lk(st->mu);
        if (!st->orphaned) return st->stop;
        lk.unlock();
        delete st;
        return true;
    }

    // The recampaign worker: waits for a loss, tells the owner, frees the lost leadership,
    // then campaigns until elected (or stopped) and tells the owner again.
    static void worker(State *st) {
        for (;;) {
            std::string message;
            {
                std::unique_lock<std::mutex> lk(st->mu);
                st->cv.wait(lk, [st] { return st->stop || !st->losses.empty(); });
                if (st->stop) break;
                message = std::move(st->losses.front());
                st->losses.pop_front();
            }
            detail::call_guarded("Election on_lost", [&] {
                if (st->on_lost) st->on_lost(message);
            });
            if (leave(st)) return;
            etcd_sd_election *old = nullptr;
            {
                std::lock_guard<std::mutex> g(st->handle_mu);
                old = std::exchange(st->handle, nullptr);
            }
            etcd_sd_election_free(old);  // lost: no resign; its own lease is revoked
            campaign_again(st);
            if (leave(st)) return;
        }
    }

    static void campaign_again(State *st) {
        std::chrono::milliseconds pause(100);
        for (;;) {
            {
                std::lock_guard<std::mutex> g(st->mu);
                if (st->stop || st->stop_campaigning) return;
            }
            etcd_sd_election *raw = nullptr;
            etcd_sd_result rc = etcd_sd_election_new(
                st->client.get(), st->name.c_str(), st->value.data(), st->value.size(), st->ttl,
                0, st->wait_ms, &Election::lost_trampoline, st, &raw);
            if (rc == ETCD_SD_OK) {
                bool keep = false;
                int64_t revision = etcd_sd_election_revision(raw);
                {
                    std::lock_guard<std::mutex> g(st->handle_mu);
                    if (!st->resigned) {
                        st->handle = raw;
                        keep = true;
                    }
                }
                if (!keep) {
                    etcd_sd_election_free(raw);  // resigned meanwhile: resign this one too
                    std::lock_guard<std::mutex> g(st->mu);
                    st->losses.clear();  // a loss of that one is no news to the owner
                    return;
                }
                detail::call_guarded("Election on_elected", [&] {
                    if (st->on_elected) st->on_elected(revision);
                });
                return;
            }
            if (rc == ETCD_SD_TIMEOUT) {
                pause = std::chrono::milliseconds(100);  // it waited already: try again soon
            }
            std::unique_lock<std::mutex> lk(st->mu);
            st->cv.wait_for(lk, pause, [st] { return st->stop || st->stop_campaigning; });
            pause = std::min(pause * 2, std::chrono::milliseconds(5000));
        }
    }

    // Stops the worker (waiting for it unless we are on it), frees the C handle (resigning
    // if leading; after which no callback runs), then the state -- or leaves that to the
    // callback we are inside.
    void reset() noexcept {
        State *st = std::exchange(st_, nullptr);
        if (st == nullptr) return;
        const bool on_worker =
            st->worker.joinable() && st->worker.get_id() == std::this_thread::get_id();
        {
            std::lock_guard<std::mutex> g(st->mu);
            st->stop = true;
        }
        st->cv.notify_all();
        if (st->worker.joinable() && !on_worker) st->worker.join();
        etcd_sd_election *h = nullptr;
        {
            std::lock_guard<std::mutex> g(st->handle_mu);
            h = std::exchange(st->handle, nullptr);
        }
        etcd_sd_election_free(h);
        if (on_worker) {
            st->worker.detach();
            std::lock_guard<std::mutex> g(st->mu);
            st->orphaned = true;  // the worker deletes it when the callback returns
        } else if (st->running.load() == std::this_thread::get_id()) {
            st->delete_after_callback = true;
        } else {
            delete st;
        }
    }

    State *st_ = nullptr;
};

}  // namespace etcd_sd

#endif  // ETCD_SD_COORD_HPP
