// The audit trail of real runs: every event type in order with an intact chain, the report's
// violations, checks and verdict, and report.json against its JSON Schema's fields.
#include "harness.hpp"

#include "audit/events.hpp"
#include "util/sha256.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

using namespace airlock;
using namespace airlock::test;
using nlohmann::json;
namespace fs = std::filesystem;

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

// The report's top-level fields are all described by the schema, and the required ones are there.
void check_against_schema(const json& report) {
    std::ifstream in(std::string(AIRLOCK_SOURCE_DIR) + "/docs/report.schema.json");
    REQUIRE(in);
    const json schema = json::parse(in);
    for (auto it = report.begin(); it != report.end(); ++it) {
        INFO(it.key());
        CHECK(schema["properties"].contains(it.key()));
    }
    for (const auto& r : schema["required"]) {
        INFO(r);
        CHECK(report.contains(r.get<std::string>()));
    }
    CHECK(report["schema"] == schema["properties"]["schema"]["const"]);
}

} // namespace

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
    check_against_schema(report);
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
