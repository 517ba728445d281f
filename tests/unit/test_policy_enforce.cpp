// Applying a policy to a run request: defaults, ceilings, approvals, env and secrets.
#include "policy/enforce.hpp"

#include <catch2/catch.hpp>

using namespace airlock;
using namespace airlock::policy;
using util::ErrorKind;

namespace {

std::optional<std::string> env_of(const std::string& name) {
    if (name == "OPENAI_API_KEY") return std::string("sk-test-0123456789");
    if (name == "LANG") return std::string("C.UTF-8");
    if (name == "HOME") return std::string("/root");
    return std::nullopt;
}

config::RunRequest request(std::map<std::string, std::string> values) {
    config::RunRequest r;
    for (const auto& [k, v] : values) {
        r.values[k] = v;
        std::string flag = k;
        for (auto& c : flag)
            if (c == '_') c = '-';
        r.origin[k] = "--" + flag;
    }
    r.command = {"true"};
    return r;
}

struct Enforced {
    util::Result<Decision> decision;
    config::RunOptions opts;
};

Enforced apply(const std::vector<std::string>& policies, const config::RunRequest& req,
               const Approvals& approvals = NoApprovals()) {
    auto p = load(policies);
    REQUIRE(p.ok());
    auto o = config::resolve(req, env_of);
    REQUIRE(o.ok());
    config::RunOptions opts = *o;
    auto d = enforce(*p, req, opts, approvals);
    return {std::move(d), opts};
}

// `preset` with a layer org.json that also requires approvals for `extra` capabilities.
Policy requiring(const std::string& preset, const std::vector<std::string>& extra,
                 const nlohmann::json& runtimes = nullptr) {
    auto p = load({preset});
    REQUIRE(p.ok());
    Document d;
    d.source = "org.json";
    auto required = p->get("approvals/required");
    for (const auto& c : extra)
        required.push_back(c);
    d.values["approvals/required"] = {required, "org.json"};
    if (!runtimes.is_null()) d.values["runtime/allow"] = {runtimes, "org.json"};
    REQUIRE(apply_layer(*p, d).empty());
    return *p;
}

class GrantAll final : public Approvals {
public:
    std::optional<std::string> grant(std::string_view capability, std::string_view) const override {
        granted.emplace_back(capability);
        return "approval test-1";
    }
    mutable std::vector<std::string> granted;
};

} // namespace

TEST_CASE("policy defaults fill what the request leaves open", "[policy]") {
    auto e = apply({"strict"}, request({}));
    REQUIRE(e.decision.ok());
    CHECK(e.opts.memory == 1ull << 30);
    CHECK(e.opts.pids == 128);
    CHECK(e.opts.timeout.count() == 15 * 60 * 1000);
    CHECK(e.opts.nofile == 1024);
    CHECK(e.opts.workspace_mode == config::WorkspaceMode::bind_ro);
    CHECK(e.opts.runtimes == std::vector<std::string>{"runsc", "runc"});
    CHECK(e.opts.origin["memory"] == "policy: preset strict");
}

TEST_CASE("a request above a ceiling is refused with field, request and ceiling", "[policy]") {
    auto e = apply({"standard"}, request({{"memory", "16g"}}));
    REQUIRE_FALSE(e.decision.ok());
    CHECK(e.decision.error().kind == ErrorKind::refused);
    CHECK_THAT(e.decision.error().message,
               Catch::StartsWith(
                   "--memory: 16g is above the policy ceiling 8g (resources.memory.max from preset "
                   "standard); lower it, or get an approval for resources.above-ceiling"));

    auto t = apply({"strict"}, request({{"timeout", "1h"}}));
    REQUIRE_FALSE(t.decision.ok());
    CHECK_THAT(
        t.decision.error().message,
        Catch::StartsWith(
            "--timeout: 1h is above the policy ceiling 30m (resources.timeout.max from preset "
            "strict); lower it, or get an approval for resources.above-ceiling"));

    auto ok = apply({"standard"}, request({{"memory", "8g"}, {"cpus", "2"}}));
    CHECK(ok.decision.ok());
    CHECK(ok.opts.memory == 8ull << 30);
}

TEST_CASE("an approval lets a request above the ceiling through and is recorded", "[policy]") {
    GrantAll grants;
    auto e = apply({"standard"}, request({{"memory", "16g"}}), grants);
    REQUIRE(e.decision.ok());
    REQUIRE(e.decision->capabilities.size() == 1);
    CHECK(e.decision->capabilities[0].capability == "resources.above-ceiling");
    CHECK(e.decision->capabilities[0].granted_by == "approval test-1");
    CHECK(e.opts.memory == 16ull << 30);
}

TEST_CASE("workspace modes: outside the policy, and needing approval", "[policy]") {
    auto e = apply({"standard"}, request({{"workspace_mode", "bind-rw"}}));
    REQUIRE_FALSE(e.decision.ok());
    CHECK_THAT(
        e.decision.error().message,
        Catch::StartsWith(
            "--workspace-mode: \"bind-rw\" is not an allowed workspace mode (volume, bind-ro; "
            "workspace.modes from preset standard)"));

    auto ro = apply({"standard"}, request({{"workspace_mode", "bind-ro"}}));
    REQUIRE(ro.decision.ok());
    REQUIRE(ro.decision->capabilities.size() == 1);
    CHECK(ro.decision->capabilities[0].capability == "workspace.bind-ro");
    CHECK(ro.decision->capabilities[0].granted_by == "policy preset standard");

    auto rw = apply({"permissive"}, request({{"workspace_mode", "bind-rw"}}));
    REQUIRE(rw.decision.ok());
    CHECK(rw.decision->capabilities[0].capability == "workspace.bind-rw");

    auto strict_rw = apply({"permissive", "strict"}, request({{"workspace_mode", "volume"}}));
    REQUIRE_FALSE(strict_rw.decision.ok());
}

TEST_CASE("approvals.required asks for an approval even within the policy", "[policy]") {
    auto p = load({"permissive"});
    REQUIRE(p.ok());
    Document d;
    d.source = "org.json";
    d.values["approvals/required"] = {nlohmann::json::array({"network.open", "workspace.bind-rw"}),
                                      "org.json"};
    REQUIRE(apply_layer(*p, d).empty());
    auto req = request({{"workspace_mode", "bind-rw"}});
    auto o = config::resolve(req, env_of);
    REQUIRE(o.ok());
    auto refused = enforce(*p, req, *o, NoApprovals());
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.error().message,
               Catch::StartsWith(
                   "--workspace-mode bind-rw needs an explicit approval for workspace.bind-rw "
                   "(approvals.required from org.json)"));
    GrantAll grants;
    CHECK(enforce(*p, req, *o, grants).ok());
    CHECK(grants.granted == std::vector<std::string>{"workspace.bind-rw"});
}

TEST_CASE("images outside the allow list and undigested images", "[policy]") {
    auto e = apply({"strict"}, request({{"image", "docker.io/library/debian:12"}}));
    REQUIRE_FALSE(e.decision.ok());
    CHECK_THAT(
        e.decision.error().message,
        Catch::StartsWith(
            "--image: \"docker.io/library/debian:12\" is not among the allowed images (airlock/*; "
            "images.allow from preset strict); use an allowed image, or get an approval for "
            "image:docker.io/library/debian:12"));
    auto p = load({"standard"});
    REQUIRE(p.ok());
    Document d;
    d.source = "org.json";
    d.values["images/require_digest"] = {true, "org.json"};
    REQUIRE(apply_layer(*p, d).empty());
    auto req = request({});
    auto o = config::resolve(req, env_of);
    auto r = enforce(*p, req, *o, NoApprovals());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("is not pinned by digest") != std::string::npos);
}

TEST_CASE("runtimes: requested must be allowed, otherwise the policy's preference", "[policy]") {
    auto p = load({"standard"});
    REQUIRE(p.ok());
    Document d;
    d.source = "org.json";
    d.values["runtime/allow"] = {nlohmann::json::array({"runsc"}), "org.json"};
    REQUIRE(apply_layer(*p, d).empty());
    auto req = request({{"runtime", "runc"}});
    auto o = config::resolve(req, env_of);
    auto r = enforce(*p, req, *o, NoApprovals());
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message,
               Catch::StartsWith("--runtime: \"runc\" is not an allowed runtime (runsc; "
                                 "runtime.allow from org.json)"));
    auto dflt = request({});
    auto o2 = config::resolve(dflt, env_of);
    REQUIRE(enforce(*p, dflt, *o2, NoApprovals()).ok());
    CHECK(o2->runtimes == std::vector<std::string>{"runsc"});
}

TEST_CASE("variables the policy does not allow never cross", "[policy]") {
    auto req = request({});
    req.env = {"LANG", "HOME"};
    req.env_origins = {"--env", "--env"};
    auto e = apply({"standard"}, req);
    REQUIRE_FALSE(e.decision.ok());
    CHECK(e.decision.error().kind == ErrorKind::refused);
    CHECK_THAT(
        e.decision.error().message,
        Catch::StartsWith(
            "--env: HOME may not cross into the container (env.allow from preset standard); drop "
            "it, or pass a credential with --secret"));
    req.env = {"LANG"};
    auto ok = apply({"standard"}, req);
    REQUIRE(ok.decision.ok());
    CHECK(ok.decision->env_names == std::vector<std::string>{"LANG"});
}

TEST_CASE("secrets must be allowed by name, values stay out of messages", "[policy]") {
    auto req = request({});
    req.secrets = {"OPENAI_API_KEY"};
    req.secret_origins = {"--secret"};
    auto ok = apply({"standard"}, req);
    REQUIRE(ok.decision.ok());
    CHECK(ok.decision->secret_names == std::vector<std::string>{"OPENAI_API_KEY"});
    CHECK(ok.decision->secret_inject == "env");
    REQUIRE(ok.opts.secrets.size() == 1);
    CHECK(ok.opts.secrets[0].value == "sk-test-0123456789");

    auto strict = apply({"strict"}, req);
    REQUIRE_FALSE(strict.decision.ok());
    CHECK_THAT(
        strict.decision.error().message,
        Catch::StartsWith(
            "--secret: OPENAI_API_KEY is not a secret this policy lets in (secrets.allow from "
            "preset strict)"));
    CHECK(strict.decision.error().message.find("sk-test") == std::string::npos);
}

TEST_CASE("user IDs below min_uid are refused", "[policy]") {
    auto e = apply({"standard"}, request({{"user", "500:500"}}));
    REQUIRE_FALSE(e.decision.ok());
    CHECK_THAT(
        e.decision.error().message,
        Catch::StartsWith(
            "--user: UID 500 is below 1000 (user.min_uid from preset standard); use a UID of at "
            "least 1000"));
}

TEST_CASE("protected paths", "[policy]") {
    auto p = load({"standard"});
    REQUIRE(p.ok());
    CHECK(protected_by(*p, ".github/workflows/ci.yml") == ".github/workflows/**");
    CHECK(protected_by(*p, "app/.env") == "**/.env");
    CHECK(protected_by(*p, "src/main.c") == std::nullopt);
}

TEST_CASE("what a looser policy allows beyond standard is named", "[policy]") {
    auto req = request({{"image", "example/tool:1"}, {"memory", "12g"}});
    req.env = {"HOME"};
    req.env_origins = {"--env"};
    auto e = apply({"permissive"}, req);
    REQUIRE(e.decision.ok());
    auto standard = load({"standard"});
    REQUIRE(standard.ok());
    auto extra = beyond(*standard, e.opts, "policy preset permissive");
    std::vector<std::string> caps;
    for (const auto& g : extra) {
        caps.push_back(g.capability);
        CHECK(g.granted_by == "policy preset permissive");
    }
    std::sort(caps.begin(), caps.end());
    CHECK(caps ==
          std::vector<std::string>{"env:HOME", "image:example/tool:1", "resources.above-ceiling"});
    auto plain = apply({"standard"}, request({}));
    REQUIRE(plain.decision.ok());
    CHECK(beyond(*standard, plain.opts, "policy preset standard").empty());
}

TEST_CASE("resources.above-default: a request above the default needs an approval when required",
          "[policy]") {
    const Policy p = requiring("standard", {"resources.above-default"});
    auto req = request({{"memory", "4g"}});
    auto o = config::resolve(req, env_of);
    REQUIRE(o.ok());
    auto refused = enforce(p, req, *o, NoApprovals());
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().kind == ErrorKind::refused);
    CHECK(refused.error().message ==
          "--memory 4g (default 2g) needs an explicit approval for resources.above-default "
          "(approvals.required from org.json); to approve resources.above-default: answer yes "
          "when airlock asks on a terminal");

    GrantAll grants;
    auto granted = enforce(p, req, *o, grants);
    REQUIRE(granted.ok());
    CHECK(grants.granted == std::vector<std::string>{"resources.above-default"});
    REQUIRE(granted->capabilities.size() == 1);
    CHECK(granted->capabilities[0].detail == "--memory 4g (default 2g)");
    CHECK(granted->capabilities[0].granted_by == "approval test-1");
    CHECK(o->memory == 4ull << 30);

    // At the default nothing is asked; without the requirement, up to the ceiling neither.
    auto at_default = request({{"memory", "2g"}});
    auto o2 = config::resolve(at_default, env_of);
    REQUIRE(o2.ok());
    CHECK(enforce(p, at_default, *o2, NoApprovals()).ok());
    CHECK(apply({"standard"}, req).decision.ok());
}

TEST_CASE("runtime.runc: no fallback and an approval when the policy prefers runsc", "[policy]") {
    const Policy p =
        requiring("strict", {"runtime.runc"}, nlohmann::json::array({"runsc", "runc"}));
    auto dflt = request({});
    auto o = config::resolve(dflt, env_of);
    REQUIRE(o.ok());
    REQUIRE(enforce(p, dflt, *o, NoApprovals()).ok());
    CHECK(o->runtimes == std::vector<std::string>{"runsc"});
    CHECK(o->runtime == "runsc");

    auto req = request({{"runtime", "runc"}});
    auto o2 = config::resolve(req, env_of);
    REQUIRE(o2.ok());
    auto refused = enforce(p, req, *o2, NoApprovals());
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().kind == ErrorKind::refused);
    CHECK(refused.error().message ==
          "--runtime runc needs an explicit approval for runtime.runc (approvals.required from "
          "org.json); nobody can approve runtime.runc under this policy (no approver lists it, "
          "approvals.flag does not allow it and approvals.prompt is off)");

    GrantAll grants;
    REQUIRE(enforce(p, req, *o2, grants).ok());
    CHECK(grants.granted == std::vector<std::string>{"runtime.runc"});
    CHECK(o2->runtimes == std::vector<std::string>{"runc"});
}

TEST_CASE("env:NAME and secret:NAME in approvals.required need an approval", "[policy]") {
    const Policy p = requiring("standard", {"env:LANG", "secret:OPENAI_*"});

    auto env_req = request({});
    env_req.env = {"LANG"};
    env_req.env_origins = {"--env"};
    auto o = config::resolve(env_req, env_of);
    REQUIRE(o.ok());
    auto refused = enforce(p, env_req, *o, NoApprovals());
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().kind == ErrorKind::refused);
    CHECK(refused.error().message ==
          "--env LANG needs an explicit approval for env:LANG (approvals.required from org.json); "
          "to approve env:LANG: answer yes when airlock asks on a terminal");
    GrantAll env_grants;
    auto env_ok = enforce(p, env_req, *o, env_grants);
    REQUIRE(env_ok.ok());
    CHECK(env_grants.granted == std::vector<std::string>{"env:LANG"});
    CHECK(env_ok->env_names == std::vector<std::string>{"LANG"});

    auto secret_req = request({});
    secret_req.secrets = {"OPENAI_API_KEY"};
    secret_req.secret_origins = {"--secret"};
    auto o2 = config::resolve(secret_req, env_of);
    REQUIRE(o2.ok());
    auto no = enforce(p, secret_req, *o2, NoApprovals());
    REQUIRE_FALSE(no.ok());
    CHECK(no.error().kind == ErrorKind::refused);
    CHECK(no.error().message ==
          "--secret OPENAI_API_KEY needs an explicit approval for secret:OPENAI_API_KEY "
          "(approvals.required from org.json); to approve secret:OPENAI_API_KEY: answer yes when "
          "airlock asks on a terminal");
    GrantAll secret_grants;
    auto yes = enforce(p, secret_req, *o2, secret_grants);
    REQUIRE(yes.ok());
    CHECK(secret_grants.granted == std::vector<std::string>{"secret:OPENAI_API_KEY"});
    CHECK(yes->secret_names == std::vector<std::string>{"OPENAI_API_KEY"});
}
