#include "audit/render.hpp"
#include "audit/verdict.hpp"
#include "cli/main.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>
#include <vector>

#ifdef AIRLOCK_HAVE_LIBXML2
#include <libxml/parser.h>
#endif

using namespace airlock;
using nlohmann::json;
namespace fs = std::filesystem;
using airlock::test::TempDir;

namespace {

json violation(const std::string& rule, const std::string& severity, const std::string& message,
               const json& path = nullptr) {
    return {{"rule", rule},
            {"severity", severity},
            {"message", message},
            {"evidence", json::object()},
            {"location", path.is_null() ? json() : json{{"path", path}}}};
}

// A failed run: a protected change, a network refusal (no path), a failing gate.
json sample_report() {
    json r = {
        {"run_id", "20261127t092057-db468b"},
        {"duration_ms", 368},
        {"image", {{"reference", "airlock/agent-base:latest"}, {"id", "sha256:4c25"}}},
        {"command", {"sh", "-c", "echo hi"}},
        {"result", {{"outcome", "failed"}, {"exit_code", 1}, {"status_code", 1}}},
        {"changes", {{"added", 1}, {"modified", 1}, {"deleted", 0}, {"bytes", 12}}},
        {"cis",
         {{"benchmark", "CIS Docker Benchmark"},
          {"version", "1.6.0"},
          {"checks",
           {{{"id", "5.1"},
             {"title", "swarm"},
             {"status", "not_applicable"},
             {"reason", "engine-wide"}},
            {{"id", "5.4"}, {"title", "caps"}, {"status", "fail"}, {"reason", "CapAdd"}},
            {{"id", "5.5"}, {"title", "privileged"}, {"status", "pass"}, {"reason", "no"}}}}}}};
    r["violations"] = {
        violation("protected-change", "error", "the task modified a protected path (.github/**)",
                  ".github/workflows/ci.yml"),
        violation("network-denied", "warning", "refused: GET evil.example:443 (deny)"),
        violation("network-denied", "warning", "refused: GET evil.example:443 (deny)")};
    r["checks"] = {{{"id", "protected-change"},
                    {"title", "gate.fail_on: protected-change"},
                    {"status", "fail"},
                    {"message", "1 violation"}},
                   {{"id", "unsigned"},
                    {"title", "gate.fail_on: unsigned"},
                    {"status", "not_enforced"},
                    {"message", "no verified signature"}},
                   {{"id", "max-changed-files"},
                    {"title", "gate.max_changed_files"},
                    {"status", "pass"},
                    {"message", "2 changed files"}}};
    r["verdict"] = {{"passed", false}, {"reasons", {"protected-change: 1 violation"}}};
    return r;
}

bool is_valid_utf8(const std::string& s) {
    return audit::to_valid_utf8(s) == s;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

int report_cmd(std::vector<std::string> args) {
    args.insert(args.begin(), "report");
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    return cli::report_command(static_cast<int>(args.size()), argv.data());
}

} // namespace

TEST_CASE("SARIF has the fields code scanning requires", "[render]") {
    const json s = audit::render_sarif(sample_report());
    CHECK(s["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json");
    CHECK(s["version"] == "2.1.0");
    REQUIRE(s["runs"].size() == 1);
    const json& run = s["runs"][0];
    const json& driver = run["tool"]["driver"];
    CHECK(driver["name"] == "airlock");
    CHECK(driver["version"].is_string());
    CHECK(driver["informationUri"].is_string());
    std::set<std::string> ids;
    for (const auto& r : driver["rules"]) {
        CHECK(r["id"].is_string());
        CHECK(r["name"].is_string());
        CHECK(!r["shortDescription"]["text"].get<std::string>().empty());
        CHECK(!r["help"]["text"].get<std::string>().empty());
        CHECK((r["defaultConfiguration"]["level"] == "error" ||
               r["defaultConfiguration"]["level"] == "warning"));
        CHECK(ids.insert(r["id"].get<std::string>()).second);
    }
    for (const char* id : {"protected-change", "unsigned", "max-changed-files", "network-denied"})
        CHECK(ids.count(id) == 1);
    REQUIRE(run["results"].size() == 3);
    std::set<std::string> fingerprints;
    for (const auto& r : run["results"]) {
        CHECK(ids.count(r["ruleId"].get<std::string>()) == 1);
        CHECK(driver["rules"][r["ruleIndex"].get<std::size_t>()]["id"] == r["ruleId"]);
        CHECK((r["level"] == "error" || r["level"] == "warning"));
        CHECK(!r["message"]["text"].get<std::string>().empty());
        REQUIRE(r["locations"].size() == 1);
        const json& loc = r["locations"][0]["physicalLocation"];
        CHECK(!loc["artifactLocation"]["uri"].get<std::string>().empty());
        CHECK(loc["region"]["startLine"] == 1);
        fingerprints.insert(r["partialFingerprints"]["airlock/v1"].get<std::string>());
    }
    const json& results = run["results"];
    CHECK(results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] ==
          ".github/workflows/ci.yml");
    CHECK(results[0]["level"] == "error");
    CHECK(results[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] ==
          audit::k_fallback_location);
    CHECK(results[1]["level"] == "warning");
    CHECK(fingerprints.size() == 3); // the two equal refusals stay distinct
    CHECK(audit::render_sarif(sample_report()) == s);
}

TEST_CASE("SARIF of a report without violations computes them", "[render]") {
    json r = sample_report();
    r.erase("violations");
    r.erase("checks");
    r.erase("verdict");
    r["secrets_redacted_in"] = {"/config.env"};
    const json s = audit::render_sarif(r);
    const json& results = s["runs"][0]["results"];
    bool found = false;
    for (const auto& x : results)
        if (x["ruleId"] == "secret-exposed") {
            found = true;
            CHECK(x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "config.env");
        }
    CHECK(found);
    CHECK(s["runs"][0]["tool"]["driver"]["rules"].size() >= audit::gate_rules().size());
}

TEST_CASE("JUnit stays well-formed with control bytes and invalid UTF-8", "[render]") {
    json r = sample_report();
    const std::string hostile = "bad \x01 esc \x1b[31m \xff\xfe tail \xc3 <x a=\"1\"> & ]]> 'q'";
    r["checks"][0]["message"] = hostile;
    r["checks"][0]["title"] = hostile;
    r["cis"]["checks"][1]["reason"] = hostile;
    r["violations"][0]["message"] = hostile;
    const std::string x = audit::render_junit(r);
    std::size_t controls = 0;
    for (unsigned char c : x)
        if (c < 0x20 && c != '\n' && c != '\t') ++controls;
    CHECK(controls == 0);
    CHECK(is_valid_utf8(x));
    CHECK(x.find("<x a=") == std::string::npos);
    CHECK(x.find("&lt;x a=&quot;1&quot;&gt; &amp; ]]&gt;") != std::string::npos);
    CHECK(x.find("\xEF\xBF\xBD") != std::string::npos);
    CHECK(x.find("<testsuite name=\"airlock\" tests=\"6\" failures=\"2\" errors=\"0\" "
                 "skipped=\"2\"") != std::string::npos);
    CHECK(x.find("<failure message=") != std::string::npos);
    CHECK(x.find("<skipped message=\"not_applicable: engine-wide\"/>") != std::string::npos);
#ifdef AIRLOCK_HAVE_LIBXML2
    xmlDocPtr doc = xmlReadMemory(x.data(), static_cast<int>(x.size()), "junit.xml", "UTF-8",
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    CHECK(doc != nullptr);
    if (doc) xmlFreeDoc(doc);
#endif
}

TEST_CASE("Markdown escapes table cells", "[render]") {
    json r = sample_report();
    r["command"] = {"sh", "-c", "a | b <script>alert(1)</script> `x`\nnext [l](http://e)"};
    const std::string m = audit::render_markdown(r);
    CHECK(m.rfind("## ❌ airlock: failed · run 20261127t092057-db468b\n", 0) == 0);
    CHECK(m.find("<script>") == std::string::npos);
    CHECK(m.find("&lt;script&gt;") != std::string::npos);
    CHECK(m.find("a \\| b") != std::string::npos);
    CHECK(m.find("\\`x\\`") != std::string::npos);
    CHECK(m.find("<br>next \\[l\\](http://e)") != std::string::npos);
    CHECK(m.find("### Failed checks (1)") != std::string::npos);
    CHECK(m.find("### Violations (3)") != std::string::npos);
    CHECK(m.find("| 5.4 | caps | CapAdd |") != std::string::npos);
    // Every table row keeps its two cells: no unescaped '|' inside.
    std::istringstream lines(m);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("| command |", 0) == 0) {
            std::size_t bars = 0;
            for (std::size_t i = 0; i < line.size(); ++i)
                if (line[i] == '|' && (i == 0 || line[i - 1] != '\\')) ++bars;
            CHECK(bars == 3);
        }
}

TEST_CASE("Markdown stays under GitHub's 1 MiB step summary limit", "[render]") {
    json r = sample_report();
    r["violations"] = json::array();
    for (int i = 0; i < 25; ++i)
        r["violations"].push_back(
            violation("network-denied", "warning", std::string(100 * 1024, 'a' + i % 26)));
    const std::string m = audit::render_markdown(r);
    CHECK(m.size() <= audit::k_summary_max_bytes);
    CHECK(m.find("### Violations (first 20 of 25)") != std::string::npos);
    CHECK(m.find("summary cut at") != std::string::npos);
    CHECK(is_valid_utf8(m));
    const std::string small = audit::render_markdown(r, 4000);
    CHECK(small.size() <= 4000);
    CHECK(small.find("summary cut at") != std::string::npos);
}

TEST_CASE("Code Quality issues have GitLab's fields and stable fingerprints", "[render]") {
    const json q = audit::render_codequality(sample_report());
    REQUIRE(q.is_array());
    REQUIRE(q.size() == 3);
    const std::set<std::string> severities = {"info", "minor", "major", "critical", "blocker"};
    std::set<std::string> fingerprints;
    for (const auto& i : q) {
        CHECK(!i["description"].get<std::string>().empty());
        CHECK(!i["check_name"].get<std::string>().empty());
        CHECK(severities.count(i["severity"].get<std::string>()) == 1);
        const std::string fp = i["fingerprint"].get<std::string>();
        CHECK(fp.size() == 64);
        CHECK(fp.find_first_not_of("0123456789abcdef") == std::string::npos);
        fingerprints.insert(fp);
        CHECK(!i["location"]["path"].get<std::string>().empty());
        CHECK(i["location"]["lines"]["begin"] == 1);
    }
    CHECK(fingerprints.size() == 3);
    CHECK(q[0]["location"]["path"] == ".github/workflows/ci.yml");
    CHECK(q[0]["severity"] == "critical");
    CHECK(q[1]["location"]["path"] == audit::k_fallback_location);
    CHECK(audit::render_codequality(sample_report()) == q);
}

TEST_CASE("annotations cannot start another workflow command", "[render]") {
    const json v =
        violation("protected-change", "error",
                  "100% done\r\n::warning::pwned, a:b\n::stop-commands::x", "dir,a/b:c.txt");
    const std::string a = audit::annotation(v);
    CHECK(a == "::error file=dir%2Ca/b%3Ac.txt,line=1,title=protected-change::100%25 "
               "done%0D%0A::warning::pwned, a:b%0A::stop-commands::x");
    CHECK(a.find_first_of("\r\n") == std::string::npos);
    CHECK(audit::annotation(violation("network-denied", "warning", "m\x1b[1m")) ==
          "::warning title=network-denied::m[1m");
}

TEST_CASE("stop-commands tokens are 32 fresh hex characters", "[render]") {
    const std::string a = audit::stop_commands_token();
    const std::string b = audit::stop_commands_token();
    CHECK(a.size() == 32);
    CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(a != b);
}

TEST_CASE("report command and write_renderings", "[render]") {
    TempDir dir;
    CHECK(report_cmd({(dir.path() / "missing").string()}) == 2);
    auto missing = audit::read_report(dir.path());
    REQUIRE(!missing);
    CHECK(missing.error().message.find((dir.path() / "report.json").string() + ": no such file") ==
          0);

    std::ofstream(dir.path() / "report.json") << "{\"run_id\": 1,";
    CHECK(report_cmd({dir.path().string(), "--format", "md"}) == 2);
    auto bad = audit::read_report(dir.path());
    REQUIRE(!bad);
    CHECK(bad.error().message.find("report.json: not valid JSON at line 1") != std::string::npos);

    std::ofstream(dir.path() / "report.json", std::ios::trunc) << sample_report().dump();
    CHECK(report_cmd({dir.path().string(), "--format", "pdf"}) == 2);
    const fs::path sarif = dir.path() / "out.sarif";
    CHECK(report_cmd({dir.path().string(), "--format", "sarif", "--output", sarif.string()}) == 0);
    CHECK(json::parse(slurp(sarif))["version"] == "2.1.0");
    CHECK(report_cmd({dir.path().string(), "--format", "junit", "--output",
                      (dir.path() / "nodir" / "x.xml").string()}) == 2);

    ::unsetenv("GITHUB_STEP_SUMMARY");
    REQUIRE(audit::write_renderings(dir.path()));
    CHECK(slurp(dir.path() / "summary.md").find("airlock: failed") != std::string::npos);
    CHECK(json::parse(slurp(dir.path() / "report.sarif"))["version"] == "2.1.0");
    CHECK(slurp(dir.path() / "junit.xml").rfind("<?xml", 0) == 0);
    CHECK(json::parse(slurp(dir.path() / "codequality.json")).size() == 3);
    CHECK(!fs::exists(dir.path() / "summary.md.tmp"));

    const fs::path step = dir.path() / "step_summary";
    ::setenv("GITHUB_STEP_SUMMARY", step.c_str(), 1);
    const auto with_env = audit::write_renderings(dir.path());
    ::unsetenv("GITHUB_STEP_SUMMARY");
    REQUIRE(with_env);
    CHECK(slurp(step) == slurp(dir.path() / "summary.md"));
}

TEST_CASE("the step summary keeps under 1 MiB", "[render]") {
    TempDir dir;
    const fs::path file = dir.path() / "step_summary";
    REQUIRE(audit::append_step_summary(file, sample_report()));
    const std::string first = slurp(file);
    CHECK(first.rfind("## ❌ airlock: failed", 0) == 0);

    std::ofstream(file, std::ios::trunc) << std::string(audit::k_step_summary_limit - 2000, 'x');
    REQUIRE(audit::append_step_summary(file, sample_report()));
    const std::string near = slurp(file);
    CHECK(near.size() < audit::k_step_summary_limit);
    CHECK(near.find("summary left out") != std::string::npos);

    std::ofstream(file, std::ios::trunc)
        << std::string(audit::k_step_summary_limit - 100 * 1024, 'x');
    json big = sample_report();
    for (int i = 0; i < 20; ++i)
        big["violations"].push_back(
            violation("network-denied", "warning", std::string(60 * 1024, 'z')));
    REQUIRE(audit::append_step_summary(file, big));
    const std::string cut = slurp(file);
    CHECK(cut.size() < audit::k_step_summary_limit);
    CHECK(cut.find("summary cut at") != std::string::npos);
}
