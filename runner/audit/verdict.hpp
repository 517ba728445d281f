// What a run did wrong, and whether it passes: violations are facts read from the report;
// checks apply the policy's gate section to them. `run` writes both into report.json; `airlock
// gate` recomputes the checks from the (verified) report and the policy it is given.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace airlock::audit {

// Every rule gate.fail_on may name, in the order checks are listed.
const std::vector<std::string>& gate_rules();

// The violations in a report (without its "violations" and "verdict"): each {rule, severity
// ("error" or "warning"), message, evidence, location (a workspace path, or null)}.
nlohmann::json violations_of(const nlohmann::json& report);

// One check per gate rule and limit: {id, title, status ("pass", "fail", "not_enforced"),
// message}. `policy_values` is the "values" object of policy::to_json (its "gate" section is
// read). `signed_by` is empty when no signature was verified (the "unsigned" rule).
// A check of a rule in gate.ask_on whose violations are not all approved is "needs_approval";
// `approved` are capability patterns granted at the gate (protected paths, refused hosts), whose
// violations no longer count.
nlohmann::json gate_checks(const nlohmann::json& report, const nlohmann::json& policy_values,
                           const std::string& signed_by,
                           const std::vector<std::string>& approved = {});

// The capability whose approval clears a violation ("path:<path>", "network.host:<h>:<port>").
std::optional<std::string> approvable_capability(const nlohmann::json& violation);

// {passed, needs_approval, reasons}: passed when no check failed or needs an approval;
// needs_approval when some check needs one and none failed; a reason per such check.
nlohmann::json verdict_of(const nlohmann::json& checks);

} // namespace airlock::audit
