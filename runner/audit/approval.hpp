// Signed approvals: an approver's Ed25519 signature over "these capabilities, for this scope,
// until then", in a DSSE envelope of its own payload type, so that an approval can be made
// ahead of time (`airlock approve`), passed to a CI run or a gate, checked, and recorded.
#pragma once

#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::audit {

inline constexpr std::string_view k_approval_payload_type = "application/vnd.airlock.approval+json";
inline constexpr std::string_view k_approval_type = "https://airlock.dev/approval/v1";

// What an approval is bound to; every field that is set must match where it is used.
struct ApprovalScope {
    std::optional<std::string> repository;    // "org/repo" (GITHUB_REPOSITORY, CI_PROJECT_PATH)
    std::optional<std::string> commit;        // full commit SHA
    std::optional<std::string> run;           // CI run id (GITHUB_RUN_ID, CI_PIPELINE_ID)
    std::optional<std::string> report_sha256; // SHA-256 of a run's report.json
    bool empty() const { return !repository && !commit && !run && !report_sha256; }
};

struct ApprovalClaims {
    std::string id; // random, 16 hex digits: names the approval in reports
    std::vector<std::string> capabilities;
    ApprovalScope scope;
    std::time_t issued_at = 0;
    std::time_t expires_at = 0;
    std::string reason;
};

// The signed approval (envelope JSON, one line). Capabilities must be well formed and the scope
// set; the key is a PKCS#8 PEM Ed25519 private key (`airlock keygen`).
util::Result<std::string> make_approval(const ApprovalClaims& claims, std::string_view private_pem,
                                        const std::string& key_name);

// Where an approval is used: the run's (or the gated report's) identity, and the time.
struct ApprovalUse {
    std::optional<std::string> repository;
    std::optional<std::string> commit;
    std::vector<std::string> runs;            // the CI run id and airlock's run id
    std::optional<std::string> report_sha256; // set at the gate and by apply, not by run
    std::time_t now = 0;
    std::string where; // "this run", "the report" - for messages
};

// One approval as presented: valid, or refused with the reason.
struct PresentedApproval {
    std::string source; // the file, or "--approve"
    std::string id;
    std::vector<std::string> capabilities;
    std::string approver; // name from approvals.approvers ("" when not known)
    std::string keyid;
    nlohmann::json scope = nlohmann::json::object();
    std::string expires_at;
    std::string reason;
    bool valid = false;
    std::string refusal;
    nlohmann::json to_json() const;
};

// Checks the approval `text` from `source` against the policy's approvers (canonical
// approvals.approvers: null or an array) and where it is used. Never throws on bad input.
PresentedApproval check_approval(std::string_view text, const std::string& source,
                                 const nlohmann::json& approvers, const ApprovalUse& use);

// Reads and checks each approval file (at most 64 KiB); a file that cannot be read is an
// invalid_input error naming it, everything else is a PresentedApproval (valid or refused).
util::Result<std::vector<PresentedApproval>>
check_approval_files(const std::vector<std::string>& files, const nlohmann::json& approvers,
                     const ApprovalUse& use);

// "2026-12-03T08:00:00Z" and back (UTC, seconds).
std::string format_utc(std::time_t t);
std::optional<std::time_t> parse_utc(const std::string& text);

} // namespace airlock::audit
