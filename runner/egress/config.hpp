// The sidecar's configuration: one JSON object the runner passes as `--config`.
#pragma once

#include "policy/patterns.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::egress {

enum class Mode { allowlist, audit };

// A host rule with the text it came from, which decision lines and messages quote.
struct NamedRule {
    std::string text;
    policy::HostRule rule;
};

struct NamedCidr {
    std::string text;
    policy::Cidr cidr;
};

struct Config {
    Mode mode = Mode::allowlist;
    std::vector<NamedRule> allow;
    std::vector<NamedRule> deny; // wins over allow, in both modes
    std::vector<std::string> methods;
    std::vector<NamedCidr> allow_cidrs;
    std::optional<std::uint64_t> upload_budget; // bytes per host; none: no budget
    std::string listen;
    int max_connections = 512;
    int head_timeout_ms = 10000;
    int hello_timeout_ms = 10000;
    int connect_timeout_ms = 10000; // per upstream address tried
};

// Every field checked; unknown fields, missing required ones and bad values are errors that name
// the field as a JSON pointer, e.g. `/allow/2: "*.*.com" is not a host pattern (...)`.
util::Result<Config> parse_config(std::string_view json_text);

} // namespace airlock::egress
