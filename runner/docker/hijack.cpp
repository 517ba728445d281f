#include "docker/hijack.hpp"

#include "util/http_text.hpp"

#include <cctype>

namespace airlock::docker {

using util::iequals;
using util::is_token_char;
using util::trim_ows;

using util::ErrorKind;
using util::make_error;

namespace {

// A short, printable excerpt of what the peer sent, for messages.
std::string excerpt(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 60))
        out.push_back(std::isprint(static_cast<unsigned char>(c)) ? c : '?');
    return out;
}

} // namespace

std::optional<std::string> ResponseHead::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) return v;
    return std::nullopt;
}

std::string upgrade_request(std::string_view method, std::string_view target,
                            std::string_view host) {
    std::string r;
    r.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    r.append("Host: ").append(host).append("\r\n");
    // The engine wants both even for an empty body (DESIGN.md, pitfalls).
    r.append("Content-Type: text/plain\r\n");
    r.append("Content-Length: 0\r\n");
    r.append("Connection: Upgrade\r\n");
    r.append("Upgrade: tcp\r\n");
    r.append("\r\n");
    return r;
}

util::Result<std::optional<ResponseHead>> parse_response_head(std::string_view data) {
    ResponseHead head;
    std::size_t pos = 0;
    bool first = true;
    while (true) {
        std::size_t nl = data.find('\n', pos);
        if (nl == std::string_view::npos || nl >= k_max_response_head) {
            if (data.size() >= k_max_response_head)
                return make_error(ErrorKind::protocol, "the engine's response head exceeds 64 KiB");
            return std::optional<ResponseHead>{};
        }
        std::string_view line = data.substr(pos, nl - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        pos = nl + 1;
        if (first) {
            first = false;
            // HTTP/1.x SP 3DIGIT [SP reason]
            bool ok = line.size() >= 12 && line.substr(0, 7) == "HTTP/1." &&
                      std::isdigit(static_cast<unsigned char>(line[7])) && line[8] == ' ' &&
                      (line.size() == 12 || line[12] == ' ');
            for (std::size_t i = 9; ok && i < 12; ++i)
                ok = std::isdigit(static_cast<unsigned char>(line[i])) != 0;
            if (!ok)
                return make_error(ErrorKind::protocol,
                                  "the engine did not answer with an HTTP/1.x status line (got \"" +
                                      excerpt(line) + "\")");
            head.status = std::stol(std::string(line.substr(9, 3)));
            if (line.size() > 12) head.reason = std::string(trim_ows(line.substr(13)));
            continue;
        }
        if (line.empty()) break;
        std::size_t colon = line.find(':');
        std::string_view name = colon == std::string_view::npos ? line : line.substr(0, colon);
        bool ok = colon != std::string_view::npos && colon > 0;
        for (char c : name)
            ok = ok && is_token_char(c);
        if (!ok)
            return make_error(ErrorKind::protocol, "malformed header line in the engine's "
                                                   "response: \"" +
                                                       excerpt(line) + "\"");
        head.headers.emplace_back(std::string(name), std::string(trim_ows(line.substr(colon + 1))));
    }
    head.size = pos;
    return std::optional<ResponseHead>{std::move(head)};
}

std::optional<std::string> decode_chunked(std::string_view data) {
    std::string out;
    std::size_t pos = 0;
    while (true) {
        std::size_t nl = data.find('\n', pos);
        if (nl == std::string_view::npos) return std::nullopt;
        std::string_view line = data.substr(pos, nl - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        line = trim_ows(line.substr(0, line.find(';')));
        if (line.empty() || line.size() > 15) return std::nullopt;
        std::size_t size = 0;
        for (char c : line) {
            if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
            size = size * 16 + static_cast<std::size_t>(
                                   std::isdigit(static_cast<unsigned char>(c))
                                       ? c - '0'
                                       : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
        }
        pos = nl + 1;
        if (size == 0) return out; // trailers, if any, are not needed
        if (data.size() - pos < size) return std::nullopt;
        out.append(data.substr(pos, size));
        pos += size;
        if (data.substr(pos, 2) == "\r\n")
            pos += 2;
        else if (data.substr(pos, 1) == "\n")
            pos += 1;
        else
            return std::nullopt;
    }
}

} // namespace airlock::docker
