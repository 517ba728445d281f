// approvals.approvers: who may say yes. Each approver is a name, an Ed25519 public key (inline
// PEM, or a file next to the policy) and, optionally, the capability patterns they may approve.
// Canonical form: {name, keyid, public_key (PEM), capabilities (array, or null for any)}.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace airlock::policy {

struct Policy;

struct ApproverProblem {
    std::string pointer;
    std::string message;
};

// Checks and canonicalises the approvers list at `ptr`; problems are appended, and nullopt
// returned when there were any. Relative key files are read from `dir`.
std::optional<nlohmann::json> parse_approvers(const nlohmann::json& v, const std::string& ptr,
                                              const std::filesystem::path& dir,
                                              std::vector<ApproverProblem>& problems);

// A later layer may drop approvers or narrow what they may approve; never add one or change a
// key. A first list (over null) is free.
bool approvers_tighten(const nlohmann::json& old_list, const nlohmann::json& new_list);

// "alice (keyid 1a2b3c4d..., path:*), bob (keyid ..., any)", or "none".
std::string format_approvers(const nlohmann::json& v);

// The approvers (canonical entries) of `approvers` who may approve `capability`.
std::vector<nlohmann::json> approvers_for(const nlohmann::json& approvers,
                                          const std::string& capability);

// What to tell someone whose run needs `capability`: who can approve it and how, from the
// policy's approvals section ("" when the policy lists no way at all, with that said).
std::string approval_hint(const Policy& policy, const std::string& capability);

} // namespace airlock::policy
