// Policies against the real engine: presets run, ceilings refuse before anything exists,
// secrets never reach OUT, protected paths are withheld.
#include "harness.hpp"

#include <catch2/catch.hpp>

#include <cctype>
#include <random>

#include <unistd.h>

using namespace airlock::test;
namespace fs = std::filesystem;

namespace {

// Every file under dir, read whole (test outputs are small).
std::vector<std::pair<fs::path, std::string>> all_files(const fs::path& dir) {
    std::vector<std::pair<fs::path, std::string>> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) out.emplace_back(e.path(), read_file(e.path()));
    return out;
}

std::string base64(std::string_view in) {
    static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                     (static_cast<unsigned char>(in[i + 1]) << 8) |
                     static_cast<unsigned char>(in[i + 2]);
        for (int s = 18; s >= 0; s -= 6)
            out += k[(v >> s) & 63];
    }
    if (i < in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
        out += k[(v >> 18) & 63];
        out += k[(v >> 12) & 63];
        out += i + 1 < in.size() ? k[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

} // namespace

TEST_CASE("each preset runs a task with its own defaults", "[integration][policy]") {
    REQUIRE_ENGINE();
    struct Want {
        const char* preset;
        const char* mode;
        std::uint64_t memory;
        std::int64_t pids;
    };
    for (const auto& w :
         {Want{"strict", "bind-ro", 1ull << 30, 128}, Want{"standard", "volume", 2ull << 30, 256},
          Want{"permissive", "volume", 4ull << 30, 1024}}) {
        INFO(w.preset);
        TempDir ws, out;
        write_file(ws.path() / "in.txt", "hello\n");
        // bind-ro shows the checkout as it is: the task's user must be able to read it.
        fs::permissions(ws.path(), fs::perms::owner_all | fs::perms::group_read |
                                       fs::perms::group_exec | fs::perms::others_read |
                                       fs::perms::others_exec);
        auto p = run_airlock(run_args(ws.path(), out.path() / "run", {"--policy", w.preset},
                                      {"sh", "-c",
                                       "cat /workspace/in.txt; cat /sys/fs/cgroup/pids/pids.max "
                                       "2>/dev/null || cat /sys/fs/cgroup/pids.max 2>/dev/null "
                                       "|| echo no-cgroupfs"}));
        INFO(p.err);
        REQUIRE(p.exit_code == 0);
        auto rep = read_report(out.path() / "run");
        // gVisor (strict's first choice when the engine has it) shows the task no cgroup files;
        // the limit is then the sandbox's, checked by inspect below and in verify.
        const bool gvisor = rep["limits"]["runtime"] == "runsc";
        CHECK(read_file(out.path() / "run/logs/stdout.log") ==
              "hello\n" + (gvisor ? std::string("no-cgroupfs") : std::to_string(w.pids)) + "\n");
        CHECK(rep["workspace"]["mode"] == w.mode);
        CHECK(rep["limits"]["memory_bytes"] == w.memory);
        CHECK(rep["limits"]["pids"] == w.pids);
        CHECK(rep["policy"]["layers"].back()["source"] == std::string("preset ") + w.preset);
        CHECK(rep["limits_origin"]["memory"] == std::string("policy: preset ") + w.preset);
        require_nothing_left(p);
    }
}

TEST_CASE("a request above the ceiling is refused before anything exists",
          "[integration][policy]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    auto p = run_airlock(run_args(ws.path(), out.path() / "run",
                                  {"--policy", "strict", "--memory", "4g"}, {"true"}));
    CHECK(p.exit_code == 126);
    CHECK(p.err == "airlock: refused: --memory: 4g is above the policy ceiling 2g "
                   "(resources.memory.max from preset strict); lower it, or get an approval for "
                   "resources.above-ceiling; nobody can approve resources.above-ceiling under this "
                   "policy (no approver lists it, approvals.flag does not allow it and "
                   "approvals.prompt is off)\n");
    CHECK(run_id_of(p.err).empty());
    CHECK_FALSE(fs::exists(out.path() / "run"));
    require_nothing_left(p);

    auto env = run_airlock(
        run_args(ws.path(), out.path() / "run2", {"--env", "AWS_SECRET_ACCESS_KEY=x"}, {"true"}));
    CHECK(env.exit_code == 126);
    CHECK(env.err.find("AWS_SECRET_ACCESS_KEY may not cross into the container") !=
          std::string::npos);
    CHECK_FALSE(fs::exists(out.path() / "run2"));
}

TEST_CASE("a policy that loosens an earlier layer is an error naming both values",
          "[integration][policy]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    write_file(ws.path() / "org.json", R"({"resources": {"memory": {"max": "1g"}}})");
    auto p = run_airlock(run_args(
        ws.path(), out.path() / "run",
        {"--policy", (ws.path() / "org.json").string(), "--policy", "standard"}, {"true"}));
    CHECK(p.exit_code == 2);
    CHECK(p.err.find("preset standard: /resources/memory/max: 8g loosens 1g set by " +
                     (ws.path() / "org.json").string()) != std::string::npos);
    CHECK_FALSE(fs::exists(out.path() / "run"));
}

TEST_CASE("a secret never appears in any file under OUT", "[integration][policy][secrets]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    const std::string secret = "sk-test-Zq81vLx0Pa93KfTt77Wm";
    ProcOptions po;
    po.env = {"OPENAI_API_KEY=" + secret};
    // Plain, base64 (alone and inside a longer stream), split across two writes with a pause,
    // on both streams, and written into a workspace file that comes back as a change.
    auto p = run_airlock(
        run_args(ws.path(), out.path() / "run", {"--secret", "OPENAI_API_KEY"},
                 {"sh", "-c",
                  "echo \"plain $OPENAI_API_KEY\"; printf %s \"$OPENAI_API_KEY\" | base64; "
                  "printf 'ab%s' \"$OPENAI_API_KEY\" | base64; "
                  "a=$(printf %s \"$OPENAI_API_KEY\" | cut -c1-12); "
                  "b=$(printf %s \"$OPENAI_API_KEY\" | cut -c13-); "
                  "printf 'split %s' \"$a\"; sleep 0.5; printf '%s\\n' \"$b\"; "
                  "echo \"err $OPENAI_API_KEY\" >&2; "
                  "echo \"token=$OPENAI_API_KEY\" > /workspace/leak.txt"}),
        po);
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    const std::string stdout_log = read_file(out.path() / "run/logs/stdout.log");
    CHECK(stdout_log.find("plain ***\n") != std::string::npos);
    CHECK(stdout_log.find("split ***\n") != std::string::npos);
    CHECK(read_file(out.path() / "run/logs/stderr.log") == "err ***\n");
    CHECK(read_file(out.path() / "run/changes/files/leak.txt") == "token=***\n");
    const std::string b64 = base64(secret).substr(0, 36);
    auto files = all_files(out.path());
    CHECK(files.size() >= 4);
    for (const auto& [path, content] : files) {
        INFO(path);
        CHECK(content.find(secret) == std::string::npos);
        CHECK(content.find(secret.substr(0, 16)) == std::string::npos);
        CHECK(content.find(b64) == std::string::npos);
    }
    CHECK(p.err.find(secret) == std::string::npos);
    auto rep = read_report(out.path() / "run");
    CHECK(rep["secrets"]["names"] == nlohmann::json::array({"OPENAI_API_KEY"}));
    CHECK(rep["secrets_redacted_in"] == nlohmann::json::array({"leak.txt"}));
    require_nothing_left(p);
}

TEST_CASE("file secrets live on a tmpfs and never in the container's configuration",
          "[integration][policy][secrets]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    const std::string secret = "sk-file-Hn4Qw9Zr2Lp7Xc5Vb3";
    write_file(ws.path() / "files.json",
               R"({"extends": "standard", "secrets": {"inject": "file"}})");
    ProcOptions po;
    po.env = {"ANTHROPIC_API_KEY=" + secret};
    bool inspected = false;
    std::string env_dump;
    po.while_running = [&](int) {
        // The live agent container: its configuration must not carry the value.
        for (int i = 0; i < 100 && !inspected; ++i) {
            auto list = client().containers_by_label("io.airlock.role", "agent");
            if (list && !list->empty()) {
                auto ins = client().container_inspect((*list)[0].value("Id", ""));
                if (ins) {
                    env_dump = (*ins)["Config"]["Env"].dump();
                    inspected = true;
                }
            }
            if (!inspected) usleep(50 * 1000);
        }
    };
    auto p = run_airlock(
        run_args(ws.path(), out.path() / "run",
                 {"--policy", (ws.path() / "files.json").string(), "--secret", "ANTHROPIC_API_KEY"},
                 {"sh", "-c",
                  "sleep 1; stat -c '%a %u' /run/secrets/ANTHROPIC_API_KEY; "
                  "cat /run/secrets/ANTHROPIC_API_KEY; echo; "
                  "env | grep -c ANTHROPIC_API_KEY; "
                  "grep ' /run/secrets ' /proc/mounts | cut -d' ' -f3,4 | cut -d, -f1"}),
        po);
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    CHECK(read_file(out.path() / "run/logs/stdout.log") == "400 1000\n***\n0\ntmpfs ro\n");
    REQUIRE(inspected);
    CHECK(env_dump.find(secret) == std::string::npos);
    CHECK(env_dump.find("ANTHROPIC_API_KEY") == std::string::npos);
    for (const auto& [path, content] : all_files(out.path())) {
        INFO(path);
        CHECK(content.find(secret) == std::string::npos);
    }
    auto rep = read_report(out.path() / "run");
    CHECK(rep["secrets"]["inject"] == "file");
    require_nothing_left(p);
}

TEST_CASE("a secret the policy does not name is refused", "[integration][policy][secrets]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    ProcOptions po;
    po.env = {"AWS_SECRET_ACCESS_KEY=abcdefghijklmnop"};
    auto p = run_airlock(
        run_args(ws.path(), out.path() / "run", {"--secret", "AWS_SECRET_ACCESS_KEY"}, {"true"}),
        po);
    CHECK(p.exit_code == 126);
    CHECK(p.err.find("AWS_SECRET_ACCESS_KEY is not a secret this policy lets in") !=
          std::string::npos);
    CHECK(p.err.find("abcdefghijklmnop") == std::string::npos);
}

TEST_CASE("the report names the variables that crossed and never their values",
          "[integration][policy]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    std::random_device rd;
    std::string marker = "marker-";
    for (int i = 0; i < 12; ++i)
        marker += "abcdefghijklmnopqrstuvwxyz0123456789"[rd() % 36];
    // The task shows the value crossed without writing it: upper-cased, it no longer matches.
    auto p = run_airlock(run_args(ws.path(), out.path() / "run", {"--env", "CI=" + marker},
                                  {"sh", "-c", "printf '%s\\n' \"$CI\" | tr a-z A-Z"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    std::string upper = marker;
    for (auto& c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    CHECK(read_file(out.path() / "run/logs/stdout.log") == upper + "\n");
    auto rep = read_report(out.path() / "run");
    CHECK(rep["limits"]["env"] == nlohmann::json::array({"CI"}));
    auto files = all_files(out.path());
    CHECK(files.size() >= 4);
    for (const auto& [path, content] : files) {
        INFO(path);
        CHECK(content.find(marker) == std::string::npos);
    }
    CHECK(p.err.find(marker) == std::string::npos);
    require_nothing_left(p);
}

TEST_CASE("changes to protected paths wait for an approval and stop the run",
          "[integration][policy]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    write_file(ws.path() / ".github/workflows/ci.yml", "on: push\n");
    auto p = run_airlock(run_args(ws.path(), out.path() / "run", {},
                                  {"sh", "-c",
                                   "echo 'on: pull_request_target' > "
                                   "/workspace/.github/workflows/ci.yml; echo ok > "
                                   "/workspace/result.txt"}));
    INFO(p.err);
    CHECK(p.exit_code == 126);
    CHECK(p.err.find("the task changed protected paths (.github/workflows/ci.yml; "
                     "workspace.protected from preset standard); the changes are in the output, "
                     "pending an approval") != std::string::npos);
    // Kept in OUT for an approval bound to the report; the checkout is untouched.
    CHECK(read_file(out.path() / "run/changes/files/.github/workflows/ci.yml") ==
          "on: pull_request_target\n");
    CHECK(read_file(out.path() / "run/changes/files/result.txt") == "ok\n");
    CHECK(read_file(ws.path() / ".github/workflows/ci.yml") == "on: push\n");
    auto rep = read_report(out.path() / "run");
    CHECK(rep["result"]["outcome"] == "success");
    CHECK(rep["result"]["exit_code"] == 126);
    CHECK(rep["protected_changes"]["changes"][0]["pattern"] == ".github/workflows/**");
    CHECK(rep["protected_changes"]["pending"] ==
          nlohmann::json::array({".github/workflows/ci.yml"}));
    // Unsigned, so standard's "unsigned" rule fails too: the verdict is a failure, not a question.
    CHECK(rep["verdict"]["needs_approval"] == false);
    require_nothing_left(p);
}

TEST_CASE("runsc: used when the engine has it, refused with the fix when required and absent",
          "[integration][policy]") {
    REQUIRE_ENGINE();
    auto info = client().info();
    REQUIRE(info.ok());
    const bool has_runsc = info->value("Runtimes", nlohmann::json::object()).contains("runsc");
    TempDir ws, out;
    write_file(ws.path() / "gvisor.json", R"({"runtime": {"allow": ["runsc"]}})");
    auto p = run_airlock(run_args(
        ws.path(), out.path() / "run",
        {"--policy", "standard", "--policy", (ws.path() / "gvisor.json").string()}, {"true"}));
    INFO(p.err);
    if (has_runsc) {
        CHECK(p.exit_code == 0);
        CHECK(read_report(out.path() / "run")["limits"]["runtime"] == "runsc");
    } else {
        CHECK(p.exit_code == 126);
        CHECK(p.err.find("the engine has none of the allowed runtimes (runsc); install gVisor") !=
              std::string::npos);
    }
    require_nothing_left(p);

    // strict prefers runsc and falls back to runc: it runs either way and records which.
    auto s =
        run_airlock(run_args(ws.path(), out.path() / "strict", {"--policy", "strict"}, {"true"}));
    CHECK(s.exit_code == 0);
    CHECK(read_report(out.path() / "strict")["limits"]["runtime"] ==
          (has_runsc ? "runsc" : "runc"));
    require_nothing_left(s);
}

TEST_CASE("policy lint, show and diff on the command line", "[integration][policy][cli]") {
    TempDir dir;
    write_file(dir.path() / "team.json",
               R"({"network": {"allow": ["*.*.com"]}, "resources": {"memroy": {}}})");
    auto lint = run_airlock({"policy", "lint", (dir.path() / "team.json").string()});
    CHECK(lint.exit_code == 2);
    const std::string f = (dir.path() / "team.json").string();
    CHECK(lint.err == f +
                          ": /network/allow/0: \"*.*.com\" is not a host pattern (use "
                          "\"*.example.com\")\n" +
                          f + ": /resources/memroy: unknown field (did you mean \"memory\"?)\n");
    for (const char* preset : {"strict", "standard", "permissive"}) {
        auto ok = run_airlock(
            {"policy", "lint", std::string(AIRLOCK_SOURCE_DIR) + "/policies/" + preset + ".json"});
        CHECK(ok.exit_code == 0);
    }
    write_file(dir.path() / "repo.json", R"({"resources": {"memory": {"max": "4g"}}})");
    auto show = run_airlock({"policy", "show", "--policy", "standard", "--policy",
                             (dir.path() / "repo.json").string()});
    CHECK(show.exit_code == 0);
    CHECK(show.out.find("resources.memory.max          = 4g  (" +
                        (dir.path() / "repo.json").string() + ")") != std::string::npos);
    CHECK(show.out.find("resources.pids.max            = 1024  (preset standard)") !=
          std::string::npos);
    auto diff = run_airlock({"policy", "diff", "strict", "standard"});
    CHECK(diff.exit_code == 1);
    CHECK(diff.out.find("loosens  resources.memory.max: 2g -> 8g\n") != std::string::npos);
    write_file(dir.path() / "task.json", R"({"memory": "3g", "command": ["true"]})");
    auto cfg = run_airlock({"run", "--policy", "standard", "--task",
                            (dir.path() / "task.json").string(), "--pids", "300", "--show-config"});
    CHECK(cfg.exit_code == 0);
    CHECK(cfg.out.find("memory          = 3.0 GiB  (" + (dir.path() / "task.json").string() +
                       ": /memory)\n") != std::string::npos);
    CHECK(cfg.out.find("pids            = 300  (--pids)\n") != std::string::npos);
    CHECK(cfg.out.find("timeout         = 30m00s  (policy: preset standard)\n") !=
          std::string::npos);
    // One value per flag use, commas and all.
    auto commas = run_airlock({"run", "--policy", "permissive", "--network", "allowlist", "--allow",
                               "x.test:80,443", "--env", "CI=a,b", "--show-config", "--", "true"});
    INFO(commas.err);
    CHECK(commas.exit_code == 0);
    CHECK(commas.out.find("x.test:80,443") != std::string::npos);
    CHECK(commas.out.find("env             = CI  (") != std::string::npos);
    auto same = run_airlock({"policy", "diff", "standard", "standard"});
    CHECK(same.exit_code == 0);
    CHECK(same.out == "no differences\n");
}
