#include "policy/patterns.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <vector>

namespace airlock::policy {

bool prefix_match(std::string_view pattern, std::string_view text) {
    if (!pattern.empty() && pattern.back() == '*') {
        pattern.remove_suffix(1);
        return text.substr(0, pattern.size()) == pattern;
    }
    return pattern == text;
}

bool prefix_covers(std::string_view outer, std::string_view inner) {
    if (!outer.empty() && outer.back() == '*') {
        outer.remove_suffix(1);
        return inner.substr(0, outer.size()) == outer;
    }
    return outer == inner;
}

std::optional<std::string> prefix_pattern_problem(std::string_view p) {
    if (p.empty()) return "is empty (use \"*\" for everything)";
    for (std::size_t i = 0; i < p.size(); ++i) {
        char c = p[i];
        if (c == ' ' || c == '\t' || c == '\n') return "contains white space";
        if (c == '*' && i + 1 != p.size())
            return "has a * before the end (only a trailing * is supported, e.g. "
                   "\"ghcr.io/org/*\")";
    }
    return std::nullopt;
}

std::optional<std::string> name_pattern_problem(std::string_view p) {
    if (p == "*") return std::nullopt;
    if (auto problem = prefix_pattern_problem(p)) return problem;
    std::string_view name = p.back() == '*' ? p.substr(0, p.size() - 1) : p;
    if (name.empty() || (name[0] >= '0' && name[0] <= '9'))
        return "is not a variable name (use NAME or PREFIX*, e.g. \"LC_*\")";
    for (char c : name)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return "is not a variable name (use NAME or PREFIX*, e.g. \"LC_*\")";
    return std::nullopt;
}

namespace {
bool valid_label(std::string_view l) {
    if (l.empty() || l.size() > 63 || l.front() == '-' || l.back() == '-') return false;
    for (char c : l)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    return true;
}

// The ports of a ":80,443" list into `out`, sorted and without duplicates; or why they are not.
std::optional<std::string> parse_ports(std::string_view list, std::vector<std::uint16_t>& out) {
    std::size_t start = 0;
    while (true) {
        const auto comma = list.find(',', start);
        const std::string_view item = list.substr(
            start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        if (item.empty())
            return list.empty() ? std::string("has no port after ':' (use host:1-65535, or a list "
                                              "such as host:80,443)")
                                : "has an empty item in its port list \"" + std::string(list) +
                                      "\" (use e.g. host:80,443)";
        unsigned long n = 0;
        if (item.size() <= 5 && item.find_first_not_of("0123456789") == std::string_view::npos)
            for (char c : item)
                n = n * 10 + static_cast<unsigned long>(c - '0');
        if (n == 0 || n > 65535)
            return "has an invalid port \"" + std::string(item) +
                   "\" (ports are 1-65535, e.g. host:443 or host:80,443)";
        out.push_back(static_cast<std::uint16_t>(n));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return std::nullopt;
}

// Parses `text` into `rule`, or says why it is not a host rule.
std::optional<std::string> parse_rule(std::string_view text, HostRule& rule) {
    std::string_view host = text;
    if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
        if (auto problem = parse_ports(text.substr(colon + 1), rule.ports)) return problem;
        host = text.substr(0, colon);
    }
    if (host.empty()) return "has no host (use e.g. \"api.example.com\")";
    for (char c : host)
        if (c >= 'A' && c <= 'Z') return "has upper-case letters (host names are lower case)";
    rule.wildcard = host.substr(0, 2) == "*.";
    if (rule.wildcard) host.remove_prefix(2);
    if (host.find('*') != std::string_view::npos)
        return "is not a host pattern (use \"*.example.com\")";
    std::size_t start = 0;
    while (true) {
        auto dot = host.find('.', start);
        std::string_view label = host.substr(
            start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (!valid_label(label))
            return "is not a host name (letters, digits, '-' and dots; e.g. \"api.example.com\")";
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    rule.host = std::string(host);
    return std::nullopt;
}
} // namespace

std::optional<std::string> host_rule_problem(std::string_view text) {
    HostRule rule;
    return parse_rule(text, rule);
}

std::optional<HostRule> parse_host_rule(std::string_view text) {
    HostRule rule;
    if (parse_rule(text, rule)) return std::nullopt;
    return rule;
}

namespace {
// `host` is a strict subdomain of `domain`.
bool is_subdomain(std::string_view host, std::string_view domain) {
    return host.size() > domain.size() + 1 && host.substr(host.size() - domain.size()) == domain &&
           host[host.size() - domain.size() - 1] == '.';
}
} // namespace

bool host_rule_matches(const HostRule& rule, std::string_view host, std::uint16_t port) {
    if (!rule.ports.empty() && !std::binary_search(rule.ports.begin(), rule.ports.end(), port))
        return false;
    return rule.wildcard ? is_subdomain(host, rule.host) : host == rule.host;
}

bool host_rule_covers(const HostRule& outer, const HostRule& inner) {
    // Every port `inner` reaches is one of `outer`'s (and "any port" only where `outer` says so).
    if (!outer.ports.empty() &&
        (inner.ports.empty() || !std::includes(outer.ports.begin(), outer.ports.end(),
                                               inner.ports.begin(), inner.ports.end())))
        return false;
    if (!outer.wildcard) return !inner.wildcard && inner.host == outer.host;
    return inner.wildcard ? (inner.host == outer.host || is_subdomain(inner.host, outer.host))
                          : is_subdomain(inner.host, outer.host);
}

std::optional<Cidr> parse_cidr(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos || slash + 1 == text.size() || text.size() - slash > 4)
        return std::nullopt;
    std::string addr(text.substr(0, slash));
    int bits = 0;
    for (char c : text.substr(slash + 1)) {
        if (c < '0' || c > '9') return std::nullopt;
        bits = bits * 10 + (c - '0');
    }
    Cidr c;
    if (inet_pton(AF_INET, addr.c_str(), c.addr) == 1) {
        if (bits > 32) return std::nullopt;
    } else if (inet_pton(AF_INET6, addr.c_str(), c.addr) == 1) {
        c.v6 = true;
        if (bits > 128) return std::nullopt;
    } else {
        return std::nullopt;
    }
    c.bits = bits;
    return c;
}

bool cidr_covers(const Cidr& outer, const Cidr& inner) {
    if (outer.v6 != inner.v6 || inner.bits < outer.bits) return false;
    int full = outer.bits / 8;
    for (int i = 0; i < full; ++i)
        if (outer.addr[i] != inner.addr[i]) return false;
    int rest = outer.bits % 8;
    if (rest == 0) return true;
    auto mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (outer.addr[full] & mask) == (inner.addr[full] & mask);
}

namespace {
bool segment_match(std::string_view p, std::string_view s) {
    // Iterative * / ? matching within one path segment.
    std::size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
    while (si < s.size()) {
        if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
            ++pi;
            ++si;
        } else if (pi < p.size() && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (star != std::string_view::npos) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '*')
        ++pi;
    return pi == p.size();
}

std::vector<std::string_view> split(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (true) {
        auto slash = s.find('/', start);
        out.push_back(s.substr(start, slash == std::string_view::npos ? std::string_view::npos
                                                                      : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return out;
}

// segment_match one level up: "**" is the star and a segment the character. Backtracking only
// to the latest "**" bounds this by pattern segments x path segments; trying every split point
// at every "**" was exponential in their number, and the paths come from the container.
bool segments_match(const std::vector<std::string_view>& p,
                    const std::vector<std::string_view>& s) {
    std::size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
    while (si < s.size()) {
        if (pi < p.size() && p[pi] == "**") {
            star = pi++;
            mark = si;
        } else if (pi < p.size() && segment_match(p[pi], s[si])) {
            ++pi;
            ++si;
        } else if (star != std::string_view::npos) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == "**")
        ++pi;
    return pi == p.size();
}
} // namespace

bool glob_match(std::string_view pattern, std::string_view path) {
    return segments_match(split(pattern), split(path));
}

std::optional<std::string> path_glob_problem(std::string_view p) {
    if (p.empty()) return "is empty";
    if (p.front() == '/')
        return "is absolute (paths are relative to the workspace, e.g. \".github/workflows/**\")";
    if (p.find('\\') != std::string_view::npos) return "contains a backslash (use '/')";
    for (auto seg : split(p)) {
        if (seg.empty()) return "has an empty segment (\"//\" or a trailing '/')";
        if (seg == "." || seg == "..") return "has a \".\" or \"..\" segment";
        if (seg != "**" && seg.find("**") != std::string_view::npos)
            return "uses ** inside a segment (** must be a whole segment, e.g. \"docs/**\")";
    }
    return std::nullopt;
}

} // namespace airlock::policy
