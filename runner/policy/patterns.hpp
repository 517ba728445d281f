// The pattern languages a policy uses, each small enough that "does A cover B" is decidable:
// prefix patterns (images, variable names), host rules, CIDRs and workspace path globs.
#pragma once

#include "util/closest.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::policy {

// "exact" or "prefix*" (a lone "*" matches everything).
bool prefix_match(std::string_view pattern, std::string_view text);
// Every text `inner` matches, `outer` matches too.
bool prefix_covers(std::string_view outer, std::string_view inner);
// Why `pattern` is not a prefix pattern, or nullopt when it is.
std::optional<std::string> prefix_pattern_problem(std::string_view pattern);
// Same for environment-variable name patterns (NAME, PREFIX*, *).
std::optional<std::string> name_pattern_problem(std::string_view pattern);

// "host", "*.domain", each optionally ":port" or a port list ":80,443". "*.example.com" matches
// subdomains only.
struct HostRule {
    std::string host; // lower case, without the "*." of a wildcard
    bool wildcard = false;
    std::vector<std::uint16_t> ports; // sorted, no duplicates; empty: any port
};
std::optional<HostRule> parse_host_rule(std::string_view text);
std::optional<std::string> host_rule_problem(std::string_view text);
bool host_rule_matches(const HostRule& rule, std::string_view host, std::uint16_t port);
bool host_rule_covers(const HostRule& outer, const HostRule& inner);

// "10.0.0.0/8", "fd00::/8".
struct Cidr {
    unsigned char addr[16] = {};
    bool v6 = false;
    int bits = 0;
};
std::optional<Cidr> parse_cidr(std::string_view text);
bool cidr_covers(const Cidr& outer, const Cidr& inner);

// Workspace path globs, matched against paths relative to the workspace root with '/'
// separators: "*" and "?" stay within a segment, "**" spans any number of segments.
bool glob_match(std::string_view pattern, std::string_view path);
std::optional<std::string> path_glob_problem(std::string_view pattern);

using util::closest_in;
using util::edit_distance;

} // namespace airlock::policy
