// The request head a client sends the proxy, parsed without I/O: `CONNECT host:port` or an
// absolute `http://` URI (or, for the credential endpoint, origin form). Anything else is an error
// that carries the HTTP status to answer with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace airlock::egress {

inline constexpr std::size_t k_max_request_line = 8 * 1024; // without its line end
inline constexpr std::size_t k_max_head = 32 * 1024;        // through the blank line
inline constexpr std::size_t k_max_header_lines = 100;

enum class RequestKind { connect, absolute };
enum class BodyFraming { none, length, chunked };

struct Header {
    std::string name; // as sent
    std::string value;
};

struct RequestHead {
    RequestKind kind = RequestKind::absolute;
    std::string method;
    std::string host; // lower case, no trailing dot; an IPv6 literal without brackets
    std::uint16_t port = 0;
    std::string target; // absolute: path and query in origin form ("/" at least); connect: empty
    std::vector<Header> headers;
    BodyFraming body = BodyFraming::none; // absolute only
    std::uint64_t content_length = 0;
};

struct HeadError {
    int status;          // 400, 414, 431, 501 or 505
    std::string message; // one sentence, for the client and the decision line
};

using ParsedHead = std::variant<RequestHead, HeadError>;

// Size of the head (through its blank line) at the start of `bytes`, nullopt while it is
// incomplete. Lines end in LF with an optional CR. `searched` bytes were looked at already.
std::optional<std::size_t> find_head_end(std::string_view bytes, std::size_t searched = 0);
// For bytes that hold no complete head yet: the error once they already break a limit.
std::optional<HeadError> incomplete_head_problem(std::string_view bytes);
// `head` is exactly what find_head_end measured.
ParsedHead parse_request_head(std::string_view head);
// The credential endpoint's form: `METHOD /path HTTP/1.x`, the same limits and header checks.
// The result has kind `absolute`, `target` as sent, and no host or port; absolute-form targets
// and CONNECT are 400.
ParsedHead parse_origin_head(std::string_view head);

// The path of a target without its query, for decision lines.
std::string_view target_path(std::string_view target);
// "host:port", brackets around an IPv6 literal.
std::string authority(std::string_view host, std::uint16_t port);
// What goes upstream for an absolute-form request: origin form, HTTP/1.1, the hop-by-hop and
// proxy headers dropped, Host taken from the URI (never from the client's header), and
// `Connection: close`.
std::string upstream_head(const RequestHead& head);

} // namespace airlock::egress
