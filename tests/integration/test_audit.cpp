// The audit trail of real runs: every event type in order with an intact chain, the report's
// violations, checks and verdict, and report.json validated against its JSON Schema.
#include "harness.hpp"

#include "audit/events.hpp"
#include "util/sha256.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>

using namespace airlock;
using namespace airlock::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace airlock::test {

namespace {

std::vector<json> events_of(const fs::path& dir) {
    std::vector<json> out;
    std::istringstream in(read_file(dir / "events.jsonl"));
    for (std::string l; std::getline(in, l);)
        out.push_back(json::parse(l));
    return out;
}

std::vector<std::string> types_of(const std::vector<json>& events) {
    std::vector<std::string> out;
    for (const auto& e : events)
        out.push_back(e["type"]);
    return out;
}

// The keywords docs/report.schema.json uses: type, const, enum, properties, required,
// additionalProperties, items, oneOf, pattern, minimum, and $ref into #/$defs ("format" and
// "description" are not checked). Each problem names the JSON pointer of the value.
void validate(const json& root, const json& schema, const json& value, const std::string& where,
              std::vector<std::string>& problems) {
    if (schema.contains("$ref")) {
        const std::string ref = schema["$ref"];
        REQUIRE(ref.rfind("#/$defs/", 0) == 0);
        validate(root, root["$defs"].at(ref.substr(8)), value, where, problems);
        return;
    }
    const auto bad = [&](const std::string& why) {
        problems.push_back((where.empty() ? "/" : where) + ": " + why);
    };
    if (schema.contains("type")) {
        const auto is = [&value](const std::string& t) {
            return t == "object"    ? value.is_object()
                   : t == "array"   ? value.is_array()
                   : t == "string"  ? value.is_string()
                   : t == "integer" ? value.is_number_integer()
                   : t == "number"  ? value.is_number()
                   : t == "boolean" ? value.is_boolean()
                   : t == "null"    ? value.is_null()
                                    : false;
        };
        const json types =
            schema["type"].is_array() ? schema["type"] : json::array({schema["type"]});
        bool any = false;
        for (const auto& t : types)
            any = any || is(t.get<std::string>());
        if (!any) return bad("not of type " + schema["type"].dump() + ": " + value.dump());
    }
    if (schema.contains("const") && value != schema["const"])
        bad("is " + value.dump() + ", not " + schema["const"].dump());
    if (schema.contains("enum") &&
        std::find(schema["enum"].begin(), schema["enum"].end(), value) == schema["enum"].end())
        bad(value.dump() + " is not one of " + schema["enum"].dump());
    if (schema.contains("pattern") && value.is_string() &&
        !std::regex_search(value.get<std::string>(),
                           std::regex(schema["pattern"].get<std::string>())))
        bad(value.dump() + " does not match " + schema["pattern"].dump());
    if (schema.contains("minimum") && value.is_number() && value < schema["minimum"])
        bad(value.dump() + " is below " + schema["minimum"].dump());
    if (schema.contains("oneOf")) {
        std::size_t matched = 0;
        for (const auto& branch : schema["oneOf"]) {
            std::vector<std::string> mine;
            validate(root, branch, value, where, mine);
            matched += mine.empty() ? 1 : 0;
        }
        if (matched != 1) bad("matches " + std::to_string(matched) + " of the oneOf branches");
    }
    if (value.is_array() && schema.contains("items"))
        for (std::size_t i = 0; i < value.size(); ++i)
            validate(root, schema["items"], value[i], where + "/" + std::to_string(i), problems);
    if (!value.is_object()) return;
    for (const auto& r : schema.value("required", json::array()))
        if (!value.contains(r.get<std::string>())) bad("has no " + r.dump());
    const json properties = schema.value("properties", json::object());
    const json extra = schema.value("additionalProperties", json(true));
    for (auto it = value.begin(); it != value.end(); ++it) {
        const std::string at = where + "/" + it.key();
        if (properties.contains(it.key()))
            validate(root, properties[it.key()], it.value(), at, problems);
        else if (extra == false)
            problems.push_back(at + ": not described by the schema");
        else if (extra.is_object())
            validate(root, extra, it.value(), at, problems);
    }
}

} // namespace

// report.json is valid under docs/report.schema.json; test_artifacts.cpp and test_telemetry.cpp
// check their reports with it too.
void check_against_schema(const json& report) {
    std::ifstream in(std::string(AIRLOCK_SOURCE_DIR) + "/docs/report.schema.json");
    REQUIRE(in);
    const json schema = json::parse(in);
    std::vector<std::string> problems;
    validate(schema, schema, report, "", problems);
    std::string all;
    for (const auto& p : problems)
        all += p + "\n";
    INFO(all);
    CHECK(problems.empty());
}

} // namespace airlock::test

TEST_CASE("audit: a run leaves every lifecycle event, chained, and a report with its verdict",
          "[integration][audit]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    write_file(ws.path() / "a.txt", "one\n");
    const fs::path dir = out.path() / "run";
    auto p = run_airlock(
        run_args(ws.path(), dir, {}, {"sh", "-c", "echo two > a.txt; echo new > b.txt; rm -f x"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    auto events = events_of(dir);
    const auto types = types_of(events);
    const std::vector<std::string> expected = {"run.start",
                                               "policy.resolved",
                                               "image.resolved",
                                               "container.created",
                                               "enforcement.verified",
                                               "container.started",
                                               "process.exit",
                                               "file.changed",
                                               "file.changed",
                                               "run.end"};
    CHECK(types == expected);
    auto chain = audit::verify_event_chain(dir / "events.jsonl");
    REQUIRE(chain);
    const json report = read_report(dir);
    CHECK(*chain == events.size());
    CHECK(report["events"]["count"] == events.size());
    std::string text = read_file(dir / "events.jsonl");
    text.pop_back(); // the last line's newline
    CHECK(report["events"]["last_digest"] ==
          util::sha256_hex(std::string_view(text).substr(text.rfind('\n') + 1)));
    CHECK(events[1]["sha256"] == report["policy"]["sha256"]);
    CHECK(events[6]["status_code"] == 0);
    CHECK(events[7]["path"] == "b.txt"); // added, then modified, then deleted
    CHECK(events[7]["change"] == "added");
    CHECK(events[8]["path"] == "a.txt");
    CHECK(events[8]["change"] == "modified");
    CHECK(events[8]["sha256"] == util::sha256_hex("two\n"));
    CHECK(events[9]["verdict"] == report["verdict"]);
    CHECK(report["violations"] == json::array());
    // standard fails on "unsigned": without a signing key the verdict says so, and only that.
    CHECK(report["verdict"]["passed"] == false);
    CHECK(report["verdict"]["reasons"] == json::array({"unsigned: no verified signature"}));
    CHECK(report["ci"].is_null());
    CHECK(events[0]["prev"] == ""); // the chain starts from the empty string
    check_against_schema(report);
    // The check reaches nested keys: an unknown one in a changed file's entry is a problem.
    json edited = report;
    edited["changes"]["files"]["added"][0]["owner"] = "x";
    std::vector<std::string> problems;
    const json schema =
        json::parse(read_file(fs::path(AIRLOCK_SOURCE_DIR) / "docs/report.schema.json"));
    validate(schema, schema, edited, "", problems);
    CHECK(problems ==
          std::vector<std::string>{"/changes/files/added/0/owner: not described by the schema"});
    require_nothing_left(p);
}

TEST_CASE("audit: a protected change is a violation, an event and a check needing approval",
          "[integration][audit]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    write_file(ws.path() / ".github/workflows/ci.yml", "on: push\n");
    const fs::path dir = out.path() / "run";
    ProcOptions github;
    github.env = {"GITHUB_ACTIONS=true", "GITHUB_REPOSITORY=org/repo", "GITHUB_SHA=0123abcd",
                  "GITHUB_RUN_ID=77", "GITHUB_SERVER_URL=https://github.example"};
    auto p = run_airlock(
        run_args(ws.path(), dir, {},
                 {"sh", "-c", "echo 'on: pull_request_target' > .github/workflows/ci.yml"}),
        github);
    INFO(p.err);
    CHECK(p.exit_code == 126);
    const json report = read_report(dir);
    REQUIRE(report["violations"].size() == 1);
    CHECK(report["violations"][0]["rule"] == "protected-change");
    CHECK(report["violations"][0]["location"]["path"] == ".github/workflows/ci.yml");
    bool ask = false;
    for (const auto& c : report["checks"])
        if (c["id"] == "protected-change") ask = c["status"] == "needs_approval";
    CHECK(ask);
    CHECK(report["verdict"]["passed"] == false);
    CHECK(report["verdict"]["needs_approval"] == false); // unsigned fails as well
    CHECK(report["protected_changes"]["pending"] == json::array({".github/workflows/ci.yml"}));
    CHECK(report["ci"]["provider"] == "github");
    CHECK(report["ci"]["commit"] == "0123abcd");
    CHECK(report["ci"]["url"] == "https://github.example/org/repo/actions/runs/77");
    std::size_t violation_events = 0;
    for (const auto& e : events_of(dir))
        violation_events += e["type"] == "violation" ? 1 : 0;
    CHECK(violation_events == 1);
    REQUIRE(audit::verify_event_chain(dir / "events.jsonl"));
    check_against_schema(report);
    require_nothing_left(p);
}
