// libFuzzer target: the request head a client in the sandbox sends the egress proxy, and the
// body bytes after it. The first byte picks where the bytes are cut in two, as two reads would
// deliver them: finding the head's end and scanning the body must not depend on the cut. A
// parsed head must be normalised, and the head sent upstream must be one head with no injected
// line, and read back it must frame the same request.
#include "egress/body.hpp"
#include "egress/decide.hpp"
#include "egress/request.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace airlock::egress;

namespace {

const Config& config() {
    static const Config c = [] {
        Config out;
        for (const char* r : {"allowed.test:443", "*.example.com", "plain.test"})
            out.allow.push_back({r, *airlock::policy::parse_host_rule(r)});
        out.deny.push_back({"*.internal", *airlock::policy::parse_host_rule("*.internal")});
        out.methods = {"GET", "HEAD"};
        return out;
    }();
    return c;
}

void check_head(const RequestHead& h, std::string_view rest, std::size_t cut) {
    if (h.host.empty() || h.port == 0) std::abort();
    for (char c : h.host)
        if (c >= 'A' && c <= 'Z') std::abort();
    if (h.host.back() == '.') std::abort();
    (void)decide(config(), h.kind, h.method, h.host, h.port);
    if (h.kind == RequestKind::connect) return;

    if (h.target.empty() || h.target.front() != '/') std::abort();
    const std::string up = upstream_head(h);
    // Exactly one head: its end is the end of the text, and no line ends early or oddly.
    if (find_head_end(up) != up.size()) std::abort();
    for (std::size_t i = 0; i < up.size(); ++i)
        if ((up[i] == '\n' && (i == 0 || up[i - 1] != '\r')) ||
            (up[i] == '\r' && (i + 1 == up.size() || up[i + 1] != '\n')))
            std::abort();
    // Read back as an absolute-form request, the forwarded head frames the same request.
    const std::string again = h.method + " http://" + authority(h.host, h.port) + h.target +
                              " HTTP/1.1" + up.substr(up.find("\r\n"));
    const ParsedHead reparsed = parse_request_head(again);
    const auto* same = std::get_if<RequestHead>(&reparsed);
    // The added Host and Connection lines and ":80" may go over the size limits.
    const auto* error = std::get_if<HeadError>(&reparsed);
    const bool over_limit = error && (error->status == 414 || error->status == 431);
    if (!over_limit &&
        (!same || same->host != h.host || same->port != h.port || same->target != h.target ||
         same->body != h.body || same->content_length != h.content_length))
        std::abort();

    BodyScanner whole(h.body, h.content_length);
    const std::size_t used = whole.feed(rest);
    BodyScanner split(h.body, h.content_length);
    const std::size_t at = rest.empty() ? 0 : cut % (rest.size() + 1);
    const std::size_t first = split.feed(rest.substr(0, at));
    const std::size_t second = split.failed() ? 0 : split.feed(rest.substr(first));
    if (whole.failed() != split.failed() || whole.done() != split.done()) std::abort();
    if (!whole.failed() && used != first + second) std::abort();
    if (used > rest.size()) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::size_t cut = data[0] % (bytes.size() + 1);

    const auto end = find_head_end(bytes);
    if (end && (*end > bytes.size() || *end < 2)) std::abort();
    // A search resumed after a first read that held no complete head finds the same end.
    if (!find_head_end(bytes.substr(0, cut)) && find_head_end(bytes, cut) != end) std::abort();
    if (!end) {
        (void)incomplete_head_problem(bytes);
        return 0;
    }
    const std::string_view head = bytes.substr(0, *end);
    const ParsedHead parsed = parse_request_head(head);
    if (const auto* error = std::get_if<HeadError>(&parsed)) {
        if (error->message.empty() || error->status < 400 || error->status > 505) std::abort();
        return 0;
    }
    check_head(std::get<RequestHead>(parsed), bytes.substr(*end), data[0]);
    return 0;
}
