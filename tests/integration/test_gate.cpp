// The signed run and the merge gate, end to end: keygen, a signed run with every rendering, the
// gate passing, one flipped byte in any file failing it, and a protected change needing an
// approval (test_approvals.cpp gives it one).
#include "harness.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace airlock;
using namespace airlock::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

void flip_one_byte(const fs::path& p) {
    std::string s = read_file(p);
    if (s.empty()) {
        s = "x"; // an empty log gains its first byte
    } else {
        // A byte in the middle, changed to another printable one, so JSON files stay JSON mostly.
        char& c = s[s.size() / 2];
        c = c == 'a' ? 'b' : 'a';
    }
    std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
}

} // namespace

TEST_CASE("gate: a signed run passes, one flipped byte in any file fails it",
          "[integration][gate]") {
    REQUIRE_ENGINE();
    TempDir keys, ws, out;
    auto kg = run_airlock({"keygen", "--out", (keys.path() / "ci").string()});
    INFO(kg.err);
    REQUIRE(kg.exit_code == 0);
    write_file(ws.path() / "a.txt", "one\n");
    const fs::path dir = out.path() / "run";
    auto p = run_airlock(run_args(
        ws.path(), dir, {"--sign-key", (keys.path() / "ci.key").string(), "--artifact", "a.txt"},
        {"sh", "-c", "echo two > a.txt; echo done"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    for (const char* f :
         {"report.json", "events.jsonl", "logs/stdout.log", "logs/stderr.log",
          "changes/manifest.json", "changes/files/a.txt", "changes.patch", "artifacts/a.txt",
          "summary.md", "report.sarif", "junit.xml", "codequality.json", "report.dsse.json"}) {
        INFO(f);
        CHECK(fs::exists(dir / f));
    }
    const json report = read_report(dir);
    CHECK(report["verdict"]["passed"] == true);
    const std::vector<std::string> gate = {"gate",     dir.string(),
                                           "--policy", "standard",
                                           "--pubkey", (keys.path() / "ci.pub").string()};
    auto pass = run_airlock(gate);
    INFO(pass.out << pass.err);
    CHECK(pass.exit_code == 0);

    // Every file but the envelope, one at a time in a fresh copy.
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (!e.is_regular_file() || e.path().filename() == "report.dsse.json") continue;
        const fs::path rel = fs::relative(e.path(), dir);
        TempDir copy;
        fs::copy(dir, copy.path() / "run", fs::copy_options::recursive);
        flip_one_byte(copy.path() / "run" / rel);
        std::vector<std::string> args = gate;
        args[1] = (copy.path() / "run").string();
        auto failed = run_airlock(args);
        INFO(rel << ": " << failed.out << failed.err);
        CHECK(failed.exit_code != 0);
    }
    // Without the key the gate cannot check the signature: standard fails on "unsigned".
    auto unsigned_gate = run_airlock({"gate", dir.string(), "--policy", "standard"});
    CHECK(unsigned_gate.exit_code == 1);
    require_nothing_left(p);
}

TEST_CASE("gate: without a signature, an edited changes.patch fails the gate and apply refuses it, "
          "--force or not",
          "[integration][gate]") {
    REQUIRE_ENGINE();
    TempDir ws, pristine, out;
    write_file(ws.path() / "a.txt", "one\n");
    write_file(pristine.path() / "a.txt", "one\n");
    const fs::path dir = out.path() / "run";
    // permissive requires no signature: its gate passes an unsigned run as it is.
    auto p = run_airlock(
        run_args(ws.path(), dir, {"--policy", "permissive"}, {"sh", "-c", "echo two > a.txt"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    const std::vector<std::string> gate = {"gate", dir.string(), "--policy", "permissive"};
    auto pass = run_airlock(gate);
    INFO(pass.out);
    CHECK(pass.exit_code == 0);
    CHECK_THAT(pass.out, Catch::Contains("PASS  changes: 1 changed files match"));

    flip_one_byte(dir / "changes.patch");
    auto failed = run_airlock(gate);
    INFO(failed.out);
    CHECK(failed.exit_code == 1);
    CHECK_THAT(failed.out, Catch::Contains("FAIL  changes: 1 problem: changes.patch: sha256 "));
    for (const bool force : {false, true}) {
        std::vector<std::string> apply = {"apply",       dir.string(),
                                          "--workspace", pristine.path().string(),
                                          "--policy",    "permissive"};
        if (force) apply.push_back("--force");
        auto refused = run_airlock(apply);
        INFO("--force: " << force << "\n" << refused.err);
        CHECK(refused.exit_code == 1);
        CHECK_THAT(refused.err, Catch::Contains("changes.patch: sha256 "));
        CHECK_THAT(refused.err, Catch::Contains("--force does not override this"));
        CHECK(read_file(pristine.path() / "a.txt") == "one\n");
        CHECK_FALSE(fs::exists(pristine.path() / ".airlock"));
    }

    // A missing events.jsonl is unusable input: exit 2, not a failure.
    fs::remove(dir / "events.jsonl");
    auto unusable = run_airlock(gate);
    INFO(unusable.out);
    CHECK(unusable.exit_code == 2);
    CHECK_THAT(unusable.out, Catch::Contains("BAD   events: "));
    CHECK_THAT(unusable.out, Catch::Contains("gate: UNUSABLE INPUT"));
    require_nothing_left(p);
}

TEST_CASE("gate: a task that changed a protected path needs an approval at the gate",
          "[integration][gate]") {
    REQUIRE_ENGINE();
    TempDir keys, ws, out;
    REQUIRE(run_airlock({"keygen", "--out", (keys.path() / "ci").string()}).exit_code == 0);
    write_file(ws.path() / ".github/workflows/ci.yml", "on: push\n");
    const fs::path dir = out.path() / "run";
    auto p = run_airlock(
        run_args(ws.path(), dir, {"--sign-key", (keys.path() / "ci.key").string()},
                 {"sh", "-c", "echo 'on: pull_request_target' > .github/workflows/ci.yml"}));
    CHECK(p.exit_code == 126);
    auto g = run_airlock({"gate", dir.string(), "--policy", "standard", "--pubkey",
                          (keys.path() / "ci.pub").string()});
    INFO(g.out << g.err);
    CHECK(g.exit_code == 3);
    CHECK_THAT(g.out, Catch::Contains("ASK   protected-change"));
    CHECK_THAT(g.out, Catch::Contains("gate: NEEDS APPROVAL"));
    CHECK_THAT(g.out, Catch::Contains("PASS  signature"));
    require_nothing_left(p);
}

TEST_CASE("apply: the patch applies to the original tree, only past a passing gate or with "
          "--force (recorded)",
          "[integration][gate]") {
    REQUIRE_ENGINE();
    TempDir keys, ws, pristine, out;
    REQUIRE(run_airlock({"keygen", "--out", (keys.path() / "ci").string()}).exit_code == 0);
    for (const auto& root : {ws.path(), pristine.path()}) {
        write_file(root / "a.txt", "one\n");
        write_file(root / "del.txt", "bye\n");
        write_file(root / "bin.dat", std::string("\x00\x01\x02\xff", 4));
    }
    const fs::path dir = out.path() / "run";
    auto p =
        run_airlock(run_args(ws.path(), dir, {"--sign-key", (keys.path() / "ci.key").string()},
                             {"sh", "-c",
                              "echo two > a.txt; rm del.txt; mkdir -p sub; echo new > sub/new.txt; "
                              "printf '\\003\\004\\377\\000' > bin.dat"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    const json report = read_report(dir);
    REQUIRE(report["changes"]["patch"]["written"] == true);
    CHECK(report["changes"]["patch"]["files"] == 3);
    // git itself accepts the patch on the original tree.
    const std::string check = "cd '" + pristine.path().string() + "' && git apply --check '" +
                              (dir / "changes.patch").string() + "'";
    CHECK(std::system(check.c_str()) == 0);

    // No key: standard's "unsigned" rule fails the gate, and apply refuses.
    auto refused = run_airlock(
        {"apply", dir.string(), "--workspace", pristine.path().string(), "--policy", "standard"});
    CHECK(refused.exit_code == 1);
    CHECK(read_file(pristine.path() / "a.txt") == "one\n");

    auto applied = run_airlock({"apply", dir.string(), "--policy", "standard", "--pubkey",
                                (keys.path() / "ci.pub").string()});
    INFO(applied.err);
    CHECK(applied.exit_code == 0);
    CHECK(read_file(ws.path() / "a.txt") == "two\n");
    CHECK(read_file(ws.path() / "sub/new.txt") == "new\n");
    CHECK_FALSE(fs::exists(ws.path() / "del.txt"));
    CHECK(read_file(ws.path() / "bin.dat") == std::string("\x03\x04\xff\x00", 4));

    auto forced = run_airlock({"apply", dir.string(), "--workspace", pristine.path().string(),
                               "--policy", "standard", "--force"});
    INFO(forced.err);
    CHECK(forced.exit_code == 0);
    CHECK(read_file(pristine.path() / "a.txt") == "two\n");
    const json record = json::parse(read_file(pristine.path() / ".airlock/applied.jsonl"));
    CHECK(record["forced"] == true);
    CHECK(record["gate_passed"] == false);
    CHECK(record["run_id"] == report["run_id"]);
    require_nothing_left(p);
}

TEST_CASE("github: task output cannot issue workflow commands, the summary and annotations are "
          "written",
          "[integration][gate]") {
    REQUIRE_ENGINE();
    TempDir ws, out, gh;
    write_file(ws.path() / ".github/workflows/ci.yml", "on: push\n");
    const fs::path summary = gh.path() / "summary.md";
    ProcOptions opts;
    opts.env = {"GITHUB_ACTIONS=true", "GITHUB_STEP_SUMMARY=" + summary.string()};
    // Not --quiet: the task's output is echoed, and carries a workflow command.
    auto p = run_airlock({"run", "--pull", "never", "--workspace", ws.path().string(), "--out",
                          (out.path() / "run").string(), "--", "sh", "-c",
                          "echo '::error::injected by the task'; echo x > "
                          ".github/workflows/ci.yml"},
                         opts);
    INFO(p.out << p.err);
    CHECK(p.exit_code == 126);
    const auto start = p.out.find("::stop-commands::");
    REQUIRE(start != std::string::npos);
    const std::string token = p.out.substr(start + 17, 32);
    CHECK(token.find_first_not_of("0123456789abcdef") == std::string::npos);
    const auto injected = p.out.find("::error::injected by the task");
    const auto resume = p.out.find("::" + token + "::");
    REQUIRE(injected != std::string::npos);
    REQUIRE(resume != std::string::npos);
    CHECK(start < injected);
    CHECK(injected < resume);
    // After commands resume: the violations as annotations.
    CHECK(p.out.find("::error file=.github/workflows/ci.yml", resume) != std::string::npos);
    const std::string md = read_file(summary);
    CHECK_THAT(md, Catch::Contains(read_report(out.path() / "run")["run_id"].get<std::string>()));
    require_nothing_left(p);
}
