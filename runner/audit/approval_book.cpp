#include "audit/approval_book.hpp"

#include "policy/approvers.hpp"
#include "policy/capability.hpp"

namespace airlock::audit {

using nlohmann::json;

ApprovalBook::ApprovalBook(const policy::Policy& policy, std::vector<PresentedApproval> presented,
                           const std::vector<std::string>& flags, Prompt prompt)
    : m_policy(policy), m_presented(std::move(presented)), m_prompt(std::move(prompt)) {
    const json& allowed = policy.get("approvals/flag");
    for (const auto& f : flags) {
        PresentedApproval p;
        p.source = "--approve";
        p.capabilities = {f};
        bool ok = allowed.is_null();
        for (const auto& a : policy.strings("approvals/flag"))
            ok = ok || policy::capability_pattern_covers(a, f);
        p.valid = ok;
        if (!ok) {
            std::string list;
            for (const auto& a : policy.strings("approvals/flag"))
                list += (list.empty() ? "" : ", ") + a;
            p.refusal = "approvals.flag (from " + policy.origin("approvals/flag") +
                        ") does not let a flag approve " + f + " (it allows " +
                        (list.empty() ? std::string("none") : list) + ")";
        }
        m_presented.push_back(std::move(p));
    }
}

std::optional<std::string> ApprovalBook::grant(std::string_view capability,
                                               std::string_view detail) const {
    const std::string cap(capability);
    auto granted = [&](const PresentedApproval* p, std::string by) {
        json g = {{"capability", cap}, {"detail", std::string(detail)}, {"by", by}};
        if (p) {
            g["source"] = p->source;
            if (!p->id.empty()) g["approval_id"] = p->id;
            if (!p->approver.empty()) g["approver"] = p->approver;
        }
        m_granted.push_back(g);
        return std::optional<std::string>(std::move(by));
    };
    for (const auto& p : m_presented) {
        if (!p.valid || p.source == "--approve") continue;
        for (const auto& c : p.capabilities)
            if (policy::capability_covers(c, cap))
                return granted(&p,
                               "approval " + p.id + " by " + p.approver + " (" + p.source + ")");
    }
    for (const auto& p : m_presented) {
        if (!p.valid || p.source != "--approve") continue;
        if (policy::capability_covers(p.capabilities.front(), cap))
            return granted(&p, "flag --approve " + p.capabilities.front() + " (approvals.flag)");
    }
    if (m_prompt && m_policy.get("approvals/prompt") == true && m_prompt(cap, std::string(detail)))
        return granted(nullptr, "answered yes on the terminal");
    json names = json::array();
    for (const auto& a : policy::approvers_for(m_policy.get("approvals/approvers"), cap))
        names.push_back(a.value("name", ""));
    // Refused approvals that named this capability say why they did not count.
    json refused = json::array();
    for (const auto& p : m_presented)
        if (!p.valid) {
            bool named = p.capabilities.empty(); // unknown when the signature did not verify
            for (const auto& c : p.capabilities)
                named = named || policy::capability_pattern_covers(c, cap) ||
                        policy::capability_covers(c, cap);
            if (named) refused.push_back(p.source + ": " + p.refusal);
        }
    m_requested.push_back({{"capability", cap},
                           {"detail", std::string(detail)},
                           {"approvers", names},
                           {"refused", refused},
                           {"hint", policy::approval_hint(m_policy, cap)}});
    return std::nullopt;
}

json ApprovalBook::records() const {
    json presented = json::array();
    for (const auto& p : m_presented)
        presented.push_back(p.to_json());
    return {{"presented", presented}, {"granted", m_granted}, {"requested", m_requested}};
}

} // namespace airlock::audit
