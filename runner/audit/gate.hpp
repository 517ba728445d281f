// `airlock gate`: decides from a run's output directory whether its result may be merged. The
// checks are the signature and its subjects, the event chain, the policy's identity, the image
// and the policy's gate rules (verdict.hpp), each reported on its own.
#pragma once

#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace airlock::audit {

// unusable: the check's input is missing or malformed (events.jsonl, report.dsse.json), so
// nothing could be decided; the gate then exits 2.
enum class CheckStatus { pass, fail, skip, needs_approval, unusable };
const char* to_string(CheckStatus s); // "PASS", "FAIL", "SKIP", "ASK", "BAD"

struct GateCheck {
    std::string id; // "signature", "subjects", "events", "changes", "artifacts", "policy",
                    // "image", then the gate rules
    CheckStatus status;
    std::string reason;
};

// A policy given to the gate (--policy): its effective values and digest.
struct GatePolicy {
    std::string source;    // "preset standard", "policies/org.json + preset strict"
    nlohmann::json values; // policy::to_json(p)["values"]
    std::string sha256;    // policy::digest(p)
};

struct GateOptions {
    std::filesystem::path out;
    std::optional<GatePolicy> policy;        // without it, report.json's recorded policy is used
    std::optional<std::string> public_key;   // PEM (--pubkey); without it, no signature check
    std::string public_key_name;             // the file, for messages
    std::vector<std::string> approval_files; // --approvals: signed approvals for this report
    std::time_t now = 0;                     // for approval expiry; 0 means the current time
};

struct GateResult {
    std::vector<GateCheck> checks;
    std::string signed_by; // keyid that verified the envelope, "" when none
    // {presented: [...], consumed: [{capability, approval_id, approver, source}]}
    nlohmann::json approvals = nlohmann::json::object();
    bool passed() const;
    int exit_code() const; // gate_exit::unusable, fail, needs_approval or pass, first that holds
    nlohmann::json to_json() const;
};

// Exit codes of `airlock gate`: 2 when some input is unusable (missing or malformed), 3 when
// nothing failed but a check needs an approval.
namespace gate_exit {
inline constexpr int pass = 0;
inline constexpr int fail = 1;
inline constexpr int unusable = 2;
inline constexpr int needs_approval = 3;
} // namespace gate_exit

// Runs every check. An error (invalid_input / not_found) means the input is unusable: OUT or
// report.json missing, report.json not a JSON object. A missing or malformed events.jsonl or
// envelope is an `unusable` check instead, so the other checks are still reported.
util::Result<GateResult> run_gate(const GateOptions& options);

// The lines printed for a result: "PASS  signature: verified ..." per check.
std::string format_checks(const GateResult& result);

} // namespace airlock::audit
