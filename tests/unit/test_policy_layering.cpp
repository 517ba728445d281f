// Policy documents, presets and tighten-only layering.
#include "cli/main.hpp"
#include "policy/policy.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <set>

using namespace airlock::policy;
using nlohmann::json;
namespace fs = std::filesystem;
using airlock::test::TempDir;

namespace {

Document doc(const std::string& text, const std::string& source = "team.json") {
    auto r = parse_document(text, source, ".");
    if (auto* ps = std::get_if<std::vector<Problem>>(&r)) {
        std::string all;
        for (const auto& p : *ps)
            all += p.str() + "\n";
        FAIL("unexpected problems:\n" << all);
    }
    return std::get<Document>(r);
}

std::vector<std::string> problems_of(const std::string& text) {
    auto r = parse_document(text, "team.json", ".");
    std::vector<std::string> out;
    if (auto* ps = std::get_if<std::vector<Problem>>(&r))
        for (const auto& p : *ps)
            out.push_back(p.str());
    return out;
}

Policy standard() {
    auto r = load({"standard"});
    REQUIRE(r.ok());
    return *r;
}

// A document that sets `path` (slash-separated) to `value`.
std::string setting(std::string_view path, const json& value) {
    json j = json::object();
    j[json::json_pointer("/" + std::string(path))] = value;
    return j.dump();
}

constexpr const char* k_alice_key =
    "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEADXQ3r+MzzqEmeoHQaVsYZJilsEkhxa"
    "wrL+NhaJG1lmo=\n-----END PUBLIC KEY-----\n";

// For every governed field: a value tighter than the layer under it and one looser. That layer
// is the standard preset, unless standard holds the field at its tightest (`loose_base`: the
// tighter value goes on builtin() plus this value) or at its loosest (`tight_base`: the looser
// value goes on standard plus this value). Fields any layer may set within a limit (defaults,
// choices) have neither.
struct Case {
    json tighter, looser;
    json loose_base = nullptr, tight_base = nullptr;
};
const std::map<std::string, Case>& cases() {
    static const json openai = json::parse(
        R"({"secret": "OPENAI_API_KEY", "upstream": "https://api.openai.com/",
            "header": "Authorization: Bearer {secret}", "max_requests": 100})");
    static const std::map<std::string, Case> c = {
        {"images/allow", {json::array({"airlock/agent-base"}), json::array({"*"})}},
        {"images/require_digest", {true, false, nullptr, true}},
        {"runtime/allow",
         {json::array({"runsc"}), json::array({"runc", "runsc"}), nullptr, json::array({"runsc"})}},
        {"workspace/modes", {json::array({"volume"}), json::array({"volume", "bind-rw"})}},
        {"workspace/default", {nullptr, nullptr}},
        {"workspace/protected",
         {json::array({".github/workflows/**", ".gitlab-ci.yml", "**/.env", "**/.env.*",
                       ".git/hooks/**", ".airlock/**", "Makefile"}),
          json::array({".github/workflows/**"})}},
        {"network/modes", {json::array({"none"}), json::array({"none", "open"})}},
        {"network/default", {nullptr, nullptr}},
        {"network/allow", {json::array({"api.openai.com:443"}), json::array({"*.openai.com"})}},
        {"network/deny",
         {json::array({"*.internal", "metadata.google.internal", "evil.example"}),
          json::array({"*.internal"})}},
        {"network/methods", {json::array({"GET"}), json::array({"GET", "HEAD", "POST"})}},
        // Standard allows no range: the tighter value narrows a wider one.
        {"network/allow_cidrs",
         {json::array({"10.1.0.0/16"}), json::array({"10.0.0.0/8"}), json::array({"10.0.0.0/8"}),
          nullptr}},
        {"network/flags_may_add_hosts", {false, true, true, nullptr}},
        {"network/upload_budget", {"1m", "1g"}},
        {"network/egress_network", {"corp-egress", "other", nullptr, "corp-egress"}},
        // Standard defines none, so the first layer that does tightens; adding an endpoint
        // loosens.
        {"credentials", {json::object(), json{{"openai", openai}}, nullptr, json::object()}},
        {"artifacts/max_file_size", {"64m", "1g"}},
        {"artifacts/max_total_size", {"256m", "4g"}},
        {"resources/memory/default", {nullptr, nullptr}},
        {"resources/memory/max", {"4g", "16g"}},
        {"resources/cpus/default", {nullptr, nullptr}},
        {"resources/cpus/max", {"1.5", 4}},
        {"resources/pids/default", {nullptr, nullptr}},
        {"resources/pids/max", {512, 2048}},
        {"resources/timeout/default", {nullptr, nullptr}},
        {"resources/timeout/max", {"1h", "3h"}},
        {"resources/grace/default", {nullptr, nullptr}},
        {"resources/grace/max", {"30s", "2m"}},
        {"resources/output_cap/default", {nullptr, nullptr}},
        {"resources/output_cap/max", {"256m", "1g"}},
        {"resources/tmpfs_size/default", {nullptr, nullptr}},
        {"resources/tmpfs_size/max", {"1g", "4g"}},
        {"resources/nofile/default", {nullptr, nullptr}},
        {"resources/nofile/max", {8192, 131072}},
        {"resources/nproc/default", {nullptr, nullptr}},
        {"resources/nproc/max", {2048, 8192}},
        {"user/default", {nullptr, nullptr}},
        // Above standard's 1000, the default user 1000:1000 would no longer fit.
        {"user/min_uid", {1000, 500, 500, nullptr}},
        {"env/allow", {json::array({"LANG"}), json::array({"*"})}},
        {"secrets/allow", {json::array({"OPENAI_API_KEY"}), json::array({"AWS_*"})}},
        {"secrets/inject", {"file", "env", nullptr, "file"}},
        {"approvals/required",
         {json::array({"network.open", "network.audit", "workspace.bind-rw", "path:*", "image:*"}),
          json::array({"network.open"})}},
        // Standard names no approvers, so the first list tightens; dropping an approver's
        // capability list (any capability) loosens.
        {"approvals/approvers",
         {json::array({{{"name", "alice"}, {"public_key", k_alice_key}}}),
          json::array({{{"name", "alice"}, {"public_key", k_alice_key}}}), nullptr,
          json::array({{{"name", "alice"},
                        {"public_key", k_alice_key},
                        {"capabilities", json::array({"network.open"})}}})}},
        {"approvals/flag",
         {json::array({"env:LC_*"}), json::array({"env:*"}), json::array({"env:*"}), nullptr}},
        {"approvals/prompt", {false, true, nullptr, false}},
        {"gate/ask_on",
         {json::array({"protected-change", "network-denied"}), json::array({"protected-change"}),
          json::array({"protected-change"}), nullptr}},
        {"gate/fail_on",
         {json::array({"task-failed", "timeout", "oom", "policy-violation", "protected-change",
                       "enforcement-mismatch", "unsigned", "network-denied", "secret-exposed",
                       "approval-missing"}),
          json::array({"task-failed"})}},
        {"gate/max_changed_files", {10, 1000}},
        {"gate/require_signature", {true, false, false, nullptr}},
        {"gate/max_patch_bytes", {"1m", "100m"}},
    };
    return c;
}

// Fields that a layer sets freely within another field (defaults, choices): no direction.
bool free_field(const FieldSpec& spec) {
    switch (spec.kind) {
    case Kind::text:
    case Kind::size_default:
    case Kind::duration_default:
    case Kind::cpus_default:
    case Kind::count_default:
    case Kind::choice:
    case Kind::user:
        return true;
    default:
        return false;
    }
}

// `base` with `path` set to `value` by a layer named base.json.
Policy with(Policy base, const std::string& path, const json& value) {
    auto problems = apply_layer(base, doc(setting(path, value), "base.json"));
    REQUIRE(problems.empty());
    REQUIRE(base.origin(path) == "base.json");
    return base;
}

} // namespace

TEST_CASE("every field has a tighten and a loosen case", "[policy]") {
    for (const auto& spec : field_specs()) {
        INFO(spec.path);
        REQUIRE(cases().count(std::string(spec.path)) == 1);
        const Case& c = cases().at(std::string(spec.path));
        CHECK(c.tighter.is_null() == free_field(spec));
        CHECK(c.looser.is_null() == free_field(spec));
    }
}

TEST_CASE("each field tightened is accepted and loosened is refused", "[policy]") {
    for (const auto& [path, c] : cases()) {
        INFO(path);
        const FieldSpec& spec = *find_spec(path);
        if (!c.tighter.is_null()) {
            const Policy before =
                c.loose_base.is_null() ? standard() : with(builtin(), path, c.loose_base);
            Policy p = before;
            auto problems = apply_layer(p, doc(setting(path, c.tighter)));
            CHECK(problems.empty());
            CHECK(p.origin(path) == "team.json");
            // Tighter, not merely equal: diff sees the field tighten.
            bool tightened = false;
            for (const auto& change : diff(before, p))
                if (change.path == path) tightened = change.direction == Direction::tightens;
            CHECK(tightened);
        }
        if (!c.looser.is_null()) {
            const Policy before =
                c.tight_base.is_null() ? standard() : with(standard(), path, c.tight_base);
            Policy p = before;
            const Document layer = doc(setting(path, c.looser));
            auto problems = apply_layer(p, layer);
            REQUIRE(problems.size() == 1);
            CHECK(problems[0].file == "team.json");
            CHECK(problems[0].pointer == "/" + path);
            // The field's new and old values as written, and the layer that set the old one.
            CHECK_THAT(problems[0].message,
                       Catch::StartsWith(format_value(spec, layer.values.at(path).value) +
                                         " loosens " + format_value(spec, before.get(path)) +
                                         " set by " + before.origin(path) + " ("));
            CHECK(p.origin(path) == before.origin(path));
            CHECK(p.get(path) == before.get(path));
        }
    }
}

TEST_CASE("a loosening names the field and both values", "[policy]") {
    Policy p = standard();
    auto problems = apply_layer(p, doc(R"({"resources": {"memory": {"max": "16g"}}})"));
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].str() ==
          "team.json: /resources/memory/max: 16g loosens 8g set by preset standard (a later "
          "--policy layer may only tighten; drop the field or tighten it)");
}

TEST_CASE("the presets tighten in the order permissive, standard, strict", "[policy]") {
    CHECK(load({"permissive", "standard", "strict"}).ok());
    auto r = load({"strict", "standard"});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("preset standard: /resources/memory/max: 8g loosens 2g set by "
                                 "preset strict") != std::string::npos);
    for (const auto& name : preset_names()) {
        INFO(name);
        auto p = load({name});
        REQUIRE(p.ok());
        CHECK(p->layers.back().source == "preset " + name);
    }
}

TEST_CASE("no --policy means standard", "[policy]") {
    auto p = load({});
    REQUIRE(p.ok());
    CHECK(p->describe() == "preset standard");
    CHECK(p->get("workspace/default") == "volume");
    CHECK(p->get("network/default") == "none");
}

TEST_CASE("defaults follow a lowered ceiling, one set above it is a problem", "[policy]") {
    Policy p = standard();
    CHECK(apply_layer(p, doc(R"({"resources": {"memory": {"max": "1g"}}})")).empty());
    CHECK(p.get("resources/memory/default") == 1ull << 30);
    CHECK(p.origin("resources/memory/default") == "team.json (default lowered to the maximum)");

    Policy q = standard();
    auto problems = apply_layer(q, doc(R"({"resources": {"pids": {"default": 2000}}})"));
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].str() ==
          "team.json: /resources/pids/default: 2000 is above the maximum 1024 (from preset "
          "standard)");

    Policy r = standard();
    CHECK(apply_layer(r, doc(R"({"workspace": {"modes": ["bind-ro"]}})")).empty());
    CHECK(r.get("workspace/default") == "bind-ro");
    auto bad = apply_layer(r, doc(R"({"workspace": {"default": "volume"}})"));
    REQUIRE(bad.size() == 1);
    CHECK(bad[0].pointer == "/workspace/default");
}

TEST_CASE("egress_network is set once", "[policy]") {
    Policy p = standard();
    CHECK(apply_layer(p, doc(R"({"network": {"egress_network": "corp-egress"}})")).empty());
    CHECK(apply_layer(p, doc(R"({"network": {"egress_network": "corp-egress"}})")).empty());
    auto problems = apply_layer(p, doc(R"({"network": {"egress_network": "other"}})"));
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].message ==
          "other loosens corp-egress set by team.json (a later layer may not change it)");
}

TEST_CASE("lint messages for bad documents", "[policy]") {
    CHECK(problems_of(R"({"network": {"allow": ["api.openai.com", "*.*.com"]}})") ==
          std::vector<std::string>{"team.json: /network/allow/1: \"*.*.com\" is not a host "
                                   "pattern (use \"*.example.com\")"});
    CHECK(problems_of(R"({"resources": {"memroy": {"max": "1g"}}})") ==
          std::vector<std::string>{
              "team.json: /resources/memroy: unknown field (did you mean \"memory\"?)"});
    CHECK(problems_of(R"({"resources": {"memory": {"max": "-1g"}}})") ==
          std::vector<std::string>{"team.json: /resources/memory/max: \"-1g\" is not a positive "
                                   "size (use e.g. \"512m\", \"2g\")"});
    CHECK(problems_of(R"({"resources": {"pids": {"max": 0}}})") ==
          std::vector<std::string>{"team.json: /resources/pids/max: 0 is not possible (use a "
                                   "whole number of at least 1)"});
    CHECK(problems_of(R"({"resources": {"memory": {"max": "1m"}}})") ==
          std::vector<std::string>{"team.json: /resources/memory/max: \"1m\" is below the "
                                   "engine's minimum of 6m"});
    CHECK(problems_of(R"({"workspace": {"modes": ["volume", "bind_rw"]}})") ==
          std::vector<std::string>{"team.json: /workspace/modes/1: \"bind_rw\" is not one of "
                                   "volume, bind-ro, bind-rw (did you mean \"bind-rw\"?)"});
    CHECK(problems_of(R"({"workspace": {"protected": ["/etc/passwd", "a/../b", "x**"]}})") ==
          std::vector<std::string>{
              "team.json: /workspace/protected/0: \"/etc/passwd\" is absolute (paths are "
              "relative to the workspace, e.g. \".github/workflows/**\")",
              "team.json: /workspace/protected/1: \"a/../b\" has a \".\" or \"..\" segment",
              "team.json: /workspace/protected/2: \"x**\" uses ** inside a segment (** must be a "
              "whole segment, e.g. \"docs/**\")"});
    CHECK(problems_of(R"({"resources": {"timeout": {"max": true}}})") ==
          std::vector<std::string>{"team.json: /resources/timeout/max: must be a duration such "
                                   "as \"30m\" or \"90s\", not a boolean"});
    CHECK(problems_of(R"({"env": {"allow": ["LC_*", "9X", "A*B"]}})") ==
          std::vector<std::string>{
              "team.json: /env/allow/1: \"9X\" is not a variable name (use NAME or PREFIX*, "
              "e.g. \"LC_*\")",
              "team.json: /env/allow/2: \"A*B\" has a * before the end (only a trailing * is "
              "supported, e.g. \"ghcr.io/org/*\")"});
    CHECK(problems_of(R"({"network": {"allow_cidrs": ["10.0.0.1/8", "300.1.1.1/8"]}})") ==
          std::vector<std::string>{
              "team.json: /network/allow_cidrs/0: \"10.0.0.1/8\" has host bits set (write the "
              "network address, e.g. \"10.0.0.0/8\")",
              "team.json: /network/allow_cidrs/1: \"300.1.1.1/8\" is not a CIDR (use e.g. "
              "\"10.0.0.0/8\" or \"fd00::/8\")"});
    CHECK(problems_of(R"({"user": {"default": "0:0"}})") ==
          std::vector<std::string>{"team.json: /user/default: \"0:0\" is root or the root group "
                                   "(use e.g. \"1000:1000\")"});
    CHECK(problems_of(R"({"network": {"allow": ["*.com"]}})") ==
          std::vector<std::string>{"team.json: /network/allow/0: \"*.com\" allows a whole "
                                   "top-level domain (use e.g. \"*.example.com\")"});
    CHECK(problems_of(R"({"images": {"allow": ["a@sha256:12"]}})") ==
          std::vector<std::string>{"team.json: /images/allow/0: \"a@sha256:12\" has a malformed "
                                   "digest (use name@sha256: and 64 lower-case hex digits)"});
    CHECK(problems_of(R"({"runtime": {"allow": []}})") ==
          std::vector<std::string>{"team.json: /runtime/allow: is empty, which allows nothing "
                                   "(list at least one of runc, runsc)"});
}

TEST_CASE("malformed JSON gives line and column", "[policy]") {
    CHECK(problems_of("{\n  \"name\": \"x\",\n  \"images\": {\"allow\": [\"a\"],}\n}") ==
          std::vector<std::string>{"team.json: not valid JSON at line 3, column 29: syntax error "
                                   "while parsing object key - unexpected '}'; expected string "
                                   "literal"});
    CHECK(problems_of("[1, 2]") ==
          std::vector<std::string>{"team.json: /: must be an object, not an array"});
    CHECK(problems_of(R"({"name": "a", "name": "b"})") ==
          std::vector<std::string>{
              "team.json: the key \"name\" appears twice in one object (keep one)"});
}

TEST_CASE("unknown top-level fields suggest the closest name", "[policy]") {
    CHECK(problems_of(R"({"netwrok": {}})") ==
          std::vector<std::string>{"team.json: /netwrok: unknown field (did you mean "
                                   "\"network\"?)"});
    auto far = problems_of(R"({"zzzzzzzzzz": 1})");
    REQUIRE(far.size() == 1);
    CHECK(far[0].find("unknown field (known: $schema, name, description, extends, images,") !=
          std::string::npos);
}

TEST_CASE("missing and misspelled presets", "[policy]") {
    auto r = load({"standrad"});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message ==
          "--policy: \"standrad\" is neither a preset (permissive, standard, strict) nor a .json "
          "file (did you mean \"standard\"?)");
    auto f = load({"/nonexistent/policy.json"});
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().message == "--policy: \"/nonexistent/policy.json\" cannot be read (check the "
                               "path; presets: strict, standard, permissive)");
}

namespace {

void write(const fs::path& file, const std::string& text) {
    std::ofstream out(file);
    out << text;
    REQUIRE(out);
}

// `airlock policy lint FILE`'s exit code.
int lint(const fs::path& file) {
    std::string args[] = {"policy", "lint", file.string()};
    char* argv[] = {args[0].data(), args[1].data(), args[2].data(), nullptr};
    return airlock::cli::policy_command(3, argv);
}

} // namespace

TEST_CASE("a cycle of extends is an error naming the chain", "[policy]") {
    TempDir dir;
    const fs::path a = dir.path() / "a.json", b = dir.path() / "b.json";
    write(a, R"({"extends": "b.json", "resources": {"pids": {"max": 512}}})");
    write(b, R"({"extends": "a.json"})");
    auto r = load({a.string()});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == airlock::util::ErrorKind::invalid_input);
    CHECK(r.error().message == b.string() + ": /extends: extends itself: " + a.string() + " -> " +
                                   b.string() + " -> " + a.string() + " (remove the cycle)");
    CHECK(lint(a) == 2);

    const fs::path self = dir.path() / "self.json";
    write(self, R"({"extends": "./self.json"})");
    auto s = load({self.string()});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message == self.string() + ": /extends: extends itself: " + self.string() +
                                   " -> " + self.string() + " (remove the cycle)");
}

TEST_CASE("an unknown preset in extends names the file and the closest preset", "[policy]") {
    TempDir dir;
    const fs::path team = dir.path() / "team.json";
    write(team, R"({"extends": "standrad"})");
    auto r = load({team.string()});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == team.string() +
                                   ": /extends: \"standrad\" is neither a preset (permissive, "
                                   "standard, strict) nor a .json file (did you mean "
                                   "\"standard\"?)");
    CHECK(lint(team) == 2);
    write(team, R"({"extends": "standard"})");
    CHECK(load({team.string()}).ok());
    CHECK(lint(team) == 0);
}

TEST_CASE("extends stops after 16 levels", "[policy]") {
    TempDir dir;
    // f0 extends f1 ... extends f<last>; only the last extends nothing.
    auto chain = [&](int last) {
        for (int i = 0; i <= last; ++i)
            write(dir.path() / ("f" + std::to_string(i) + ".json"),
                  i == last ? "{}" : R"({"extends": "f)" + std::to_string(i + 1) + R"(.json"})");
        return (dir.path() / "f0.json").string();
    };
    auto deepest = load({chain(15)});
    REQUIRE(deepest.ok());
    CHECK(deepest->layers.size() == 17); // built-in and 16 files
    auto r = load({chain(16)});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == (dir.path() / "f15.json").string() +
                                   ": /extends: extends more than 16 levels deep (merge some of "
                                   "the files into one)");
    CHECK(lint(dir.path() / "f0.json") == 2);
}

TEST_CASE("diff reports loosened and tightened fields", "[policy]") {
    auto a = load({"strict"});
    auto b = load({"standard"});
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    auto changes = diff(*a, *b);
    std::set<std::string> loosened, tightened;
    for (const auto& c : changes) {
        if (c.direction == Direction::loosens) loosened.insert(c.path);
        if (c.direction == Direction::tightens) tightened.insert(c.path);
    }
    CHECK(loosened.count("resources/memory/max"));
    CHECK(loosened.count("workspace/modes"));
    CHECK(loosened.count("secrets/inject"));
    CHECK(tightened.empty());
    CHECK(diff(*a, *a).empty());
    auto back = diff(*b, *a);
    for (const auto& c : back)
        CHECK(c.direction != Direction::loosens);
}

TEST_CASE("values are shown as written", "[policy]") {
    auto p = standard();
    CHECK(format_value(*find_spec("resources/memory/max"), p.get("resources/memory/max")) == "8g");
    CHECK(format_value(*find_spec("resources/timeout/max"), p.get("resources/timeout/max")) ==
          "2h");
    CHECK(format_value(*find_spec("resources/cpus/max"), json(1'500'000'000)) == "1.5");
    CHECK(format_value(*find_spec("resources/timeout/max"), json(5'400'000)) == "1h30m");
    CHECK(format_value(*find_spec("resources/memory/max"), json()) == "no limit");
    auto j = to_json(p);
    CHECK(j["values"]["resources"]["memory"]["max"] == "8g");
    CHECK(j["origins"]["resources/memory/max"] == "preset standard");
}

TEST_CASE("a policy file that never ends is refused by size", "[policy]") {
    auto r = load({"/dev/zero"});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "/dev/zero: is larger than 1 MiB; a policy is a short file");
}

namespace {
// The leaf paths a JSON Schema object describes, following local $refs.
void schema_leaves(const json& root, const json& node, const std::string& prefix,
                   std::set<std::string>& out) {
    const json* n = &node;
    if (n->contains("$ref")) {
        std::string ref = (*n)["$ref"].get<std::string>();
        n = &root.at(json::json_pointer(ref.substr(1)));
    }
    if (n->value("type", "") == "object" && n->contains("properties")) {
        for (auto it = (*n)["properties"].begin(); it != (*n)["properties"].end(); ++it)
            schema_leaves(root, it.value(), prefix.empty() ? it.key() : prefix + "/" + it.key(),
                          out);
        return;
    }
    out.insert(prefix);
}
} // namespace

TEST_CASE("the JSON Schema describes exactly the fields the loader reads", "[policy]") {
    std::ifstream in(std::string(AIRLOCK_SOURCE_DIR) + "/policies/policy.schema.json");
    REQUIRE(in);
    const json schema = json::parse(in);
    std::set<std::string> leaves;
    schema_leaves(schema, schema, "", leaves);
    for (const char* meta : {"$schema", "name", "description", "extends"})
        CHECK(leaves.erase(meta) == 1);
    std::set<std::string> fields;
    for (const auto& spec : field_specs())
        fields.insert(std::string(spec.path));
    CHECK(leaves == fields);
    // Enumerations agree too.
    for (const auto& spec : field_specs()) {
        if (spec.choices.empty()) continue;
        INFO(spec.path);
        json node = schema;
        std::string path(spec.path);
        std::size_t start = 0;
        while (true) {
            auto slash = path.find('/', start);
            node = node["properties"][path.substr(start, slash - start)];
            if (node.contains("$ref"))
                node = schema.at(json::json_pointer(node["$ref"].get<std::string>().substr(1)));
            if (slash == std::string::npos) break;
            start = slash + 1;
        }
        if (node.contains("items")) node = node["items"];
        if (node.contains("$ref"))
            node = schema.at(json::json_pointer(node["$ref"].get<std::string>().substr(1)));
        REQUIRE(node.contains("enum"));
        std::vector<std::string> want(spec.choices.begin(), spec.choices.end());
        CHECK(node["enum"].get<std::vector<std::string>>() == want);
    }
}
