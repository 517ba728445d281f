#include "audit/verdict.hpp"

#include "policy/capability.hpp"

#include "util/json_text.hpp"
#include "util/units.hpp"

#include <algorithm>
#include <optional>

namespace airlock::audit {

using nlohmann::json;

namespace {

const json& at(const json& j, std::initializer_list<const char*> path) {
    return util::json_at(j, path);
}

std::string text(const json& j) {
    if (j.is_string()) return j.get<std::string>();
    return j.is_null() ? std::string() : j.dump();
}

json violation(const std::string& rule, const std::string& severity, const std::string& message,
               json evidence, const json& location = nullptr) {
    return {{"rule", rule},
            {"severity", severity},
            {"message", message},
            {"evidence", std::move(evidence)},
            {"location", location.is_null() ? json() : json{{"path", location}}}};
}

std::int64_t count(const json& j) {
    return j.is_number_integer() ? j.get<std::int64_t>() : 0;
}

// A limit as policy::to_json writes it ("500"; "no limit" when unset) or as a number.
std::optional<std::int64_t> limit_of(const json& j) {
    if (j.is_number_integer()) return j.get<std::int64_t>();
    if (!j.is_string()) return std::nullopt;
    const std::string s = j.get<std::string>();
    if (s.empty() || s.size() > 18 ||
        !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    return std::stoll(s);
}

} // namespace

const std::vector<std::string>& gate_rules() {
    static const std::vector<std::string> rules = {
        "task-failed",      "timeout",          "oom",
        "policy-violation", "protected-change", "enforcement-mismatch",
        "network-denied",   "secret-exposed",   "unsigned",
        "approval-missing"};
    return rules;
}

json violations_of(const json& report) {
    json out = json::array();
    const json& result = at(report, {"result"});
    const std::string outcome = text(at(result, {"outcome"}));
    // When the pipeline stopped after the task ran, the task's own outcome is under "task".
    const std::string task = text(at(result, {"task", "outcome"}));
    const std::string task_outcome = task.empty() ? outcome : task;
    if (at(result, {"timed_out"}) == true)
        out.push_back(violation("timeout", "error", "the task ran into its time limit",
                                {{"timeout_ms", at(report, {"limits", "timeout_ms"})}}));
    if (at(result, {"oom_killed"}) == true)
        out.push_back(violation("oom", "error", "the task was killed for running out of memory",
                                {{"memory_bytes", at(report, {"limits", "memory_bytes"})}}));
    if (task_outcome != "success" && task_outcome != "timeout" && task_outcome != "oom" &&
        task_outcome != "refused")
        out.push_back(
            violation("task-failed", "error",
                      "the task did not succeed: " + text(at(result, {"description"})) +
                          text(at(result, {"message"})),
                      {{"outcome", task_outcome}, {"status_code", at(result, {"status_code"})}}));
    if (outcome == "refused")
        out.push_back(
            violation("policy-violation", "error",
                      "the run was stopped by the policy: " + text(at(result, {"message"})),
                      {{"outcome", outcome}}));
    for (const auto& c : at(report, {"protected_changes", "changes"}))
        if (c.is_object() && !c.contains("approved_by"))
            out.push_back(violation("protected-change", "error",
                                    "the task " + text(at(c, {"change"})) + " a protected path (" +
                                        text(at(c, {"pattern"})) + ")",
                                    c, at(c, {"path"})));
    if (at(report, {"enforcement", "verified"}) == false)
        for (const auto& m : at(report, {"enforcement", "mismatches"}))
            out.push_back(violation("enforcement-mismatch", "error",
                                    "the engine did not apply " + text(at(m, {"field"})) +
                                        " (wanted " + text(at(m, {"expected"})) + ", got " +
                                        text(at(m, {"actual"})) + ")",
                                    m));
    for (const auto& d : at(report, {"network", "summary", "refusals"}))
        out.push_back(violation("network-denied", "warning",
                                std::string(at(d, {"decision"}) == "cut" ? "cut: " : "refused: ") +
                                    text(at(d, {"method"})) + " " + text(at(d, {"host"})) + ":" +
                                    text(at(d, {"port"})) + " (" + text(at(d, {"rule"})) + ")",
                                d));
    for (const auto& q : at(report, {"approvals", "requested"}))
        if (at(q, {"stage"}) == "start")
            out.push_back(violation("approval-missing", "error",
                                    "the run needed an approval for " +
                                        text(at(q, {"capability"})) + " (" +
                                        text(at(q, {"detail"})) + ")",
                                    q));
    for (const auto& path : at(report, {"secrets_redacted_in"}))
        out.push_back(violation("secret-exposed", "error",
                                "a changed file held a secret value (replaced by *** in the "
                                "output)",
                                {{"path", path}}, path));
    return out;
}

std::optional<std::string> approvable_capability(const json& v) {
    const json& rule = at(v, {"rule"});
    if (rule == "protected-change" && at(v, {"location", "path"}).is_string())
        return "path:" + at(v, {"location", "path"}).get<std::string>();
    if (rule == "network-denied" && at(v, {"evidence", "host"}).is_string() &&
        at(v, {"evidence", "port"}).is_number_integer())
        return "network.host:" + at(v, {"evidence", "host"}).get<std::string>() + ":" +
               at(v, {"evidence", "port"}).dump();
    return std::nullopt;
}

json gate_checks(const json& report, const json& policy_values, const std::string& signed_by,
                 const std::vector<std::string>& approved) {
    const json& gate = at(policy_values, {"gate"});
    std::vector<std::string> fail_on, ask_on;
    for (const auto& r : at(gate, {"fail_on"}))
        if (r.is_string()) fail_on.push_back(r.get<std::string>());
    for (const auto& r : at(gate, {"ask_on"}))
        if (r.is_string()) ask_on.push_back(r.get<std::string>());
    json violations = json::array();
    // Violations an approval given to the gate covers no longer count.
    for (const auto& v :
         report.contains("violations") ? report["violations"] : violations_of(report)) {
        const auto cap = approvable_capability(v);
        if (cap && policy::any_covers(approved, *cap)) continue;
        violations.push_back(v);
    }
    json checks = json::array();
    for (const auto& rule : gate_rules()) {
        // gate.require_signature enforces "unsigned" whether or not fail_on lists it.
        const bool enforced = std::find(fail_on.begin(), fail_on.end(), rule) != fail_on.end() ||
                              (rule == "unsigned" && at(gate, {"require_signature"}) == true);
        const bool ask = std::find(ask_on.begin(), ask_on.end(), rule) != ask_on.end();
        std::size_t hits = 0;
        std::string first;
        for (const auto& v : violations)
            if (at(v, {"rule"}) == rule && hits++ == 0) first = text(at(v, {"message"}));
        std::string message;
        bool failed = hits > 0;
        if (rule == "unsigned") {
            failed = signed_by.empty();
            message = failed ? "no verified signature" : "signed by " + signed_by;
        } else {
            message =
                failed ? std::to_string(hits) + " violation" + (hits == 1 ? "" : "s") + ": " + first
                       : "none";
        }
        checks.push_back({{"id", rule},
                          {"title", "gate.fail_on: " + rule},
                          {"status", !enforced && !ask ? "not_enforced"
                                     : !failed         ? "pass"
                                     : enforced        ? "fail"
                                                       : "needs_approval"},
                          {"message", message}});
    }
    const json& max_files = at(gate, {"max_changed_files"});
    const std::int64_t changed = count(at(report, {"changes", "added"})) +
                                 count(at(report, {"changes", "modified"})) +
                                 count(at(report, {"changes", "deleted"}));
    json files = {{"id", "max-changed-files"}, {"title", "gate.max_changed_files"}};
    if (const auto limit = limit_of(max_files)) {
        const bool over = changed > *limit;
        files["status"] = over ? "fail" : "pass";
        files["message"] = std::to_string(changed) + " changed files" +
                           (over ? " (more than " : " (at most ") + std::to_string(*limit) + ")";
    } else {
        files["status"] = "not_enforced";
        files["message"] = std::to_string(changed) + " changed files (no limit)";
    }
    checks.push_back(files);

    // gate.max_patch_bytes: the size of changes.patch (policy values show sizes as "10m").
    const json& max_patch = at(gate, {"max_patch_bytes"});
    std::optional<std::uint64_t> patch_limit;
    if (max_patch.is_number_integer() && max_patch.get<std::int64_t>() >= 0)
        patch_limit = max_patch.get<std::uint64_t>();
    if (max_patch.is_string())
        if (auto r = util::parse_size(max_patch.get<std::string>(), "gate.max_patch_bytes"); r)
            patch_limit = *r;
    const json& patch_bytes = at(report, {"changes", "patch", "bytes"});
    const std::uint64_t bytes =
        patch_bytes.is_number_integer() && patch_bytes.get<std::int64_t>() >= 0
            ? patch_bytes.get<std::uint64_t>()
            : 0;
    json patch = {{"id", "max-patch-bytes"}, {"title", "gate.max_patch_bytes"}};
    if (patch_limit) {
        const bool over = bytes > *patch_limit;
        patch["status"] = over ? "fail" : "pass";
        patch["message"] =
            "changes.patch is " + std::to_string(bytes) + " bytes" +
            (over ? " (more than " : " (at most ") +
            (max_patch.is_string() ? max_patch.get<std::string>() : std::to_string(*patch_limit)) +
            ")";
    } else {
        patch["status"] = "not_enforced";
        patch["message"] = "changes.patch is " + std::to_string(bytes) + " bytes (no limit)";
    }
    checks.push_back(patch);
    return checks;
}

json verdict_of(const json& checks) {
    json reasons = json::array();
    bool failed = false, ask = false;
    for (const auto& c : checks) {
        const json& status = at(c, {"status"});
        if (status == "fail" || status == "needs_approval") {
            failed = failed || status == "fail";
            ask = ask || status == "needs_approval";
            reasons.push_back(text(at(c, {"id"})) + ": " + text(at(c, {"message"})) +
                              (status == "needs_approval" ? " (needs approval)" : ""));
        }
    }
    return {{"passed", reasons.empty()}, {"needs_approval", ask && !failed}, {"reasons", reasons}};
}

} // namespace airlock::audit
