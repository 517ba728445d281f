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
                       "input, 3 needs approval (give --approvals). See docs/gate.md and "
                       "docs/approvals.md.");
    o.add_options()("policy", "the policy the run must have had (preset or file; repeatable)",
                    cxxopts::value<std::vector<std::string>>(), "P")(
        "pubkey", "public key (PEM) the report must be signed with", cxxopts::value<std::string>(),
        "FILE")("approvals", "a signed approval for this report (airlock approve; repeatable)",
                cxxopts::value<std::vector<std::string>>(),
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
                        "[--pubkey FILE] [--approvals FILE]... [--json]");

    auto options = gate_options(res);
    if (!options) return unusable(options.error().message);
    auto r = audit::run_gate(*options);
    if (!r) return unusable(r.error().message);
    const int code = r->exit_code();
    if (res.count("json")) {
        std::printf("%s\n", r->to_json().dump(2).c_str());
    } else {
        std::fputs(audit::format_checks(*r).c_str(), stdout);
        std::size_t failed = 0, ask = 0, bad = 0;
        for (const auto& c : r->checks) {
            failed += c.status == audit::CheckStatus::fail;
            ask += c.status == audit::CheckStatus::needs_approval;
            bad += c.status == audit::CheckStatus::unusable;
        }
        if (code == audit::gate_exit::unusable)
            std::printf("gate: UNUSABLE INPUT (%zu of %zu checks could not read their input, "
                        "BAD above; %zu failed)\n",
                        bad, r->checks.size(), failed);
        else if (code == audit::gate_exit::needs_approval)
            std::printf("gate: NEEDS APPROVAL (%zu of %zu checks need an approval; an approver "
                        "runs `airlock approve --key KEY --capability CAP --for-report %s --out "
                        "approval.json`, then give --approvals approval.json)\n",
                        ask, r->checks.size(), options->out.c_str());
        else
            std::printf("gate: %s (%zu of %zu checks failed)\n", code == 0 ? "pass" : "FAIL",
                        failed, r->checks.size());
    }
    return code;
}

} // namespace airlock::cli
