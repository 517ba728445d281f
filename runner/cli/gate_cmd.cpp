// `airlock gate OUT [--policy P]... [--pubkey FILE] [--json]`: may this run's result be merged?
#include "audit/gate.hpp"
#include "cli/gate_options.hpp"
#include "cli/main.hpp"

#include <cxxopts.hpp>

#include <cstdio>

namespace airlock::cli {

namespace {

int unusable(const std::string& message) {
    std::fprintf(stderr, "airlock gate: %s\n", message.c_str());
    return audit::gate_exit::unusable;
}

} // namespace

int gate_command(int argc, char** argv) {
    cxxopts::Options o("airlock gate",
                       "Check a run's output directory before merging its result: signature and "
                       "signed file digests (--pubkey), event chain, policy identity (--policy), "
                       "image, and the policy's gate rules. Exit 0 pass, 1 fail, 2 unusable "
                       "input, 3 needs approval (reserved). See docs/gate.md.");
    o.add_options()("policy", "the policy the run must have had (preset or file; repeatable)",
                    cxxopts::value<std::vector<std::string>>(), "P")(
        "pubkey", "public key (PEM) the report must be signed with", cxxopts::value<std::string>(),
        "FILE")("json", "print the checks as JSON")("h,help", "show this help")(
        "out", "the run's output directory", cxxopts::value<std::vector<std::string>>());
    o.parse_positional({"out"});
    o.positional_help("OUT");
    cxxopts::ParseResult res;
    try {
        res = o.parse(argc, argv);
    } catch (const std::exception& e) {
        return unusable(std::string(e.what()) + " (try: airlock gate --help)");
    }
    if (res.count("help")) {
        std::fputs(o.help({""}).c_str(), stdout);
        return 0;
    }
    if (res.count("out") != 1 || res["out"].as<std::vector<std::string>>().size() != 1)
        return unusable("give exactly one output directory: airlock gate OUT [--policy P]... "
                        "[--pubkey FILE] [--json]");

    auto options = gate_options(res["out"].as<std::vector<std::string>>().front(),
                                res.count("policy") ? res["policy"].as<std::vector<std::string>>()
                                                    : std::vector<std::string>{},
                                res.count("pubkey")
                                    ? std::optional<std::string>(res["pubkey"].as<std::string>())
                                    : std::nullopt);
    if (!options) return unusable(options.error().message);
    auto r = audit::run_gate(*options);
    if (!r) return unusable(r.error().message);
    const bool passed = r->passed();
    if (res.count("json")) {
        std::printf("%s\n", r->to_json().dump(2).c_str());
    } else {
        std::fputs(audit::format_checks(*r).c_str(), stdout);
        std::size_t failed = 0;
        for (const auto& c : r->checks)
            failed += c.status == audit::CheckStatus::fail;
        std::printf("gate: %s (%zu of %zu checks failed)\n", passed ? "pass" : "FAIL", failed,
                    r->checks.size());
    }
    return passed ? audit::gate_exit::pass : audit::gate_exit::fail;
}

} // namespace airlock::cli
