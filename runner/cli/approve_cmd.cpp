// `airlock approve --key KEY --capability CAP... --for-... [--expires D] [--reason T]`: a signed
// approval, bound to a repository, commit, run or report, that a policy's approvers can give
// ahead of time and CI can pass to `airlock run` or `airlock gate` (docs/approvals.md).
#include "audit/approval.hpp"
#include "cli/main.hpp"
#include "policy/capability.hpp"
#include "sandbox/classify.hpp"
#include "util/read_limited.hpp"
#include "util/sha256.hpp"
#include "util/units.hpp"

#include <cxxopts.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include <fcntl.h>
#include <unistd.h>

namespace airlock::cli {

namespace {

constexpr std::int64_t k_max_expiry_ms = 90ll * 24 * 3600 * 1000;

int usage_error(const std::string& message) {
    std::fprintf(stderr, "airlock approve: %s\n", message.c_str());
    return sandbox::exit_code::usage;
}

std::string random_id() {
    std::random_device rd;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
    return buf;
}

void list_capabilities() {
    for (const auto& k : policy::capability_kinds()) {
        std::string name(k.name);
        if (!k.argument.empty()) name += ":<" + std::string(k.argument) + ">";
        std::printf("%s\n    %s\n", name.c_str(), std::string(k.description).c_str());
    }
}

} // namespace

int approve_command(int argc, char** argv) {
    cxxopts::Options o(
        "airlock approve",
        "Sign an approval for capabilities a policy puts behind one. It is bound to a scope (at "
        "least one --for-...) and expires. Pass the file to `airlock run --approvals` or `airlock "
        "gate --approvals`. See docs/approvals.md.");
    o.add_options()("key", "the approver's private key (PREFIX.key from airlock keygen)",
                    cxxopts::value<std::string>(), "KEY")(
        "capability", "what is approved, e.g. network.open, path:.github/workflows/** (repeatable)",
        cxxopts::value<std::vector<std::string>>(),
        "CAP")("for-repo", "only for this repository (GITHUB_REPOSITORY / CI_PROJECT_PATH)",
               cxxopts::value<std::string>(),
               "REPO")("for-commit", "only for this commit", cxxopts::value<std::string>(), "SHA")(
        "for-run", "only for this CI run (GITHUB_RUN_ID / CI_PIPELINE_ID) or airlock run id",
        cxxopts::value<std::string>(), "RUN")(
        "for-report", "only for the report in this run output directory (its report.json digest)",
        cxxopts::value<std::string>(), "OUT")(
        "expires", "how long it is valid (default 24h, at most 90d)", cxxopts::value<std::string>(),
        "DURATION")("reason", "why (recorded with the approval)", cxxopts::value<std::string>(),
                    "TEXT")("out", "write the approval to FILE (never overwritten); default stdout",
                            cxxopts::value<std::string>(), "FILE")(
        "list", "list the capabilities that can be approved")("h,help", "show this help");
    cxxopts::ParseResult res;
    try {
        res = o.parse(argc, argv);
    } catch (const std::exception& e) {
        return usage_error(std::string(e.what()) + " (try: airlock approve --help)");
    }
    if (res.count("help")) {
        std::fputs(o.help().c_str(), stdout);
        return 0;
    }
    if (res.count("list")) {
        list_capabilities();
        return 0;
    }
    if (!res.unmatched().empty())
        return usage_error("unexpected \"" + res.unmatched().front() + "\"");
    if (!res.count("key"))
        return usage_error("give --key KEY, the approver's private key (airlock keygen)");
    if (!res.count("capability"))
        return usage_error("give --capability CAP (airlock approve --list shows them)");

    audit::ApprovalClaims claims;
    claims.id = random_id();
    for (const auto& c : res["capability"].as<std::vector<std::string>>()) {
        if (auto why = policy::capability_problem(c))
            return usage_error("--capability \"" + c + "\" " + *why);
        claims.capabilities.push_back(c);
    }
    if (res.count("for-repo")) claims.scope.repository = res["for-repo"].as<std::string>();
    if (res.count("for-commit")) claims.scope.commit = res["for-commit"].as<std::string>();
    if (res.count("for-run")) claims.scope.run = res["for-run"].as<std::string>();
    if (res.count("for-report")) {
        const std::filesystem::path report =
            std::filesystem::path(res["for-report"].as<std::string>()) / "report.json";
        std::string body;
        if (util::read_limited(report, 256u << 20, body) != util::ReadStatus::ok)
            return usage_error("--for-report: " + report.string() +
                               " cannot be read (give a run's output directory)");
        claims.scope.report_sha256 = util::sha256_hex(body);
    }
    for (const auto* v : {&claims.scope.repository, &claims.scope.commit, &claims.scope.run})
        if (*v && v->value().empty()) return usage_error("a --for-... value is empty");
    if (claims.scope.empty())
        return usage_error("an approval must be bound: give --for-repo REPO, --for-commit SHA, "
                           "--for-run RUN or --for-report OUT (or several)");
    std::int64_t expires_ms = 24ll * 3600 * 1000;
    if (res.count("expires")) {
        auto d = util::parse_duration(res["expires"].as<std::string>(), "--expires");
        if (!d || d->count() <= 0)
            return usage_error("--expires: \"" + res["expires"].as<std::string>() +
                               "\" is not a positive duration (use e.g. 2h, 7d)");
        expires_ms = d->count();
        if (expires_ms > k_max_expiry_ms)
            return usage_error("--expires: at most 90d (an approval should not outlive the "
                               "change it is for)");
    }
    claims.issued_at = std::time(nullptr);
    claims.expires_at = claims.issued_at + std::max<std::int64_t>(1, expires_ms / 1000);
    if (res.count("reason")) claims.reason = res["reason"].as<std::string>();

    const std::string key_file = res["key"].as<std::string>();
    std::string pem;
    if (util::read_limited(key_file, 64u << 10, pem) != util::ReadStatus::ok)
        return usage_error("--key " + key_file +
                           ": cannot be read (give the PREFIX.key that `airlock keygen` wrote)");
    auto envelope = audit::make_approval(claims, pem, key_file);
    if (!envelope) return usage_error(envelope.error().message);
    const std::string text = *envelope + "\n";
    if (!res.count("out")) {
        std::fputs(text.c_str(), stdout);
        return 0;
    }
    const std::string out = res["out"].as<std::string>();
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return usage_error("--out " + out + ": cannot create (" + std::strerror(errno) +
                           "); an approval file is never overwritten");
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    if (!ok) {
        ::unlink(out.c_str());
        return usage_error("--out " + out + ": write failed");
    }
    std::fprintf(stderr, "airlock approve: wrote %s (approval %s: %zu capabilit%s, expires %s)\n",
                 out.c_str(), claims.id.c_str(), claims.capabilities.size(),
                 claims.capabilities.size() == 1 ? "y" : "ies",
                 audit::format_utc(claims.expires_at).c_str());
    return 0;
}

} // namespace airlock::cli
