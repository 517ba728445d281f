#include "egress/request.hpp"

#include "util/http_text.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace airlock::egress {

using util::iequals;
using util::is_ctl;
using util::is_token;
using util::to_lower;
using util::trim_ows;

namespace {

// Quoted in messages: at most 64 bytes, control bytes shown as '?'.
std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s.substr(0, 64))
        out += (is_ctl(c) || c == '"') ? '?' : c;
    if (s.size() > 64) out += "...";
    return out + "\"";
}

HeadError bad(std::string message) {
    return {400, std::move(message)};
}

// A line without its LF and optional CR.
std::string_view chomp(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

std::optional<HeadError> host_problem(std::string_view host) {
    if (host.empty()) return bad("the request names no host");
    if (host.size() > 254) return bad("the host name is longer than 253 bytes");
    for (char c : host)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return bad("the host " + quote(host) + " is not a host name or IP address");
    std::string_view name = host.back() == '.' ? host.substr(0, host.size() - 1) : host;
    std::size_t start = 0;
    while (true) {
        const auto dot = name.find('.', start);
        const auto label = name.substr(start, dot == std::string_view::npos ? dot : dot - start);
        if (label.empty() || label.size() > 63)
            return bad("the host " + quote(host) + " has an empty or over-long label");
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    // "127.1", "0x7f000001", "2130706433": getaddrinfo reads these as IPv4 addresses, so they
    // would slip past host rules written with the dotted quad.
    const std::string text(name);
    in_addr a4{};
    if (inet_aton(text.c_str(), &a4) != 0 && inet_pton(AF_INET, text.c_str(), &a4) != 1)
        return bad("the host " + quote(host) +
                   " is an IPv4 address in a non-standard form (write it as a dotted quad)");
    return std::nullopt;
}

// "host:port" or "[v6]:port"; `default_port` 0 makes the port required.
std::optional<HeadError> parse_authority(std::string_view text, std::uint16_t default_port,
                                         RequestHead& out) {
    std::string_view host, port;
    bool has_port = false;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos)
            return bad("the address " + quote(text) + " has no closing ']'");
        host = text.substr(1, close - 1);
        std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':')
                return bad("the address " + quote(text) + " has bytes after ']'");
            port = rest.substr(1);
            has_port = true;
        }
        in6_addr a6{};
        if (inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1)
            return bad("the address " + quote(host) + " is not an IPv6 address");
        out.host = to_lower(host);
    } else {
        const auto colon = text.rfind(':');
        host = text.substr(0, colon);
        if (colon != std::string_view::npos) {
            port = text.substr(colon + 1);
            has_port = true;
        }
        if (host.find(':') != std::string_view::npos)
            return bad("the address " + quote(text) + " needs brackets around an IPv6 address");
        if (auto problem = host_problem(host)) return problem;
        out.host = to_lower(host);
        if (out.host.back() == '.') out.host.pop_back();
    }
    if (!has_port || port.empty()) {
        if (default_port == 0) return bad("CONNECT needs host:port, got " + quote(text));
        out.port = default_port;
        return std::nullopt;
    }
    unsigned long n = 0;
    if (port.size() > 5) return bad("the port " + quote(port) + " is not 1-65535");
    for (char c : port) {
        if (c < '0' || c > '9') return bad("the port " + quote(port) + " is not 1-65535");
        n = n * 10 + static_cast<unsigned long>(c - '0');
    }
    if (n == 0 || n > 65535) return bad("the port " + quote(port) + " is not 1-65535");
    out.port = static_cast<std::uint16_t>(n);
    return std::nullopt;
}

std::optional<HeadError> parse_absolute(std::string_view target, RequestHead& out) {
    const std::string example = "; send an absolute URI (http://host/path) or CONNECT host:port";
    if (target.front() == '/')
        return bad(out.method + " " + quote(target) +
                   " is an origin-form request, but this is a "
                   "proxy" +
                   example);
    if (target == "*") return bad("\"*\" is not a URI the proxy can forward" + example);
    const auto sep = target.find("://");
    if (sep == std::string_view::npos)
        return bad("the target " + quote(target) + " is not an absolute http:// URI" + example);
    const std::string scheme = to_lower(target.substr(0, sep));
    if (scheme == "https")
        return bad("the proxy does not make TLS connections for https:// URIs; send HTTPS "
                   "through a CONNECT tunnel (HTTPS_PROXY)");
    if (scheme != "http")
        return bad("the scheme " + quote(scheme) + " is not supported (http:// or CONNECT only)");
    std::string_view rest = target.substr(sep + 3);
    const auto end = rest.find_first_of("/?#");
    const std::string_view auth = rest.substr(0, end);
    if (auth.find('@') != std::string_view::npos)
        return bad("user information in the URI (user@host) is not supported");
    if (auto problem = parse_authority(auth, 80, out)) return problem;
    std::string_view path = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    path = path.substr(0, path.find('#'));
    if (path.empty() || path.front() != '/') out.target = "/";
    out.target += path;
    return std::nullopt;
}

std::optional<HeadError> parse_framing(RequestHead& out) {
    std::string te;
    bool has_te = false;
    std::optional<std::string_view> length;
    int hosts = 0;
    for (const auto& h : out.headers) {
        if (iequals(h.name, "host")) ++hosts;
        if (iequals(h.name, "transfer-encoding")) {
            te += (has_te ? "," : "") + h.value;
            has_te = true;
        }
        if (iequals(h.name, "content-length")) {
            if (length && *length != h.value)
                return bad("the request has Content-Length headers that disagree");
            length = h.value;
        }
    }
    if (hosts > 1) return bad("the request has more than one Host header");
    if (has_te) {
        if (length)
            return bad("the request has both Content-Length and Transfer-Encoding (send one)");
        // Every coding must be a token: an empty one ("chunked,") could be read differently
        // upstream.
        std::string_view rest = te, last;
        while (true) {
            const auto comma = rest.find(',');
            last = trim_ows(rest.substr(0, comma));
            if (!is_token(last))
                return {HeadError{501, "Transfer-Encoding " + quote(te) + " is not supported"}};
            if (comma == std::string_view::npos) break;
            rest = rest.substr(comma + 1);
        }
        if (!iequals(last, "chunked"))
            return {HeadError{501, "Transfer-Encoding " + quote(te) +
                                       " is not supported (the last coding must be chunked)"}};
        out.body = BodyFraming::chunked;
    } else if (length) {
        if (length->empty() || length->size() > 18 ||
            !std::all_of(length->begin(), length->end(),
                         [](char c) { return c >= '0' && c <= '9'; }))
            return bad("Content-Length " + quote(*length) + " is not a whole number");
        std::uint64_t n = 0;
        for (char c : *length)
            n = n * 10 + static_cast<std::uint64_t>(c - '0');
        out.body = BodyFraming::length;
        out.content_length = n;
    }
    return std::nullopt;
}

} // namespace

std::optional<std::size_t> find_head_end(std::string_view bytes, std::size_t searched) {
    std::size_t i = searched > 2 ? searched - 2 : 0;
    while (i < bytes.size()) {
        const void* hit = std::memchr(bytes.data() + i, '\n', bytes.size() - i);
        if (!hit) return std::nullopt;
        const auto nl = static_cast<std::size_t>(static_cast<const char*>(hit) - bytes.data());
        if (nl >= 1 && bytes[nl - 1] == '\n') return nl + 1;
        if (nl >= 2 && bytes[nl - 1] == '\r' && bytes[nl - 2] == '\n') return nl + 1;
        i = nl + 1;
    }
    return std::nullopt;
}

std::optional<HeadError> incomplete_head_problem(std::string_view bytes) {
    const auto nl = bytes.find('\n');
    const std::size_t line = nl == std::string_view::npos ? bytes.size() : nl;
    if (line > k_max_request_line + 1)
        return HeadError{414, "the request line is longer than 8 KiB"};
    if (bytes.size() > k_max_head) return HeadError{431, "the request head is larger than 32 KiB"};
    if (static_cast<std::size_t>(std::count(bytes.begin(), bytes.end(), '\n')) >
        k_max_header_lines + 1)
        return HeadError{431, "the request head has more than 100 header lines"};
    return std::nullopt;
}

namespace {

// The request line and the header fields, shared by both request forms; `target` is the raw
// request target.
std::optional<HeadError> parse_common(std::string_view head, RequestHead& out,
                                      std::string_view& target) {
    const auto first_nl = head.find('\n');
    const std::string_view line =
        chomp(head.substr(0, first_nl == std::string_view::npos ? head.size() : first_nl));
    if (line.size() > k_max_request_line)
        return HeadError{414, "the request line is longer than 8 KiB"};
    if (head.size() > k_max_head) return HeadError{431, "the request head is larger than 32 KiB"};

    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
        return bad("the request line " + quote(line) +
                   " is not METHOD TARGET HTTP/1.x with single spaces");
    const std::string_view method = line.substr(0, sp1);
    target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method)) return bad("the method " + quote(method) + " is not a token");
    if (target.empty() || std::any_of(target.begin(), target.end(), is_ctl))
        return bad("the request target is empty or holds control bytes");
    if (version != "HTTP/1.1" && version != "HTTP/1.0") {
        if (version.substr(0, 5) == "HTTP/")
            return HeadError{505, "HTTP version " + quote(version) +
                                      " is not supported (HTTP/1.0 or HTTP/1.1)"};
        return bad("the request line ends in " + quote(version) + ", not HTTP/1.x");
    }
    out.method = std::string(method);

    std::size_t pos = first_nl == std::string_view::npos ? head.size() : first_nl + 1;
    std::size_t count = 0;
    while (pos < head.size()) {
        const auto nl = head.find('\n', pos);
        const std::string_view raw =
            head.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? head.size() : nl + 1;
        const std::string_view h = chomp(raw);
        if (h.empty()) break;
        if (++count > k_max_header_lines)
            return HeadError{431, "the request head has more than 100 header lines"};
        if (h.front() == ' ' || h.front() == '\t')
            return bad("the request continues a header on the next line (obsolete folding)");
        const auto colon = h.find(':');
        if (colon == std::string_view::npos)
            return bad("the header line " + quote(h) + " has no colon");
        const std::string_view name = h.substr(0, colon);
        if (!is_token(name)) return bad("the header name " + quote(name) + " is not a token");
        const std::string_view value = trim_ows(h.substr(colon + 1));
        for (char c : value)
            if (is_ctl(c) && c != '\t')
                return bad("the header " + quote(name) + " holds control bytes");
        out.headers.push_back({std::string(name), std::string(value)});
    }
    return std::nullopt;
}

} // namespace

ParsedHead parse_request_head(std::string_view head) {
    RequestHead out;
    std::string_view target;
    if (auto problem = parse_common(head, out, target)) return *problem;
    if (out.method == "CONNECT") {
        out.kind = RequestKind::connect;
        if (auto problem = parse_authority(target, 0, out)) return *problem;
        return out;
    }
    out.kind = RequestKind::absolute;
    if (auto problem = parse_absolute(target, out)) return *problem;
    if (auto problem = parse_framing(out)) return *problem;
    return out;
}

ParsedHead parse_origin_head(std::string_view head) {
    RequestHead out;
    std::string_view target;
    if (auto problem = parse_common(head, out, target)) return *problem;
    if (out.method == "CONNECT" || target.front() != '/')
        return bad("the credential endpoint takes origin-form requests only (" + out.method +
                   " /<endpoint>/path HTTP/1.1), not " + quote(target));
    if (target.find('#') != std::string_view::npos)
        return bad("the request target " + quote(target) + " holds a fragment ('#')");
    out.kind = RequestKind::absolute;
    out.target = std::string(target);
    if (auto problem = parse_framing(out)) return *problem;
    return out;
}

std::string_view target_path(std::string_view target) {
    return target.substr(0, target.find('?'));
}

std::string authority(std::string_view host, std::uint16_t port) {
    std::string out = host.find(':') != std::string_view::npos ? "[" + std::string(host) + "]"
                                                               : std::string(host);
    return out + ":" + std::to_string(port);
}

std::string upstream_head(const RequestHead& head) {
    // Headers the Connection header lists are hop-by-hop too, except the ones that frame the
    // body: dropping those would let the body be read as a second request.
    std::vector<std::string> listed;
    for (const auto& h : head.headers) {
        if (!iequals(h.name, "connection")) continue;
        std::string_view rest = h.value;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            listed.push_back(to_lower(trim_ows(rest.substr(0, comma))));
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
    }
    static constexpr std::array k_dropped = {
        "host",    "proxy-connection", "proxy-authorization", "connection", "keep-alive", "te",
        "trailer", "upgrade"};
    std::string out = head.method + " " + head.target + " HTTP/1.1\r\nHost: ";
    out += head.host.find(':') != std::string::npos ? "[" + head.host + "]" : head.host;
    if (head.port != 80) out += ":" + std::to_string(head.port);
    out += "\r\n";
    for (const auto& h : head.headers) {
        const std::string name = to_lower(h.name);
        if (std::find(k_dropped.begin(), k_dropped.end(), name) != k_dropped.end()) continue;
        if (name != "content-length" && name != "transfer-encoding" &&
            std::find(listed.begin(), listed.end(), name) != listed.end())
            continue;
        out += h.name + ": " + h.value + "\r\n";
    }
    return out + "Connection: close\r\n\r\n";
}

} // namespace airlock::egress
