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

// A credential endpoint: requests to /<name>/... on credential_listen go to
// https://host:port<base_path>/... with `header: template` (the secret in place of {secret}).
struct Credential {
    std::string name; // [a-z0-9][a-z0-9_-]{0,62}
    std::string host; // lower case DNS name or IP literal (IPv6 without brackets)
    std::uint16_t port = 443;
    std::string base_path;       // "" or "/x/y": no trailing "/", "?" or "#"
    std::string header;          // an HTTP token, not a framing or Host header
    std::string header_template; // holds "{secret}" exactly once
    std::optional<std::uint64_t> max_requests;
    std::optional<std::uint64_t> max_bytes; // up and down, over the endpoint's whole run
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
    int connect_timeout_ms = 10000;      // per upstream address tried
    std::vector<Credential> credentials; // none: no credential endpoint
    std::string credential_listen;       // set exactly when credentials is not empty
    std::string ca_file;                 // PEM bundle the upstreams' certificates must chain to
};

// Every field checked; unknown fields, missing required ones and bad values are errors that name
// the field as a JSON pointer, e.g. `/allow/2: "*.*.com" is not a host pattern (...)`.
util::Result<Config> parse_config(std::string_view json_text);

} // namespace airlock::egress
