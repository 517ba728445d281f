#include "egress/response.hpp"

#include "util/http_text.hpp"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

namespace airlock::egress {

using util::iequals;
using util::is_ctl;
using util::is_token_char;
using util::trim_ows;

namespace {

std::string_view chomp(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

ResponseError bad(std::string message) {
    return {"the upstream's response " + std::move(message)};
}

// The last coding of a Transfer-Encoding list.
std::string_view last_coding(std::string_view te) {
    const auto comma = te.rfind(',');
    return trim_ows(comma == std::string_view::npos ? te : te.substr(comma + 1));
}

} // namespace

std::variant<ResponseHead, ResponseError> parse_response_head(std::string_view head,
                                                              std::string_view method) {
    if (head.size() > k_max_response_head) return bad("head is larger than 64 KiB");
    const auto first_nl = head.find('\n');
    const std::string_view line = chomp(head.substr(0, first_nl));
    // "HTTP/1.1 200 OK": the reason phrase may be empty, with or without its space.
    if (line.size() < 12 ||
        (line.substr(0, 9) != "HTTP/1.1 " && line.substr(0, 9) != "HTTP/1.0 ") ||
        !std::all_of(line.begin() + 9, line.begin() + 12,
                     [](char c) { return c >= '0' && c <= '9'; }) ||
        (line.size() > 12 && line[12] != ' ') || std::any_of(line.begin(), line.end(), is_ctl))
        return bad("does not start with a status line (HTTP/1.1 NNN reason)");
    ResponseHead out;
    out.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (out.status < 100) return bad("has the status " + std::to_string(out.status));
    out.forwarded = std::string(line) + "\r\n";

    std::string te;
    bool has_te = false;
    std::optional<std::string_view> length;
    std::vector<std::pair<std::string_view, std::string_view>> kept;
    std::size_t count = 0;
    std::size_t pos = first_nl == std::string_view::npos ? head.size() : first_nl + 1;
    while (pos < head.size()) {
        const auto nl = head.find('\n', pos);
        const std::string_view h = chomp(
            head.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
        pos = nl == std::string_view::npos ? head.size() : nl + 1;
        if (h.empty()) break;
        if (++count > k_max_response_header_lines) return bad("has more than 200 header lines");
        if (h.front() == ' ' || h.front() == '\t') return bad("folds a header over two lines");
        const auto colon = h.find(':');
        const std::string_view name = h.substr(0, colon == std::string_view::npos ? 0 : colon);
        if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char))
            return bad("has a header line that is not name: value");
        const std::string_view value = trim_ows(h.substr(colon + 1));
        if (std::any_of(value.begin(), value.end(), is_ctl))
            return bad("has a header with control bytes");
        if (iequals(name, "connection") || iequals(name, "keep-alive")) continue;
        if (iequals(name, "transfer-encoding")) {
            te += (has_te ? "," : "") + std::string(value);
            has_te = true;
        }
        if (iequals(name, "content-length")) {
            if (length && *length != value) return bad("has Content-Length headers that disagree");
            length = value;
        }
        kept.emplace_back(name, value);
    }
    for (const auto& [name, value] : kept) {
        // With Transfer-Encoding the client must not see a Content-Length that disagrees.
        if (has_te && iequals(name, "content-length")) continue;
        out.forwarded += std::string(name) + ": " + std::string(value) + "\r\n";
    }
    out.forwarded += "Connection: close\r\n\r\n";

    if (method == "HEAD" || out.status < 200 || out.status == 204 || out.status == 304) {
        out.body = ResponseBody::none;
    } else if (has_te) {
        // Transfer-Encoding wins over Content-Length; a last coding other than chunked runs to
        // the close.
        out.body =
            iequals(last_coding(te), "chunked") ? ResponseBody::chunked : ResponseBody::until_close;
    } else if (length) {
        if (length->empty() || length->size() > 18 ||
            !std::all_of(length->begin(), length->end(),
                         [](char c) { return c >= '0' && c <= '9'; }))
            return bad("has a Content-Length that is not a whole number");
        out.body = ResponseBody::length;
        for (char c : *length)
            out.content_length = out.content_length * 10 + static_cast<std::uint64_t>(c - '0');
    } else {
        out.body = ResponseBody::until_close;
    }
    return out;
}

} // namespace airlock::egress
