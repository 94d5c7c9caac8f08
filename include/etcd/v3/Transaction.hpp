// etcd/v3/Transaction.hpp -- etcdv3::Transaction, an etcd transaction for Client::txn() and
// SyncClient::txn() (etcd-sd compatibility headers, etcd-cpp-apiv3 v0.15.4's API; what differs:
// docs/compat.md).
//
// A transaction is a list of compares, then the operations to run when every compare holds
// (success) and those to run when one fails (failure); etcd runs it atomically. This class only
// records what is added (no I/O): Client::txn() sends it.
//
// Differences from etcd-cpp-apiv3:
// - Transaction::Value is a struct, not a union (a union with a std::string member cannot be
//   constructed, so the original's add_compare(key, target, result, Value, ...) was unusable);
//   add_compare() reads the field that `target` names.
// - No public `txn_request` (it was gRPC's TxnRequest; there is no gRPC here).
// - Keys, range ends and compare keys go to etcd as C strings: a key with a NUL byte, or one
//   that is not UTF-8, makes txn() answer error_code() 3 (the value may be any bytes). The
//   range end "\0" (every key from `key` on; also what `recursive` with an empty key means)
//   is supported for range operations only; in a delete or a compare txn() answers 3.

#ifndef ETCD_SD_COMPAT_V3_TRANSACTION_HPP
#define ETCD_SD_COMPAT_V3_TRANSACTION_HPP

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace etcd {
namespace detail {
struct txn_runner;  // turns a Transaction into etcd_sd_txn calls (etcd/detail/txn.hpp)
}
}  // namespace etcd

namespace etcdv3 {

enum class CompareResult { EQUAL = 0, GREATER = 1, LESS = 2, NOT_EQUAL = 3 };

enum class CompareTarget { VERSION = 0, CREATE = 1, MOD = 2, VALUE = 3, LEASE = 4 };

class Transaction {
public:
    Transaction() = default;
    ~Transaction() = default;
    Transaction(Transaction const &) = default;
    Transaction(Transaction &&) = default;
    Transaction &operator=(Transaction const &) = default;
    Transaction &operator=(Transaction &&) = default;

    /**
     * What a compare compares with: the field named by the CompareTarget is read (a struct
     * here; a union in etcd-cpp-apiv3).
     */
    struct Value {
        int64_t version = 0;
        int64_t create_revision = 0;
        int64_t mod_revision = 0;
        std::string value;
        int64_t lease = 0;
    };

    // Compares. A non-empty range_end compares every key in [key, range_end).
    void add_compare(std::string const &key, CompareTarget const &target,
                     CompareResult const &result, Value const &target_value,
                     std::string const &range_end = "") {
        switch (target) {
        case CompareTarget::VERSION:
            add_number(key, range_end, target, result, target_value.version);
            break;
        case CompareTarget::CREATE:
            add_number(key, range_end, target, result, target_value.create_revision);
            break;
        case CompareTarget::MOD:
            add_number(key, range_end, target, result, target_value.mod_revision);
            break;
        case CompareTarget::VALUE:
            add_compare_value(key, result, target_value.value, range_end);
            break;
        case CompareTarget::LEASE:
            add_number(key, range_end, target, result, target_value.lease);
            break;
        }
    }

    void add_compare_version(std::string const &key, int64_t const &version,
                             std::string const &range_end = "") {
        add_compare_version(key, CompareResult::EQUAL, version, range_end);
    }
    void add_compare_version(std::string const &key, CompareResult const &result,
                             int64_t const &version, std::string const &range_end = "") {
        add_number(key, range_end, CompareTarget::VERSION, result, version);
    }

    void add_compare_create(std::string const &key, int64_t const &create_revision,
                            std::string const &range_end = "") {
        add_compare_create(key, CompareResult::EQUAL, create_revision, range_end);
    }
    void add_compare_create(std::string const &key, CompareResult const &result,
                            int64_t const &create_revision, std::string const &range_end = "") {
        add_number(key, range_end, CompareTarget::CREATE, result, create_revision);
    }

    void add_compare_mod(std::string const &key, int64_t const &mod_revision,
                         std::string const &range_end = "") {
        add_compare_mod(key, CompareResult::EQUAL, mod_revision, range_end);
    }
    void add_compare_mod(std::string const &key, CompareResult const &result,
                         int64_t const &mod_revision, std::string const &range_end = "") {
        add_number(key, range_end, CompareTarget::MOD, result, mod_revision);
    }

    void add_compare_value(std::string const &key, std::string const &value,
                           std::string const &range_end = "") {
        add_compare_value(key, CompareResult::EQUAL, value, range_end);
    }
    void add_compare_value(std::string const &key, CompareResult const &result,
                           std::string const &value, std::string const &range_end = "") {
        Compare c;
        c.key = key;
        c.range_end = range_end;
        c.target = CompareTarget::VALUE;
        c.result = result;
        c.value = value;
        compares_.push_back(std::move(c));
    }

    void add_compare_lease(std::string const &key, int64_t const &lease,
                           std::string const &range_end = "") {
        add_compare_lease(key, CompareResult::EQUAL, lease, range_end);
    }
    void add_compare_lease(std::string const &key, CompareResult const &result,
                           int64_t const &lease, std::string const &range_end = "") {
        add_number(key, range_end, CompareTarget::LEASE, result, lease);
    }

    // Operations of the success branch. `recursive`: every key starting with `key` (an empty
    // key: every key); a non-empty range_end wins over it. limit 0: no limit.
    void add_success_range(std::string const &key, std::string const &range_end = "",
                           bool const recursive = false, const int64_t limit = 0) {
        success_.push_back(range_op(key, range_end, recursive, limit));
    }
    void add_success_put(std::string const &key, std::string const &value,
                         int64_t const leaseid = 0, const bool prev_kv = false) {
        success_.push_back(put_op(key, value, leaseid, prev_kv));
    }
    void add_success_delete(std::string const &key, std::string const &range_end = "",
                            bool const recursive = false, const bool prev_kv = false) {
        success_.push_back(delete_op(key, range_end, recursive, prev_kv));
    }
    /**
     * A nested transaction, copied now: later changes to *txn are not seen.
     */
    void add_success_txn(const std::shared_ptr<Transaction> txn) {
        success_.push_back(txn_op(txn));
    }

    // Operations of the failure branch.
    void add_failure_range(std::string const &key, std::string const &range_end = "",
                           bool const recursive = false, const int64_t limit = 0) {
        failure_.push_back(range_op(key, range_end, recursive, limit));
    }
    void add_failure_put(std::string const &key, std::string const &value,
                         int64_t const leaseid = 0, const bool prev_kv = false) {
        failure_.push_back(put_op(key, value, leaseid, prev_kv));
    }
    void add_failure_delete(std::string const &key, std::string const &range_end = "",
                            bool const recursive = false, const bool prev_kv = false) {
        failure_.push_back(delete_op(key, range_end, recursive, prev_kv));
    }
    void add_failure_txn(const std::shared_ptr<Transaction> txn) {
        failure_.push_back(txn_op(txn));
    }

    // Ready-made forms: compare the VALUE of `key` with prev_value (EQUAL for *_and_*,
    // NOT_EQUAL for *_or_*); on success put / delete (with prev_kv); on failure read `key`.
    void setup_compare_and_create(std::string const &key, std::string const &prev_value,
                                  std::string const &create_key, std::string const &value,
                                  int64_t const leaseid = 0) {
        value_then_put(key, CompareResult::EQUAL, prev_value, create_key, value, leaseid);
    }
    void setup_compare_or_create(std::string const &key, std::string const &prev_value,
                                 std::string const &create_key, std::string const &value,
                                 int64_t const leaseid = 0) {
        value_then_put(key, CompareResult::NOT_EQUAL, prev_value, create_key, value, leaseid);
    }
    void setup_compare_and_swap(std::string const &key, std::string const &prev_value,
                                std::string const &value, int64_t const leaseid = 0) {
        value_then_put(key, CompareResult::EQUAL, prev_value, key, value, leaseid);
    }
    void setup_compare_or_swap(std::string const &key, std::string const &prev_value,
                               std::string const &value, int64_t const leaseid = 0) {
        value_then_put(key, CompareResult::NOT_EQUAL, prev_value, key, value, leaseid);
    }
    void setup_compare_and_delete(std::string const &key, std::string const &prev_value,
                                  std::string const &delete_key,
                                  std::string const &range_end = "",
                                  const bool recursive = false) {
        add_compare_value(key, CompareResult::EQUAL, prev_value);
        then_delete(key, delete_key, range_end, recursive);
    }
    void setup_compare_or_delete(std::string const &key, std::string const &prev_value,
                                 std::string const &delete_key, std::string const &range_end = "",
                                 const bool recursive = false) {
        add_compare_value(key, CompareResult::NOT_EQUAL, prev_value);
        then_delete(key, delete_key, range_end, recursive);
    }

    // The same, comparing the MOD revision of `key` with prev_revision.
    void setup_compare_and_create(std::string const &key, const int64_t prev_revision,
                                  std::string const &create_key, std::string const &value,
                                  int64_t const leaseid = 0) {
        mod_then_put(key, CompareResult::EQUAL, prev_revision, create_key, value, leaseid);
    }
    void setup_compare_or_create(std::string const &key, const int64_t prev_revision,
                                 std::string const &create_key, std::string const &value,
                                 int64_t const leaseid = 0) {
        mod_then_put(key, CompareResult::NOT_EQUAL, prev_revision, create_key, value, leaseid);
    }
    void setup_compare_and_swap(std::string const &key, const int64_t prev_revision,
                                std::string const &value, int64_t const leaseid = 0) {
        mod_then_put(key, CompareResult::EQUAL, prev_revision, key, value, leaseid);
    }
    void setup_compare_or_swap(std::string const &key, const int64_t prev_revision,
                               std::string const &value, int64_t const leaseid = 0) {
        mod_then_put(key, CompareResult::NOT_EQUAL, prev_revision, key, value, leaseid);
    }
    void setup_compare_and_delete(std::string const &key, const int64_t prev_revision,
                                  std::string const &delete_key,
                                  std::string const &range_end = "",
                                  const bool recursive = false) {
        add_compare_mod(key, CompareResult::EQUAL, prev_revision);
        then_delete(key, delete_key, range_end, recursive);
    }
    void setup_compare_or_delete(std::string const &key, const int64_t prev_revision,
                                 std::string const &delete_key, std::string const &range_end = "",
                                 const bool recursive = false) {
        add_compare_mod(key, CompareResult::NOT_EQUAL, prev_revision);
        then_delete(key, delete_key, range_end, recursive);
    }

    // Older forms: success-branch operations only (deletes with prev_kv).
    void setup_put(std::string const &key, std::string const &value) {
        add_success_put(key, value);
    }
    void setup_delete(std::string const &key) { add_success_delete(key, "", false, true); }
    void setup_delete(std::string const &key, std::string const &range_end,
                      const bool recursive = false) {
        add_success_delete(key, range_end, recursive, true);
    }

private:
    friend struct etcd::detail::txn_runner;

    struct Compare {
        std::string key, range_end;
        CompareTarget target = CompareTarget::VALUE;
        CompareResult result = CompareResult::EQUAL;
        int64_t number = 0;
        std::string value;
    };

    enum class OpKind { PUT, RANGE, DELETE_RANGE, TXN };

    struct Op {
        OpKind kind = OpKind::PUT;
        std::string key, range_end, value;
        bool recursive = false, prev_kv = false;
        int64_t limit = 0, lease = 0;
        std::shared_ptr<const Transaction> nested;  // a copy taken when it was added
    };

    void add_number(std::string const &key, std::string const &range_end, CompareTarget target,
                    CompareResult result, int64_t number) {
        Compare c;
        c.key = key;
        c.range_end = range_end;
        c.target = target;
        c.result = result;
        c.number = number;
        compares_.push_back(std::move(c));
    }

    static Op range_op(std::string const &key, std::string const &range_end, bool recursive,
                       int64_t limit) {
        Op op;
        op.kind = OpKind::RANGE;
        op.key = key;
        op.range_end = range_end;
        op.recursive = recursive;
        op.limit = limit;
        return op;
    }

    static Op put_op(std::string const &key, std::string const &value, int64_t lease,
                     bool prev_kv) {
        Op op;
        op.kind = OpKind::PUT;
        op.key = key;
        op.value = value;
        op.lease = lease;
        op.prev_kv = prev_kv;
        return op;
    }

    static Op delete_op(std::string const &key, std::string const &range_end, bool recursive,
                        bool prev_kv) {
        Op op;
        op.kind = OpKind::DELETE_RANGE;
        op.key = key;
        op.range_end = range_end;
        op.recursive = recursive;
        op.prev_kv = prev_kv;
        return op;
    }

    static Op txn_op(std::shared_ptr<Transaction> const &txn) {
        Op op;
        op.kind = OpKind::TXN;
        op.nested = txn ? std::make_shared<const Transaction>(*txn)
                        : std::make_shared<const Transaction>();
        return op;
    }

    void value_then_put(std::string const &key, CompareResult result, std::string const &prev,
                        std::string const &put_key, std::string const &value, int64_t lease) {
        add_compare_value(key, result, prev);
        add_success_put(put_key, value, lease);
        add_failure_range(key);
    }

    void mod_then_put(std::string const &key, CompareResult result, int64_t prev_revision,
                      std::string const &put_key, std::string const &value, int64_t lease) {
        add_compare_mod(key, result, prev_revision);
        add_success_put(put_key, value, lease);
        add_failure_range(key);
    }

    void then_delete(std::string const &key, std::string const &delete_key,
                     std::string const &range_end, bool recursive) {
        add_success_delete(delete_key, range_end, recursive, true);
        add_failure_range(key);
    }

    std::vector<Compare> compares_;
    std::vector<Op> success_, failure_;
};

}  // namespace etcdv3

#endif  // ETCD_SD_COMPAT_V3_TRANSACTION_HPP
