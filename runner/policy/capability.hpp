// Capabilities: the closed list of things a policy can put behind an explicit approval. A
// capability is a name ("network.open") or a name with an argument ("path:.github/ci.yml");
// a pattern is the same with a pattern argument ("path:.github/**", "network.host:*"), as
// written in approvals.required, approvals.flag, an approver's list, --approve and approvals.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::policy {

struct CapabilityKind {
    std::string_view name;        // "network.open", or "path" for "path:<glob>"
    std::string_view argument;    // "" for plain names; what the argument is, for docs
    std::string_view description; // one line, for docs and `airlock approve --list`
};
const std::vector<CapabilityKind>& capability_kinds();

// Why `pattern` is not a capability pattern (unknown name, missing or bad argument), with the
// closest name or the new spelling of a renamed one; nullopt when it is one.
std::optional<std::string> capability_problem(std::string_view pattern);

// Whether `pattern` covers the capability `capability` (both well formed). An argument "*"
// covers every argument of its kind.
bool capability_covers(std::string_view pattern, std::string_view capability);

// Whether every capability `inner` covers is covered by `outer` (for layering: a later list
// may only narrow). Conservative: false when unsure.
bool capability_pattern_covers(std::string_view outer, std::string_view inner);

// Whether any of `patterns` covers `capability`.
bool any_covers(const std::vector<std::string>& patterns, std::string_view capability);

} // namespace airlock::policy
