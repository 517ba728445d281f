// The network part of a policy applied to a run: modes, rules the task adds, CIDRs, the egress
// network, and what reaches the run options.
#include "config/run_options.hpp"
#include "policy/enforce.hpp"
#include "policy/policy.hpp"

#include <catch2/catch.hpp>

using namespace airlock;
using namespace airlock::policy;
using util::ErrorKind;

namespace {

config::RunRequest request(std::map<std::string, std::string> values,
                           std::map<std::string, std::vector<std::string>> lists = {}) {
    config::RunRequest r;
    for (const auto& [k, v] : values) {
        r.values[k] = v;
        r.origin[k] = "--" + k;
    }
    for (const auto& [k, items] : lists)
        for (const auto& item : items)
            r.lists[k].emplace_back(item, "--" + k);
    r.command = {"true"};
    return r;
}

struct Enforced {
    util::Result<Decision> decision;
    config::RunOptions opts;
};

Enforced apply(const Policy& p, const config::RunRequest& req,
               const Approvals& approvals = NoApprovals()) {
    auto o = config::resolve(req, [](const std::string&) { return std::nullopt; });
    REQUIRE(o.ok());
    config::RunOptions opts = *o;
    auto d = enforce(p, req, opts, approvals);
    return {std::move(d), opts};
}

Enforced apply(const std::vector<std::string>& policies, const config::RunRequest& req,
               const Approvals& approvals = NoApprovals()) {
    auto p = load(policies);
    REQUIRE(p.ok());
    return apply(*p, req, approvals);
}

// Grants exactly the capabilities it is given, and remembers every one asked for.
class Grants final : public Approvals {
public:
    explicit Grants(std::vector<std::string> granted) : m_granted(std::move(granted)) {}
    std::optional<std::string> grant(std::string_view capability, std::string_view) const override {
        asked.emplace_back(capability);
        if (std::find(m_granted.begin(), m_granted.end(), capability) == m_granted.end())
            return std::nullopt;
        return "approval test-1";
    }
    mutable std::vector<std::string> asked;

private:
    std::vector<std::string> m_granted;
};

const Grant* granted(const Decision& d, const std::string& capability) {
    for (const auto& g : d.capabilities)
        if (g.capability == capability) return &g;
    return nullptr;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

} // namespace

TEST_CASE("the default network mode is none, from the policy", "[policy][network]") {
    auto e = apply({"standard"}, request({}));
    REQUIRE(e.decision.ok());
    CHECK(e.opts.network.mode == "none");
    CHECK_FALSE(e.opts.network.proxied());
    CHECK(e.opts.origin["network"].find("standard") != std::string::npos);
}

TEST_CASE("standard allows the allowlist with its own rules", "[policy][network]") {
    auto e = apply({"standard"}, request({{"network", "allowlist"}}));
    REQUIRE(e.decision.ok());
    const auto& n = e.opts.network;
    CHECK(n.mode == "allowlist");
    CHECK(n.proxied());
    CHECK(has(n.allow, "api.openai.com:443"));
    CHECK(has(n.deny, "*.internal"));
    CHECK(n.methods == std::vector<std::string>{"GET", "HEAD"});
    REQUIRE(n.upload_budget);
    CHECK(*n.upload_budget == 64ull << 20);
    CHECK(n.egress_network == "bridge");
    bool recorded = false;
    for (const auto& g : e.decision->capabilities)
        recorded = recorded || g.capability == "network.allowlist";
    CHECK(recorded);
}

TEST_CASE("audit and open are refused under standard, naming the field", "[policy][network]") {
    auto audit = apply({"standard"}, request({{"network", "audit"}}));
    REQUIRE_FALSE(audit.decision.ok());
    CHECK(audit.decision.error().kind == ErrorKind::refused);
    CHECK_THAT(audit.decision.error().message, Catch::Contains("--network"));
    CHECK_THAT(audit.decision.error().message, Catch::Contains("network.modes"));

    auto open = apply({"permissive"}, request({{"network", "open"}}));
    REQUIRE_FALSE(open.decision.ok());
    CHECK(open.decision.error().kind == ErrorKind::refused);
    CHECK_THAT(open.decision.error().message, Catch::Contains("approval for network.open"));
}

TEST_CASE("strict needs an approval even for the allowlist", "[policy][network]") {
    auto e = apply({"strict"}, request({{"network", "allowlist"}}));
    REQUIRE_FALSE(e.decision.ok());
    CHECK_THAT(e.decision.error().message, Catch::Contains("not an allowed network mode"));
}

TEST_CASE("flags add hosts only where the policy lets them", "[policy][network]") {
    SECTION("standard refuses a host beyond its list") {
        auto e = apply({"standard"},
                       request({{"network", "allowlist"}}, {{"allow", {"allowed.test:80"}}}));
        REQUIRE_FALSE(e.decision.ok());
        CHECK(e.decision.error().kind == ErrorKind::refused);
        CHECK_THAT(e.decision.error().message, Catch::Contains("--allow: allowed.test:80"));
        CHECK_THAT(e.decision.error().message, Catch::Contains("network.flags_may_add_hosts"));
    }
    SECTION("standard accepts a host its list covers already") {
        auto e = apply({"standard"},
                       request({{"network", "allowlist"}}, {{"allow", {"api.openai.com:443"}}}));
        REQUIRE(e.decision.ok());
    }
    SECTION("permissive adds it and records the capability") {
        auto e = apply({"permissive"},
                       request({{"network", "allowlist"}}, {{"allow", {"allowed.test:80"}}}));
        REQUIRE(e.decision.ok());
        CHECK(has(e.opts.network.allow, "allowed.test:80"));
        bool recorded = false;
        for (const auto& g : e.decision->capabilities)
            recorded = recorded || (g.capability == "network.host:allowed.test:80" &&
                                    g.detail.find("allowed.test:80") != std::string::npos);
        CHECK(recorded);
    }
    SECTION("a malformed rule is a usage error") {
        auto e = apply({"permissive"}, request({{"network", "allowlist"}}, {{"allow", {"a b"}}}));
        REQUIRE_FALSE(e.decision.ok());
        CHECK(e.decision.error().kind == ErrorKind::invalid_input);
        CHECK_THAT(e.decision.error().message, Catch::Contains("not a host rule"));
    }
}

TEST_CASE("an approval lets a flag add a host under standard", "[policy][network]") {
    Grants approvals({"network.host:allowed.test"});
    auto e = apply({"standard"}, request({{"network", "allowlist"}}, {{"allow", {"allowed.test"}}}),
                   approvals);
    REQUIRE(e.decision.ok());
    CHECK(has(e.opts.network.allow, "allowed.test"));
    CHECK(approvals.asked == std::vector<std::string>{"network.host:allowed.test"});
    const Grant* g = granted(*e.decision, "network.host:allowed.test");
    REQUIRE(g);
    CHECK(g->detail == "--allow allowed.test");
    CHECK(g->granted_by == "approval test-1");

    // The approval names that rule only: another host is still refused.
    auto other = apply(
        {"standard"}, request({{"network", "allowlist"}}, {{"allow", {"denied.test"}}}), approvals);
    REQUIRE_FALSE(other.decision.ok());
    CHECK(other.decision.error().kind == ErrorKind::refused);
}

TEST_CASE("flags take host rules with a port list", "[policy][network]") {
    auto e = apply({"permissive"},
                   request({{"network", "allowlist"}},
                           {{"allow", {"allowed.test:80,443"}}, {"deny", {"*.test:22,23"}}}));
    REQUIRE(e.decision.ok());
    CHECK(has(e.opts.network.allow, "allowed.test:80,443"));
    CHECK(has(e.opts.network.deny, "*.test:22,23"));
    REQUIRE(granted(*e.decision, "network.host:allowed.test:80,443"));

    // standard lists api.openai.com:443 only, so adding port 80 is beyond it.
    auto beyond = apply(
        {"standard"}, request({{"network", "allowlist"}}, {{"allow", {"api.openai.com:443,80"}}}));
    REQUIRE_FALSE(beyond.decision.ok());
    CHECK(beyond.decision.error().kind == ErrorKind::refused);
    CHECK_THAT(beyond.decision.error().message,
               Catch::Contains("network.host:api.openai.com:443,80"));

    auto bad = apply({"permissive"},
                     request({{"network", "allowlist"}}, {{"deny", {"allowed.test:80,70000"}}}));
    REQUIRE_FALSE(bad.decision.ok());
    CHECK(bad.decision.error().kind == ErrorKind::invalid_input);
    CHECK(bad.decision.error().message ==
          "--deny: \"allowed.test:80,70000\" is not a host rule (has an invalid port \"70000\" "
          "(ports are 1-65535, e.g. host:443 or host:80,443))");
}

TEST_CASE("deny rules from flags always apply", "[policy][network]") {
    auto e = apply({"standard"}, request({{"network", "allowlist"}}, {{"deny", {"github.com"}}}));
    REQUIRE(e.decision.ok());
    CHECK(has(e.opts.network.deny, "github.com"));
}

TEST_CASE("private ranges need the policy or permission to add them", "[policy][network]") {
    auto refused = apply({"standard"},
                         request({{"network", "allowlist"}}, {{"allow_cidrs", {"172.16.0.0/12"}}}));
    REQUIRE_FALSE(refused.decision.ok());
    CHECK_THAT(refused.decision.error().message, Catch::Contains("network.allow_cidrs"));

    auto ok = apply({"permissive"},
                    request({{"network", "allowlist"}}, {{"allow_cidrs", {"172.16.0.0/12"}}}));
    REQUIRE(ok.decision.ok());
    CHECK(has(ok.opts.network.allow_cidrs, "172.16.0.0/12"));

    auto bad = apply({"permissive"},
                     request({{"network", "allowlist"}}, {{"allow_cidrs", {"172.16.0.0/33"}}}));
    REQUIRE_FALSE(bad.decision.ok());
    CHECK(bad.decision.error().kind == ErrorKind::invalid_input);
}

TEST_CASE("rules without a proxied mode are a usage error", "[policy][network]") {
    auto e = apply({"permissive"}, request({}, {{"allow", {"example.com"}}}));
    REQUIRE_FALSE(e.decision.ok());
    CHECK(e.decision.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(e.decision.error().message, Catch::Contains("--network allowlist"));
}

TEST_CASE("open mode takes the egress network but no rules", "[policy][network]") {
    Grants approvals({"network.open"});
    SECTION("a rule is a usage error, before any approval is asked for") {
        for (const char* key : {"allow", "deny", "allow_cidrs"}) {
            INFO(key);
            auto e = apply(
                {"permissive"},
                request(
                    {{"network", "open"}},
                    {{key, {std::string(key) == "allow_cidrs" ? "10.0.0.0/8" : "example.com"}}}),
                approvals);
            REQUIRE_FALSE(e.decision.ok());
            CHECK(e.decision.error().kind == ErrorKind::invalid_input);
            CHECK(e.decision.error().message ==
                  "--" + std::string(key) +
                      ": host and CIDR rules apply only to --network allowlist or audit, and "
                      "open mode filters nothing (the network mode is open, from --network); "
                      "drop them, or use --network allowlist");
        }
        CHECK(approvals.asked.empty());
    }
    SECTION("every kind of rule given is named") {
        auto e = apply(
            {"permissive"},
            request({{"network", "open"}}, {{"allow", {"a.test"}}, {"deny", {"b.test", "c.test"}}}),
            approvals);
        REQUIRE_FALSE(e.decision.ok());
        CHECK_THAT(e.decision.error().message, Catch::StartsWith("--allow, --deny: host and CIDR"));
    }
    SECTION("the egress network is accepted") {
        auto e = apply({"permissive"},
                       request({{"network", "open"}, {"egress_network", "airlock-test-net"}}),
                       approvals);
        REQUIRE(e.decision.ok());
        CHECK(e.opts.network.mode == "open");
        CHECK(e.opts.network.egress_network == "airlock-test-net");
        const Grant* g = granted(*e.decision, "network.open");
        REQUIRE(g);
        CHECK(g->granted_by == "approval test-1");
    }
}

TEST_CASE("an open run under a looser policy is named beyond standard", "[policy][network]") {
    // permissive lists hosts of its own; in open mode they are no rules to hold against standard.
    auto e = apply({"permissive"}, request({{"network", "open"}}), Grants({"network.open"}));
    REQUIRE(e.decision.ok());
    auto standard = load({"standard"});
    REQUIRE(standard.ok());
    std::vector<std::string> caps;
    for (const auto& g : beyond(*standard, e.opts, "policy preset permissive"))
        caps.push_back(g.capability);
    CHECK(caps == std::vector<std::string>{"network.open"});
}

TEST_CASE("the egress network comes from the flag unless the policy pins it", "[policy][network]") {
    auto e = apply({"permissive"},
                   request({{"network", "allowlist"}, {"egress_network", "airlock-test-net"}}));
    REQUIRE(e.decision.ok());
    CHECK(e.opts.network.egress_network == "airlock-test-net");

    auto p = load({"permissive"});
    REQUIRE(p.ok());
    auto doc = parse_document(R"({"network": {"egress_network": "corp"}})", "corp.json", ".");
    REQUIRE(std::holds_alternative<Document>(doc));
    REQUIRE(apply_layer(*p, std::get<Document>(doc)).empty());
    auto with_flag = [](const std::string& name) {
        auto r = request({{"network", "allowlist"}, {"egress_network", name}});
        r.origin["egress_network"] = "--egress-network";
        return r;
    };
    SECTION("no flag gives the pinned network") {
        auto pinned = apply(*p, request({{"network", "allowlist"}}));
        REQUIRE(pinned.decision.ok());
        CHECK(pinned.opts.network.egress_network == "corp");
        CHECK(pinned.opts.origin["egress_network"] == "policy: corp.json");
    }
    SECTION("the same name is fine") {
        auto same = apply(*p, with_flag("corp"));
        REQUIRE(same.decision.ok());
        CHECK(same.opts.network.egress_network == "corp");
    }
    SECTION("another name is refused") {
        auto other = apply(*p, with_flag("other"));
        REQUIRE_FALSE(other.decision.ok());
        CHECK(other.decision.error().kind == ErrorKind::refused);
        CHECK(other.decision.error().message ==
              "--egress-network: \"other\" differs from the egress network the policy sets "
              "(\"corp\", network.egress_network from corp.json); drop the flag");
    }
}

TEST_CASE("a network mode is one of the four", "[config][network]") {
    config::RunRequest r;
    r.values["network"] = "allowlst";
    r.origin["network"] = "--network";
    r.command = {"true"};
    auto o = config::resolve(r, [](const std::string&) { return std::nullopt; });
    REQUIRE_FALSE(o.ok());
    CHECK_THAT(o.error().message, Catch::Contains("did you mean allowlist?"));
}

TEST_CASE("a task file carries the network fields", "[config][network]") {
    auto r = config::parse_task_json(
        R"({"network":"allowlist","allow":["a.test:443"],"deny":["b.test"],)"
        R"("allow_cidrs":["10.0.0.0/8"],"egress_network":"n1","command":["true"]})",
        "task.json", "/tmp");
    REQUIRE(r.ok());
    CHECK(r->values["network"] == "allowlist");
    CHECK(r->values["egress_network"] == "n1");
    REQUIRE(r->lists["allow"].size() == 1);
    CHECK(r->lists["allow"][0].first == "a.test:443");
    CHECK(r->lists["allow"][0].second == "task.json: /allow/0");
    auto bad = config::parse_task_json(R"({"alow":["x"]})", "task.json", "/tmp");
    REQUIRE_FALSE(bad.ok());
    CHECK_THAT(bad.error().message, Catch::Contains("did you mean \"allow\"?"));
}
