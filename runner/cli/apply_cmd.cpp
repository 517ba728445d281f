// `airlock apply OUT [--workspace DIR] [--pubkey FILE] [--policy P]... [--force]`: applies a
// run's changes.patch to the checkout, only when the gate passes (or --force, recorded).
#include "audit/gate.hpp"
#include "audit/report.hpp"
#include "cli/gate_options.hpp"
#include "cli/main.hpp"
#include "sandbox/patch.hpp"
#include "util/read_limited.hpp"
#include "util/sha256.hpp"

#include <cxxopts.hpp>

#include <cstdio>
#include <fstream>

namespace airlock::cli {

namespace {

int unusable(const std::string& message) {
    std::fprintf(stderr, "airlock apply: %s\n", message.c_str());
    return 2;
}

} // namespace

int apply_command(int argc, char** argv) {
    cxxopts::Options o("airlock apply",
                       "Apply a run's changes (OUT/changes.patch) to the checkout, only when "
                       "`airlock gate` passes with the same options; --force applies anyway and "
                       "records it in DIR/.airlock/applied.jsonl. See docs/gate.md.");
    o.add_options()("workspace", "the checkout (default: the workspace the run recorded)",
                    cxxopts::value<std::string>(),
                    "DIR")("policy", "the policy the run must have had (repeatable)",
                           cxxopts::value<std::vector<std::string>>(), "P")(
        "pubkey", "public key (PEM) the run must be signed with", cxxopts::value<std::string>(),
        "FILE")("approvals", "a signed approval for this report (airlock approve; repeatable)",
                cxxopts::value<std::vector<std::string>>(), "FILE")(
        "force", "apply even when the gate fails (recorded)")("h,help", "show this help")(
        "out", "the run's output directory", cxxopts::value<std::vector<std::string>>());
    o.parse_positional({"out"});
    o.positional_help("OUT");
    cxxopts::ParseResult res;
    try {
        res = o.parse(argc, argv);
    } catch (const std::exception& e) {
        return unusable(std::string(e.what()) + " (try: airlock apply --help)");
    }
    if (res.count("help")) {
        std::fputs(o.help({""}).c_str(), stdout);
        return 0;
    }
    if (res.count("out") != 1 || res["out"].as<std::vector<std::string>>().size() != 1)
        return unusable("give exactly one output directory: airlock apply OUT [--workspace DIR]");
    auto parsed = gate_options(res);
    if (!parsed) return unusable(parsed.error().message);
    const audit::GateOptions& options = *parsed;
    auto gate = audit::run_gate(options);
    if (!gate) return unusable(gate.error().message);
    std::string report_text;
    if (util::read_limited(options.out / "report.json", 256u << 20, report_text) !=
        util::ReadStatus::ok)
        return unusable((options.out / "report.json").string() + ": cannot be read");
    const auto report = nlohmann::json::parse(report_text, nullptr, false);
    const nlohmann::json patch =
        report.is_object() && report.contains("changes") && report["changes"].is_object()
            ? report["changes"].value("patch", nlohmann::json())
            : nlohmann::json();
    if (!patch.is_object() || patch.value("written", false) != true)
        return unusable("the run wrote no changes.patch (no changes, bind-rw mode, or git was "
                        "missing); nothing to apply");
    std::filesystem::path workspace =
        res.count("workspace") ? std::filesystem::path(res["workspace"].as<std::string>())
        : report.contains("workspace")
            ? std::filesystem::path(report["workspace"].value("path", std::string()))
            : std::filesystem::path();
    if (workspace.empty() || !std::filesystem::is_directory(workspace))
        return unusable("workspace \"" + workspace.string() +
                        "\" is not a directory (pass --workspace DIR)");
    // The patch must be the one report.json records: --force overrides the gate's verdict, never
    // a patch changed after the run.
    const std::filesystem::path patch_file = options.out / "changes.patch";
    const auto digest = util::sha256_file(patch_file);
    if (!digest)
        return unusable(patch_file.string() +
                        ": missing or unreadable, but report.json records a patch");
    const nlohmann::json& recorded = patch.contains("sha256") ? patch["sha256"] : nlohmann::json();
    if (!recorded.is_string() || recorded.get<std::string>() != digest->sha256) {
        std::fprintf(stderr,
                     "airlock apply: %s: sha256 %s is not the %s that report.json records "
                     "(changed after the run); nothing was applied, and --force does not "
                     "override this\n",
                     patch_file.c_str(), digest->sha256.c_str(), recorded.dump().c_str());
        return 1;
    }
    const bool force = res.count("force") > 0;
    if (!gate->passed()) {
        std::fputs(audit::format_checks(*gate).c_str(), stderr);
        if (!force) {
            const int code = gate->exit_code();
            std::fprintf(stderr,
                         "airlock apply: the gate %s; nothing was applied (--force "
                         "applies anyway, and records that it did)\n",
                         code == audit::gate_exit::needs_approval ? "needs an approval (give "
                                                                    "--approvals FILE)"
                         : code == audit::gate_exit::unusable     ? "could not read its input"
                                                                  : "fails");
            return code == audit::gate_exit::unusable ? audit::gate_exit::unusable : 1;
        }
    }
    if (auto r = sandbox::apply_changes_patch(workspace, patch_file); !r) {
        std::fprintf(stderr, "airlock apply: %s\n", r.error().message.c_str());
        return r.error().kind == util::ErrorKind::conflict ? 1 : 2;
    }
    // The record: who applied what, and whether the gate had said yes.
    std::error_code ec;
    std::filesystem::create_directories(workspace / ".airlock", ec);
    std::ofstream log(workspace / ".airlock" / "applied.jsonl", std::ios::app);
    nlohmann::json reasons = nlohmann::json::array();
    for (const auto& c : gate->checks)
        if (c.status != audit::CheckStatus::pass && c.status != audit::CheckStatus::skip)
            reasons.push_back(c.id + ": " + c.reason);
    log << nlohmann::json{{"time", audit::utc_now_rfc3339()},
                          {"run_id", report.value("run_id", "")},
                          {"out", std::filesystem::absolute(options.out).string()},
                          {"patch_sha256", digest->sha256},
                          {"gate_passed", gate->passed()},
                          {"forced", force && !gate->passed()},
                          {"approvals", gate->approvals.value("consumed", nlohmann::json::array())},
                          {"failed_checks", reasons}}
               .dump()
        << "\n";
    std::fprintf(stderr, "airlock apply: applied %s to %s%s\n", patch_file.c_str(),
                 workspace.c_str(),
                 gate->passed() ? "" : " (forced past a failing gate; recorded)");
    return 0;
}

} // namespace airlock::cli
