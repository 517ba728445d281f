// The server name a TLS ClientHello asks for (SNI), read without I/O from the first bytes a
// client sends through a CONNECT tunnel.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace airlock::egress {

// The most the proxy reads before giving up on a ClientHello: one full TLS record.
inline constexpr std::size_t k_max_client_hello = 16 * 1024 + 5;

enum class HelloStatus { need_more, ok, not_hello };

struct ClientHello {
    HelloStatus status = HelloStatus::need_more;
    std::optional<std::string> sni; // ok: the host_name, lower case, no trailing dot; or none
    std::string problem;            // not_hello: why, in a few words
};

// Reassembles the handshake message across TLS records when it is fragmented; bytes after the
// message are ignored.
ClientHello parse_client_hello(std::string_view bytes);

} // namespace airlock::egress
