// `airlock policy suggest` end to end: learn an allowlist from an audit run against the test
// network, write it as a policy, and rerun under it. Nothing here sends traffic to any address but
// the containers the network fixture starts.
#include "net_fixture.hpp"

#include "policy/policy.hpp"

#include <catch2/catch.hpp>

using namespace airlock;
using namespace airlock::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string suggest_script(const std::string& host) {
    return "curl -sS --max-time 10 -o /tmp/body -w 'status=%{http_code}\\n' http://" + host +
           "/hello; cat /tmp/body";
}

// A report as airlock writes it, enough for suggest: a timed-out run under the standard preset.
json timed_out_report() {
    auto p = policy::load({"standard"});
    REQUIRE(p.ok());
    json r = {{"schema", "https://airlock.dev/schemas/report/v0.2"},
              {"run_id", "20261203t101500-cli001"},
              {"policy", policy::to_json(*p)},
              {"network", {{"mode", "none"}}},
              {"limits", {{"timeout_ms", 30 * 60 * 1000}, {"memory_bytes", 2ll << 30}}},
              {"limits_origin", {{"timeout", "policy: preset standard"}}},
              {"result", {{"outcome", "timeout"}, {"timed_out", true}, {"oom_killed", false}}}};
    return r;
}

} // namespace

TEST_CASE("suggest: the policy learnt from an audit run lets the run pass in allowlist mode, and "
          "nothing more",
          "[integration][network][suggest]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    TempDir ws, out, work;

    // 1. Audit: everything goes through and is recorded.
    auto audit = run_script(ws, out,
                            {"--policy", "permissive", "--network", "audit", "--egress-network",
                             net.name, "--allow-cidr", net.subnet},
                            suggest_script("allowed.test"));
    INFO(audit.out);
    REQUIRE(audit.proc.exit_code == 0);
    CHECK(has_line(audit.out, "status=200"));
    REQUIRE(audit.report["network"]["mode"] == "audit");
    require_nothing_left(audit.proc);
    const std::string run_id = audit.report["run_id"].get<std::string>();

    // 2. Suggest, and write the policy.
    const fs::path policy_file = work.path() / "p.json";
    auto s =
        run_airlock({"policy", "suggest", audit.dir.string(), "--write", policy_file.string()});
    INFO(s.out << s.err);
    REQUIRE(s.exit_code == 0);
    CHECK(has_line(s.out, "network.allow: + \"allowed.test:80\"  (run " + run_id +
                              ", 1 request in audit mode)"));
    CHECK(has_line(s.out, "network.default: none -> allowlist  (run " + run_id +
                              " ran in audit mode; allowlist enforces the allow rules instead)"));
    CHECK_THAT(s.err, Catch::Contains("wrote " + policy_file.string()));
    REQUIRE(fs::exists(policy_file));
    const json written = json::parse(read_file(policy_file));
    CHECK(written["name"] == "suggested from run " + run_id);
    CHECK(written["network"]["default"] == "allowlist");

    auto lint = run_airlock({"policy", "lint", policy_file.string()});
    INFO(lint.err);
    CHECK(lint.exit_code == 0);
    CHECK(has_line(lint.out, policy_file.string() + ": ok"));

    auto again =
        run_airlock({"policy", "suggest", audit.dir.string(), "--write", policy_file.string()});
    CHECK(again.exit_code == 2);
    CHECK_THAT(again.err, Catch::Contains(policy_file.string() + ": already exists"));
    CHECK(json::parse(read_file(policy_file)) == written);

    // 3. The same request under the suggested policy alone (allowlist is its default now): no
    // refusal. The flags are what the test network needs, as in the audit run.
    const std::vector<std::string> rerun_flags = {
        "--policy", policy_file.string(), "--egress-network", net.name, "--allow-cidr", net.subnet};
    {
        TempDir ws2, out2;
        const int before = TestNet::connections(net.allowed);
        auto rerun = run_script(ws2, out2, rerun_flags, suggest_script("allowed.test"));
        INFO(rerun.proc.err);
        INFO(rerun.out);
        REQUIRE(rerun.proc.exit_code == 0);
        CHECK(has_line(rerun.out, "status=200"));
        CHECK(has_line(rerun.out, "hello from allowed"));
        const json& n = rerun.report["network"];
        CHECK(n["mode"] == "allowlist");
        CHECK(n["summary"]["denied"] == 0);
        CHECK(n["summary"]["allowed"] == 1);
        const json& allow = n["rules"]["allow"];
        CHECK(std::find(allow.begin(), allow.end(), "allowed.test:80") != allow.end());
        CHECK(TestNet::connections(net.allowed) == before + 1);
        require_nothing_left(rerun.proc);

        auto nothing = run_airlock({"policy", "suggest", rerun.dir.string()});
        CHECK(nothing.exit_code == 0);
        CHECK(nothing.out == "no changes suggested\n");
    }

    // 4. A host the audit run never asked for is refused: the suggestion is not "allow all".
    {
        TempDir ws3, out3;
        const int before = TestNet::connections(net.denied);
        auto other = run_script(ws3, out3, rerun_flags, suggest_script("denied.test"));
        INFO(other.proc.err);
        INFO(other.out);
        REQUIRE(other.proc.exit_code == 0);
        CHECK(has_line(other.out, "status=403"));
        CHECK_THAT(other.out, !Catch::Contains("hello from denied"));
        auto refused = refusals(other.report, "no allow rule");
        REQUIRE(refused.size() == 1);
        CHECK(refused[0]["host"] == "denied.test");
        CHECK(other.report["network"]["summary"]["denied"] == 1);
        CHECK(TestNet::connections(net.denied) == before);
        require_nothing_left(other.proc);

        // Suggesting from that run proposes exactly the refused host.
        auto s2 = run_airlock({"policy", "suggest", other.dir.string()});
        INFO(s2.err);
        CHECK(s2.exit_code == 0);
        CHECK_THAT(s2.out, Catch::StartsWith("network.allow: + \"denied.test:80\"  (run "));
        CHECK_THAT(s2.out, Catch::Contains("1 request refused, first at "));
    }
}

TEST_CASE("suggest: unusable input exits 2 and names the file and the fix",
          "[integration][suggest]") {
    TempDir dir;
    SECTION("no OUT") {
        auto p = run_airlock({"policy", "suggest"});
        CHECK(p.exit_code == 2);
        CHECK_THAT(p.err, Catch::Contains("airlock policy suggest OUT..."));
    }
    SECTION("a missing directory") {
        const std::string missing = (dir.path() / "nope").string();
        auto p = run_airlock({"policy", "suggest", missing});
        CHECK(p.exit_code == 2);
        CHECK(p.err == "airlock policy suggest: " + missing +
                           ": no such directory (give the --out directory of an airlock run, e.g. "
                           ".airlock/runs/<run-id>)\n");
    }
    SECTION("no report.json") {
        auto p = run_airlock({"policy", "suggest", dir.path().string()});
        CHECK(p.exit_code == 2);
        CHECK_THAT(p.err, Catch::Contains((dir.path() / "report.json").string() +
                                          ": cannot be read (airlock writes it when a run ends"));
    }
    SECTION("report.json is not JSON") {
        write_file(dir.path() / "report.json", "{\"run_id\": ");
        auto p = run_airlock({"policy", "suggest", dir.path().string()});
        CHECK(p.exit_code == 2);
        CHECK_THAT(p.err, Catch::Contains((dir.path() / "report.json").string() +
                                          ": not valid JSON at line 1"));
        CHECK_THAT(p.err, Catch::Contains("rerun the task"));
    }
    SECTION("report.json is not an airlock report") {
        write_file(dir.path() / "report.json", "[1, 2]");
        auto p = run_airlock({"policy", "suggest", dir.path().string()});
        CHECK(p.exit_code == 2);
        CHECK_THAT(p.err, Catch::Contains("not an airlock report"));
    }
    SECTION("--write without a policy in the first report") {
        json r = timed_out_report();
        r.erase("policy");
        write_file(dir.path() / "report.json", r.dump());
        const fs::path file = dir.path() / "p.json";
        auto p = run_airlock({"policy", "suggest", dir.path().string(), "--write", file.string()});
        CHECK(p.exit_code == 2);
        CHECK_THAT(p.err, Catch::Contains("no policy.values"));
        CHECK(p.out.empty());
        CHECK_FALSE(fs::exists(file));
    }
}

TEST_CASE("suggest: a timed-out run's report gives a doubled timeout and a policy that lints",
          "[integration][suggest]") {
    TempDir dir;
    write_file(dir.path() / "report.json", timed_out_report().dump());
    const fs::path file = dir.path() / "p.json";
    auto p = run_airlock({"policy", "suggest", dir.path().string(), "--write=" + file.string()});
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    CHECK(has_line(p.out, "resources.timeout.default: 30m -> 1h  (run 20261203t101500-cli001 "
                          "timed out at 30m; twice that)"));
    CHECK_THAT(p.out, Catch::Contains("# note: run 20261203t101500-cli001 (timeout) had no "
                                      "network"));
    auto lint = run_airlock({"policy", "lint", file.string()});
    INFO(lint.err);
    CHECK(lint.exit_code == 0);
    auto show = run_airlock({"policy", "show", "--policy", file.string()});
    CHECK(show.exit_code == 0);
    CHECK_THAT(show.out, Catch::Contains("resources.timeout.default"));
    auto loaded = policy::load({file.string()});
    REQUIRE(loaded.ok());
    CHECK(loaded->get("resources/timeout/default") == 60 * 60 * 1000);
}
