// Compiles <etcd/Value.hpp> alone (-Wall -Wextra -Werror -pedantic); linked with the other
// headers' TUs into one program, which catches a non-inline definition in any of them.
#include <etcd/Value.hpp>

#include <sstream>
int use_value() {
    std::ostringstream os;
    os << etcd::Event::EventType::DELETE_;
    return os.str() == "DELETE" ? 0 : 1;
}
