// The HTTP/1.1 pieces of a hijacked engine connection (attach with stdin): the upgrade request,
// and the response head parsed by hand, since libcurl only connects. Pure functions, no I/O.
#pragma once

#include "util/result.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace airlock::docker {

// A response head larger than this is refused (the engine's are a few hundred bytes).
inline constexpr std::size_t k_max_response_head = 64 * 1024;

struct ResponseHead {
    long status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers; // in order, values trimmed
    std::size_t size = 0; // bytes of the head, blank line included; what follows is the body
    // The first header named `name` (case-insensitive), if any.
    std::optional<std::string> header(std::string_view name) const;
};

// The request that asks the engine to turn the connection into a raw stream (Upgrade: tcp).
// `host` is the Host header value; `target` includes the /vX.Y prefix and the query.
std::string upgrade_request(std::string_view method, std::string_view target,
                            std::string_view host);

// Parses the response head at the start of `data`: nullopt while the blank line that ends it has
// not arrived yet; an error (ErrorKind::protocol) when it is malformed or exceeds
// k_max_response_head. Lines may end in CRLF or LF.
util::Result<std::optional<ResponseHead>> parse_response_head(std::string_view data);

// Decodes a complete chunked body (RFC 9112 7.1, extensions and trailers ignored); nullopt while
// the last chunk has not arrived or when the framing is malformed.
std::optional<std::string> decode_chunked(std::string_view data);

} // namespace airlock::docker
