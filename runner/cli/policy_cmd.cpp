// `airlock policy lint|show|diff|suggest`: the policy as a security team reads and reviews it.
#include "cli/main.hpp"

#include "policy/patterns.hpp"
#include "policy/policy.hpp"
#include "policy/suggest.hpp"
#include "sandbox/classify.hpp"
#include "util/json_text.hpp"
#include "util/read_limited.hpp"

#include <cstdio>
#include <filesystem>
#include <optional>
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
    "       airlock policy suggest OUT... [--write FILE]\n"
    "                                               the smallest policy change that would have\n"
    "                                                 let those runs pass; --write FILE also\n"
    "                                                 writes the first run's policy with it\n"
    "\n"
    "P and A, B are preset names (strict, standard, permissive) or .json files; OUT is a run's\n"
    "output directory (--out). See docs/suggest.md.\n"
    "Exit codes: lint 0 clean, 2 problems; diff 0 nothing loosened, 1 B loosens A, 2 bad input;\n"
    "suggest 0 suggestions printed (or none needed), 2 unusable input.\n";

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

constexpr std::size_t k_report_limit = 256u << 20;
constexpr const char* k_report_schema_prefix = "https://airlock.dev/schemas/report/";

int suggest_failed(const std::string& message) {
    std::fprintf(stderr, "airlock policy suggest: %s\n", message.c_str());
    return sandbox::exit_code::usage;
}

// OUT/report.json, or a message that names the file and the fix.
util::Result<nlohmann::json> read_report(const std::string& out) {
    using util::ErrorKind;
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(out, ec))
        return util::make_error(ErrorKind::not_found,
                                out + ": no such directory (give the --out directory of an "
                                      "airlock run, e.g. .airlock/runs/<run-id>)");
    const std::string file = (fs::path(out) / "report.json").string();
    std::string text;
    switch (util::read_limited(file, k_report_limit, text)) {
    case util::ReadStatus::unreadable:
        return util::make_error(ErrorKind::not_found,
                                file + ": cannot be read (airlock writes it when a run ends; is " +
                                    out + " a run's --out directory?)");
    case util::ReadStatus::too_large:
        return util::make_error(ErrorKind::invalid_input,
                                file + ": larger than 256 MiB, so not a report airlock wrote");
    case util::ReadStatus::ok:
        break;
    }
    auto parsed = util::parse_json_text(text, file);
    if (!parsed)
        return util::make_error(ErrorKind::invalid_input,
                                parsed.error().message +
                                    " (the file is damaged; rerun the task for a new report)");
    const nlohmann::json& schema = util::json_at(*parsed, {"schema"});
    if (!schema.is_string() || schema.get<std::string>().rfind(k_report_schema_prefix, 0) != 0)
        return util::make_error(ErrorKind::invalid_input,
                                file + ": not an airlock report (its \"schema\" is not " +
                                    k_report_schema_prefix + "...); give a run's report.json");
    return std::move(*parsed);
}

int suggest(const std::vector<std::string>& args) {
    std::vector<std::string> outs;
    std::optional<std::string> write;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--help" || args[i] == "-h") {
            std::fputs(k_policy_usage, stdout);
            return 0;
        } else if (args[i] == "--write" && i + 1 < args.size()) {
            write = args[++i];
        } else if (args[i].rfind("--write=", 0) == 0 && args[i].size() > 8) {
            write = args[i].substr(8);
        } else if (!args[i].empty() && args[i][0] == '-') {
            std::fprintf(stderr, "airlock policy suggest: unexpected \"%s\"\n%s", args[i].c_str(),
                         k_policy_usage);
            return sandbox::exit_code::usage;
        } else {
            outs.push_back(args[i]);
        }
    }
    if (outs.empty()) {
        std::fputs(k_policy_usage, stderr);
        return sandbox::exit_code::usage;
    }
    std::vector<nlohmann::json> reports;
    for (const auto& out : outs) {
        auto r = read_report(out);
        if (!r) return suggest_failed(r.error().message);
        reports.push_back(std::move(*r));
    }
    const policy::Suggestion s = policy::suggest(reports, outs);
    if (write) {
        std::error_code ec;
        if (std::filesystem::symlink_status(*write, ec).type() !=
            std::filesystem::file_type::not_found)
            return suggest_failed(*write + ": already exists, and suggest never overwrites a file "
                                           "(remove it or choose another name)");
        auto doc = policy::suggested_policy(reports.front(), s);
        if (!doc)
            return suggest_failed((std::filesystem::path(outs.front()) / "report.json").string() +
                                  ": " + doc.error().message);
        const std::string text =
            doc->dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        std::FILE* f = std::fopen(write->c_str(), "wx"); // "x": fails when the file appeared
        if (!f) return suggest_failed(*write + ": cannot be created (check the directory)");
        const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
        if (std::fclose(f) != 0 || !written) {
            std::filesystem::remove(*write, ec);
            return suggest_failed(*write + ": could not be written completely (disk full?)");
        }
    }
    std::fputs(s.text().c_str(), stdout);
    if (write)
        std::fprintf(stderr,
                     "airlock: wrote %s: run %s's policy with these changes; review it, check it "
                     "with `airlock policy lint %s`, use it with --policy %s\n",
                     write->c_str(), s.runs.front().c_str(), write->c_str(), write->c_str());
    return 0;
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
    if (sub == "suggest") return suggest(args);
    std::fprintf(stderr,
                 "airlock policy: unknown subcommand \"%s\" (lint, show, diff or suggest)\n",
                 sub.c_str());
    return sandbox::exit_code::usage;
}

} // namespace airlock::cli
