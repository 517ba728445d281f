// What a run did wrong, and whether it passes: violations are facts read from the report;
// checks apply the policy's gate section to them. `run` writes both into report.json; `airlock
// gate` recomputes the checks from the (verified) report and the policy it is given.
#pragma once

#include <nlohmann/json.hpp>

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
nlohmann::json gate_checks(const nlohmann::json& report, const nlohmann::json& policy_values,
                           const std::string& signed_by);

// {passed, reasons}: passed when no enforced check failed; a reason per failed check.
nlohmann::json verdict_of(const nlohmann::json& checks);

} // namespace airlock::audit
