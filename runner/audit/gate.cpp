#include "audit/gate.hpp"

#include "util/json_text.hpp"

#include "audit/approval.hpp"
#include "audit/dsse.hpp"
#include "audit/events.hpp"
#include "audit/verdict.hpp"
#include "policy/capability.hpp"
#include "policy/patterns.hpp"
#include "util/json_text.hpp"
#include "util/read_limited.hpp"
#include "util/sha256.hpp"

#include <map>
#include <set>

namespace airlock::audit {

namespace fs = std::filesystem;
using nlohmann::json;
using util::ErrorKind;
using util::make_error;
using util::Result;

namespace {

const json& at(const json& j, std::initializer_list<const char*> path) {
    return util::json_at(j, path);
}

constexpr std::size_t k_report_limit = 256u << 20;
constexpr std::size_t k_envelope_limit = 256u << 20;
constexpr std::size_t k_events_limit = 1024u << 20;
constexpr std::size_t k_problems_shown = 5;

std::string text(const json& j) {
    return j.is_string() ? j.get<std::string>() : j.dump();
}

GateCheck check(std::string id, CheckStatus status, std::string reason) {
    return {std::move(id), status, std::move(reason)};
}

std::string joined(const std::vector<std::string>& problems) {
    std::string s =
        std::to_string(problems.size()) + (problems.size() == 1 ? " problem: " : " problems: ");
    for (std::size_t i = 0; i < problems.size() && i < k_problems_shown; ++i)
        s += (i ? "; " : "") + problems[i];
    if (problems.size() > k_problems_shown) s += "; ...";
    return s;
}

bool safe_name(const std::string& name) {
    if (name.empty() || name.front() == '/') return false;
    for (const auto& part : fs::path(name))
        if (part.empty() || part == "." || part == "..") return false;
    return true;
}

// (b) Every signed subject is there with the signed digest, and nothing else is.
GateCheck subjects_check(const fs::path& out, const json& report, const Verified& v) {
    std::vector<std::string> problems;
    std::map<std::string, std::string> signed_files;
    for (const auto& s : v.statement["subject"]) {
        const json& name = at(s, {"name"});
        const json& digest = at(s, {"digest", "sha256"});
        if (!name.is_string() || !digest.is_string() || !safe_name(name.get<std::string>())) {
            problems.push_back("a subject is malformed: " + s.dump());
            continue;
        }
        if (!signed_files.emplace(name.get<std::string>(), digest.get<std::string>()).second)
            problems.push_back(name.get<std::string>() + ": listed twice");
    }
    auto actual = output_subjects(out);
    if (!actual) return check("subjects", CheckStatus::fail, actual.error().message);
    std::set<std::string> present;
    for (const auto& s : *actual) {
        const std::string name = s["name"], digest = s["digest"]["sha256"];
        present.insert(name);
        auto it = signed_files.find(name);
        if (it == signed_files.end())
            problems.push_back(name + ": not in the signed statement (added after signing)");
        else if (it->second != digest)
            problems.push_back(name + ": sha256 " + digest + " differs from the signed " +
                               it->second + " (changed after signing)");
    }
    for (const auto& [name, digest] : signed_files)
        if (!present.count(name)) problems.push_back(name + ": signed but missing");
    for (const char* key : {"run_id"})
        if (at(v.statement, {"predicate", key}) != at(report, {key}))
            problems.push_back(std::string("the signed predicate's ") + key +
                               " is not report.json's");
    if (!problems.empty()) return check("subjects", CheckStatus::fail, joined(problems));
    return check("subjects", CheckStatus::pass,
                 std::to_string(present.size()) + " files match the signed statement");
}

// (c) The hash chain holds and ends where report.json says.
GateCheck events_check(const fs::path& out, const json& report) {
    const fs::path path = out / "events.jsonl";
    std::string body;
    const auto read = util::read_limited(path, k_events_limit, body);
    if (read != util::ReadStatus::ok)
        return check("events", CheckStatus::unusable,
                     path.string() + (read == util::ReadStatus::too_large
                                          ? ": larger than 1 GiB"
                                          : ": missing or unreadable (every run writes it)"));
    auto n = verify_event_chain(path);
    if (!n)
        return check("events",
                     n.error().kind == ErrorKind::invalid_input ? CheckStatus::unusable
                                                                : CheckStatus::fail,
                     n.error().message);
    if (!body.empty() && body.back() != '\n')
        return check("events", CheckStatus::fail,
                     path.string() + ": does not end with a newline (cut or appended to)");
    std::string last;
    if (!body.empty()) {
        const std::size_t start = body.rfind('\n', body.size() - 2);
        last = body.substr(start == std::string::npos ? 0 : start + 1);
        if (!last.empty()) last.pop_back();
    }
    const std::string digest = last.empty() ? std::string() : util::sha256_hex(last);
    const json& recorded = at(report, {"events", "last_digest"});
    if (!recorded.is_string())
        return check("events", CheckStatus::fail, "report.json has no events.last_digest");
    if (recorded != digest)
        return check("events", CheckStatus::fail,
                     path.string() + ": the last line's sha256 " + digest +
                         " is not report.json's events.last_digest " + text(recorded) +
                         " (lines added, removed or edited)");
    const json& count = at(report, {"events", "count"});
    if (count.is_number_unsigned() && count.get<std::uint64_t>() != *n)
        return check("events", CheckStatus::fail,
                     path.string() + ": " + std::to_string(*n) + " lines, report.json says " +
                         count.dump());
    return check("events", CheckStatus::pass,
                 std::to_string(*n) + " events, chain intact, last digest matches report.json");
}

// A problem with the file `name` under `out` that report.json records with `digest`: missing,
// not a regular file, or another SHA-256.
std::optional<std::string> recorded_file_problem(const fs::path& out, const std::string& name,
                                                 const json& digest) {
    std::error_code ec;
    if (!fs::is_regular_file(fs::symlink_status(out / name, ec)))
        return name + ": missing or not a regular file (report.json records it)";
    const auto d = util::sha256_file(out / name);
    if (!d) return name + ": unreadable";
    if (!digest.is_string() || d->sha256 != digest.get<std::string>())
        return name + ": sha256 " + d->sha256 + " differs from report.json's " + text(digest) +
               " (changed after the run)";
    return std::nullopt;
}

// Without a signature: changes/manifest.json is report.json's changes.files, every file under
// changes/files is a listed change with the listed digest (or was rewritten to hide a secret,
// secrets_redacted_in), and changes.patch has the digest changes.patch.sha256 records.
GateCheck changes_check(const fs::path& out, const json& report) {
    const json& listed = at(report, {"changes", "files"});
    const json& patch = at(report, {"changes", "patch"});
    const bool patch_recorded = at(patch, {"written"}) == true;
    std::error_code ec;
    const bool patch_present = fs::exists(fs::symlink_status(out / "changes.patch", ec));
    if (!listed.is_object() && !patch_recorded && !patch_present)
        return check("changes", CheckStatus::skip, "report.json records no changed files");
    std::vector<std::string> problems;
    if (patch_recorded) {
        if (auto p = recorded_file_problem(out, "changes.patch", at(patch, {"sha256"})))
            problems.push_back(*p);
    } else if (patch_present) {
        problems.push_back("changes.patch: present, but report.json records no patch");
    }
    std::size_t files = 0;
    if (listed.is_object()) {
        const fs::path manifest_path = out / "changes" / "manifest.json";
        std::string body;
        if (util::read_limited(manifest_path, k_report_limit, body) != util::ReadStatus::ok)
            problems.push_back(manifest_path.string() + ": missing or unreadable");
        else if (auto manifest = util::parse_json_text(body, manifest_path.string()); !manifest)
            problems.push_back(manifest.error().message);
        else if (*manifest != listed)
            problems.push_back(manifest_path.string() +
                               ": not the changes.files that report.json records");
        std::map<std::string, std::string> expected;
        for (const char* kind : {"added", "modified"})
            for (const auto& f : at(listed, {kind}))
                if (at(f, {"path"}).is_string() && at(f, {"sha256"}).is_string())
                    expected[f["path"].get<std::string>()] = f["sha256"].get<std::string>();
        std::set<std::string> rewritten;
        for (const auto& p : at(report, {"secrets_redacted_in"}))
            if (p.is_string()) rewritten.insert(p.get<std::string>());
        if (fs::exists(out / "changes" / "files", ec)) {
            auto present = output_subjects(out / "changes" / "files");
            if (!present) return check("changes", CheckStatus::fail, present.error().message);
            files = present->size();
            for (const auto& s : *present) {
                const std::string name = s["name"], digest = s["digest"]["sha256"];
                auto it = expected.find(name);
                if (it == expected.end())
                    problems.push_back("changes/files/" + name + ": not in the manifest");
                else if (it->second != digest && !rewritten.count(name))
                    problems.push_back("changes/files/" + name + ": sha256 " + digest +
                                       " differs from the manifest's " + it->second);
            }
        }
    }
    if (!problems.empty()) return check("changes", CheckStatus::fail, joined(problems));
    return check("changes", CheckStatus::pass,
                 std::to_string(files) +
                     " changed files match changes/manifest.json and report.json" +
                     (patch_recorded ? "; changes.patch has the recorded sha256" : ""));
}

// Without a signature: every file under artifacts/ is one report.json's artifacts.files lists,
// with the listed SHA-256, and every listed one is there.
GateCheck artifacts_check(const fs::path& out, const json& report) {
    const json& listed = at(report, {"artifacts", "files"});
    std::error_code ec;
    const bool dir_present = fs::exists(fs::symlink_status(out / "artifacts", ec));
    if (!listed.is_array() && !dir_present)
        return check("artifacts", CheckStatus::skip, "report.json records no artifacts");
    std::vector<std::string> problems;
    std::map<std::string, std::string> expected;
    for (const auto& f : listed) {
        if (!at(f, {"path"}).is_string() || !at(f, {"sha256"}).is_string() ||
            !safe_name(f["path"].get<std::string>())) {
            problems.push_back("report.json: an artifacts.files entry is malformed: " + f.dump());
            continue;
        }
        expected[f["path"].get<std::string>()] = f["sha256"].get<std::string>();
    }
    std::set<std::string> seen;
    if (dir_present) {
        auto present = output_subjects(out / "artifacts");
        if (!present) return check("artifacts", CheckStatus::fail, present.error().message);
        for (const auto& s : *present) {
            const std::string name = s["name"], digest = s["digest"]["sha256"];
            seen.insert(name);
            auto it = expected.find(name);
            if (it == expected.end())
                problems.push_back("artifacts/" + name +
                                   ": not among report.json's artifacts.files (added after the "
                                   "run)");
            else if (it->second != digest)
                problems.push_back("artifacts/" + name + ": sha256 " + digest +
                                   " differs from report.json's " + it->second +
                                   " (changed after the run)");
        }
    }
    for (const auto& [name, digest] : expected)
        if (!seen.count(name))
            problems.push_back("artifacts/" + name + ": listed in report.json but missing");
    if (!problems.empty()) return check("artifacts", CheckStatus::fail, joined(problems));
    return check("artifacts", CheckStatus::pass,
                 std::to_string(seen.size()) + " artifacts match report.json's artifacts.files");
}

// (d) Which policy the rules come from, and whether it is the run's.
GateCheck policy_check(const GateOptions& o, const json& report, json& values) {
    const json& recorded = at(report, {"policy", "sha256"});
    if (o.policy) {
        values = o.policy->values;
        if (!recorded.is_string())
            return check("policy", CheckStatus::fail,
                         "report.json records no policy.sha256, so the run's policy cannot be "
                         "compared with " +
                             o.policy->source);
        if (recorded != o.policy->sha256)
            return check("policy", CheckStatus::fail,
                         "the run's policy.sha256 " + text(recorded) + " is not " +
                             o.policy->sha256 + " of " + o.policy->source +
                             " (the run had another policy)");
        return check("policy", CheckStatus::pass,
                     "the run's policy is " + o.policy->source + " (sha256 " + o.policy->sha256 +
                         ")");
    }
    values = at(report, {"policy", "values"});
    if (!values.is_object())
        return check("policy", CheckStatus::fail,
                     "report.json records no policy.values; give --policy");
    const std::string digest = util::sha256_hex(values.dump());
    if (recorded != digest)
        return check("policy", CheckStatus::fail,
                     "report.json's policy.values hash to " + digest +
                         ", not to its policy.sha256 " + text(recorded) +
                         " (edited?); give --policy");
    return check("policy", CheckStatus::skip,
                 "no --policy: the rules below come from the policy recorded in report.json "
                 "(sha256 " +
                     digest + "); give --policy to hold the run to yours");
}

// (f) The image the run used is one the policy allows (as policy::enforce decides it).
GateCheck image_check(const json& report, const json& values) {
    const json& ref = at(report, {"image", "reference"});
    if (!ref.is_string())
        return check("image", CheckStatus::fail, "report.json has no image.reference");
    const std::string image = ref.get<std::string>();
    const json& allow = at(values, {"images", "allow"});
    bool listed = allow.is_null();
    std::string patterns;
    for (const auto& p : allow)
        if (p.is_string()) {
            if (policy::prefix_match(p.get<std::string>(), image)) listed = true;
            patterns += (patterns.empty() ? "" : ", ") + p.get<std::string>();
        }
    if (!listed)
        return check("image", CheckStatus::fail,
                     "\"" + image + "\" is not among images.allow (" + patterns + ")");
    if (at(values, {"images", "require_digest"}) == true &&
        image.find("@sha256:") == std::string::npos)
        return check("image", CheckStatus::fail,
                     "\"" + image + "\" is not pinned by digest (images.require_digest)");
    return check("image", CheckStatus::pass,
                 "\"" + image + "\" is allowed (" +
                     (allow.is_null() ? std::string("images.allow is not set") : patterns) + ")");
}

} // namespace

const char* to_string(CheckStatus s) {
    switch (s) {
    case CheckStatus::pass:
        return "PASS";
    case CheckStatus::fail:
        return "FAIL";
    case CheckStatus::skip:
        return "SKIP";
    case CheckStatus::needs_approval:
        return "ASK ";
    case CheckStatus::unusable:
        return "BAD ";
    }
    return "FAIL";
}

bool GateResult::passed() const {
    for (const auto& c : checks)
        if (c.status != CheckStatus::pass && c.status != CheckStatus::skip) return false;
    return true;
}

int GateResult::exit_code() const {
    bool fail = false, ask = false;
    for (const auto& c : checks) {
        if (c.status == CheckStatus::unusable) return gate_exit::unusable;
        fail = fail || c.status == CheckStatus::fail;
        ask = ask || c.status == CheckStatus::needs_approval;
    }
    return fail ? gate_exit::fail : ask ? gate_exit::needs_approval : gate_exit::pass;
}

json GateResult::to_json() const {
    json list = json::array();
    for (const auto& c : checks) {
        const std::string status = c.status == CheckStatus::pass       ? "pass"
                                   : c.status == CheckStatus::fail     ? "fail"
                                   : c.status == CheckStatus::skip     ? "skip"
                                   : c.status == CheckStatus::unusable ? "unusable"
                                                                       : "needs_approval";
        list.push_back({{"id", c.id}, {"status", status}, {"reason", c.reason}});
    }
    return {{"passed", passed()},
            {"exit_code", exit_code()},
            {"signed_by", signed_by},
            {"approvals", approvals},
            {"checks", list}};
}

std::string format_checks(const GateResult& result) {
    std::string out;
    for (const auto& c : result.checks)
        out += std::string(to_string(c.status)) + "  " + c.id + ": " + c.reason + "\n";
    for (const auto& p : result.approvals.value("presented", json::array()))
        if (!p.value("valid", false))
            out +=
                "REFUSED approval " + p.value("source", "") + ": " + p.value("refusal", "") + "\n";
    for (const auto& c : result.approvals.value("consumed", json::array()))
        out += "APPROVED " + c.value("capability", "") + " by " + c.value("approver", "") +
               " (approval " + c.value("approval_id", "") + ", " + c.value("source", "") + ")\n";
    return out;
}

Result<GateResult> run_gate(const GateOptions& o) {
    std::error_code ec;
    if (!fs::is_directory(o.out, ec))
        return make_error(ErrorKind::not_found,
                          o.out.string() + ": no such directory (give the output directory of a "
                                           "run, its --out)");
    const fs::path report_path = o.out / "report.json";
    std::string body;
    const auto status = util::read_limited(report_path, k_report_limit, body);
    if (status != util::ReadStatus::ok)
        return make_error(ErrorKind::invalid_input,
                          report_path.string() +
                              (status == util::ReadStatus::too_large
                                   ? ": larger than 256 MiB"
                                   : ": missing or unreadable (is this a run's --out directory? "
                                     "a run that stopped before its report cannot be gated)"));
    auto parsed = util::parse_json_text(body, report_path.string());
    if (!parsed) return parsed.error();
    const json& report = *parsed;
    if (!report.is_object())
        return make_error(ErrorKind::invalid_input,
                          report_path.string() + ": not a JSON object (not an airlock report)");

    GateResult r;
    // (a) signature, (b) subjects
    std::optional<Verified> verified;
    const fs::path env_path = o.out / k_envelope_file;
    std::string envelope;
    const bool env_present = fs::exists(fs::symlink_status(env_path, ec));
    const auto env_read = util::read_limited(env_path, k_envelope_limit, envelope);
    if (!o.public_key) {
        // Nothing to verify with, but an envelope that is there must at least be one.
        std::string malformed;
        if (env_read == util::ReadStatus::ok) {
            if (auto opened = open_envelope(envelope); !opened) malformed = opened.error().message;
        } else if (env_present) {
            malformed = "unreadable or larger than 256 MiB";
        }
        r.checks.push_back(
            malformed.empty()
                ? check("signature", CheckStatus::skip,
                        "no --pubkey given: the signature is not checked")
                : check("signature", CheckStatus::unusable, env_path.string() + ": " + malformed));
        r.checks.push_back(
            check("subjects", CheckStatus::skip,
                  "no verified signature: file contents are not checked against it"));
    } else {
        if (env_read != util::ReadStatus::ok) {
            r.checks.push_back(
                check("signature", CheckStatus::unusable,
                      env_path.string() + (env_present ? ": unreadable or larger than 256 MiB"
                                                       : ": missing (the run was not signed: give "
                                                         "`airlock run` --sign-key FILE)")));
        } else if (auto v = verify_envelope(envelope, *o.public_key); !v) {
            // A malformed envelope is unusable input; one that does not verify fails.
            r.checks.push_back(check("signature",
                                     v.error().kind == ErrorKind::invalid_input
                                         ? CheckStatus::unusable
                                         : CheckStatus::fail,
                                     env_path.string() + ": " + v.error().message));
        } else {
            verified = std::move(*v);
            r.signed_by = verified->keyid;
            r.checks.push_back(
                check("signature", CheckStatus::pass,
                      "verified with " + o.public_key_name + " (keyid " + verified->keyid + ")"));
        }
        if (verified)
            r.checks.push_back(subjects_check(o.out, report, *verified));
        else
            r.checks.push_back(check("subjects", CheckStatus::skip,
                                     "the envelope did not verify, so its subjects mean nothing"));
    }
    r.checks.push_back(events_check(o.out, report));
    if (verified) {
        r.checks.push_back(check("changes", CheckStatus::skip, "covered by the signed subjects"));
        r.checks.push_back(check("artifacts", CheckStatus::skip, "covered by the signed subjects"));
    } else {
        r.checks.push_back(changes_check(o.out, report));
        r.checks.push_back(artifacts_check(o.out, report));
    }
    json values;
    r.checks.push_back(policy_check(o, report, values));
    r.checks.push_back(image_check(report, values));
    // Approvals given to the gate, checked against the approvers of the policy the rules come
    // from and bound to this report (its digest, or its repository, commit or run).
    std::vector<std::string> approved;
    json presented = json::array(), consumed = json::array();
    std::vector<PresentedApproval> valid;
    if (!o.approval_files.empty()) {
        ApprovalUse use;
        const json& ci = at(report, {"ci"});
        if (at(ci, {"repository"}).is_string()) use.repository = at(ci, {"repository"});
        if (at(ci, {"commit"}).is_string()) use.commit = at(ci, {"commit"});
        for (const json* id : {&at(ci, {"run_id"}), &at(report, {"run_id"})})
            if (id->is_string()) use.runs.push_back(id->get<std::string>());
        use.report_sha256 = util::sha256_hex(body);
        use.now = o.now ? o.now : std::time(nullptr);
        use.where = "the report";
        auto checked =
            check_approval_files(o.approval_files, at(values, {"approvals", "approvers"}), use);
        if (!checked) return checked.error();
        for (auto& p : *checked) {
            presented.push_back(p.to_json());
            if (!p.valid) continue;
            approved.insert(approved.end(), p.capabilities.begin(), p.capabilities.end());
            valid.push_back(std::move(p));
        }
    }
    const json violations =
        report.contains("violations") ? report["violations"] : violations_of(report);
    for (const auto& v : violations) {
        const auto cap = approvable_capability(v);
        if (!cap) continue;
        for (const auto& p : valid)
            if (policy::any_covers(p.capabilities, *cap)) {
                consumed.push_back({{"capability", *cap},
                                    {"approval_id", p.id},
                                    {"approver", p.approver},
                                    {"source", p.source}});
                break;
            }
    }
    r.approvals = {{"presented", presented}, {"consumed", consumed}};
    // (e) the policy's gate rules
    for (const auto& c : gate_checks(report, values, r.signed_by, approved)) {
        const std::string st = c.value("status", "");
        const std::string message = c.value("message", "");
        if (st == "not_enforced")
            r.checks.push_back(check(c.value("id", ""), CheckStatus::skip,
                                     "not enforced by the policy: " + message));
        else
            r.checks.push_back(check(c.value("id", ""),
                                     st == "pass"             ? CheckStatus::pass
                                     : st == "needs_approval" ? CheckStatus::needs_approval
                                                              : CheckStatus::fail,
                                     message));
    }
    return r;
}

} // namespace airlock::audit
