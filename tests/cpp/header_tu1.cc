// etcd_sd.hpp included in two translation units linked together (tu1 + tu2): everything in
// the header must be inline (no duplicate symbols) and compile warning-free under
// -Wall -Wextra -Werror -pedantic. No etcd needed.
#include "etcd_sd.hpp"
#include "etcd_sd.hpp"  // and twice in one TU: include guard

#include <cstdio>
#include <string>

std::string tu2_version();
bool tu2_options_reject_zero_ttl();

static bool tu1_options_reject_bad_endpoints() {
    try {
        etcd_sd::Options().endpoints("ftp://x:1");
    } catch (const etcd_sd::Error &e) {
        return e.code() == ETCD_SD_INVALID_ARGUMENT && std::string(e.what()).size() > 0;
    }
    return false;
}

int main() {
    std::string v1 = etcd_sd::version();
    std::string v2 = tu2_version();
    if (v1.empty() || v1 != v2) {
        std::fprintf(stderr, "version mismatch: '%s' vs '%s'\n", v1.c_str(), v2.c_str());
        return 1;
    }
    if (!tu1_options_reject_bad_endpoints() || !tu2_options_reject_zero_ttl()) {
        std::fprintf(stderr, "Options did not throw Error(ETCD_SD_INVALID_ARGUMENT)\n");
        return 1;
    }
    std::printf("etcd-sd %s, header OK in two translation units\n", v1.c_str());
    return 0;
}
