// `airlock policy lint|show|diff`: the policy as a security team reads and reviews it.
#include "cli/main.hpp"

#include "policy/patterns.hpp"
#include "policy/policy.hpp"
#include "sandbox/classify.hpp"

#include <cstdio>
#include <string>
#include <vector>

namespace airlock::cli {

namespace {

const char* k_policy_usage =
    "usage: airlock policy lint FILE...             check policy files; every problem as\n"
    "                                                 file: /json/pointer: message\n"
    "       airlock policy show [--policy P]... [--json]\n"
    "                                               the effective policy and where each\n"
    "                                                 value came from\n"
    "       airlock policy diff A B                 what B loosens and tightens relative to A\n"
    "\n"
    "P and A, B are preset names (strict, standard, permissive) or .json files.\n"
    "Exit codes: lint 0 clean, 2 problems; diff 0 nothing loosened, 1 B loosens A, 2 bad input.\n";

void print_problems(const std::vector<policy::Problem>& ps) {
    for (const auto& p : ps)
        std::fprintf(stderr, "%s\n", p.str().c_str());
}

// Problems that parse cleanly but cannot be what the author meant.
std::vector<policy::Problem> semantic_problems(const policy::Policy& p, const std::string& file) {
    std::vector<policy::Problem> out;
    const auto allow = p.strings("network/allow");
    const auto deny = p.strings("network/deny");
    for (std::size_t i = 0; i < allow.size(); ++i) {
        if (p.origin("network/allow") != file) break;
        auto a = policy::parse_host_rule(allow[i]);
        for (const auto& d : deny) {
            auto r = policy::parse_host_rule(d);
            if (a && r && policy::host_rule_covers(*r, *a))
                out.push_back({file, "/network/allow/" + std::to_string(i),
                               "\"" + allow[i] + "\" is denied by \"" + d +
                                   "\" (deny wins), so it can never match; remove one"});
        }
    }
    return out;
}

int lint(const std::vector<std::string>& files) {
    if (files.empty()) {
        std::fputs(k_policy_usage, stderr);
        return sandbox::exit_code::usage;
    }
    int problems = 0;
    for (const auto& f : files) {
        auto r = policy::load_all({f});
        if (auto* ps = std::get_if<std::vector<policy::Problem>>(&r)) {
            print_problems(*ps);
            problems += static_cast<int>(ps->size());
            continue;
        }
        auto extra = semantic_problems(std::get<policy::Policy>(r), f);
        print_problems(extra);
        problems += static_cast<int>(extra.size());
        if (extra.empty()) std::printf("%s: ok\n", f.c_str());
    }
    return problems ? sandbox::exit_code::usage : 0;
}

int show(const std::vector<std::string>& args) {
    std::vector<std::string> specs;
    bool as_json = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--json") {
            as_json = true;
        } else if (args[i] == "--policy" && i + 1 < args.size()) {
            specs.push_back(args[++i]);
        } else if (args[i].rfind("--policy=", 0) == 0) {
            specs.push_back(args[i].substr(9));
        } else {
            std::fprintf(stderr, "airlock policy show: unexpected \"%s\"\n%s", args[i].c_str(),
                         k_policy_usage);
            return sandbox::exit_code::usage;
        }
    }
    auto r = policy::load_all(specs);
    if (auto* ps = std::get_if<std::vector<policy::Problem>>(&r)) {
        print_problems(*ps);
        return sandbox::exit_code::usage;
    }
    const auto& p = std::get<policy::Policy>(r);
    if (as_json) {
        std::printf("%s\n", policy::to_json(p).dump(2).c_str());
        return 0;
    }
    std::printf("# effective policy: %s\n", p.describe().c_str());
    for (const auto& l : p.layers)
        if (l.source != "built-in")
            std::printf("# layer %s (sha256 %s)\n", l.source.c_str(), l.sha256.c_str());
    std::size_t width = 0;
    for (const auto& spec : policy::field_specs())
        width = std::max(width, spec.path.size());
    for (const auto& spec : policy::field_specs()) {
        std::string name(spec.path);
        for (auto& c : name)
            if (c == '/') c = '.';
        std::string line = name + std::string(width + 2 - name.size(), ' ') + "= " +
                           policy::format_value(spec, p.get(spec.path));
        std::printf("%s  (%s)\n", line.c_str(), p.origin(spec.path).c_str());
    }
    return 0;
}

int diff(const std::vector<std::string>& args) {
    if (args.size() != 2) {
        std::fputs(k_policy_usage, stderr);
        return sandbox::exit_code::usage;
    }
    auto a = policy::load_all({args[0]});
    auto b = policy::load_all({args[1]});
    bool bad = false;
    for (auto* r : {&a, &b})
        if (auto* ps = std::get_if<std::vector<policy::Problem>>(r)) {
            print_problems(*ps);
            bad = true;
        }
    if (bad) return sandbox::exit_code::usage;
    auto changes = policy::diff(std::get<policy::Policy>(a), std::get<policy::Policy>(b));
    bool loosens = false;
    for (auto d :
         {policy::Direction::loosens, policy::Direction::tightens, policy::Direction::changes}) {
        for (const auto& c : changes) {
            if (c.direction != d) continue;
            std::string name = c.path;
            for (auto& ch : name)
                if (ch == '/') ch = '.';
            const char* word = d == policy::Direction::loosens    ? "loosens"
                               : d == policy::Direction::tightens ? "tightens"
                                                                  : "changes";
            loosens = loosens || d == policy::Direction::loosens;
            if (c.list)
                std::printf("%-8s %s: %s%s%s\n", word, name.c_str(), c.from.c_str(),
                            c.from.empty() || c.to.empty() ? "" : ", ", c.to.c_str());
            else
                std::printf("%-8s %s: %s -> %s\n", word, name.c_str(), c.from.c_str(),
                            c.to.c_str());
        }
    }
    if (changes.empty()) std::printf("no differences\n");
    return loosens ? 1 : 0;
}

} // namespace

int policy_command(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::fputs(k_policy_usage, args.empty() ? stderr : stdout);
        return args.empty() ? sandbox::exit_code::usage : 0;
    }
    const std::string sub = args[0];
    args.erase(args.begin());
    if (sub == "lint") return lint(args);
    if (sub == "show") return show(args);
    if (sub == "diff") return diff(args);
    std::fprintf(stderr, "airlock policy: unknown subcommand \"%s\" (lint, show or diff)\n",
                 sub.c_str());
    return sandbox::exit_code::usage;
}

} // namespace airlock::cli
