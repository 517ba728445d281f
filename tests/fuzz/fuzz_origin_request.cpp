// libFuzzer target: the credential endpoint's parsers. Even first byte: the task's origin-form
// request head, routed to the endpoint "model"; the head sent upstream must be one head, carry
// the secret header exactly once and none of the task's own, and frame the same body. Odd first
// byte: the upstream's response head; what the client gets must be one head with CRLF line ends
// and `Connection: close` as its only Connection header.
#include "egress/credentials.hpp"
#include "egress/request.hpp"
#include "egress/response.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace airlock::egress;

namespace {

const CredentialEndpoint& endpoint() {
    static const CredentialEndpoint e = [] {
        Credential c;
        c.name = "model";
        c.host = "api.example.com";
        c.base_path = "/v1";
        c.header = "Authorization";
        c.header_template = "Bearer {secret}";
        return CredentialEndpoint(c, credential_header_line(c, "SECRET"));
    }();
    return e;
}

void check_crlf(std::string_view text) {
    if (find_head_end(text) != text.size()) std::abort();
    for (std::size_t i = 0; i < text.size(); ++i)
        if ((text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) ||
            (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')))
            std::abort();
}

std::size_t count(std::string_view text, std::string_view needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + 1))
        ++n;
    return n;
}

void request(std::string_view head) {
    const ParsedHead parsed = parse_origin_head(head);
    if (const auto* error = std::get_if<HeadError>(&parsed)) {
        if (error->message.empty() || error->status < 400 || error->status > 505) std::abort();
        return;
    }
    const RequestHead& h = std::get<RequestHead>(parsed);
    if (h.target.empty() || h.target.front() != '/' || !h.host.empty()) std::abort();
    const std::string_view t = h.target;
    if (t.substr(0, 6) != "/model" || (t.size() > 6 && t[6] != '/' && t[6] != '?')) return;
    const std::string target = upstream_target(endpoint().credential(), t);
    if (target.substr(0, 4) != "/v1/" && target.substr(0, 4) != "/v1?") std::abort();
    const std::string up = credential_upstream_head(h, endpoint(), target);
    check_crlf(up);
    if (count(up, "\r\nAuthorization: Bearer SECRET\r\n") != 1) std::abort();
    // The task's own header of that name never goes along.
    std::string lower = up;
    for (char& c : lower)
        c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (count(lower, "\r\nauthorization:") != 1 || count(lower, "\r\nhost:") != 1) std::abort();
    // Read back, the forwarded head frames the same body.
    const ParsedHead again = parse_origin_head(up);
    const auto* same = std::get_if<RequestHead>(&again);
    const auto* error = std::get_if<HeadError>(&again);
    const bool over_limit = error && (error->status == 414 || error->status == 431);
    if (!over_limit && (!same || same->target != target || same->body != h.body ||
                        same->content_length != h.content_length))
        std::abort();
}

void response(std::string_view head, bool head_request) {
    const auto parsed = parse_response_head(head, head_request ? "HEAD" : "GET");
    if (const auto* error = std::get_if<ResponseError>(&parsed)) {
        if (error->message.empty()) std::abort();
        return;
    }
    const ResponseHead& r = std::get<ResponseHead>(parsed);
    if (r.status < 100 || r.status > 999) std::abort();
    check_crlf(r.forwarded);
    std::string lower = r.forwarded;
    for (char& c : lower)
        c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (count(lower, "\r\nconnection:") != 1 || count(lower, "\r\nkeep-alive:") != 0) std::abort();
    if (head_request && r.body != ResponseBody::none) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
    const auto end = find_head_end(bytes);
    if (!end) return 0;
    const std::string_view head = bytes.substr(0, *end);
    if (data[0] % 2 == 0)
        request(head);
    else
        response(head, data[0] % 4 == 3);
    return 0;
}
