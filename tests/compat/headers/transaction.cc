// Compiles <etcd/v3/Transaction.hpp> alone (-Wall -Wextra -Werror -pedantic).
#include <etcd/v3/Transaction.hpp>

int use_transaction() {
    etcdv3::Transaction t;
    t.setup_compare_and_swap("/k", "old", "new");
    auto copy = std::make_shared<etcdv3::Transaction>(t);
    t.add_success_txn(copy);
    etcdv3::Transaction::Value v;
    v.value = "x";
    t.add_compare("/k", etcdv3::CompareTarget::VALUE, etcdv3::CompareResult::NOT_EQUAL, v);
    return 0;
}
