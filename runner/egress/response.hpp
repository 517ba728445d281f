// The upstream's response head, as the credential endpoint forwards it: parsed without I/O, the
// status and the body's framing read, Connection and Keep-Alive replaced by `Connection: close`.
#pragma once

#include "egress/request.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace airlock::egress {

inline constexpr std::size_t k_max_response_head = 64 * 1024;
inline constexpr std::size_t k_max_response_header_lines = 200;

enum class ResponseBody { none, length, chunked, until_close };

struct ResponseHead {
    int status = 0;
    std::string forwarded; // status line and headers for the client, CRLF line ends
    ResponseBody body = ResponseBody::none;
    std::uint64_t content_length = 0;
};

struct ResponseError {
    std::string message; // one sentence
};

// `head` is exactly what find_head_end measured; `method` is the request's (HEAD has no body).
// A 1xx head is interim: another head follows it.
std::variant<ResponseHead, ResponseError> parse_response_head(std::string_view head,
                                                              std::string_view method);

} // namespace airlock::egress
