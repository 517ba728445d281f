// Applying a policy to one run: defaults fill what the request leaves open, and anything the
// request asks beyond a ceiling is refused unless an approval grants it.
#pragma once

#include "config/run_options.hpp"
#include "policy/policy.hpp"
#include "util/result.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::policy {

// The hook for approvals. Returns who or what granted `capability` for this run, or nothing.
class Approvals {
public:
    virtual ~Approvals() = default;
    virtual std::optional<std::string> grant(std::string_view capability,
                                             std::string_view detail) const = 0;
    // What was presented, granted and asked for so far ({presented, granted, requested}), for
    // the run's events and report; null when nothing is recorded.
    virtual nlohmann::json records() const { return nullptr; }
};

// Until approvals exist, nothing is granted beyond the policy.
class NoApprovals final : public Approvals {
public:
    std::optional<std::string> grant(std::string_view, std::string_view) const override {
        return std::nullopt;
    }
};

// A capability the run uses, and what allowed it.
struct Grant {
    std::string capability; // "workspace.bind-rw"
    std::string detail;     // what was asked
    std::string granted_by; // "policy permissive" or the approval
};

struct Decision {
    std::vector<Grant> capabilities;
    std::vector<std::string> env_names;    // variables that cross, names only
    std::vector<std::string> secret_names; // secrets injected, names only
    std::string secret_inject;             // "env" or "file"
};

// Fills `opts` fields the request left at their built-in default from the policy, checks every
// requested value against its ceiling, and names what the run uses beyond plain defaults.
// Refusals are ErrorKind::refused with the field, the request and the ceiling.
util::Result<Decision> enforce(const Policy& policy, const config::RunRequest& req,
                               config::RunOptions& opts, const Approvals& approvals);

// What a run with these effective settings uses beyond `reference` (the standard preset, for
// reports under looser policies): each capability that `reference` would have refused or
// required an approval for, granted here by `granted_by`.
std::vector<Grant> beyond(const Policy& reference, const config::RunOptions& effective,
                          const std::string& granted_by);

// The protected-path glob that `path` (relative to the workspace) falls under, if any.
std::optional<std::string> protected_by(const Policy& policy, std::string_view path);

} // namespace airlock::policy
