// Approvals: the capability grammar, approvers in a policy, signed approval files and each way
// they are refused, the run's approval book (file, flag, prompt), and the gate's "needs approval".
#include "audit/approval.hpp"
#include "audit/approval_book.hpp"
#include "audit/dsse.hpp"
#include "audit/verdict.hpp"
#include "policy/approvers.hpp"
#include "policy/capability.hpp"
#include "policy/enforce.hpp"
#include "policy/policy.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace airlock;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path temp_dir() {
    static int n = 0;
    auto d = fs::temp_directory_path() /
             ("airlock-approvals-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
    fs::create_directories(d);
    return d;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

struct Key {
    std::string priv, pub, keyid;
    explicit Key(const fs::path& dir, const std::string& name) {
        auto r = audit::keygen((dir / name).string());
        REQUIRE(r.ok());
        priv = slurp(r->private_key);
        pub = slurp(r->public_key);
        keyid = *audit::public_key_id(pub, name);
    }
};

// A policy: an org file naming approvers (alice: anything; bob: path:* only), then standard.
struct Fixture {
    fs::path dir = temp_dir();
    Key alice{dir, "alice"}, bob{dir, "bob"}, mallory{dir, "mallory"};
    policy::Policy pol;
    explicit Fixture(const std::string& extra = "", const std::string& base = "standard") {
        std::ofstream(dir / "org.json")
            << R"({"approvals": {"approvers": [)"
            << R"({"name": "alice", "public_key_file": "alice.pub"},)"
            << R"({"name": "bob", "public_key_file": "bob.pub", "capabilities": ["path:*"]}])"
            << extra << "}}";
        auto p = policy::load({(dir / "org.json").string(), base});
        INFO((p.ok() ? std::string() : p.error().message));
        REQUIRE(p.ok());
        pol = *p;
    }
    ~Fixture() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string approval(const Key& k, std::vector<std::string> caps, audit::ApprovalScope scope,
                         std::time_t issued = 1'900'000'000, std::time_t ttl = 3600) {
        audit::ApprovalClaims c;
        c.id = "0123456789abcdef";
        c.capabilities = std::move(caps);
        c.scope = std::move(scope);
        c.issued_at = issued;
        c.expires_at = issued + ttl;
        c.reason = "test";
        auto r = audit::make_approval(c, k.priv, "key");
        REQUIRE(r.ok());
        return *r;
    }
};

audit::ApprovalUse use_for(std::optional<std::string> repo, std::optional<std::string> commit,
                           std::vector<std::string> runs, std::time_t now = 1'900'000'100) {
    audit::ApprovalUse u;
    u.repository = std::move(repo);
    u.commit = std::move(commit);
    u.runs = std::move(runs);
    u.now = now;
    u.where = "this run";
    return u;
}

audit::ApprovalScope repo_scope(const std::string& repo) {
    audit::ApprovalScope s;
    s.repository = repo;
    return s;
}

} // namespace

TEST_CASE("capabilities: a closed list, with arguments where they name something", "[approvals]") {
    using policy::capability_problem;
    CHECK_FALSE(capability_problem("network.open"));
    CHECK_FALSE(capability_problem("path:.github/workflows/**"));
    CHECK_FALSE(capability_problem("network.host:api.example.com:443"));
    CHECK_FALSE(capability_problem("network.host:*.example.com"));
    CHECK_FALSE(capability_problem("secret:OPENAI_*"));
    CHECK_FALSE(capability_problem("image:ghcr.io/org/*"));
    CHECK_FALSE(capability_problem("runtime.runc"));
    CHECK(*capability_problem("network.opne") ==
          "is not a capability (did you mean network.open?); see docs/approvals.md for the list");
    CHECK(*capability_problem("network.open:x") == "takes no argument (write \"network.open\")");
    CHECK(capability_problem("path")->find("needs an argument: path:<") == 0);
    CHECK(*capability_problem("workspace.protected-change") ==
          "is no longer a capability: it is now path:*");
    CHECK(capability_problem("network.host:")->find("empty argument") != std::string::npos);
    CHECK(capability_problem("secret:A\nB"));

    using policy::capability_covers;
    CHECK(capability_covers("path:.github/**", "path:.github/workflows/ci.yml"));
    CHECK_FALSE(capability_covers("path:.github/**", "path:src/main.c"));
    CHECK(capability_covers("path:*", "path:anything/at/all"));
    CHECK(capability_covers("network.host:*.example.com", "network.host:api.example.com:443"));
    CHECK_FALSE(capability_covers("network.host:*.example.com", "network.host:example.org:443"));
    CHECK(capability_covers("secret:OPENAI_*", "secret:OPENAI_API_KEY"));
    CHECK_FALSE(capability_covers("secret:OPENAI_*", "secret:AWS_SECRET"));
    CHECK_FALSE(capability_covers("network.open", "network.audit"));
    CHECK(capability_covers("network.open", "network.open"));
    CHECK(policy::capability_pattern_covers("path:*", "path:.github/**"));
    CHECK_FALSE(policy::capability_pattern_covers("path:.github/**", "path:*"));
}

TEST_CASE("approvers in a policy: checked, layered tighten-only, shown", "[approvals]") {
    Fixture f;
    const json& a = f.pol.get("approvals/approvers");
    REQUIRE(a.size() == 2);
    CHECK(a[0]["name"] == "alice");
    CHECK(a[0]["keyid"] == f.alice.keyid);
    CHECK(a[0]["capabilities"].is_null());
    CHECK(a[1]["capabilities"] == json::array({"path:*"}));
    CHECK(policy::format_value(*policy::find_spec("approvals/approvers"), a)
              .find("bob (keyid " + f.bob.keyid.substr(0, 12) + ", path:*)") != std::string::npos);

    // A later layer may drop or narrow approvers, never add one.
    std::ofstream(f.dir / "drop.json")
        << R"({"approvals": {"approvers": [{"name": "bob", "public_key_file": "bob.pub"}]}})";
    auto widened = policy::load({(f.dir / "org.json").string(), (f.dir / "drop.json").string()});
    REQUIRE_FALSE(widened.ok()); // bob without capabilities would approve anything
    CHECK(widened.error().message.find("/approvals/approvers: ") != std::string::npos);
    std::ofstream(f.dir / "narrow.json")
        << R"({"approvals": {"approvers": [{"name": "bob", "public_key_file": "bob.pub", )"
        << R"("capabilities": ["path:.github/**"]}]}})";
    CHECK(policy::load({(f.dir / "org.json").string(), (f.dir / "narrow.json").string()}).ok());
    std::ofstream(f.dir / "add.json")
        << R"({"approvals": {"approvers": [{"name": "mallory", "public_key_file": "mallory.pub"}]}})";
    CHECK_FALSE(policy::load({(f.dir / "org.json").string(), (f.dir / "add.json").string()}).ok());

    // Bad entries: every problem, with its pointer.
    auto bad = policy::parse_document(
        R"({"approvals": {"approvers": [{"name": "a b", "public_key": "nope"},
            {"name": "c", "public_key_file": "missing.pub", "capabilities": ["network.opne"]}]}})",
        "bad.json", f.dir);
    auto* ps = std::get_if<std::vector<policy::Problem>>(&bad);
    REQUIRE(ps);
    std::string all;
    for (const auto& p : *ps)
        all += p.str() + "\n";
    CHECK(all.find("bad.json: /approvals/approvers/0/name: must be a name") != std::string::npos);
    CHECK(all.find("/approvals/approvers/0/public_key: is not an Ed25519 public key") !=
          std::string::npos);
    CHECK(all.find("/approvals/approvers/1/public_key_file: ") != std::string::npos);
    CHECK(all.find("/approvals/approvers/1/capabilities/0: \"network.opne\" is not a capability") !=
          std::string::npos);
    // approvals.required and approvals.flag take capability patterns.
    auto req = policy::parse_document(R"({"approvals": {"required": ["network.add-hosts"]}})",
                                      "r.json", f.dir);
    REQUIRE(std::get_if<std::vector<policy::Problem>>(&req));
    CHECK(std::get<std::vector<policy::Problem>>(req)[0].str() ==
          "r.json: /approvals/required/0: \"network.add-hosts\" is no longer a capability: it is "
          "now network.host:* (and network.cidr:*)");
}

TEST_CASE("a signed approval: valid in scope, refused with the reason otherwise", "[approvals]") {
    Fixture f;
    const json& approvers = f.pol.get("approvals/approvers");
    const auto use = use_for("org/repo", "c0ffee", {"4242"});
    auto ok = audit::check_approval(f.approval(f.alice, {"network.open"}, repo_scope("org/repo")),
                                    "a.json", approvers, use);
    CHECK(ok.valid);
    CHECK(ok.approver == "alice");
    CHECK(ok.keyid == f.alice.keyid);
    CHECK(ok.capabilities == std::vector<std::string>{"network.open"});

    // A key the policy does not list.
    auto unknown = audit::check_approval(
        f.approval(f.mallory, {"network.open"}, repo_scope("org/repo")), "m.json", approvers, use);
    CHECK_FALSE(unknown.valid);
    CHECK(unknown.refusal == "signed by keyid " + f.mallory.keyid +
                                 ", which is not a key approvals.approvers lists (alice, bob)");

    // Tampered: the payload changed after signing (re-encoded with another capability).
    std::string text = f.approval(f.alice, {"network.audit"}, repo_scope("org/repo"));
    json env = json::parse(text);
    std::string payload = *audit::base64_decode(env["payload"].get<std::string>());
    payload.replace(payload.find("network.audit"), 13, "network.open!");
    payload.replace(payload.find("network.open!"), 13, "network.open ");
    env["payload"] = audit::base64_encode(payload);
    auto tampered = audit::check_approval(env.dump(), "t.json", approvers, use);
    CHECK_FALSE(tampered.valid);
    CHECK(tampered.refusal == "the signature does not verify with alice's key (keyid " +
                                  f.alice.keyid + "): the approval was changed after signing");

    // Another repository, commit, run; expired; from the future; beyond the approver's list.
    auto other_repo = audit::check_approval(
        f.approval(f.alice, {"network.open"}, repo_scope("org/other")), "o.json", approvers, use);
    CHECK(other_repo.refusal ==
          "bound to repository \"org/other\", but this run's repository is \"org/repo\"");
    audit::ApprovalScope commit;
    commit.commit = "deadbeef";
    CHECK(audit::check_approval(f.approval(f.alice, {"network.open"}, commit), "c.json", approvers,
                                use)
              .refusal == "bound to commit deadbeef, but this run's commit is \"c0ffee\"");
    audit::ApprovalScope run;
    run.run = "1111";
    CHECK(
        audit::check_approval(f.approval(f.alice, {"network.open"}, run), "r.json", approvers, use)
            .refusal == "bound to run 1111, but this run is run 4242 (an approval is not "
                        "replayed for another run)");
    // The same scopes, bound to this run's commit and run: accepted.
    commit.commit = "c0ffee";
    auto this_commit = audit::check_approval(f.approval(f.alice, {"network.open"}, commit),
                                             "c.json", approvers, use);
    CHECK(this_commit.valid);
    CHECK(this_commit.refusal.empty());
    CHECK(this_commit.approver == "alice");
    run.run = "4242";
    auto this_run =
        audit::check_approval(f.approval(f.alice, {"network.open"}, run), "r.json", approvers, use);
    CHECK(this_run.valid);
    CHECK(this_run.refusal.empty());
    CHECK(this_run.capabilities == std::vector<std::string>{"network.open"});
    auto expired = audit::check_approval(
        f.approval(f.alice, {"network.open"}, repo_scope("org/repo"), 1'800'000'000), "e.json",
        approvers, use);
    CHECK(expired.refusal == "expired at 2027-01-15T09:00:00Z (now 2030-03-17T17:48:20Z)");
    auto future = audit::check_approval(
        f.approval(f.alice, {"network.open"}, repo_scope("org/repo"), 1'900'001'000), "f.json",
        approvers, use);
    CHECK(future.refusal.find("in the future") != std::string::npos);
    auto beyond = audit::check_approval(f.approval(f.bob, {"network.open"}, repo_scope("org/repo")),
                                        "b.json", approvers, use);
    CHECK(beyond.refusal == "bob may approve only path:* (approvals.approvers), not network.open");
    // Bound to a report: for the gate, not for a run; and only that report.
    audit::ApprovalScope report;
    report.report_sha256 = std::string(64, 'a');
    auto for_report = f.approval(f.bob, {"path:.github/**"}, report);
    CHECK(audit::check_approval(for_report, "p.json", approvers, use)
              .refusal.find("it is for `airlock gate` or `airlock apply` on that report") !=
          std::string::npos);
    auto at_gate = use;
    at_gate.where = "the report";
    at_gate.report_sha256 = std::string(64, 'a');
    CHECK(audit::check_approval(for_report, "p.json", approvers, at_gate).valid);
    at_gate.report_sha256 = std::string(64, 'b');
    CHECK(audit::check_approval(for_report, "p.json", approvers, at_gate)
              .refusal.find("(another report)") != std::string::npos);
    // Garbage, another payload type, and a policy without approvers.
    CHECK(audit::check_approval("{", "g.json", approvers, use)
              .refusal.find("not a signed approval") == 0);
    auto run_envelope = audit::make_envelope("{}", f.alice.priv, "k");
    REQUIRE(run_envelope.ok());
    CHECK(audit::check_approval(*run_envelope, "r.json", approvers, use)
              .refusal.find(
                  "not an approval: its payloadType is \"application/vnd.in-toto+json\"") == 0);
    CHECK(audit::check_approval(f.approval(f.alice, {"network.open"}, repo_scope("org/repo")),
                                "a.json", json(), use)
              .refusal == "the policy lists no approvers (approvals.approvers), so no signed "
                          "approval is accepted");
}

TEST_CASE("make_approval refuses what cannot be an approval", "[approvals]") {
    Fixture f;
    audit::ApprovalClaims c;
    c.id = "x";
    c.capabilities = {"network.open"};
    c.issued_at = 100;
    c.expires_at = 200;
    CHECK(audit::make_approval(c, f.alice.priv, "k").error().message.find("must be bound") !=
          std::string::npos);
    c.scope.repository = "org/repo";
    c.capabilities = {"network.opn"};
    CHECK_FALSE(audit::make_approval(c, f.alice.priv, "k").ok());
    c.capabilities = {"network.open"};
    CHECK(audit::make_approval(c, f.alice.priv, "k").ok());
    CHECK(audit::parse_utc("2026-12-03T08:00:00Z") == std::time_t(1796284800));
    CHECK_FALSE(audit::parse_utc("2026-02-31T08:00:00Z"));
    CHECK_FALSE(audit::parse_utc("2026-12-03 08:00:00"));
}

TEST_CASE("the approval book: files first, then flags the policy allows, then the prompt",
          "[approvals]") {
    Fixture f(R"(, "flag": ["network.host:*.example.com"])", "permissive");
    const auto use = use_for("org/repo", "c0ffee", {"4242"});
    std::vector<audit::PresentedApproval> presented = {
        audit::check_approval(f.approval(f.alice, {"network.open"}, repo_scope("org/repo")),
                              "a.json", f.pol.get("approvals/approvers"), use),
        audit::check_approval(f.approval(f.mallory, {"workspace.bind-rw"}, repo_scope("org/repo")),
                              "m.json", f.pol.get("approvals/approvers"), use)};
    int asked = 0;
    audit::ApprovalBook book(f.pol, presented, {"network.host:api.example.com:443", "network.open"},
                             [&](const std::string& cap, const std::string&) {
                                 ++asked;
                                 return cap == "user.low-uid";
                             });
    CHECK(book.grant("network.open", "--network open") ==
          std::optional<std::string>("approval 0123456789abcdef by alice (a.json)"));
    CHECK(book.grant("network.host:api.example.com:443", "--allow api.example.com:443") ==
          std::optional<std::string>(
              "flag --approve network.host:api.example.com:443 (approvals.flag)"));
    CHECK(asked == 0);
    CHECK(book.grant("user.low-uid", "--user 10") ==
          std::optional<std::string>("answered yes on the terminal"));
    CHECK_FALSE(book.grant("workspace.bind-rw", "--workspace-mode bind-rw"));
    CHECK(asked == 2);
    const json r = book.records();
    REQUIRE(r["presented"].size() == 4);
    CHECK(r["presented"][1]["valid"] == false);
    // The flag for network.open is not one approvals.flag allows.
    CHECK(r["presented"][3]["refusal"].get<std::string>().find(
              "approvals.flag (from " + (f.dir / "org.json").string() +
              ") does not let a flag approve network.open") == 0);
    REQUIRE(r["granted"].size() == 3);
    CHECK(r["granted"][0]["approver"] == "alice");
    REQUIRE(r["requested"].size() == 1);
    CHECK(r["requested"][0]["capability"] == "workspace.bind-rw");
    CHECK(r["requested"][0]["approvers"] == json::array({"alice"}));
    CHECK(r["requested"][0]["refused"][0].get<std::string>().find("m.json: signed by keyid") == 0);
}

TEST_CASE("a refusal names the capability, who can approve it and the command", "[approvals]") {
    Fixture f("", "permissive");
    config::RunRequest req;
    req.values["network"] = "open";
    req.origin["network"] = "--network";
    req.command = {"true"};
    auto opts = config::resolve(req, [](const std::string&) { return std::nullopt; });
    REQUIRE(opts.ok());
    audit::ApprovalBook none(f.pol, {}, {}, {});
    auto d = policy::enforce(f.pol, req, *opts, none);
    REQUIRE_FALSE(d.ok());
    CHECK(d.error().kind == util::ErrorKind::refused);
    CHECK(d.error().message.find("--network open needs an explicit approval for network.open") ==
          0);
    CHECK(d.error().message.find(
              "an approver (alice, approvals.approvers from " + (f.dir / "org.json").string() +
              ") runs `airlock approve --key KEY --capability network.open "
              "--for-repo REPO|--for-commit SHA|--for-run RUN --out "
              "approval.json` and you pass --approvals approval.json") != std::string::npos);
    CHECK(d.error().message.find("answer yes when airlock asks on a terminal") !=
          std::string::npos);
    // strict: nobody can approve.
    auto strict = policy::load({"strict"});
    REQUIRE(strict.ok());
    CHECK(policy::approval_hint(*strict, "network.open") ==
          "nobody can approve network.open under this policy (no approver lists it, "
          "approvals.flag does not allow it and approvals.prompt is off)");
}

TEST_CASE("the gate: ask_on rules need an approval, approved violations no longer count",
          "[approvals][gate]") {
    json values = {{"gate",
                    {{"fail_on", json::array({"task-failed"})},
                     {"ask_on", json::array({"protected-change", "network-denied"})}}}};
    json report = {{"result", {{"outcome", "success"}}},
                   {"protected_changes",
                    {{"changes", json::array({{{"path", ".github/workflows/ci.yml"},
                                               {"change", "modified"},
                                               {"pattern", ".github/workflows/**"}},
                                              {{"path", "Makefile"},
                                               {"change", "modified"},
                                               {"pattern", "Makefile"},
                                               {"approved_by", "approval 1 by alice"}}})}}},
                   {"network",
                    {{"summary",
                      {{"refusals", json::array({{{"decision", "deny"},
                                                  {"method", "CONNECT"},
                                                  {"host", "evil.example"},
                                                  {"port", 443},
                                                  {"rule", "not-allowed"}}})}}}}}};
    auto status = [](const json& checks, const std::string& id) {
        for (const auto& c : checks)
            if (c["id"] == id) return c["status"].get<std::string>();
        return std::string("missing");
    };
    json checks = audit::gate_checks(report, values, "");
    CHECK(status(checks, "protected-change") == "needs_approval");
    CHECK(status(checks, "network-denied") == "needs_approval");
    json verdict = audit::verdict_of(checks);
    CHECK(verdict["passed"] == false);
    CHECK(verdict["needs_approval"] == true);

    checks = audit::gate_checks(report, values, "", {"path:.github/**"});
    CHECK(status(checks, "protected-change") == "pass");
    CHECK(status(checks, "network-denied") == "needs_approval");
    checks =
        audit::gate_checks(report, values, "", {"path:.github/**", "network.host:*.example:443"});
    CHECK(status(checks, "network-denied") == "pass");
    CHECK(audit::verdict_of(checks)["passed"] == true);
    // fail_on wins over ask_on: a failure is not turned into a question.
    values["gate"]["fail_on"].push_back("protected-change");
    checks = audit::gate_checks(report, values, "");
    CHECK(status(checks, "protected-change") == "fail");
    CHECK(audit::verdict_of(checks)["needs_approval"] == false);
}
