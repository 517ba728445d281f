#include "audit/render.hpp"

#include "audit/render_detail.hpp"
#include "audit/verdict.hpp"

#include <map>

namespace airlock::audit {

using detail::at;
using detail::text;
using nlohmann::json;

namespace {

// GitHub keeps at most 25,000 results per run; a run with more is refused.
constexpr std::size_t k_max_results = 5000;

// Short descriptions of the gate rules; unknown rules fall back to their id.
const std::map<std::string, std::string>& descriptions() {
    static const std::map<std::string, std::string> d = {
        {"task-failed", "The task did not succeed"},
        {"timeout", "The task ran into its time limit"},
        {"oom", "The task was killed for running out of memory"},
        {"policy-violation", "The run was stopped by the policy"},
        {"protected-change", "The task changed a protected path"},
        {"enforcement-mismatch", "The engine did not apply the planned hardening"},
        {"network-denied", "The task tried to reach the network outside its allowlist"},
        {"secret-exposed", "A changed file held a secret value"},
        {"unsigned", "The report carries no verified signature"},
        {"approval-missing", "A capability needed an approval that was not given"},
        {"max-changed-files", "The task changed more files than the gate allows"},
    };
    return d;
}

// "protected-change" -> "ProtectedChange": SARIF names are identifiers, ids stay as in reports.
std::string rule_name(const std::string& id) {
    std::string out;
    bool upper = true;
    for (char c : id) {
        if (c == '-' || c == '_' || c == '.' || c == ' ') {
            upper = true;
            continue;
        }
        out += upper && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
        upper = false;
    }
    return out.empty() ? "Rule" : out;
}

json rule(const std::string& id, const std::string& help) {
    const auto& d = descriptions();
    const auto it = d.find(id);
    const std::string summary = it != d.end() ? it->second : "airlock rule " + id;
    // Only refusals of the allowlist are warnings by nature; the rest fail a gate.
    const bool warning = id == "network-denied";
    return {{"id", id},
            {"name", rule_name(id)},
            {"shortDescription", {{"text", summary}}},
            {"fullDescription", {{"text", summary + " (airlock rule \"" + id + "\")."}}},
            {"help", {{"text", help}}},
            {"defaultConfiguration", {{"level", warning ? "warning" : "error"}}},
            {"properties",
             {{"tags", {"airlock", "security"}}, {"security-severity", warning ? "4.0" : "7.0"}}}};
}

std::string level_of(const json& violation) {
    return at(violation, {"severity"}) == "error" ? "error" : "warning";
}

} // namespace

json render_sarif(const json& report) {
    const json r = with_verdict(report);
    json rules = json::array();
    std::map<std::string, std::size_t> index;
    auto add_rule = [&](const std::string& raw, const std::string& help) {
        const std::string id = to_valid_utf8(raw);
        if (id.empty() || index.count(id)) return;
        index[id] = rules.size();
        rules.push_back(rule(id, to_valid_utf8(help)));
    };
    // Rule texts stay the same from run to run; what happened goes into results.
    for (const auto& c : at(r, {"checks"}))
        add_rule(text(at(c, {"id"})), "Gate check \"" + text(at(c, {"title"})) +
                                          "\": fails the run when the policy's gate section "
                                          "enforces it (docs/policy.md).");
    for (const auto& v : at(r, {"violations"}))
        add_rule(text(at(v, {"rule"})), "A fact of the run that the policy's gate section can "
                                        "fail on (docs/report.md).");

    json results = json::array();
    std::map<std::string, std::size_t> seen;
    std::size_t total = 0;
    for (const auto& v : at(r, {"violations"})) {
        ++total;
        const std::string id = to_valid_utf8(text(at(v, {"rule"})));
        if (id.empty()) continue;
        if (results.size() == k_max_results) continue;
        const std::string fp = fingerprint_of(v);
        const std::string fingerprint = fingerprint_of(v, seen[fp]++);
        std::string message = to_valid_utf8(text(at(v, {"message"})));
        if (message.empty()) message = "airlock rule " + id;
        json location = {{"physicalLocation",
                          {{"artifactLocation", {{"uri", to_valid_utf8(location_of(v))}}},
                           {"region", {{"startLine", 1}}}}}};
        results.push_back({{"ruleId", id},
                           {"ruleIndex", index.at(id)},
                           {"level", level_of(v)},
                           {"message", {{"text", std::move(message)}}},
                           {"locations", json::array({std::move(location)})},
                           {"partialFingerprints", {{"airlock/v1", fingerprint}}}});
    }

    json driver = {{"name", "airlock"},
                   {"version", AIRLOCK_VERSION},
                   {"semanticVersion", AIRLOCK_VERSION},
                   {"informationUri", "https://airlock.dev"},
                   {"rules", std::move(rules)}};
    json run = {
        {"tool", {{"driver", std::move(driver)}}},
        {"automationDetails", {{"id", "airlock/" + to_valid_utf8(text(at(r, {"run_id"})))}}},
        {"results", std::move(results)},
        {"properties",
         {{"verdict", at(r, {"verdict"})},
          {"violations", total},
          {"results_dropped", total > k_max_results ? total - k_max_results : 0}}}};
    return {{"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
            {"version", "2.1.0"},
            {"runs", json::array({std::move(run)})}};
}

} // namespace airlock::audit
