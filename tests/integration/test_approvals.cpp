// Explicit approvals, end to end: a signed approval file, each way one is refused, --approve where
// the policy allows it, the prompt through a pseudo-terminal, and the gate's 3 turning into 0.
#include "net_fixture.hpp"

#include "audit/dsse.hpp"
#include "policy/capability.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace airlock;
using namespace airlock::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The run's identity as a GitLab job would give it (GitHub's variables switched off, so a
// runner that sets them does not change the test).
const std::vector<std::string> k_ci_env = {
    "GITHUB_ACTIONS=false", "GITLAB_CI=true", "CI_PROJECT_PATH=org/repo",
    "CI_COMMIT_SHA=0123456789abcdef0123456789abcdef01234567", "CI_PIPELINE_ID=4242"};

// Keys for alice (may approve anything) and bob (protected paths only), and a policy layer over
// permissive that puts bind-rw behind an approval, which a flag may give.
struct Approvers {
    TempDir dir;
    fs::path policy;
    Approvers() {
        for (const char* who : {"alice", "bob", "mallory"}) {
            auto k = run_airlock({"keygen", "--out", (dir.path() / who).string()});
            REQUIRE(k.exit_code == 0);
        }
        policy = dir.path() / "approvals.json";
        write_file(policy, R"({"approvals": {
            "required": ["network.open", "workspace.bind-rw"],
            "flag": ["workspace.bind-rw"],
            "approvers": [
              {"name": "alice", "public_key_file": "alice.pub"},
              {"name": "bob", "public_key_file": "bob.pub", "capabilities": ["path:*"]}]}})");
    }
    fs::path key(const char* who) const { return dir.path() / (std::string(who) + ".key"); }
    // `airlock approve` into FILE; the file's path.
    fs::path approve(const char* who, std::vector<std::string> extra, const char* name) const {
        const fs::path file = dir.path() / name;
        std::vector<std::string> args = {
            "approve", "--key", key(who).string(), "--out", file.string(), "--reason", "test"};
        args.insert(args.end(), extra.begin(), extra.end());
        auto p = run_airlock(args);
        INFO(p.err);
        REQUIRE(p.exit_code == 0);
        return file;
    }
};

std::vector<std::string> bind_rw_run(const fs::path& ws, const fs::path& out,
                                     const fs::path& policy, std::vector<std::string> extra) {
    // The task runs as 1000 and writes into the bind-mounted checkout.
    fs::permissions(ws, fs::perms::all);
    std::vector<std::string> flags = {"--policy",      "permissive",       "--policy",
                                      policy.string(), "--workspace-mode", "bind-rw"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    return run_args(ws, out, flags, {"sh", "-c", "echo approved > /workspace/result.txt"});
}

std::vector<json> events_of(const fs::path& out, const std::string& type) {
    std::vector<json> found;
    std::istringstream in(read_file(out / "events.jsonl"));
    for (std::string line; std::getline(in, line);) {
        json e = json::parse(line);
        if (e["type"] == type) found.push_back(e);
    }
    return found;
}

// Runs airlock on a pseudo-terminal; answers `answer` when it asks "[y/N]".
struct TerminalRun {
    int exit_code = -1;
    std::string seen;
    bool asked = false;
};
TerminalRun run_on_terminal(const std::vector<std::string>& args, const std::string& answer) {
    TerminalRun r;
    int master = -1;
    const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
    REQUIRE(pid >= 0);
    if (pid == 0) {
        for (const auto& kv : k_ci_env)
            ::putenv(const_cast<char*>(kv.c_str()));
        std::vector<char*> argv;
        std::string bin = AIRLOCK_BINARY;
        argv.push_back(bin.data());
        std::vector<std::string> copy = args;
        for (auto& a : copy)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(bin.c_str(), argv.data());
        _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd pfd{master, POLLIN, 0};
        if (::poll(&pfd, 1, 200) <= 0) continue;
        const ssize_t n = ::read(master, buf, sizeof buf);
        if (n <= 0) break; // EIO: the child is gone
        r.seen.append(buf, static_cast<std::size_t>(n));
        if (!r.asked && r.seen.find("[y/N]") != std::string::npos) {
            r.asked = true;
            REQUIRE(::write(master, answer.data(), answer.size()) ==
                    static_cast<ssize_t>(answer.size()));
        }
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == 0) ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    ::close(master);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

} // namespace

TEST_CASE("approvals: a signed approval file lets the run through and is recorded",
          "[integration][approvals]") {
    REQUIRE_ENGINE();
    Approvers a;
    TempDir ws, out;
    const auto file = a.approve(
        "alice", {"--capability", "workspace.bind-rw", "--for-repo", "org/repo", "--expires", "1h"},
        "ok.json");
    ProcOptions env;
    env.env = k_ci_env;
    auto p = run_airlock(
        bind_rw_run(ws.path(), out.path() / "run", a.policy, {"--approvals", file.string()}), env);
    INFO(p.err);
    CHECK(p.exit_code == 0);
    CHECK(read_file(ws.path() / "result.txt") == "approved\n");
    const json report = read_report(out.path() / "run");
    REQUIRE(report["approvals"]["granted"].size() == 1);
    CHECK(report["approvals"]["granted"][0]["capability"] == "workspace.bind-rw");
    CHECK(report["approvals"]["granted"][0]["approver"] == "alice");
    bool listed = false;
    for (const auto& c : report["capabilities"])
        listed =
            listed || (c["capability"] == "workspace.bind-rw" &&
                       c["granted_by"].get<std::string>().find("by alice") != std::string::npos);
    CHECK(listed);
    CHECK(events_of(out.path() / "run", "approval.granted").size() == 1);
    require_nothing_left(p);
}

TEST_CASE("approvals: every bad approval is refused with its reason, recorded, and nothing starts",
          "[integration][approvals]") {
    REQUIRE_ENGINE();
    Approvers a;
    const auto bind = std::vector<std::string>{"--capability", "workspace.bind-rw"};
    auto with = [&](std::vector<std::string> scope) {
        std::vector<std::string> v = bind;
        v.insert(v.end(), scope.begin(), scope.end());
        return v;
    };
    const auto unknown_key = a.approve("mallory", with({"--for-repo", "org/repo"}), "m.json");
    const auto other_repo = a.approve("alice", with({"--for-repo", "org/other"}), "o.json");
    const auto other_commit = a.approve("alice", with({"--for-commit", "feedface"}), "c.json");
    const auto replayed = a.approve("alice", with({"--for-run", "1111"}), "r.json");
    const auto beyond = a.approve("bob", with({"--for-repo", "org/repo"}), "b.json");
    const auto expired =
        a.approve("alice", with({"--for-repo", "org/repo", "--expires", "1s"}), "e.json");
    // Tampered: the signed payload says another repository now.
    const auto good = a.approve("alice", with({"--for-repo", "org/evil"}), "t.json");
    {
        json env = json::parse(read_file(good));
        auto payload = audit::base64_decode(env["payload"].get<std::string>());
        REQUIRE(payload);
        const auto at = payload->find("org/evil");
        REQUIRE(at != std::string::npos);
        payload->replace(at, 8, "org/repo");
        env["payload"] = audit::base64_encode(*payload);
        write_file(good, env.dump());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2100)); // e.json expires

    const std::vector<std::pair<fs::path, std::string>> cases = {
        {unknown_key, "which is not a key approvals.approvers lists (alice, bob)"},
        {other_repo, "bound to repository \"org/other\", but this run's repository is "
                     "\"org/repo\""},
        {other_commit, "bound to commit feedface, but this run's commit is "
                       "\"0123456789abcdef0123456789abcdef01234567\""},
        {replayed, "bound to run 1111, but this run is run 4242 (an approval is not replayed for "
                   "another run)"},
        {beyond, "bob may approve only path:* (approvals.approvers), not workspace.bind-rw"},
        {expired, "expired at "},
        {good, "the signature does not verify with alice's key"},
    };
    for (const auto& [file, reason] : cases) {
        INFO(file.filename() << ": " << reason);
        TempDir ws, out;
        ProcOptions env;
        env.env = k_ci_env;
        auto p = run_airlock(
            bind_rw_run(ws.path(), out.path() / "run", a.policy, {"--approvals", file.string()}),
            env);
        INFO(p.err);
        CHECK(p.exit_code == 126);
        CHECK(p.err.find(reason) != std::string::npos);
        // Which capability, who can approve it, and the command that makes one.
        CHECK(p.err.find("needs an explicit approval for workspace.bind-rw") != std::string::npos);
        CHECK(p.err.find("an approver (alice, approvals.approvers from") != std::string::npos);
        CHECK(p.err.find("airlock approve --key KEY --capability workspace.bind-rw") !=
              std::string::npos);
        CHECK_FALSE(fs::exists(ws.path() / "result.txt"));
        // Recorded: the refusal and the request, with no engine object made.
        const auto refused = events_of(out.path() / "run", "approval.refused");
        REQUIRE(refused.size() == 1);
        CHECK(refused[0]["refusal"].get<std::string>().find(reason) != std::string::npos);
        CHECK(events_of(out.path() / "run", "approval.requested").size() == 1);
        CHECK(events_of(out.path() / "run", "container.created").empty());
        const json report = read_report(out.path() / "run");
        CHECK(report["result"]["outcome"] == "refused");
        CHECK(report["verdict"]["passed"] == false);
        require_nothing_left(p);
    }
}

TEST_CASE("approvals: --approve only where approvals.flag allows it", "[integration][approvals]") {
    REQUIRE_ENGINE();
    Approvers a;
    TempDir ws, out;
    auto p = run_airlock(
        bind_rw_run(ws.path(), out.path() / "run", a.policy, {"--approve", "workspace.bind-rw"}));
    INFO(p.err);
    CHECK(p.exit_code == 0);
    const json report = read_report(out.path() / "run");
    REQUIRE(report["approvals"]["granted"].size() == 1);
    CHECK(report["approvals"]["granted"][0]["by"] ==
          "flag --approve workspace.bind-rw (approvals.flag)");
    require_nothing_left(p);

    // The same flag under a policy whose approvals.flag does not list it.
    TempDir ws2, out2;
    write_file(
        a.dir.path() / "noflag.json",
        R"({"approvals": {"required": ["network.open", "workspace.bind-rw"], "flag": ["network.open"]}})");
    auto q = run_airlock(bind_rw_run(ws2.path(), out2.path() / "run", a.dir.path() / "noflag.json",
                                     {"--approve", "workspace.bind-rw"}));
    INFO(q.err);
    CHECK(q.exit_code == 126);
    CHECK(q.err.find("refused --approve: approvals.flag (from " +
                     (a.dir.path() / "noflag.json").string() +
                     ") does not let a flag approve workspace.bind-rw") != std::string::npos);
    CHECK_FALSE(fs::exists(ws2.path() / "result.txt"));
    // A malformed capability is a usage error.
    auto bad = run_airlock(
        bind_rw_run(ws2.path(), out2.path() / "run2", a.policy, {"--approve", "workspace.bindrw"}));
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("did you mean workspace.bind-rw?") != std::string::npos);
}

TEST_CASE("approvals: the prompt on a terminal (yes, no) and never without one",
          "[integration][approvals]") {
    REQUIRE_ENGINE();
    Approvers a;
    {
        TempDir ws, out;
        auto yes = run_on_terminal(bind_rw_run(ws.path(), out.path() / "run", a.policy, {}), "y\n");
        INFO(yes.seen);
        CHECK(yes.asked);
        CHECK(yes.seen.find("this run needs an approval for workspace.bind-rw") !=
              std::string::npos);
        CHECK(yes.exit_code == 0);
        CHECK(read_file(ws.path() / "result.txt") == "approved\n");
        const json report = read_report(out.path() / "run");
        CHECK(report["approvals"]["granted"][0]["by"] == "answered yes on the terminal");
    }
    // Enter takes the default, no; "n" says it.
    for (const std::string answer : {"\n", "n\n"}) {
        INFO("answer " << json(answer).dump());
        TempDir ws, out;
        auto no = run_on_terminal(bind_rw_run(ws.path(), out.path() / "run", a.policy, {}), answer);
        INFO(no.seen);
        CHECK(no.asked);
        CHECK(no.exit_code == 126);
        CHECK_FALSE(fs::exists(ws.path() / "result.txt"));
    }
    {
        TempDir ws, out; // no terminal: stdin is /dev/null in run_airlock
        auto none = run_airlock(bind_rw_run(ws.path(), out.path() / "run", a.policy, {}));
        INFO(none.err);
        CHECK(none.exit_code == 126);
        CHECK(none.err.find("[y/N]") == std::string::npos);
        CHECK(none.err.find("answer yes when airlock asks on a terminal") != std::string::npos);
        CHECK_FALSE(fs::exists(ws.path() / "result.txt"));
        CHECK_FALSE(fs::exists(out.path() / "run")); // nothing presented: nothing recorded
    }
}

TEST_CASE("approvals: a protected change makes the gate answer 3, a bound approval makes it 0",
          "[integration][approvals][gate]") {
    REQUIRE_ENGINE();
    Approvers a;
    TempDir ws, out;
    write_file(ws.path() / ".github/workflows/ci.yml", "on: push\n");
    auto kg = run_airlock({"keygen", "--out", (a.dir.path() / "ci").string()});
    REQUIRE(kg.exit_code == 0);
    const fs::path dir = out.path() / "run";
    // The approvers come from an org file under standard; the run is signed.
    auto p = run_airlock(run_args(ws.path(), dir,
                                  {"--policy", a.policy.string(), "--policy", "standard",
                                   "--sign-key", (a.dir.path() / "ci.key").string()},
                                  {"sh", "-c",
                                   "echo 'on: pull_request_target' > "
                                   "/workspace/.github/workflows/ci.yml"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 126);
    CHECK(p.err.find("pending an approval") != std::string::npos);
    CHECK(p.err.find("airlock approve --key KEY --capability 'path:.github/workflows/**' "
                     "--for-report " +
                     dir.string()) != std::string::npos);
    const json report = read_report(dir);
    CHECK(report["verdict"]["needs_approval"] == true);
    CHECK(report["result"]["outcome"] == "success");
    CHECK(fs::exists(dir / "changes/files/.github/workflows/ci.yml"));
    require_nothing_left(p);

    const std::vector<std::string> gate = {
        "gate",     dir.string(), "--policy", a.policy.string(),
        "--policy", "standard",   "--pubkey", (a.dir.path() / "ci.pub").string()};
    auto ask = run_airlock(gate);
    INFO(ask.out);
    CHECK(ask.exit_code == 3);
    CHECK(ask.out.find("ASK   protected-change: 1 violation") != std::string::npos);

    // An approval for another report leaves it at 3, with the reason.
    TempDir other;
    write_file(other.path() / "report.json", "{}");
    const auto wrong = a.approve(
        "bob", {"--capability", "path:.github/workflows/**", "--for-report", other.path().string()},
        "wrong.json");
    auto still = gate;
    still.insert(still.end(), {"--approvals", wrong.string()});
    auto s = run_airlock(still);
    INFO(s.out);
    CHECK(s.exit_code == 3);
    CHECK(s.out.find("REFUSED approval " + wrong.string() + ": bound to the report with sha256 ") !=
          std::string::npos);
    CHECK(s.out.find("(another report)") != std::string::npos);

    // Bound to this report: pass, and the approval consumed is named.
    const auto right = a.approve(
        "bob", {"--capability", "path:.github/workflows/**", "--for-report", dir.string()},
        "right.json");
    auto passing = gate;
    passing.insert(passing.end(), {"--approvals", right.string()});
    auto ok = run_airlock(passing);
    INFO(ok.out << ok.err);
    CHECK(ok.exit_code == 0);
    CHECK(ok.out.find("APPROVED path:.github/workflows/ci.yml by bob") != std::string::npos);
    passing.push_back("--json");
    auto ok_json = run_airlock(passing);
    INFO(ok_json.out << ok_json.err);
    CHECK(ok_json.exit_code == 0);
    const json gate_json = json::parse(ok_json.out);
    CHECK(gate_json["passed"] == true);
    CHECK(gate_json["exit_code"] == 0);
    const json& presented = gate_json["approvals"]["presented"];
    REQUIRE(presented.size() == 1);
    CHECK(presented[0]["valid"] == true);
    CHECK(presented[0]["source"] == right.string());
    CHECK(gate_json["approvals"]["consumed"] ==
          json::array({{{"capability", "path:.github/workflows/ci.yml"},
                        {"approval_id", presented[0]["id"]},
                        {"approver", "bob"},
                        {"source", right.string()}}}));

    // apply takes the same approval; without it, it refuses.
    auto refused =
        run_airlock({"apply", dir.string(), "--pubkey", (a.dir.path() / "ci.pub").string()});
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("needs an approval") != std::string::npos);
    auto applied = run_airlock({"apply", dir.string(), "--pubkey",
                                (a.dir.path() / "ci.pub").string(), "--approvals", right.string()});
    INFO(applied.err);
    CHECK(applied.exit_code == 0);
    CHECK(read_file(ws.path() / ".github/workflows/ci.yml") == "on: pull_request_target\n");
}

TEST_CASE("approvals: a host the allowlist refuses is an approval request, and the gate's 3 "
          "turns into 0 with an approval bound to the report",
          "[integration][approvals][network][gate]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    Approvers a;
    auto kg = run_airlock({"keygen", "--out", (a.dir.path() / "ci").string()});
    REQUIRE(kg.exit_code == 0);
    TempDir ws, out;
    const int before = TestNet::connections(net.denied);
    auto r =
        run_script(ws, out,
                   {"--policy", a.policy.string(), "--policy", "standard", "--network", "allowlist",
                    "--egress-network", net.name, "--sign-key", (a.dir.path() / "ci.key").string()},
                   "curl -sS --max-time 10 -o /dev/null -w 'status=%{http_code}\\n' "
                   "http://denied.test/hello");
    INFO(r.proc.err);
    INFO(r.out);
    REQUIRE(r.proc.exit_code == 0);
    CHECK(has_line(r.out, "status=403"));
    CHECK(TestNet::connections(net.denied) == before);
    require_nothing_left(r.proc);

    // The refusal, and the request it became: host, port, count, first time, who may approve.
    const auto refused = refusals(r.report, "no allow rule");
    REQUIRE(refused.size() == 1);
    REQUIRE(r.report["approvals"]["requested"].size() == 1);
    const json& q = r.report["approvals"]["requested"][0];
    CHECK(q["capability"] == "network.host:denied.test:80");
    CHECK(q["stage"] == "network");
    CHECK(q["host"] == "denied.test");
    CHECK(q["port"] == 80);
    CHECK(q["count"] == 1);
    CHECK(q["first_time"].is_string());
    CHECK(q["first_time"] == refused[0]["time"]);
    CHECK(q["approvers"] == json::array({"alice"}));
    CHECK(q["detail"] == "the proxy refused 1 request(s) to denied.test:80");
    const auto requested = events_of(r.dir, "approval.requested");
    REQUIRE(requested.size() == 1);
    CHECK(requested[0]["capability"] == "network.host:denied.test:80");
    CHECK(requested[0]["count"] == 1);

    // standard asks on network-denied: 3 until an approver says yes for this very report.
    const std::vector<std::string> gate = {
        "gate",     r.dir.string(), "--policy", a.policy.string(),
        "--policy", "standard",     "--pubkey", (a.dir.path() / "ci.pub").string()};
    auto ask = run_airlock(gate);
    INFO(ask.out << ask.err);
    CHECK(ask.exit_code == 3);
    CHECK(ask.out.find("ASK   network-denied: ") != std::string::npos);

    // bob may approve only path:*: still 3, with the reason.
    const auto bobs = a.approve(
        "bob", {"--capability", "network.host:denied.test:80", "--for-report", r.dir.string()},
        "bob-host.json");
    auto still = gate;
    still.insert(still.end(), {"--approvals", bobs.string()});
    auto s = run_airlock(still);
    INFO(s.out);
    CHECK(s.exit_code == 3);
    CHECK(s.out.find("REFUSED approval " + bobs.string() +
                     ": bob may approve only path:* (approvals.approvers), not "
                     "network.host:denied.test:80") != std::string::npos);

    const auto alices = a.approve(
        "alice", {"--capability", "network.host:denied.test:80", "--for-report", r.dir.string()},
        "alice-host.json");
    auto passing = gate;
    passing.insert(passing.end(), {"--approvals", alices.string(), "--json"});
    auto ok = run_airlock(passing);
    INFO(ok.out << ok.err);
    CHECK(ok.exit_code == 0);
    const json g = json::parse(ok.out);
    CHECK(g["passed"] == true);
    const json& consumed = g["approvals"]["consumed"];
    REQUIRE(consumed.size() == 1);
    CHECK(consumed[0]["capability"] == "network.host:denied.test:80");
    CHECK(consumed[0]["approver"] == "alice");
    CHECK(consumed[0]["source"] == alices.string());
}

TEST_CASE("approve: usage rules (a scope, at most 90 days, never overwrite) and --list",
          "[integration][approvals]") {
    Approvers a;
    const std::string key = a.key("alice").string();
    const fs::path file = a.dir.path() / "approval.json";
    const std::vector<std::string> base = {"approve",      "--key", key,          "--capability",
                                           "network.open", "--out", file.string()};
    auto with = [&](std::vector<std::string> more) {
        std::vector<std::string> v = base;
        v.insert(v.end(), more.begin(), more.end());
        return v;
    };

    auto unbound = run_airlock(with({}));
    CHECK(unbound.exit_code == 2);
    CHECK(unbound.err == "airlock approve: an approval must be bound: give --for-repo REPO, "
                         "--for-commit SHA, --for-run RUN or --for-report OUT (or several)\n");
    CHECK_FALSE(fs::exists(file));

    auto too_long = run_airlock(with({"--for-repo", "org/repo", "--expires", "91d"}));
    CHECK(too_long.exit_code == 2);
    CHECK(too_long.err == "airlock approve: --expires: at most 90d (an approval should not "
                          "outlive the change it is for)\n");
    CHECK_FALSE(fs::exists(file));

    auto longest = run_airlock(with({"--for-repo", "org/repo", "--expires", "90d"}));
    INFO(longest.err);
    CHECK(longest.exit_code == 0);
    REQUIRE(fs::exists(file));
    const std::string first = read_file(file);

    auto again = run_airlock(with({"--for-repo", "org/other"}));
    CHECK(again.exit_code == 2);
    CHECK(again.err == "airlock approve: --out " + file.string() +
                           ": cannot create (File exists); an approval file is never "
                           "overwritten\n");
    CHECK(read_file(file) == first);

    auto list = run_airlock({"approve", "--list"});
    CHECK(list.exit_code == 0);
    CHECK(list.err.empty());
    std::string expected;
    for (const auto& k : policy::capability_kinds()) {
        std::string name(k.name);
        if (!k.argument.empty()) name += ":<" + std::string(k.argument) + ">";
        expected += name + "\n    " + std::string(k.description) + "\n";
    }
    CHECK(list.out == expected);
    CHECK(has_line(list.out, "network.open"));
    CHECK(has_line(list.out, "path:<path glob (workspace.protected syntax)>"));
}
