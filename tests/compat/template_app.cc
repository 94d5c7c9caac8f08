// A service using the template-style etcd.hpp (Registry + Discovery), as a chat-system
// server's main() does. Compiled unchanged with -std=c++17 only.
//
// Usage: template_app ETCD_URL BASEDIR KEY VALUE
// Prints "online: <key> -> <value>" / "offline: <key> (was <value>)" for everything under
// BASEDIR (the initial listing included), "registered <key> lease <id>" once its own key is
// put; then waits: each stdin line "put K V" registers K too; EOF or "quit" exits.
#include "etcd.hpp"

#include <mutex>

static std::mutex out_mutex;

int main(int argc, char *argv[])
{
    if (argc != 5) {
        std::cerr << "usage: template_app ETCD_URL BASEDIR KEY VALUE" << std::endl;
        return 1;
    }
    std::string host = argv[1], basedir = argv[2], key = argv[3], value = argv[4];
    auto online = [](std::string k, std::string v) {
        std::lock_guard<std::mutex> lock(out_mutex);
        std::cout << "online: " << k << " -> " << v << std::endl;
    };
    auto offline = [](std::string k, std::string v) {
        std::lock_guard<std::mutex> lock(out_mutex);
        std::cout << "offline: " << k << " (was " << v << ")" << std::endl;
    };
    chat::Discovery::ptr discovery = std::make_shared<chat::Discovery>(host, basedir, online, offline);
    chat::Registry::ptr registry = std::make_shared<chat::Registry>(host);
    if (!registry->registry(key, value)) {
        return 1;
    }
    {
        std::lock_guard<std::mutex> lock(out_mutex);
        std::cout << "registered " << key << " lease " << registry->lease() << std::endl;
    }
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line == "quit") break;
        if (line.compare(0, 4, "put ") == 0) {
            auto sp = line.find(' ', 4);
            registry->registry(line.substr(4, sp - 4), sp == std::string::npos ? "" : line.substr(sp + 1));
            std::lock_guard<std::mutex> lock(out_mutex);
            std::cout << "put done" << std::endl;
        }
    }
    return 0;
}
