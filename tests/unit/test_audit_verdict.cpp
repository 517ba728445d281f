// Violations read from a report, the policy's gate rules applied to them, and the CI context.
#include "audit/ci_context.hpp"
#include "audit/verdict.hpp"
#include "policy/policy.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace airlock;
using nlohmann::json;

namespace {

json success_report() {
    return {{"result",
             {{"outcome", "success"},
              {"status_code", 0},
              {"timed_out", false},
              {"oom_killed", false},
              {"description", "exited 0"}}},
            {"enforcement", {{"verified", true}, {"mismatches", json::array()}}},
            {"changes", {{"added", 1}, {"modified", 2}, {"deleted", 0}}},
            {"limits", {{"timeout_ms", 1000}, {"memory_bytes", 1 << 30}}}};
}

json gate(std::vector<std::string> fail_on, json max_files = nullptr) {
    return {{"gate", {{"fail_on", fail_on}, {"max_changed_files", max_files}}}};
}

const json& check(const json& checks, const std::string& id) {
    for (const auto& c : checks)
        if (c["id"] == id) return c;
    FAIL("no check " << id);
    static json none;
    return none;
}

} // namespace

TEST_CASE("a clean run has no violations and passes the standard gate", "[verdict]") {
    const json r = success_report();
    CHECK(audit::violations_of(r).empty());
    json checks = audit::gate_checks(r, gate({"task-failed", "policy-violation", "unsigned"}, 500),
                                     "key abc");
    CHECK(check(checks, "task-failed")["status"] == "pass");
    CHECK(check(checks, "unsigned")["status"] == "pass");
    CHECK(check(checks, "oom")["status"] == "not_enforced");
    CHECK(check(checks, "max-changed-files")["status"] == "pass");
    CHECK(check(checks, "max-changed-files")["message"] == "3 changed files (at most 500)");
    CHECK(audit::verdict_of(checks) ==
          json{{"passed", true}, {"needs_approval", false}, {"reasons", json::array()}});
}

TEST_CASE("each kind of trouble becomes a violation with its rule", "[verdict]") {
    json r = success_report();
    r["result"] = {
        {"outcome", "timeout"}, {"timed_out", true}, {"oom_killed", false}, {"status_code", 143}};
    r["protected_changes"] = {{"changes", json::array({{{"path", ".github/workflows/ci.yml"},
                                                        {"change", "modified"},
                                                        {"pattern", ".github/workflows/**"}}})},
                              {"withheld", true}};
    r["enforcement"] = {
        {"verified", false},
        {"mismatches",
         json::array({{{"field", "HostConfig.Memory"}, {"expected", "1"}, {"actual", "0"}}})}};
    r["network"] = {{"summary",
                     {{"refusals", json::array({{{"decision", "deny"},
                                                 {"method", "CONNECT"},
                                                 {"host", "evil.example"},
                                                 {"port", 443},
                                                 {"rule", "not in network.allow"}}})}}}};
    r["secrets_redacted_in"] = json::array({"notes.txt"});
    json v = audit::violations_of(r);
    std::map<std::string, json> by_rule;
    for (const auto& x : v)
        by_rule[x["rule"]] = x;
    CHECK(v.size() == 5);
    CHECK(by_rule.count("timeout") == 1);
    CHECK(by_rule.count("task-failed") == 0); // a timeout is its own rule
    CHECK(by_rule["protected-change"]["location"]["path"] == ".github/workflows/ci.yml");
    CHECK(by_rule["protected-change"]["severity"] == "error");
    CHECK(by_rule["enforcement-mismatch"]["message"] ==
          "the engine did not apply HostConfig.Memory (wanted 1, got 0)");
    CHECK(by_rule["network-denied"]["severity"] == "warning");
    CHECK(by_rule["network-denied"]["message"] ==
          "refused: CONNECT evil.example:443 (not in network.allow)");
    CHECK(by_rule["secret-exposed"]["location"]["path"] == "notes.txt");

    r["violations"] = v;
    json checks = audit::gate_checks(r, gate({"timeout", "protected-change"}, 2), "");
    CHECK(check(checks, "timeout")["status"] == "fail");
    CHECK(check(checks, "protected-change")["status"] == "fail");
    CHECK(check(checks, "network-denied")["status"] == "not_enforced");
    CHECK(check(checks, "max-changed-files")["status"] == "fail");
    json verdict = audit::verdict_of(checks);
    CHECK(verdict["passed"] == false);
    CHECK(verdict["reasons"].size() == 3);
}

TEST_CASE("a run stopped after the task ran keeps the task's outcome", "[verdict]") {
    json r = success_report();
    r["result"] = {{"outcome", "refused"},
                   {"message", "the task changed protected paths"},
                   {"task", {{"outcome", "failed"}, {"status_code", 1}}}};
    std::map<std::string, int> rules;
    for (const auto& x : audit::violations_of(r))
        ++rules[x["rule"]];
    CHECK(rules["policy-violation"] == 1);
    CHECK(rules["task-failed"] == 1);
}

TEST_CASE("an unsigned report fails a gate that requires a signature", "[verdict]") {
    json checks = audit::gate_checks(success_report(), gate({"unsigned"}), "");
    CHECK(check(checks, "unsigned")["status"] == "fail");
    CHECK(check(checks, "unsigned")["message"] == "no verified signature");
}

TEST_CASE("the CI context comes from GitHub's or GitLab's variables, or is null", "[verdict]") {
    auto from = [](std::map<std::string, std::string> vars) {
        return audit::ci_context([vars](const std::string& n) -> std::optional<std::string> {
            auto it = vars.find(n);
            return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
        });
    };
    CHECK(from({}).is_null());
    json gh = from({{"GITHUB_ACTIONS", "true"},
                    {"GITHUB_REPOSITORY", "org/repo"},
                    {"GITHUB_SHA", "abc123"},
                    {"GITHUB_REF", "refs/pull/7/merge"},
                    {"GITHUB_RUN_ID", "42"},
                    {"GITHUB_ACTOR", "octocat"},
                    {"GITHUB_SERVER_URL", "https://github.com"}});
    CHECK(gh["provider"] == "github");
    CHECK(gh["commit"] == "abc123");
    CHECK(gh["url"] == "https://github.com/org/repo/actions/runs/42");
    CHECK(gh["job"].is_null());
    json gl = from({{"GITLAB_CI", "true"}, {"CI_PROJECT_PATH", "g/p"}, {"CI_COMMIT_SHA", "def"}});
    CHECK(gl["provider"] == "gitlab");
    CHECK(gl["repository"] == "g/p");
    CHECK(gl["actor"].is_null());
}

TEST_CASE("gate.max_patch_bytes limits the size of changes.patch", "[verdict]") {
    json r = success_report();
    r["changes"]["patch"] = {{"written", true}, {"bytes", 2048}};
    json policy = gate({});
    policy["gate"]["max_patch_bytes"] = "1k";
    json checks = audit::gate_checks(r, policy, "");
    CHECK(check(checks, "max-patch-bytes")["status"] == "fail");
    CHECK(check(checks, "max-patch-bytes")["message"] ==
          "changes.patch is 2048 bytes (more than 1k)");
    policy["gate"]["max_patch_bytes"] = 4096;
    checks = audit::gate_checks(r, policy, "");
    CHECK(check(checks, "max-patch-bytes")["status"] == "pass");
    CHECK(check(checks, "max-patch-bytes")["message"] ==
          "changes.patch is 2048 bytes (at most 4096)");
    CHECK(check(audit::gate_checks(r, gate({}), ""), "max-patch-bytes")["status"] ==
          "not_enforced");
}

TEST_CASE("the shipped standard and strict gates fail a timeout, an OOM kill and a leaked secret",
          "[verdict]") {
    json timeout = success_report();
    timeout["result"] = {
        {"outcome", "timeout"}, {"timed_out", true}, {"oom_killed", false}, {"status_code", 143}};
    json oom = success_report();
    oom["result"] = {
        {"outcome", "oom"}, {"timed_out", false}, {"oom_killed", true}, {"status_code", 137}};
    json secret = success_report();
    secret["secrets_redacted_in"] = json::array({"notes.txt"});
    const std::vector<std::pair<std::string, const json*>> cases = {
        {"timeout", &timeout}, {"oom", &oom}, {"secret-exposed", &secret}};
    for (const char* preset : {"standard", "strict", "permissive"}) {
        auto p = policy::load({preset});
        REQUIRE(p.ok());
        const json values = policy::to_json(*p)["values"];
        INFO(preset);
        // The same report without the trouble passes: the failures below are the rules'.
        CHECK(audit::verdict_of(
                  audit::gate_checks(success_report(), values, "key abc"))["passed"] == true);
        for (const auto& [rule, report] : cases) {
            INFO(rule);
            const json checks = audit::gate_checks(*report, values, "key abc");
            const json verdict = audit::verdict_of(checks);
            if (std::string(preset) == "permissive") {
                // permissive fails only on what airlock itself did wrong, never on the task.
                CHECK(check(checks, rule)["status"] == "not_enforced");
                CHECK(verdict["passed"] == true);
                continue;
            }
            CHECK(check(checks, rule)["status"] == "fail");
            CHECK(verdict["passed"] == false);
            REQUIRE(verdict["reasons"].size() == 1);
            CHECK(verdict["reasons"][0].get<std::string>().rfind(rule + ": 1 violation: ", 0) == 0);
        }
    }
}
