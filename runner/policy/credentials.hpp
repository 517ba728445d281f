// The policy's `credentials` section: API keys that never enter the agent container. Each entry
// names a secret, the HTTPS upstream it is for and the header that carries it; the egress sidecar
// holds the value and adds the header to requests the task sends to its local endpoint,
// http://127.0.0.1:3129/<name>/... (docs/credentials.md).
#pragma once

#include "config/run_options.hpp"
#include "policy/policy.hpp"
#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace airlock::policy {

inline constexpr const char* k_endpoint_placeholder = "{endpoint}";
inline constexpr const char* k_secret_placeholder = "{secret}";

// One problem in a credentials value: the JSON pointer below the section, and the message.
struct CredentialProblem {
    std::string pointer;
    std::string message;
};

// Checks the section (an object: endpoint name -> entry) and returns it canonical (upstream
// without a trailing slash, max_bytes in bytes, absent budgets as null, env as an object), or
// nullopt with every problem added to `problems`.
std::optional<nlohmann::json> parse_credentials(const nlohmann::json& section,
                                                const std::string& pointer,
                                                std::vector<CredentialProblem>& problems);

// Tighten-only layering: `neu` may drop entries and lower budgets; adding an entry or changing
// one's secret, upstream, header or env loosens (or changes) what the old layer allowed.
bool credentials_tighten(const nlohmann::json& old, const nlohmann::json& neu);

// "openai (https://api.openai.com), anthropic (https://api.anthropic.com)", or "none".
std::string format_credentials(const nlohmann::json& value);

// The credentials a run asked for (`--credential NAME[=@FILE]`, task file `credentials`), read
// from the policy and filled with their values: from airlock's environment (the entry's
// `secret`) or from FILE. Also checks that no value reaches the container another way.
// Errors: refused (an entry the policy does not define), invalid_input (unset or unusable value,
// a proxied network mode missing, a name clash with --env).
util::Result<std::vector<config::Credential>> resolve_credentials(
    const Policy& policy, const config::RunRequest& req, const config::RunOptions& opts,
    const std::function<std::optional<std::string>(const std::string&)>& lookup_env);

} // namespace airlock::policy
