// libFuzzer target: the first bytes a client sends through a CONNECT tunnel, which the proxy
// reads as a TLS ClientHello for its server name. A verdict, once reached, must not change when
// more bytes follow; a server name must be a lower-case host name.
#include "egress/client_hello.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace airlock::egress;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const ClientHello hello = parse_client_hello(bytes);
    if (hello.status == HelloStatus::not_hello && hello.problem.empty()) std::abort();
    if (hello.status != HelloStatus::ok && hello.sni) std::abort();
    if (hello.sni) {
        if (hello.sni->empty() || hello.sni->back() == '.') std::abort();
        for (char c : *hello.sni)
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                  c == '_'))
                std::abort();
    }
    if (hello.status == HelloStatus::need_more) return 0;
    std::string longer(bytes);
    longer += std::string("\x16\x03\x01\x00\x05"
                          "extra",
                          10);
    const ClientHello again = parse_client_hello(longer);
    if (again.status != hello.status || again.sni != hello.sni) std::abort();
    return 0;
}
