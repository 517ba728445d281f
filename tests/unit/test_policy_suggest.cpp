// `airlock policy suggest` on hand-made reports: what is suggested, what is only a note, and the
// policy document it writes.
#include "policy/patterns.hpp"
#include "policy/policy.hpp"
#include "policy/suggest.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

using namespace airlock::policy;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* k_t1 = "2026-12-03T10:15:01.000Z";
const char* k_t2 = "2026-12-03T10:15:02.000Z";

// A successful allowlist run under a preset, with no refusals.
json report(const std::string& run_id, const std::string& preset = "standard") {
    auto p = load({preset});
    REQUIRE(p.ok());
    json r = {{"schema", "https://airlock.dev/schemas/report/v0.2"}, {"run_id", run_id}};
    r["policy"] = to_json(*p);
    r["policy"]["sha256"] = digest(*p);
    r["network"] = {{"mode", "allowlist"},
                    {"rules",
                     {{"allow", p->strings("network/allow")},
                      {"deny", p->strings("network/deny")},
                      {"upload_budget_bytes", p->get("network/upload_budget")}}},
                    {"summary",
                     {{"decisions", 0},
                      {"allowed", 0},
                      {"denied", 0},
                      {"cut", 0},
                      {"hosts", json::array()},
                      {"endpoints", json::object()},
                      {"refusals", json::array()}}}};
    r["limits"] = {{"timeout_ms", p->get("resources/timeout/default")},
                   {"memory_bytes", p->get("resources/memory/default")}};
    r["limits_origin"] = {{"timeout", "policy: preset " + preset},
                          {"memory", "policy: preset " + preset}};
    r["result"] = {{"outcome", "success"}, {"timed_out", false}, {"oom_killed", false}};
    return r;
}

json refusal(const std::string& host, int port, const std::string& rule = "no allow rule",
             const std::string& decision = "deny", const std::string& time = k_t1) {
    return {{"type", "decision"}, {"time", time},       {"method", "GET"},      {"host", host},
            {"port", port},       {"address", nullptr}, {"decision", decision}, {"rule", rule},
            {"reason", "why"},    {"bytes_up", 0},      {"bytes_down", 0},      {"duration_ms", 1}};
}

void refuse(json& r, const json& d) {
    r["network"]["summary"]["refusals"].push_back(d);
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        out.push_back(l);
    return out;
}

std::vector<std::string> notes_with(const Suggestion& s, const std::string& part) {
    std::vector<std::string> out;
    for (const auto& n : s.notes)
        if (n.find(part) != std::string::npos) out.push_back(n);
    return out;
}

std::vector<std::string> paths_of(const Suggestion& s) {
    std::vector<std::string> out;
    for (const auto& c : s.changes)
        out.push_back(c.path);
    return out;
}

class TempFile {
public:
    TempFile() {
        static int n = 0;
        m_path = fs::temp_directory_path() / ("airlock-suggest-" + std::to_string(::getpid()) +
                                              "-" + std::to_string(++n) + ".json");
    }
    ~TempFile() {
        std::error_code ec;
        fs::remove(m_path, ec);
    }
    const fs::path& path() const { return m_path; }

private:
    fs::path m_path;
};

// Writes the suggested document and loads it the way `--policy FILE` does.
Policy written_and_loaded(const json& first, const Suggestion& s, const TempFile& f) {
    auto doc = suggested_policy(first, s);
    INFO((doc ? std::string() : doc.error().message));
    REQUIRE(doc.ok());
    std::ofstream(f.path()) << doc->dump(2) << "\n";
    auto loaded = load_all({f.path().string()});
    if (auto* ps = std::get_if<std::vector<Problem>>(&loaded)) {
        std::string all;
        for (const auto& p : *ps)
            all += p.str() + "\n";
        FAIL("the written policy does not load:\n" << all << doc->dump(2));
    }
    return std::get<Policy>(loaded);
}

// What `airlock policy lint` adds to loading: no allow rule that a deny rule makes useless.
void require_lints(const Policy& p) {
    for (const auto& a : p.strings("network/allow"))
        for (const auto& d : p.strings("network/deny")) {
            auto ar = parse_host_rule(a);
            auto dr = parse_host_rule(d);
            REQUIRE(ar);
            REQUIRE(dr);
            INFO(a << " denied by " << d);
            CHECK_FALSE(host_rule_covers(*dr, *ar));
        }
}

} // namespace

TEST_CASE("suggest: refused hosts become sorted, deduplicated allow rules", "[suggest]") {
    json r = report("20261203t101500-aaaaaa");
    refuse(r, refusal("API.Example.test", 443, "no allow rule", "deny", k_t2));
    refuse(r, refusal("api.example.test", 443, "no allow rule", "deny", k_t1));
    refuse(r, refusal("cdn.example.test", 80));
    auto s = suggest({r});
    REQUIRE(s.changes.size() == 2);
    CHECK(s.changes[0].line() == "network.allow: + \"api.example.test:443\"  (run "
                                 "20261203t101500-aaaaaa, 2 requests refused, first at " +
                                     std::string(k_t1) + ")");
    CHECK(s.changes[1].line() == "network.allow: + \"cdn.example.test:80\"  (run "
                                 "20261203t101500-aaaaaa, 1 request refused, first at " +
                                     std::string(k_t1) + ")");
    CHECK(s.notes.empty());
    CHECK(s.runs == std::vector<std::string>{"20261203t101500-aaaaaa"});

    SECTION("the same host refused in two runs is one rule naming both") {
        json r2 = report("20261203t111500-bbbbbb");
        refuse(r2, refusal("api.example.test", 443, "no allow rule", "deny",
                           "2026-12-03T09:00:00.000Z"));
        auto both = suggest({r, r2});
        REQUIRE(both.changes.size() == 2);
        CHECK(both.changes[0].why == "runs 20261203t101500-aaaaaa, 20261203t111500-bbbbbb, 3 "
                                     "requests refused, first at 2026-12-03T09:00:00.000Z");
    }
}

TEST_CASE("suggest: hosts the allow list already covers are not suggested", "[suggest]") {
    json r = report("r1");
    r["policy"]["values"]["network"]["allow"].push_back("*.example.test");
    r["network"]["rules"]["allow"].push_back("*.example.test");
    refuse(r, refusal("github.com", 443));     // in the preset's list
    refuse(r, refusal("a.example.test", 443)); // under the wildcard
    refuse(r, refusal("example.test", 443));   // "*." matches subdomains only
    auto s = suggest({r});
    REQUIRE(s.changes.size() == 1);
    CHECK(s.changes[0].value == "example.test:443");

    SECTION("a host the run's own rules (flags) allowed is a note, not a change") {
        json a = report("r2");
        a["network"]["mode"] = "audit";
        a["network"]["rules"]["allow"].push_back("flagged.test");
        a["network"]["summary"]["hosts"] = {
            {{"host", "flagged.test"}, {"port", 443}, {"requests", 2}}};
        auto fs_ = suggest({a});
        CHECK(paths_of(fs_) == std::vector<std::string>{"network/default"});
        REQUIRE(notes_with(fs_, "flagged.test").size() == 1);
        CHECK(notes_with(fs_, "flagged.test")[0] ==
              "run r2: flagged.test:443: 2 requests allowed by the run's own rules (--allow or a "
              "task file), not by the policy; add \"flagged.test:443\" to network.allow to need "
              "neither");
    }
}

TEST_CASE("suggest: addresses, private ranges, deny rules, methods and cuts are notes only",
          "[suggest]") {
    json r = report("r1");
    refuse(r, refusal("10.1.2.3", 80));
    refuse(r, refusal("[fd00::1]", 443));
    json priv = refusal("db.test", 5432, "private address 172.18.0.2");
    priv["reason"] = "db.test resolves only to addresses the proxy does not reach: 172.18.0.2 "
                     "(private); to allow it, add its CIDR to network.allow_cidrs (or "
                     "--allow-cidr 172.18.0.0/16)";
    refuse(r, priv);
    refuse(r, refusal("x.internal", 443, "network.deny \"*.internal\""));
    refuse(r, refusal("api.example.test", 80, "method POST"));
    refuse(r, refusal("upload.example.test", 443, "upload budget", "cut"));
    refuse(r, refusal("upload.example.test", 443, "upload budget", "cut"));
    refuse(r, refusal("tls.example.test", 443, "sni mismatch", "cut"));
    refuse(r, refusal("gone.example.test", 443, "connect failed"));
    auto s = suggest({r});
    CHECK(s.changes.empty());
    CHECK(s.text().rfind("no changes suggested\n", 0) == 0);
    CHECK(notes_with(s, "10.1.2.3:80").size() == 1);
    CHECK(notes_with(s, "[fd00::1]:443").size() == 1);
    REQUIRE(notes_with(s, "db.test").size() == 1);
    CHECK(notes_with(s, "db.test")[0] ==
          "run r1: db.test:5432: 1 request refused: db.test resolves to a private address; if "
          "that is intended, add its range to network.allow_cidrs (e.g. \"172.18.0.0/16\"), "
          "which is never suggested automatically");
    CHECK(notes_with(s, "network.deny \"*.internal\"").size() == 1);
    CHECK(notes_with(s, "network.methods").size() == 1);
    REQUIRE(notes_with(s, "upload budget").size() == 1);
    CHECK(notes_with(s, "upload budget")[0] ==
          "run r1: upload.example.test: 2 requests cut by the upload budget (64m): raise "
          "network.upload_budget if that upload is expected");
    CHECK(notes_with(s, "sni mismatch").size() == 1);
    CHECK(notes_with(s, "connect failed").size() == 1);
    // Nothing about CIDRs, methods or budgets is ever a change.
    auto doc = suggested_policy(r, s);
    REQUIRE(doc.ok());
    CHECK((*doc)["network"]["allow_cidrs"] == json::array());
    CHECK((*doc)["network"]["methods"] == json::array({"GET", "HEAD"}));
}

TEST_CASE("suggest: an audit run's hosts become the allowlist, and allowlist the default",
          "[suggest]") {
    json r = report("20261203t101500-audit1", "strict");
    r["network"]["mode"] = "audit";
    r["network"]["summary"]["hosts"] = {
        {{"host", "registry.example.test"}, {"port", 443}, {"requests", 7}},
        {{"host", "allowed.test"}, {"port", 80}, {"requests", 1}},
        {{"host", "10.0.0.5"}, {"port", 80}, {"requests", 1}},
        {{"host", "metadata.internal"}, {"port", 80}, {"requests", 1}}};
    auto s = suggest({r});
    const auto text = lines_of(s.text());
    REQUIRE(text.size() >= 4);
    CHECK(text[0] == "network.allow: + \"allowed.test:80\"  (run 20261203t101500-audit1, 1 "
                     "request in audit mode)");
    CHECK(text[1] == "network.allow: + \"registry.example.test:443\"  (run "
                     "20261203t101500-audit1, 7 requests in audit mode)");
    CHECK(text[2] == "network.modes: + \"allowlist\"  (so that network.default may be allowlist)");
    CHECK(text[3] == "network.default: none -> allowlist  (run 20261203t101500-audit1 ran in "
                     "audit mode; allowlist enforces the allow rules instead)");
    CHECK(notes_with(s, "10.0.0.5").size() == 1);
    CHECK(notes_with(s, "network.deny \"*.internal\"").size() == 1); // strict denies *.internal
    {
        json needs = r;
        needs["policy"]["values"]["approvals"]["required"] = {"network.allowlist"};
        CHECK(notes_with(suggest({needs}), "approvals.required covers network.allowlist").size() ==
              1);
        needs["policy"]["values"]["approvals"]["required"] = json::array();
        CHECK(notes_with(suggest({needs}), "approvals.required").empty());
    }

    TempFile f;
    Policy p = written_and_loaded(r, s, f);
    CHECK(p.get("network/default") == "allowlist");
    CHECK(p.strings("network/modes") == std::vector<std::string>{"none", "allowlist"});
    CHECK(p.strings("network/allow") ==
          std::vector<std::string>{"allowed.test:80", "registry.example.test:443"});
    require_lints(p);

    SECTION("a policy already defaulting to allowlist changes only its allow list") {
        json r2 = report("r2", "permissive");
        r2["policy"]["values"]["network"]["default"] = "allowlist";
        r2["network"]["mode"] = "audit";
        r2["network"]["summary"]["hosts"] = {
            {{"host", "allowed.test"}, {"port", 80}, {"requests", 1}},
            {{"host", "github.com"}, {"port", 443}, {"requests", 1}}};
        auto s2 = suggest({r2});
        CHECK(paths_of(s2) == std::vector<std::string>{"network/allow"});
    }
}

TEST_CASE("suggest: a timeout doubles the default timeout, raising the maximum when needed",
          "[suggest]") {
    json r = report("r1");
    r["result"] = {{"outcome", "timeout"}, {"timed_out", true}, {"oom_killed", false}};
    auto s = suggest({r});
    REQUIRE(s.changes.size() == 1);
    CHECK(s.changes[0].line() ==
          "resources.timeout.default: 30m -> 1h  (run r1 timed out at 30m; twice that)");

    SECTION("above the maximum") {
        r["limits"]["timeout_ms"] = 90 * 60 * 1000;
        auto s2 = suggest({r});
        REQUIRE(s2.changes.size() == 2);
        CHECK(s2.changes[0].line() ==
              "resources.timeout.default: 30m -> 3h  (run r1 timed out at 1h30m; twice that)");
        CHECK(s2.changes[1].line() ==
              "resources.timeout.max: 2h -> 3h  (so that 3h is within the ceiling)");
        TempFile f;
        Policy p = written_and_loaded(r, s2, f);
        CHECK(p.get("resources/timeout/default") == 3 * 3600 * 1000);
        CHECK(p.get("resources/timeout/max") == 3 * 3600 * 1000);
    }
    SECTION("airlock's own default counts as the policy's") {
        r["limits_origin"]["timeout"] = "default";
        CHECK(paths_of(suggest({r})) == std::vector<std::string>{"resources/timeout/default"});
    }
    SECTION("set by a flag: a note, and the maximum so the flag may ask for twice") {
        r["limits"]["timeout_ms"] = 90 * 60 * 1000;
        r["limits_origin"]["timeout"] = "--timeout";
        auto s2 = suggest({r});
        CHECK(paths_of(s2) == std::vector<std::string>{"resources/timeout/max"});
        REQUIRE(notes_with(s2, "--timeout").size() == 1);
        CHECK_THAT(notes_with(s2, "--timeout")[0], Catch::Contains("pass 3h there instead"));
    }
}

TEST_CASE("suggest: an OOM doubles the default memory", "[suggest]") {
    json r = report("r1", "strict");
    r["result"] = {{"outcome", "oom"}, {"timed_out", false}, {"oom_killed", true}};
    auto s = suggest({r});
    REQUIRE(s.changes.size() == 1);
    CHECK(s.changes[0].line() ==
          "resources.memory.default: 1g -> 2g  (run r1 was killed for lack of memory at 1g; twice "
          "that)");
    r["limits"]["memory_bytes"] = 3ll << 30;
    auto s2 = suggest({r});
    REQUIRE(s2.changes.size() == 2);
    CHECK(s2.changes[1].line() ==
          "resources.memory.max: 2g -> 6g  (so that 6g is within the ceiling)");
    TempFile f;
    Policy p = written_and_loaded(r, s2, f);
    CHECK(p.get("resources/memory/default") == 6ll << 30);
}

TEST_CASE("suggest: protected-path changes are a note about approvals", "[suggest]") {
    json r = report("r1");
    r["protected_changes"] = {{"changes",
                               {{{"path", ".github/workflows/ci.yml"},
                                 {"change", "modified"},
                                 {"pattern", ".github/workflows/**"}}}},
                              {"withheld", true}};
    auto s = suggest({r}, {"out/run1"});
    CHECK(s.changes.empty());
    REQUIRE(s.notes.size() == 1);
    CHECK(s.notes[0] == "run r1 changed .github/workflows/ci.yml under the protected "
                        "\".github/workflows/**\": that needs an approval, not a policy change: "
                        "airlock approve --key KEY --for-report out/run1 --capability "
                        "'path:.github/workflows/**'");
    // A directory or pattern a shell would split is quoted.
    r["protected_changes"]["changes"][0]["pattern"] = "docs/it's here/**";
    CHECK_THAT(suggest({r}, {"out dir/run 1"}).notes.at(0),
               Catch::EndsWith("--for-report 'out dir/run 1' --capability "
                               "'path:docs/it'\\''s here/**'"));
    r["protected_changes"]["changes"][0]["approved_by"] = "alice (approval 1)";
    CHECK(suggest({r}).notes.empty());
    r["protected_changes"]["changes"][0].erase("approved_by");
    r["protected_changes"]["approved_by"] = "alice (approval 1)"; // the older shape
    CHECK(suggest({r}).notes.empty());
}

TEST_CASE("suggest: nothing to change says so, and the document is the run's policy", "[suggest]") {
    for (const auto& preset : preset_names()) {
        INFO(preset);
        json r = report("r1", preset);
        auto s = suggest({r});
        CHECK(s.text() == "no changes suggested\n");
        TempFile f;
        Policy p = written_and_loaded(r, s, f);
        CHECK(digest(p) == r["policy"]["sha256"]); // same effective values as the preset
        require_lints(p);
    }
}

TEST_CASE("suggest: the document keeps credentials and drops nulls", "[suggest]") {
    TempFile src;
    std::ofstream(src.path()) << R"({"name": "team", "network": {"modes": ["none", "allowlist"]},
        "credentials": {"openai": {"secret": "OPENAI_API_KEY", "upstream": "https://api.openai.com",
                                   "header": "Authorization: Bearer {secret}"}}})";
    auto p = load({src.path().string()});
    REQUIRE(p.ok());
    json r = report("r1");
    r["policy"] = to_json(*p);
    r["network"]["mode"] = "audit";
    auto s = suggest({r});
    auto doc = suggested_policy(r, s);
    REQUIRE(doc.ok());
    // Null is "no limit" in a report; a document leaves such a field out.
    CHECK_FALSE(doc->at("network").contains("allow_cidrs"));
    CHECK_FALSE(doc->at("resources").at("memory").contains("max"));
    CHECK(doc->at("credentials").at("openai").at("max_requests").is_null()); // an entry's own null
    CHECK((*doc)["name"] == "suggested from run r1");
    CHECK_THAT((*doc)["description"].get<std::string>(), Catch::Contains(src.path().string()));
    TempFile f;
    Policy loaded = written_and_loaded(r, s, f);
    CHECK(loaded.get("credentials")["openai"]["upstream"] == "https://api.openai.com");
    CHECK(loaded.get("user/min_uid") == 1); // written back as a number
}

TEST_CASE("suggest: the document needs the first report's policy", "[suggest]") {
    json r = report("r1");
    r.erase("policy");
    auto doc = suggested_policy(r, suggest({r}));
    REQUIRE_FALSE(doc.ok());
    CHECK_THAT(doc.error().message, Catch::Contains("no policy.values"));
    json bad = report("r1");
    bad["policy"]["values"]["resources"]["memory"]["default"] = "lots";
    auto doc2 = suggested_policy(bad, suggest({bad}));
    REQUIRE_FALSE(doc2.ok());
    CHECK_THAT(doc2.error().message, Catch::Contains("/resources/memory/default"));
}

TEST_CASE("suggest: odd report shapes never crash", "[suggest]") {
    const std::vector<json> odd = {
        nullptr,
        json::array(),
        "report",
        42,
        {{"network", 5}},
        {{"network", {{"mode", 5}, {"summary", {{"refusals", "x"}, {"hosts", 7}}}}}},
        {{"network",
          {{"mode", "audit"}, {"summary", {{"hosts", {1, nullptr, "x", json::object()}}}}}}},
        {{"network",
          {{"mode", "allowlist"},
           {"rules", {{"allow", {1, "*.*", nullptr}}}},
           {"summary",
            {{"refusals",
              {1,
               nullptr,
               json::object(),
               {{"host", 5}, {"port", "x"}, {"decision", "deny"}},
               {{"host", "a\nb.test"},
                {"port", 80},
                {"decision", "deny"},
                {"rule", "no allow rule"}},
               {{"host", "*.test"}, {"port", 80}, {"decision", "deny"}, {"rule", "no allow rule"}},
               {{"host", "x.test"},
                {"port", 70000},
                {"decision", "deny"},
                {"rule", "no allow rule"}},
               {{"host", "x.test"}, {"port", -1}, {"decision", "deny"}, {"rule", 7}},
               {{"host", std::string(5000, 'a')},
                {"port", 80},
                {"decision", "deny"},
                {"rule", "no allow rule"}}}}}}}}},
        {{"result", {{"timed_out", true}, {"oom_killed", true}}}},
        {{"result", {{"timed_out", true}, {"oom_killed", true}}},
         {"limits", {{"timeout_ms", -5}, {"memory_bytes", 1e300}}}},
        {{"result", {{"timed_out", true}, {"oom_killed", true}}},
         {"limits",
          {{"timeout_ms", 9223372036854775807ll}, {"memory_bytes", 18446744073709551615ull}}}},
        {{"result", "x"}, {"limits", "y"}, {"limits_origin", 3}},
        {{"protected_changes", {{"changes", {1, nullptr, {{"path", 3}}}}}}},
        {{"protected_changes", "x"}},
        {{"policy",
          {{"values",
            {{"network", {{"allow", "x"}, {"modes", 3}, {"deny", {1}}}},
             {"resources", {{"timeout", {{"default", {1, 2}}, {"max", "x"}}}}},
             {"approvals", {{"required", "x"}}}}}}},
         {"result", {{"timed_out", true}}},
         {"limits", {{"timeout_ms", 1000}}},
         {"network", {{"mode", "audit"}}}},
        {{"policy", {{"values", 3}, {"layers", "x"}}}},
        {{"policy", {{"values", {{"network", nullptr}}}, {"layers", {1, {{"source", 2}}}}}}},
    };
    for (const auto& r : odd) {
        INFO(r.dump());
        Suggestion s;
        REQUIRE_NOTHROW(s = suggest({r}));
        REQUIRE_NOTHROW(s.text());
        for (const auto& n : s.notes)
            CHECK(n.find('\n') == std::string::npos);
        REQUIRE_NOTHROW((void)suggested_policy(r, s));
        REQUIRE_NOTHROW(s = suggest({report("ok"), r}, {"a"}));
        REQUIRE_NOTHROW((void)suggested_policy(report("ok"), s));
    }
    CHECK_NOTHROW(suggest({}));

    // Random subtrees replaced with random values in a full report.
    std::mt19937 rng(7);
    json base = report("r1", "permissive");
    base["network"]["mode"] = "audit";
    base["network"]["summary"]["hosts"] = {{{"host", "a.test"}, {"port", 80}, {"requests", 1}}};
    refuse(base, refusal("b.test", 443));
    base["result"] = {{"timed_out", true}, {"oom_killed", true}};
    base["protected_changes"] = {{"changes", {{{"path", "p"}, {"pattern", "p"}}}}};
    const std::vector<json> values = {nullptr,
                                      true,
                                      -1,
                                      0,
                                      65536,
                                      1.5,
                                      "",
                                      "x",
                                      json::array(),
                                      json::object(),
                                      json::array({1, "a"})};
    for (int i = 0; i < 2000; ++i) {
        json r = base;
        for (int k = 0; k < 3; ++k) {
            // Walk to a random node and replace it.
            json* cur = &r;
            while (cur->is_structured() && !cur->empty() && rng() % 4 != 0) {
                auto it = cur->begin();
                std::advance(it, static_cast<long>(rng() % cur->size()));
                cur = &*it;
            }
            *cur = values[rng() % values.size()];
        }
        Suggestion s;
        REQUIRE_NOTHROW(s = suggest({r}));
        REQUIRE_NOTHROW((void)suggested_policy(r, s));
    }
}
