// The policy's credentials section: what an entry may say, tighten-only layering, and what a run
// that asks for an endpoint gets (and may not do with the key).
#include "config/run_options.hpp"
#include "policy/credentials.hpp"
#include "policy/enforce.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace airlock;
using namespace airlock::policy;
using nlohmann::json;
using util::ErrorKind;

namespace {

const char* k_openai = R"({"secret": "OPENAI_API_KEY", "upstream": "https://api.openai.com/",
    "header": "Authorization: Bearer {secret}",
    "env": {"OPENAI_BASE_URL": "{endpoint}/v1", "OPENAI_API_KEY": "airlock-placeholder"},
    "max_requests": 100, "max_bytes": "10m"})";

// The problems of a credentials section, as "pointer: message".
std::vector<std::string> problems_of(const std::string& section) {
    std::vector<CredentialProblem> found;
    auto v = parse_credentials(json::parse(section), "/credentials", found);
    std::vector<std::string> out;
    for (const auto& p : found)
        out.push_back(p.pointer + ": " + p.message);
    CHECK(v.has_value() == out.empty());
    return out;
}

json parsed(const std::string& section) {
    std::vector<CredentialProblem> found;
    auto v = parse_credentials(json::parse(section), "/credentials", found);
    REQUIRE(v.has_value());
    return *v;
}

// A policy file in a temporary directory, removed at the end of the test.
struct PolicyFile {
    std::filesystem::path path;
    explicit PolicyFile(const std::string& text) {
        path = std::filesystem::temp_directory_path() /
               ("airlock-cred-" + std::to_string(::getpid()) + "-" +
                std::to_string(reinterpret_cast<std::uintptr_t>(this)) + ".json");
        std::ofstream(path) << text;
    }
    ~PolicyFile() { std::filesystem::remove(path); }
};

config::RunRequest request(std::vector<std::string> credentials,
                           std::string network = "allowlist") {
    config::RunRequest r;
    r.values["network"] = network;
    r.origin["network"] = "--network";
    for (const auto& c : credentials)
        r.lists["credentials"].emplace_back(c, "--credential");
    r.command = {"true"};
    return r;
}

using Env = std::map<std::string, std::string>;

util::Result<std::vector<config::Credential>> resolve_with(const std::vector<std::string>& policies,
                                                           const config::RunRequest& req,
                                                           const Env& env,
                                                           config::RunOptions* opts_out = nullptr) {
    auto p = load(policies);
    REQUIRE(p.ok());
    auto lookup = [&env](const std::string& n) -> std::optional<std::string> {
        auto it = env.find(n);
        return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    auto o = config::resolve(req, lookup);
    REQUIRE(o.ok());
    config::RunOptions opts = *o;
    auto d = enforce(*p, req, opts, NoApprovals());
    REQUIRE(d.ok());
    if (opts_out) *opts_out = opts;
    return resolve_credentials(*p, req, opts, lookup);
}

} // namespace

TEST_CASE("a credential entry is made canonical", "[policy][credentials]") {
    json v = parsed(std::string(R"({"openai": )") + k_openai + "}");
    const json& e = v["openai"];
    CHECK(e["upstream"] == "https://api.openai.com");
    CHECK(e["max_bytes"] == 10u << 20);
    CHECK(e["max_requests"] == 100);
    CHECK(e["env"]["OPENAI_BASE_URL"] == "{endpoint}/v1");
    json bare = parsed(R"({"anthropic": {"secret": "ANTHROPIC_API_KEY",
        "upstream": "https://api.anthropic.com", "header": "x-api-key: {secret}"}})");
    CHECK(bare["anthropic"]["max_requests"].is_null());
    CHECK(bare["anthropic"]["env"] == json::object());
}

TEST_CASE("a credential never travels in plain HTTP or in a URL", "[policy][credentials]") {
    auto p = problems_of(R"({"openai": {"secret": "K", "upstream": "http://api.openai.com",
        "header": "Authorization: Bearer {secret}"}})");
    REQUIRE(p.size() == 1);
    CHECK(p[0] == "/credentials/openai/upstream: \"http://api.openai.com\" is plain HTTP; a "
                  "credential only travels over TLS (use https://)");
    p = problems_of(
        R"({"openai": {"secret": "K", "upstream": "https://api.openai.com/?key={secret}",
        "header": "Authorization: Bearer {secret}"}})");
    REQUIRE(p.size() == 1);
    CHECK(p[0].find("would put the secret in a URL") != std::string::npos);
    p = problems_of(R"({"x": {"secret": "K", "upstream": "https://user@example.com",
        "header": "x-api-key: {secret}"}})");
    REQUIRE(p.size() == 1);
    CHECK(p[0].find("may hold only a host, a port and a path") != std::string::npos);
    p = problems_of(R"({"x": {"secret": "K", "upstream": "https://example.com:99999",
        "header": "x-api-key: {secret}"}})");
    REQUIRE(p.size() == 1);
    CHECK(p[0].find("port that is not 1 to 65535") != std::string::npos);
}

TEST_CASE("the header holds the secret once, in its value", "[policy][credentials]") {
    auto bad_header = [](const std::string& h) {
        return problems_of(
            R"({"x": {"secret": "K", "upstream": "https://example.com", "header": )" +
            json(h).dump() + "}}");
    };
    auto p = bad_header("Authorization: Bearer sk-123");
    REQUIRE(p.size() == 1);
    CHECK(p[0] == "/credentials/x/header: \"Authorization: Bearer sk-123\" must hold {secret} "
                  "exactly once, in the value (e.g. \"x-api-key: {secret}\")");
    CHECK(bad_header("Host: {secret}").at(0).find("may not set Host") != std::string::npos);
    CHECK(bad_header("no colon {secret}").at(0).find("is not \"Name: value\"") !=
          std::string::npos);
    CHECK(bad_header("X-Key: {secret}\r\nX-Other: 1").size() == 1);
}

TEST_CASE("the task's variables never carry the secret", "[policy][credentials]") {
    auto p = problems_of(R"({"x": {"secret": "K", "upstream": "https://example.com",
        "header": "x-api-key: {secret}", "env": {"KEY": "{secret}"}}})");
    REQUIRE(p.size() == 1);
    CHECK(p[0].find("/credentials/x/env/KEY: would put the secret into the agent container") == 0);
}

TEST_CASE("unknown entry fields and bad names are named", "[policy][credentials]") {
    auto p = problems_of(R"({"Open AI": {}, "x": {"secret": "K", "upstream": "https://e.com",
        "header": "x-api-key: {secret}", "max_request": 3}})");
    REQUIRE(p.size() == 2);
    CHECK(p[0].find("/credentials/Open AI: \"Open AI\" is not an endpoint name") == 0);
    CHECK(p[1] == "/credentials/x/max_request: unknown field (did you mean \"max_requests\"?)");
}

TEST_CASE("a later layer may drop endpoints and lower budgets, nothing else",
          "[policy][credentials]") {
    const std::string org = std::string(R"({"credentials": {"openai": )") + k_openai +
                            R"(, "other": {"secret": "OTHER_KEY", "upstream": "https://o.example",
                            "header": "x-api-key: {secret}"}}})";
    PolicyFile base(org);
    PolicyFile narrower(std::string(R"({"credentials": {"openai": )") +
                        std::string(k_openai).replace(std::string(k_openai).find("100"), 3, "5") +
                        "}}");
    auto ok = load({base.path.string(), narrower.path.string()});
    REQUIRE(ok.ok());
    CHECK(ok->get("credentials").size() == 1);
    CHECK(ok->get("credentials")["openai"]["max_requests"] == 5);

    PolicyFile adds(R"({"credentials": {"gemini": {"secret": "G", "upstream": "https://g.example",
        "header": "x-goog-api-key: {secret}"}}})");
    auto r = load({base.path.string(), adds.path.string()});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("/credentials: gemini (https://g.example) loosens openai "
                                 "(https://api.openai.com), other (https://o.example) set by") !=
          std::string::npos);

    std::string moved = std::string(k_openai);
    moved.replace(moved.find("api.openai.com"), 14, "evil.example");
    PolicyFile changes(std::string(R"({"credentials": {"openai": )") + moved + "}}");
    CHECK_FALSE(load({base.path.string(), changes.path.string()}).ok());
}

TEST_CASE("a run gets the endpoint's variables and the value, from the environment or a file",
          "[policy][credentials]") {
    PolicyFile pol(std::string(R"({"credentials": {"openai": )") + k_openai + "}}");
    auto r = resolve_with({pol.path.string()}, request({"openai"}),
                          {{"OPENAI_API_KEY", "sk-test-0123456789"}});
    REQUIRE(r.ok());
    REQUIRE(r->size() == 1);
    const auto& c = r->front();
    CHECK(c.value == "sk-test-0123456789");
    CHECK(c.secret == "OPENAI_API_KEY");
    CHECK(c.host == "api.openai.com");
    CHECK(c.port == 443);
    CHECK(c.base_path.empty());
    CHECK(c.header == "Authorization");
    CHECK(c.value_template == "Bearer {secret}");
    CHECK(c.max_requests == 100u);
    const std::vector<std::pair<std::string, std::string>> env = {
        {"OPENAI_API_KEY", "airlock-placeholder"},
        {"OPENAI_BASE_URL", "http://127.0.0.1:3129/openai/v1"}};
    CHECK(c.env == env);

    const auto file =
        std::filesystem::temp_directory_path() / ("airlock-cred-key-" + std::to_string(::getpid()));
    std::ofstream(file) << "sk-from-a-file-42\n";
    auto f = resolve_with({pol.path.string()}, request({"openai=@" + file.string()}), {});
    std::filesystem::remove(file);
    REQUIRE(f.ok());
    CHECK(f->front().value == "sk-from-a-file-42");
    CHECK(f->front().secret == "FILE");
}

TEST_CASE("a run's credential requests are checked before anything starts",
          "[policy][credentials]") {
    PolicyFile pol(std::string(R"({"credentials": {"openai": )") + k_openai + "}}");
    const Env env = {{"OPENAI_API_KEY", "sk-test-0123456789"}};

    auto unknown = resolve_with({pol.path.string()}, request({"anthropic"}), env);
    REQUIRE_FALSE(unknown.ok());
    CHECK(unknown.error().kind == ErrorKind::refused);
    CHECK(unknown.error().message.find("--credential: the policy defines no credential endpoint "
                                       "\"anthropic\" (defined: openai (https://api.openai.com)") ==
          0);

    auto unset = resolve_with({pol.path.string()}, request({"openai"}), {});
    REQUIRE_FALSE(unset.ok());
    CHECK(unset.error().message ==
          "--credential: credential openai needs OPENAI_API_KEY, which is not set in airlock's "
          "environment (export it, or pass --credential openai=@FILE)");

    auto none = resolve_with({pol.path.string()}, request({"openai"}, "none"), env);
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().message.find("needs --network allowlist or audit") != std::string::npos);

    auto r = request({"openai"});
    r.env = {"LEAK=prefix-sk-test-0123456789"};
    r.env_origins = {"--env"};
    auto leak = resolve_with({"permissive", pol.path.string()}, r, env);
    REQUIRE_FALSE(leak.ok());
    CHECK(leak.error().message ==
          "--env LEAK: its value holds credential openai's secret, which must stay out of the "
          "container (drop --env LEAK)");
    CHECK(leak.error().message.find("sk-test") == std::string::npos);

    auto broken = resolve_with({pol.path.string()}, request({"openai"}),
                               {{"OPENAI_API_KEY", "sk-test-0123\r\nX-Evil: 1"}});
    REQUIRE_FALSE(broken.ok());
    CHECK(broken.error().message.find("holds control characters") != std::string::npos);
}

TEST_CASE("a task file asks for credentials, files relative to it", "[policy][credentials]") {
    auto r = config::parse_task_json(R"({"credentials": ["openai", "other=@keys/other"],
                                        "ca_bundle": "certs/ca.pem", "command": ["true"]})",
                                     "task.json", "/work/repo");
    REQUIRE(r.ok());
    const auto& items = r->lists.at("credentials");
    REQUIRE(items.size() == 2);
    CHECK(items[0].first == "openai");
    CHECK(items[0].second == "task.json: /credentials/0");
    CHECK(items[1].first == "other=@/work/repo/keys/other");
    CHECK(r->values.at("ca_bundle") == "/work/repo/certs/ca.pem");
}
