// etcd/detail/txn.hpp -- Client::txn / SyncClient::txn, modify_if and rm_if over the C API's
// etcd_sd_txn_* functions. Internal to the compatibility headers.
//
// The Response is read as etcd-cpp-apiv3 reads a transaction's answer: over the operations of
// the branch that ran, in order, a range appends its entries to values(); a put appends its
// previous entry (empty unless asked with prev_kv) to the previous values; a delete appends
// the deleted entries (with prev_kv) to both; a nested transaction adds nothing. value() is
// the first of values(), prev_value() the first previous value, keys() the keys of values().
// A delete that deleted nothing is no error inside a transaction. When the compares failed:
// 101 "etcd-cpp-apiv3: compare failed", with the failure branch's results.

#ifndef ETCD_SD_COMPAT_TXN_HPP
#define ETCD_SD_COMPAT_TXN_HPP

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "etcd/Response.hpp"
#include "etcd/detail/capi.hpp"
#include "etcd/detail/ranges.hpp"
#include "etcd/v3/Transaction.hpp"
#include "etcd/v3/action_constants.hpp"

namespace etcd {
namespace detail {

struct txn_runner {
    using Txn = etcdv3::Transaction;

    // What a transaction can carry that the C API cannot take: set `why`, return
    // ETCD_SD_INVALID_ARGUMENT.
    static etcd_sd_result refuse(std::string &why, std::string const &what) {
        why = "etcd-sd: " + what;
        return ETCD_SD_INVALID_ARGUMENT;
    }

    static bool has_nul(std::string const &s) { return s.find('\0') != std::string::npos; }

    static uint32_t op_of(etcdv3::CompareResult r) {
        switch (r) {
        case etcdv3::CompareResult::GREATER:
            return ETCD_SD_CMP_GREATER;
        case etcdv3::CompareResult::LESS:
            return ETCD_SD_CMP_LESS;
        case etcdv3::CompareResult::NOT_EQUAL:
            return ETCD_SD_CMP_NOT_EQUAL;
        default:
            return ETCD_SD_CMP_EQUAL;
        }
    }

    static uint32_t target_of(etcdv3::CompareTarget t) {
        switch (t) {
        case etcdv3::CompareTarget::CREATE:
            return ETCD_SD_CMP_CREATE_REVISION;
        case etcdv3::CompareTarget::MOD:
            return ETCD_SD_CMP_MOD_REVISION;
        case etcdv3::CompareTarget::LEASE:
            return ETCD_SD_CMP_LEASE;
        default:
            return ETCD_SD_CMP_VERSION;
        }
    }

    // [begin, end) of an operation, as etcd-cpp-apiv3 makes it: `recursive` is the prefix of
    // the key (every key for ""), a non-empty range_end wins; end "" is the key alone.
    static std::pair<std::string, std::string> range_of(Txn::Op const &op) {
        std::pair<std::string, std::string> r{op.key, std::string()};
        if (op.recursive) {
            r = prefix_range(op.key);
        }
        if (!op.range_end.empty()) {
            r.second = op.range_end;
        }
        return r;
    }

    static etcd_sd_result add_op(etcd_sd_txn *t, uint32_t branch, Txn::Op const &op,
                                 std::string &why) {
        if (op.kind == Txn::OpKind::TXN) {
            etcd_sd_txn *raw = nullptr;
            etcd_sd_result r = etcd_sd_txn_new(&raw);
            txn_ptr inner(raw);
            if (r == ETCD_SD_OK) {
                r = build(*op.nested, inner.get(), why);
            }
            return r == ETCD_SD_OK ? etcd_sd_txn_nest(t, branch, inner.get()) : r;
        }
        if (op.kind == Txn::OpKind::PUT) {
            if (has_nul(op.key)) {
                return refuse(why, "a key with a NUL byte cannot be put in a transaction");
            }
            return etcd_sd_txn_put(t, branch, op.key.c_str(), op.value.data(), op.value.size(),
                                   op.lease, op.prev_kv);
        }
        auto range = range_of(op);
        bool from = range.second == etcdv3::NUL;  // every key from begin on
        if (range.first == etcdv3::NUL || has_nul(range.first) ||
            (!from && has_nul(range.second))) {
            return refuse(why, "a key or range end with a NUL byte (or the whole key space) "
                               "cannot be used in a transaction");
        }
        char const *end = range.second.empty() ? nullptr : range.second.c_str();
        if (op.kind == Txn::OpKind::RANGE) {
            return from ? etcd_sd_txn_range_from(t, branch, range.first.c_str(), op.limit, 0)
                        : etcd_sd_txn_range(t, branch, range.first.c_str(), end, op.limit, 0,
                                            false);
        }
        if (from) {
            return refuse(why, "a delete to the end of the key space (range end \"\\0\") "
                               "cannot be used in a transaction");
        }
        return etcd_sd_txn_delete(t, branch, range.first.c_str(), end, op.prev_kv);
    }

    // Adds every compare and operation of `txn` to `t`.
    static etcd_sd_result build(Txn const &txn, etcd_sd_txn *t, std::string &why) {
        for (auto const &c : txn.compares_) {
            if (has_nul(c.key) || has_nul(c.range_end)) {
                return refuse(why, "a compare key or range end with a NUL byte cannot be used "
                                   "in a transaction");
            }
            char const *end = c.range_end.empty() ? nullptr : c.range_end.c_str();
            etcd_sd_result r =
                c.target == etcdv3::CompareTarget::VALUE
                    ? etcd_sd_txn_compare_value(t, c.key.c_str(), end, op_of(c.result),
                                                c.value.data(), c.value.size())
                    : etcd_sd_txn_compare_number(t, c.key.c_str(), end, target_of(c.target),
                                                 op_of(c.result), c.number);
            if (r != ETCD_SD_OK) {
                return r;
            }
        }
        for (auto const &op : txn.success_) {
            etcd_sd_result r = add_op(t, ETCD_SD_TXN_SUCCESS, op, why);
            if (r != ETCD_SD_OK) {
                return r;
            }
        }
        for (auto const &op : txn.failure_) {
            etcd_sd_result r = add_op(t, ETCD_SD_TXN_FAILURE, op, why);
            if (r != ETCD_SD_OK) {
                return r;
            }
        }
        return ETCD_SD_OK;
    }

    // etcd's answer read as etcd-cpp-apiv3 reads it (see the top of this file).
    static Response parse(etcd_sd_txn_response const *r, char const *action,
                          std::chrono::high_resolution_clock::time_point start) {
        std::vector<Value> values, prev_values;
        size_t n = etcd_sd_txn_response_len(r);
        for (size_t i = 0; i < n; i++) {
            auto entries = access::values_of(etcd_sd_txn_response_kvs(r, i));
            switch (etcd_sd_txn_response_kind(r, i)) {
            case ETCD_SD_TXN_OP_RANGE:
                values.insert(values.end(), entries.begin(), entries.end());
                break;
            case ETCD_SD_TXN_OP_PUT:
                // the replaced entry, or an empty Value when there was none or it was not asked
                prev_values.push_back(entries.empty() ? Response().value() : entries.front());
                break;
            case ETCD_SD_TXN_OP_DELETE:
                values.insert(values.end(), entries.begin(), entries.end());
                prev_values.insert(prev_values.end(), entries.begin(), entries.end());
                break;
            default:  // a nested transaction: nothing
                break;
            }
        }
        Response resp = access::ok(action, etcd_sd_txn_response_revision(r), start);
        access::set_values(resp, std::move(values));
        if (!prev_values.empty()) {
            access::set_prev_value(resp, prev_values.front());
        }
        if (!etcd_sd_txn_response_succeeded(r)) {
            access::set_error(resp, etcdv3::ERROR_COMPARE_FAILED, compare_failed_message());
        }
        return resp;
    }

    static Response run(etcd_sd_client *c, Txn const &txn, char const *action) {
        auto start = clock_now();
        etcd_sd_txn *raw = nullptr;
        etcd_sd_result r = etcd_sd_txn_new(&raw);
        txn_ptr t(raw);
        std::string why;
        if (r == ETCD_SD_OK) {
            r = build(txn, t.get(), why);
        }
        if (r != ETCD_SD_OK) {
            if (!why.empty()) {
                Response resp = access::error(etcdv3::ERROR_GRPC_INVALID_ARGUMENT, why, action);
                return resp;
            }
            return failed(r, action, start);
        }
        etcd_sd_txn_response *out = nullptr;
        r = etcd_sd_client_txn(c, t.get(), &out);
        txn_response_ptr answer(out);
        if (r != ETCD_SD_OK) {
            return failed(r, action, start, etcdv3::ERROR_GRPC_NOT_FOUND);
        }
        return parse(answer.get(), action, start);
    }
};

/**
 * txn(txn): action "txn".
 */
inline Response run_txn(etcd_sd_client *c, etcdv3::Transaction const &txn) {
    return txn_runner::run(c, txn, etcdv3::TXN_ACTION);
}

/**
 * modify_if: compare (the value, or the mod revision) and put, then read the key. action
 * "compareAndSwap"; value() the entry written (or, on 101, the entry as it is).
 */
template <typename Old>
inline Response run_modify_if(etcd_sd_client *c, std::string const &key, std::string const &value,
                              Old const &old, int64_t lease) {
    etcdv3::Transaction txn;
    txn.setup_compare_and_swap(key, old, value, lease);
    txn.add_success_range(key);
    return txn_runner::run(c, txn, etcdv3::COMPARESWAP_ACTION);
}

/**
 * rm_if: compare (the value, or the mod revision) and delete. action "compareAndDelete";
 * value() and prev_value() the deleted entry (or, on 101, value() the entry as it is).
 */
template <typename Old>
inline Response run_rm_if(etcd_sd_client *c, std::string const &key, Old const &old) {
    etcdv3::Transaction txn;
    txn.setup_compare_and_delete(key, old, key);
    return txn_runner::run(c, txn, etcdv3::COMPAREDELETE_ACTION);
}

}  // namespace detail
}  // namespace etcd

#endif  // ETCD_SD_COMPAT_TXN_HPP
