// Task file parsing, merging with flags, and validation into RunOptions.
#include "config/run_options.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace airlock::config;
using airlock::util::ErrorKind;
using std::chrono::milliseconds;
namespace fs = std::filesystem;
using airlock::test::TempDir;

namespace {

const std::filesystem::path k_base = "/home/dev/proj";

std::optional<std::string> no_env(const std::string&) {
    return std::nullopt;
}

// A request as the flags would make it: each value's origin is "--<flag>".
RunRequest flags(std::map<std::string, std::string> values,
                 std::vector<std::string> command = {"true"}) {
    RunRequest r;
    for (const auto& [k, v] : values) {
        r.values[k] = v;
        std::string flag = k;
        for (auto& c : flag)
            if (c == '_') c = '-';
        r.origin[k] = "--" + flag;
    }
    r.command = std::move(command);
    if (!r.command.empty()) r.command_origin = "command line";
    return r;
}

RunRequest with_env(std::vector<std::string> env) {
    RunRequest r = flags({});
    r.env = std::move(env);
    r.env_origin = "--env";
    return r;
}

const char* k_full_task = R"({
  "image": "python:3.12-slim",
  "workspace": "src",
  "workspace_mode": "bind-ro",
  "out": "/tmp/airlock-out",
  "env": ["A=1", "TOKEN"],
  "memory": "1g",
  "cpus": 1.5,
  "pids": 128,
  "timeout": "10m",
  "grace": "5s",
  "user": "1001:1002",
  "runtime": "runsc",
  "output_cap": "1m",
  "tmpfs_size": "64m",
  "pull": "never",
  "command": ["make", "test"]
})";

void write(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::binary);
    out << text;
    REQUIRE(out);
}

RunRequest with_secrets(std::vector<std::string> secrets) {
    RunRequest r = flags({});
    r.secret_origins.assign(secrets.size(), "--secret");
    r.secrets = std::move(secrets);
    return r;
}

} // namespace

TEST_CASE("a full task file is read field by field with origins", "[config][task]") {
    auto r = parse_task_json(k_full_task, "task.json", k_base);
    REQUIRE(r.ok());
    CHECK(r->values.at("image") == "python:3.12-slim");
    CHECK(r->values.at("workspace") == "/home/dev/proj/src");
    CHECK(r->values.at("workspace_mode") == "bind-ro");
    CHECK(r->values.at("out") == "/tmp/airlock-out");
    CHECK(r->values.at("memory") == "1g");
    CHECK(r->values.at("cpus") == "1.5");
    CHECK(r->values.at("pids") == "128");
    CHECK(r->values.at("timeout") == "10m");
    CHECK(r->values.at("grace") == "5s");
    CHECK(r->values.at("user") == "1001:1002");
    CHECK(r->values.at("runtime") == "runsc");
    CHECK(r->values.at("output_cap") == "1m");
    CHECK(r->values.at("tmpfs_size") == "64m");
    CHECK(r->values.at("pull") == "never");
    CHECK(r->values.size() == 14);
    CHECK(r->env == std::vector<std::string>{"A=1", "TOKEN"});
    CHECK(r->command == std::vector<std::string>{"make", "test"});
    CHECK(r->origin.at("memory") == "task.json: /memory");
    CHECK(r->env_origin == "task.json: /env");
    CHECK(r->command_origin == "task.json: /command");
}

TEST_CASE("a full task file resolves to the options it names", "[config][task]") {
    auto req = parse_task_json(k_full_task, "task.json", k_base);
    REQUIRE(req.ok());
    auto o = resolve(*req, [](const std::string& n) -> std::optional<std::string> {
        if (n == "TOKEN") return "t0k3n";
        return std::nullopt;
    });
    REQUIRE(o.ok());
    CHECK(o->image == "python:3.12-slim");
    CHECK(o->workspace == "/home/dev/proj/src");
    CHECK(o->workspace_mode == WorkspaceMode::bind_ro);
    REQUIRE(o->out.has_value());
    CHECK(*o->out == "/tmp/airlock-out");
    CHECK(o->memory == (1ull << 30));
    CHECK(o->nano_cpus == 1'500'000'000);
    CHECK(o->pids == 128);
    CHECK(o->timeout == milliseconds(600'000));
    CHECK(o->grace == milliseconds(5'000));
    CHECK(o->user == "1001:1002");
    CHECK(o->runtime == "runsc");
    CHECK(o->output_cap == (1ull << 20));
    CHECK(o->tmpfs_size == (64ull << 20));
    CHECK_FALSE(o->pull_missing);
    CHECK(o->env ==
          std::vector<std::pair<std::string, std::string>>{{"A", "1"}, {"TOKEN", "t0k3n"}});
    CHECK(o->command == std::vector<std::string>{"make", "test"});
    CHECK(o->origin.at("memory") == "task.json: /memory");
}

TEST_CASE("an unknown task field is an error naming the file and the field", "[config][task]") {
    auto r = parse_task_json(R"({"image": "x", "bogus": 1})", "agent-task.json", k_base);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(r.error().message, Catch::Contains("agent-task.json"));
    CHECK_THAT(r.error().message, Catch::Contains("/bogus"));
    CHECK_THAT(r.error().message, Catch::Contains("unknown field"));
    CHECK_THAT(r.error().message,
               Catch::StartsWith("agent-task.json: /bogus: unknown field (known:"));
}

TEST_CASE("task fields of the wrong type are errors with their place", "[config][task]") {
    struct Case {
        const char* text;
        const char* message;
    };
    const Case cases[] = {
        {R"({"memory": true})", "t.json: /memory: must be a string or a number"},
        {R"({"image": null})", "t.json: /image: must be a string or a number"},
        {R"({"cpus": [1]})", "t.json: /cpus: must be a string or a number"},
        {R"({"user": {"uid": 1}})", "t.json: /user: must be a string or a number"},
        {R"({"env": "A=1"})", "t.json: /env: must be an array of strings"},
        {R"({"command": "make test"})", "t.json: /command: must be an array of strings"},
        {R"({"command": ["make", 1]})", "t.json: /command/1: must be a string"},
        {R"({"env": [null]})", "t.json: /env/0: must be a string"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        auto r = parse_task_json(c.text, "t.json", k_base);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::invalid_input);
        CHECK(r.error().message == c.message);
    }
}

TEST_CASE("a task file must be a JSON object", "[config][task]") {
    auto bad = parse_task_json("{\"image\": ", "t.json", k_base);
    REQUIRE_FALSE(bad.ok());
    CHECK_THAT(bad.error().message, Catch::StartsWith("t.json: not valid JSON"));

    auto empty = parse_task_json("", "t.json", k_base);
    REQUIRE_FALSE(empty.ok());
    CHECK(empty.error().kind == ErrorKind::invalid_input);

    auto array = parse_task_json("[1, 2]", "t.json", k_base);
    REQUIRE_FALSE(array.ok());
    CHECK(array.error().message == "t.json: the top level must be a JSON object");

    auto ok = parse_task_json("{}", "t.json", k_base);
    REQUIRE(ok.ok());
    CHECK(ok->values.empty());
}

TEST_CASE("relative workspace and out are resolved against the task file's directory",
          "[config][task]") {
    auto r =
        parse_task_json(R"({"workspace": "../other/./ws", "out": "runs/1"})", "t.json", k_base);
    REQUIRE(r.ok());
    CHECK(r->values.at("workspace") == "/home/dev/other/ws");
    CHECK(r->values.at("out") == "/home/dev/proj/runs/1");

    auto dot = parse_task_json(R"({"workspace": "."})", "t.json", k_base);
    REQUIRE(dot.ok());
    CHECK(std::filesystem::path(dot->values.at("workspace")).lexically_normal() ==
          std::filesystem::path("/home/dev/proj/"));

    auto abs = parse_task_json(R"({"workspace": "/srv/code"})", "t.json", k_base);
    REQUIRE(abs.ok());
    CHECK(abs->values.at("workspace") == "/srv/code");

    // Other fields are never touched, even if they look like paths.
    auto image = parse_task_json(R"({"image": "reg/x:1"})", "t.json", k_base);
    REQUIRE(image.ok());
    CHECK(image->values.at("image") == "reg/x:1");
}

TEST_CASE("merge: flags win, env lists are concatenated", "[config][merge]") {
    auto task =
        parse_task_json(R"({"memory": "1g", "image": "a:1", "env": ["A=1"], "command": ["make"]})",
                        "t.json", k_base);
    REQUIRE(task.ok());
    RunRequest over = flags({{"memory", "512m"}}, {});
    over.env = {"B=2"};
    over.env_origin = "--env";

    RunRequest m = merge(*task, over);
    CHECK(m.values.at("memory") == "512m");
    CHECK(m.origin.at("memory") == "--memory");
    CHECK(m.values.at("image") == "a:1");
    CHECK(m.origin.at("image") == "t.json: /image");
    CHECK(m.env == std::vector<std::string>{"A=1", "B=2"});
    CHECK(m.command == std::vector<std::string>{"make"}); // no command among the flags
    CHECK(m.command_origin == "t.json: /command");

    RunRequest cmd = flags({}, {"pytest", "-q"});
    RunRequest m2 = merge(*task, cmd);
    CHECK(m2.command == std::vector<std::string>{"pytest", "-q"});
    CHECK(m2.command_origin == "command line");
    CHECK(m2.env == std::vector<std::string>{"A=1"});
}

TEST_CASE("merge gives a value without an origin the flag's name", "[config][merge]") {
    RunRequest over;
    over.values["cpus"] = "2";
    RunRequest m = merge(RunRequest{}, over);
    CHECK(m.origin.at("cpus") == "--cpus");
}

TEST_CASE("resolve: the defaults are safe", "[config][resolve]") {
    auto o = resolve(flags({}, {"true"}), no_env);
    REQUIRE(o.ok());
    CHECK(o->user == "1000:1000");
    CHECK(o->memory == (2ull << 30));
    CHECK(o->nano_cpus == 1'000'000'000);
    CHECK(o->pids == 256);
    CHECK(o->timeout == milliseconds(30 * 60 * 1000));
    CHECK(o->grace == milliseconds(10'000));
    CHECK(o->workspace_mode == WorkspaceMode::volume);
    CHECK(o->runtime == "runc");
    CHECK(o->pull_missing);
    CHECK(o->image == "airlock/agent-base:latest");
    CHECK(o->tmpfs_size == (256ull << 20));
    CHECK(o->output_cap == (64ull << 20));
    CHECK_FALSE(o->out.has_value());
    CHECK(o->env.empty());
    CHECK(o->command == std::vector<std::string>{"true"});
    CHECK(o->origin.at("memory") == "default");
    CHECK(o->origin.at("user") == "default");
}

TEST_CASE("resolve refuses root", "[config][resolve]") {
    for (const char* user : {"0", "0:0", "0:1000", "00", "0000000000"}) {
        INFO(user);
        auto o = resolve(flags({{"user", user}}), no_env);
        REQUIRE_FALSE(o.ok());
        CHECK(o.error().kind == ErrorKind::refused);
        CHECK_THAT(o.error().message, Catch::StartsWith(std::string("--user: \"") + user + "\""));
        CHECK_THAT(o.error().message, Catch::Contains("root"));
    }
    auto zero = resolve(flags({{"user", "0"}}), no_env);
    CHECK(zero.error().message ==
          "--user: \"0\" is root; agents run as a non-root user (use e.g. 1000:1000)");
}

TEST_CASE("resolve wants a numeric user", "[config][resolve]") {
    for (const char* user : {"abc", "root", "1000:", ":1000", "1000:abc", "-1", "1000:1000:1000",
                             "", " 1000", "12345678901"}) {
        INFO('"' << user << '"');
        auto o = resolve(flags({{"user", user}}), no_env);
        REQUIRE_FALSE(o.ok());
        CHECK(o.error().kind == ErrorKind::invalid_input);
    }
    auto abc = resolve(flags({{"user", "abc"}}), no_env);
    CHECK(abc.error().message == "--user: \"abc\" is not numeric (use UID[:GID], e.g. 1000:1000)");
}

TEST_CASE("resolve: a lone UID becomes UID:UID", "[config][resolve]") {
    auto o = resolve(flags({{"user", "1234"}}), no_env);
    REQUIRE(o.ok());
    CHECK(o->user == "1234:1234");

    auto pair = resolve(flags({{"user", "1234:5678"}}), no_env);
    REQUIRE(pair.ok());
    CHECK(pair->user == "1234:5678");
}

TEST_CASE("resolve: workspace modes", "[config][resolve]") {
    const std::pair<const char*, WorkspaceMode> modes[] = {
        {"volume", WorkspaceMode::volume},
        {"bind-ro", WorkspaceMode::bind_ro},
        {"bind-rw", WorkspaceMode::bind_rw},
    };
    for (const auto& [text, mode] : modes) {
        INFO(text);
        auto o = resolve(flags({{"workspace_mode", text}}), no_env);
        REQUIRE(o.ok());
        CHECK(o->workspace_mode == mode);
        CHECK(std::string(to_string(mode)) == text);
    }
    for (const char* text : {"bind", "rw", "", "Volume", "bind_ro"}) {
        INFO('"' << text << '"');
        auto o = resolve(flags({{"workspace_mode", text}}), no_env);
        REQUIRE_FALSE(o.ok());
        CHECK(o.error().kind == ErrorKind::invalid_input);
    }
    auto bad = resolve(flags({{"workspace_mode", "bind"}}), no_env);
    CHECK(bad.error().message ==
          "--workspace-mode: \"bind\" is not a mode (use volume, bind-ro or bind-rw)");
}

TEST_CASE("resolve: --env NAME is looked up, NAME=VALUE is taken as is", "[config][resolve]") {
    std::vector<std::string> asked;
    auto lookup = [&asked](const std::string& n) -> std::optional<std::string> {
        asked.push_back(n);
        if (n == "API_KEY") return "s3cret";
        if (n == "EMPTY") return "";
        return std::nullopt;
    };
    auto o = resolve(with_env({"API_KEY", "EMPTY", "MODE=fast", "EQ=a=b", "BLANK="}), lookup);
    REQUIRE(o.ok());
    CHECK(
        o->env ==
        std::vector<std::pair<std::string, std::string>>{
            {"API_KEY", "s3cret"}, {"EMPTY", ""}, {"MODE", "fast"}, {"EQ", "a=b"}, {"BLANK", ""}});
    CHECK(asked == std::vector<std::string>{"API_KEY", "EMPTY"});
}

TEST_CASE("resolve: an unset --env NAME is an error naming the variable", "[config][resolve]") {
    auto o = resolve(with_env({"GITHUB_TOKEN"}), no_env);
    REQUIRE_FALSE(o.ok());
    CHECK(o.error().kind == ErrorKind::invalid_input);
    CHECK(o.error().message == "--env: GITHUB_TOKEN is not set in airlock's environment (set it, "
                               "or pass GITHUB_TOKEN=VALUE)");
}

TEST_CASE("resolve: bad variable names are refused", "[config][resolve]") {
    for (const char* e : {"1X=2", "=x", "", "A-B=1", "A B=1", "Ä=1"}) {
        INFO('"' << e << '"');
        auto o = resolve(with_env({e}), no_env);
        REQUIRE_FALSE(o.ok());
        CHECK(o.error().kind == ErrorKind::invalid_input);
        CHECK_THAT(o.error().message, Catch::StartsWith("--env: \"") &&
                                          Catch::EndsWith("is not a variable name (use NAME or "
                                                          "NAME=VALUE)"));
    }
}

TEST_CASE("resolve: a duplicate variable keeps the last value", "[config][resolve]") {
    auto o = resolve(with_env({"A=1", "B=2", "A=3"}), no_env);
    REQUIRE(o.ok());
    CHECK(o->env == std::vector<std::pair<std::string, std::string>>{{"A", "3"}, {"B", "2"}});
}

TEST_CASE("resolve: no command is an error with the usage", "[config][resolve]") {
    auto o = resolve(flags({}, {}), no_env);
    REQUIRE_FALSE(o.ok());
    CHECK(o.error().kind == ErrorKind::invalid_input);
    CHECK(o.error().message ==
          "no command given (use: airlock run [options] -- COMMAND [ARGS...])");
}

TEST_CASE("resolve: value errors name where the value came from", "[config][resolve]") {
    auto task = parse_task_json(R"({"memory": "12zz", "command": ["x"]})", "task.json", k_base);
    REQUIRE(task.ok());
    auto o = resolve(*task, no_env);
    REQUIRE_FALSE(o.ok());
    CHECK(o.error().message == "task.json: /memory: \"12zz\" is not a size (use a number with an "
                               "optional unit: 512m, 2g, 1GiB)");

    auto flag = resolve(flags({{"memory", "12zz"}}), no_env);
    REQUIRE_FALSE(flag.ok());
    CHECK_THAT(flag.error().message, Catch::StartsWith("--memory: \"12zz\""));
}

TEST_CASE("resolve: each field's own checks", "[config][resolve]") {
    struct Case {
        const char* field;
        const char* value;
        const char* message; // nullptr: just invalid_input
    };
    const Case cases[] = {
        {"memory", "5m", "--memory: \"5m\" is below the engine's minimum of 6m"},
        {"cpus", "0", nullptr},
        {"cpus", "lots", nullptr},
        {"pids", "0", nullptr},
        {"pids", "1000001", nullptr},
        {"timeout", "forever", nullptr},
        {"grace", "-1s", nullptr},
        {"output_cap", "big", nullptr},
        {"tmpfs_size", "0", nullptr},
        {"image", "", "--image: \"\" is not an image reference"},
        {"image", "a b", nullptr},
        {"out", "", "--out: is empty"},
        {"pull", "always", "--pull: \"always\" is not a pull policy (use missing or never)"},
        {"runtime", "kata", "--runtime: \"kata\" is not supported (use runc or runsc)"},
    };
    for (const auto& c : cases) {
        INFO(c.field << " = \"" << c.value << '"');
        auto o = resolve(flags({{c.field, c.value}}), no_env);
        REQUIRE_FALSE(o.ok());
        CHECK(o.error().kind == ErrorKind::invalid_input);
        if (c.message) CHECK(o.error().message == c.message);
    }

    auto six = resolve(flags({{"memory", "6m"}, {"pull", "missing"}}), no_env);
    REQUIRE(six.ok());
    CHECK(six->memory == (6ull << 20));
    CHECK(six->pull_missing);
}

// Regression (runner/config/run_options.cpp, merge + resolve): merge() replaces env_origin with the
// flags' origin whenever flags add --env, so an invalid entry that came from the task file is
// reported as "--env: ..." and the user looks in the wrong place.
TEST_CASE("an env error from the task file names the task file after merging flags",
          "[config][resolve]") {
    auto task = parse_task_json(R"({"env": ["1BAD=x"], "command": ["x"]})", "task.json", k_base);
    REQUIRE(task.ok());
    RunRequest m = merge(*task, with_env({"OK=1"}));
    auto o = resolve(m, no_env);
    REQUIRE_FALSE(o.ok());
    CHECK_THAT(o.error().message, Catch::StartsWith("task.json: /env"));
}

TEST_CASE("task-file mistakes: line and column, closest name, duplicate keys", "[config][task]") {
    auto bad = parse_task_json("{\n  \"image\": \"x\",\n  \"memory\": 2g\n}", "t.json", k_base);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message ==
          "t.json: not valid JSON at line 3, column 14: syntax error while parsing object - "
          "invalid literal; last read: '2g'; expected '}'");
    auto typo = parse_task_json(R"({"memroy": "1g"})", "t.json", k_base);
    REQUIRE_FALSE(typo.ok());
    CHECK(typo.error().message == "t.json: /memroy: unknown field (did you mean \"memory\"?)");
    auto dup = parse_task_json(R"({"memory": "1g", "memory": "64g"})", "t.json", k_base);
    REQUIRE_FALSE(dup.ok());
    CHECK(dup.error().message ==
          "t.json: the key \"memory\" appears twice in one object (keep one)");
}

TEST_CASE("a number too large for JSON is an error, not a crash", "[config][task]") {
    auto big = parse_task_json(R"({"memory": 1e400})", "t.json", k_base);
    REQUIRE_FALSE(big.ok());
    CHECK(big.error().message == "t.json: not valid JSON: number overflow parsing '1e400'");
}

TEST_CASE("endless or huge files are refused by size, not read whole", "[config][task]") {
    auto task = parse_task_file("/dev/zero");
    REQUIRE_FALSE(task.ok());
    CHECK(task.error().message == "/dev/zero: larger than 1 MiB");
    RunRequest req;
    req.command = {"true"};
    req.secrets = {"TOKEN=@/dev/zero"};
    req.secret_origins = {"--secret"};
    auto r = resolve(req, no_env);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "--secret: /dev/zero is larger than 64 KiB");
}

TEST_CASE("secret NAME=@FILE reads the file and drops one trailing newline", "[config][resolve]") {
    TempDir dir;
    write(dir.path() / "lf", "sk-file-value-123\n");
    write(dir.path() / "crlf", "sk-file-value-456\r\n");
    write(dir.path() / "two", "sk-file-value-789\n\n");
    write(dir.path() / "bare", "sk-file-value-000");
    auto o = resolve(
        with_secrets({"A=@" + (dir.path() / "lf").string(), "B=@" + (dir.path() / "crlf").string(),
                      "C=@" + (dir.path() / "two").string(),
                      "D=@" + (dir.path() / "bare").string()}),
        no_env);
    REQUIRE(o.ok());
    REQUIRE(o->secrets.size() == 4);
    CHECK(o->secrets[0].name == "A");
    CHECK(o->secrets[0].value == "sk-file-value-123");
    CHECK(o->secrets[1].value == "sk-file-value-456");
    CHECK(o->secrets[2].value == "sk-file-value-789\n");
    CHECK(o->secrets[3].value == "sk-file-value-000");

    // In a task file, FILE is relative to the task file's directory.
    write(dir.path() / "task.json", R"({"secrets": ["TOKEN=@lf"], "command": ["true"]})");
    auto task = parse_task_file(dir.path() / "task.json");
    REQUIRE(task.ok());
    auto t = resolve(*task, no_env);
    REQUIRE(t.ok());
    REQUIRE(t->secrets.size() == 1);
    CHECK(t->secrets[0].value == "sk-file-value-123");
}

TEST_CASE("secret NAME=@FILE: a missing file is an error naming the file", "[config][resolve]") {
    TempDir dir;
    const fs::path missing = dir.path() / "no-such-token";
    auto o = resolve(with_secrets({"TOKEN=@" + missing.string()}), no_env);
    REQUIRE_FALSE(o.ok());
    CHECK(o.error().kind == ErrorKind::invalid_input);
    CHECK(o.error().message ==
          "--secret: " + missing.string() + " cannot be read (check the path)");

    auto task = parse_task_json(R"({"secrets": ["TOKEN=@missing.txt"], "command": ["true"]})",
                                "task.json", dir.path());
    REQUIRE(task.ok());
    auto t = resolve(*task, no_env);
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().message == "task.json: /secrets/0: " + (dir.path() / "missing.txt").string() +
                                   " cannot be read (check the path)");
}

TEST_CASE("task-file artifacts: a list of workspace patterns with their places", "[config][task]") {
    auto r = parse_task_json(R"({"artifacts": ["dist/report.xml", "out/**/*.json"],
                                 "command": ["make"]})",
                             "task.json", k_base);
    REQUIRE(r.ok());
    using Items = std::vector<std::pair<std::string, std::string>>;
    CHECK(r->lists.at("artifacts") == Items{{"dist/report.xml", "task.json: /artifacts/0"},
                                            {"out/**/*.json", "task.json: /artifacts/1"}});
    auto o = resolve(*r, no_env);
    REQUIRE(o.ok());
    CHECK(o->artifacts == std::vector<std::string>{"dist/report.xml", "out/**/*.json"});

    // Patterns are never rewritten against the task file's directory.
    auto merged = merge(*r, [] {
        RunRequest f = flags({}, {});
        f.lists["artifacts"] = {{"coverage.xml", "--artifact"}};
        return f;
    }());
    auto m = resolve(merged, no_env);
    REQUIRE(m.ok());
    CHECK(m->artifacts ==
          std::vector<std::string>{"dist/report.xml", "out/**/*.json", "coverage.xml"});
}

TEST_CASE("task-file artifacts: wrong types and escaping patterns name the field",
          "[config][task]") {
    struct Case {
        const char* text;
        const char* message;
    };
    const Case parse_cases[] = {
        {R"({"artifacts": "dist/report.xml"})", "t.json: /artifacts: must be an array of strings"},
        {R"({"artifacts": {"path": "dist"}})", "t.json: /artifacts: must be an array of strings"},
        {R"({"artifacts": ["dist", 7]})", "t.json: /artifacts/1: must be a string"},
    };
    for (const auto& c : parse_cases) {
        INFO(c.text);
        auto r = parse_task_json(c.text, "t.json", k_base);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::invalid_input);
        CHECK(r.error().message == c.message);
    }
    const Case resolve_cases[] = {
        {R"({"artifacts": ["dist", "../x"], "command": ["x"]})",
         "t.json: /artifacts/1: \"../x\" may not contain \"..\""},
        {R"({"artifacts": ["a/../../b"], "command": ["x"]})",
         "t.json: /artifacts/0: \"a/../../b\" may not contain \"..\""},
        {R"({"artifacts": ["/etc/passwd"], "command": ["x"]})",
         "t.json: /artifacts/0: \"/etc/passwd\" must be relative to /workspace (e.g. "
         "\"dist/report.xml\" or \"out/**/*.json\")"},
        {R"({"artifacts": [""], "command": ["x"]})", "t.json: /artifacts/0: \"\" is empty"},
    };
    for (const auto& c : resolve_cases) {
        INFO(c.text);
        auto r = parse_task_json(c.text, "t.json", k_base);
        REQUIRE(r.ok());
        auto o = resolve(*r, no_env);
        REQUIRE_FALSE(o.ok());
        CHECK(o.error().kind == ErrorKind::invalid_input);
        CHECK(o.error().message == c.message);
    }
}
