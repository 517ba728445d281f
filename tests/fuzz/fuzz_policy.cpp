// libFuzzer target: a policy file is read from the user's repository, and its patterns are matched
// against paths and hosts a container chose. Any bytes up to the first NUL are a policy document,
// layered over the built-in policy and the standard preset and then enforced; the NUL-separated
// strings after it drive the pattern helpers directly. Problems are expected; a crash, an
// exception, a hang or a layer that loosens without a problem is a bug.
#include "config/run_options.hpp"
#include "policy/enforce.hpp"
#include "policy/patterns.hpp"
#include "policy/policy.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

using namespace airlock;
using namespace airlock::policy;

namespace {

// Every layer is tried over these: the built-in floor and the default preset. The other presets
// are seeds, so they are fuzzed as documents; each extra base would cost another pass per input.
const std::vector<Policy>& bases() {
    static const std::vector<Policy> all = [] {
        auto standard = load({"standard"});
        if (!standard) std::abort(); // a shipped preset that does not load is a bug too
        return std::vector<Policy>{builtin(), std::move(*standard)};
    }();
    return all;
}

// Two fixed runs: one that leaves everything to the policy, one that asks for a lot.
struct Run {
    config::RunRequest req;
    config::RunOptions opts;
};

const std::vector<Run>& runs() {
    static const std::vector<Run> all = [] {
        auto lookup = [](const std::string& name) -> std::optional<std::string> {
            return "value-of-" + name;
        };
        std::vector<Run> out;
        config::RunRequest plain;
        plain.command = {"true"};
        config::RunRequest greedy = plain;
        greedy.values = {{"image", "ghcr.io/org/agent:1"},
                         {"workspace_mode", "bind-rw"},
                         {"memory", "64g"},
                         {"cpus", "16"},
                         {"pids", "100000"},
                         {"timeout", "24h"},
                         {"grace", "1h"},
                         {"output_cap", "8g"},
                         {"tmpfs_size", "16g"},
                         {"user", "1:1"},
                         {"runtime", "runsc"}};
        for (const auto& [k, v] : greedy.values)
            greedy.origin[k] = "--" + k;
        greedy.env = {"LANG=C.UTF-8", "HOME"};
        greedy.env_origins = {"--env", "--env"};
        greedy.secrets = {"API_TOKEN"};
        greedy.secret_origins = {"--secret"};
        for (auto* req : {&plain, &greedy}) {
            auto opts = config::resolve(*req, lookup);
            if (!opts) std::abort();
            out.push_back({*req, *opts});
        }
        return out;
    }();
    return all;
}

void check(bool ok) {
    if (!ok) std::abort();
}

std::uint64_t number(const nlohmann::json& v) {
    return v.is_number_unsigned() ? v.get<std::uint64_t>()
                                  : static_cast<std::uint64_t>(v.get<std::int64_t>());
}

// A run that enforce() let through with no approvals stays within every ceiling of the policy.
void check_within(const Policy& p, const config::RunOptions& o) {
    auto below = [&](std::string_view field, std::uint64_t value) {
        const auto& max = p.get("resources/" + std::string(field) + "/max");
        check(max.is_null() || value <= number(max));
    };
    below("memory", o.memory);
    below("cpus", static_cast<std::uint64_t>(o.nano_cpus));
    below("pids", static_cast<std::uint64_t>(o.pids));
    below("timeout", static_cast<std::uint64_t>(o.timeout.count()));
    below("grace", static_cast<std::uint64_t>(o.grace.count()));
    below("output_cap", o.output_cap);
    below("tmpfs_size", o.tmpfs_size);
    below("nofile", static_cast<std::uint64_t>(o.nofile));
    below("nproc", static_cast<std::uint64_t>(o.nproc));
    check(p.contains("workspace/modes", config::to_string(o.workspace_mode)));
    check(p.contains("runtime/allow", o.runtime));
    bool listed = p.get("images/allow").is_null();
    for (const auto& pattern : p.strings("images/allow"))
        listed = listed || prefix_match(pattern, o.image);
    check(listed);
    check(std::stoull(o.user.substr(0, o.user.find(':'))) >= number(p.get("user/min_uid")));
}

// Everything that reads a layered policy: show, diff, report, enforcement.
void exercise(const Policy& base, const Policy& p, bool clean) {
    (void)to_json(p).dump();
    (void)p.describe();
    for (const auto& spec : field_specs()) {
        (void)format_value(spec, p.get(spec.path));
        (void)p.origin(spec.path);
    }
    for (const auto& c : diff(base, p)) {
        // Tighten-only: a layer applied without problems never loosens anything.
        check(!clean || c.direction != Direction::loosens);
        check(!c.path.empty());
    }
    (void)diff(p, base);
    for (const auto& path : {".git/hooks/pre-commit", ".github/workflows/ci.yml", "src/main.c",
                             ".env", "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p"})
        (void)protected_by(p, path);
    for (const auto& run : runs()) {
        config::RunOptions opts = run.opts;
        auto decision = enforce(p, run.req, opts, NoApprovals());
        if (decision && clean) check_within(p, opts);
        if (!decision) check(!decision.error().message.empty());
    }
}

void fuzz_document(std::string_view text) {
    auto parsed = parse_document(text, "fuzz.json", "/fuzz");
    if (auto* problems = std::get_if<std::vector<Problem>>(&parsed)) {
        check(!problems->empty());
        for (const auto& pr : *problems)
            (void)pr.str();
        return;
    }
    const Document& doc = std::get<Document>(parsed);
    for (const auto& base : bases()) {
        Policy p = base;
        const auto problems = apply_layer(p, doc);
        for (const auto& pr : problems)
            (void)pr.str();
        exercise(base, p, problems.empty());
        if (!problems.empty()) continue;
        // The same layer twice changes nothing the second time.
        Policy again = p;
        check(apply_layer(again, doc).empty());
        for (const auto& [path, v] : p.values)
            check(again.get(path) == v.value);
    }
}

std::vector<std::string_view> split_nul(std::string_view s) {
    std::vector<std::string_view> out;
    while (!s.empty() && out.size() < 16) {
        auto nul = s.find('\0');
        out.push_back(s.substr(0, nul));
        if (nul == std::string_view::npos) break;
        s.remove_prefix(nul + 1);
    }
    return out;
}

void fuzz_patterns(const std::vector<std::string_view>& strings) {
    for (auto s : strings) {
        (void)path_glob_problem(s);
        (void)prefix_pattern_problem(s);
        (void)name_pattern_problem(s);
        check(parse_host_rule(s).has_value() == !host_rule_problem(s).has_value());
        if (s.find_first_of("*?") == std::string_view::npos) check(glob_match(s, s));
        check(prefix_covers(s, s));
        if (auto c = parse_cidr(s)) check(cidr_covers(*c, *c));
        if (auto r = parse_host_rule(s)) {
            check(host_rule_covers(*r, *r));
            // A host the rule matches, so "covers" can be checked against "matches" below.
            const std::string sample = r->wildcard ? "x." + r->host : r->host;
            check(host_rule_matches(*r, sample,
                                    r->ports.empty() ? std::uint16_t{443} : r->ports.front()));
        }
    }
    for (auto a : strings)
        for (auto b : strings) {
            (void)glob_match(a, b);
            // Whatever `b` matches, `a` matches too when it covers `b`. (Only for valid patterns:
            // "**" is not one, and would "cover" "*".)
            if (!prefix_pattern_problem(a) && !prefix_pattern_problem(b) && prefix_covers(a, b)) {
                std::string_view least = b;
                if (!least.empty() && least.back() == '*') least.remove_suffix(1);
                check(prefix_match(a, least));
            }
            auto ra = parse_host_rule(a);
            auto rb = parse_host_rule(b);
            if (ra && rb && host_rule_covers(*ra, *rb)) {
                const std::string sample = rb->wildcard ? "x." + rb->host : rb->host;
                check(host_rule_matches(
                    *ra, sample, rb->ports.empty() ? std::uint16_t{443} : rb->ports.front()));
            }
            auto ca = parse_cidr(a);
            auto cb = parse_cidr(b);
            if (ca && cb && cidr_covers(*ca, *cb)) {
                // Covering a network covers every address in it.
                Cidr address = *cb;
                address.bits = cb->v6 ? 128 : 32;
                check(cidr_covers(*ca, address));
            }
            // Quadratic in the lengths; long strings say nothing new.
            if (a.size() <= 256 && b.size() <= 256) {
                const std::size_t d = edit_distance(a, b);
                check(d == edit_distance(b, a));
                check(d <= std::max(a.size(), b.size()));
                check((d == 0) == (a == b));
            }
        }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto nul = input.find('\0');
    fuzz_document(input.substr(0, nul));
    if (nul != std::string_view::npos) fuzz_patterns(split_nul(input.substr(nul + 1)));
    return 0;
}
