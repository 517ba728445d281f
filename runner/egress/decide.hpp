// The policy decision for one request, and the words that explain it: which rule decided and,
// for a refusal, how a policy would allow the request.
#pragma once

#include "egress/address.hpp"
#include "egress/config.hpp"
#include "egress/request.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::egress {

enum class Outcome { allow, deny, cut };
const char* to_string(Outcome outcome);

struct Verdict {
    Outcome outcome = Outcome::deny;
    std::string rule;   // e.g. `network.allow "api.example.com:443"`, "no allow rule", "audit"
    std::string reason; // one sentence
};

// Host rules and, for plain HTTP, the method. Deny rules apply in both modes; in audit mode
// everything else is allowed.
Verdict decide(const Config& config, RequestKind kind, std::string_view method,
               std::string_view host, std::uint16_t port);

// Refusals the connection handler words the same way everywhere.
Verdict private_address_verdict(std::string_view host, const std::vector<IpAddress>& refused);
Verdict sni_mismatch_verdict(std::string_view connect_host, std::string_view sni_or_problem,
                             bool have_sni);
Verdict budget_verdict(std::string_view host, std::uint64_t budget, Outcome outcome);

// A complete HTTP/1.1 response that refuses the request: `X-Airlock-Deny-Reason` carries the
// reason on one line, the body says `airlock egress: <reason>`.
std::string refusal_response(int status, std::string_view reason);

} // namespace airlock::egress
