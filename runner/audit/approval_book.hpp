// The approvals of one run: signed approval files, --approve flags the policy allows, and a
// prompt on a terminal, tried in that order for each capability the run needs. Every decision
// is kept for the run's events and report.
#pragma once

#include "audit/approval.hpp"
#include "policy/enforce.hpp"
#include "policy/policy.hpp"

#include <functional>
#include <string>
#include <vector>

namespace airlock::audit {

// Asks a person; true only for an explicit yes.
using Prompt = std::function<bool(const std::string& capability, const std::string& detail)>;

class ApprovalBook final : public policy::Approvals {
public:
    // `flags` are the --approve values (checked patterns); `prompt` may be empty (no terminal,
    // or the policy does not allow prompts).
    ApprovalBook(const policy::Policy& policy, std::vector<PresentedApproval> presented,
                 const std::vector<std::string>& flags, Prompt prompt);

    std::optional<std::string> grant(std::string_view capability,
                                     std::string_view detail) const override;
    nlohmann::json records() const override;

    bool anything_presented() const { return !m_presented.empty(); }

private:
    const policy::Policy& m_policy;
    std::vector<PresentedApproval> m_presented; // files and flags, valid or refused
    Prompt m_prompt;
    mutable nlohmann::json m_granted = nlohmann::json::array();
    mutable nlohmann::json m_requested = nlohmann::json::array();
};

} // namespace airlock::audit
