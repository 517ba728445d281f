// libFuzzer target: approval files, which come from outside (a CI secret, an artifact). Even first
// byte: the rest is an envelope, checked as `airlock run --approvals` would; odd first byte: the
// rest is a payload, signed here with the approver's (test) key so that the claims parser behind
// the signature is reached too. Either way: no crash, and an approval is valid only when its
// capabilities, scope and times hold.
#include "audit/approval.hpp"
#include "audit/dsse.hpp"
#include "policy/capability.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

using namespace airlock;

namespace {

// A throwaway key pair for this fuzzer only.
const char* k_private = "-----BEGIN PRIVATE KEY-----\n"
                        "MC4CAQAwBQYDK2VwBCIEIA5u8WlaD6zgSAcgIC+npkGBwwDXDhh8zt9ZSq3HVqur\n"
                        "-----END PRIVATE KEY-----\n";
const char* k_public = "-----BEGIN PUBLIC KEY-----\n"
                       "MCowBQYDK2VwAyEADXQ3r+MzzqEmeoHQaVsYZJilsEkhxawrL+NhaJG1lmo=\n"
                       "-----END PUBLIC KEY-----\n";

const nlohmann::json& approvers() {
    static const nlohmann::json a = nlohmann::json::array(
        {{{"name", "fuzz"},
          {"keyid", *audit::public_key_id(k_public, "fuzz")},
          {"public_key", k_public},
          {"capabilities", nlohmann::json::array({"path:*", "network.open"})}}});
    return a;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::string text = rest;
    if (data[0] & 1) {
        auto env = audit::make_typed_envelope(audit::k_approval_payload_type, rest, k_private, "k");
        if (!env) std::abort();
        text = *env;
    }
    audit::ApprovalUse use;
    use.repository = "org/repo";
    use.commit = "c0ffee";
    use.runs = {"42"};
    use.now = 1'900'000'000;
    use.where = "this run";
    const auto p = audit::check_approval(text, "fuzz.json", approvers(), use);
    if (p.valid) {
        if (p.capabilities.empty() || p.approver != "fuzz") std::abort();
        for (const auto& c : p.capabilities)
            if (policy::capability_problem(c) ||
                (!policy::capability_pattern_covers("path:*", c) && c != "network.open"))
                std::abort();
        if (!p.scope.is_object() || p.scope.empty()) std::abort();
        const auto expires = audit::parse_utc(p.expires_at);
        if (!expires || *expires <= use.now) std::abort();
    } else if (p.refusal.empty()) {
        std::abort();
    }
    (void)p.to_json().dump();
    return 0;
}
