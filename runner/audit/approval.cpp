#include "audit/approval.hpp"

#include "audit/dsse.hpp"
#include "policy/capability.hpp"
#include "util/read_limited.hpp"

#include <cstdio>

namespace airlock::audit {

using nlohmann::json;
using util::ErrorKind;
using util::make_error;
using util::Result;

namespace {

constexpr std::time_t k_clock_skew = 300; // an approval issued up to 5 min "in the future" is ok

json scope_json(const ApprovalScope& s) {
    json j = json::object();
    if (s.repository) j["repository"] = *s.repository;
    if (s.commit) j["commit"] = *s.commit;
    if (s.run) j["run"] = *s.run;
    if (s.report_sha256) j["report_sha256"] = *s.report_sha256;
    return j;
}

std::string or_unknown(const std::optional<std::string>& v, const char* what) {
    return v ? "\"" + *v + "\"" : std::string("unknown (") + what + ")";
}

// The first reason the scope does not fit `use`, or nullopt.
std::optional<std::string> scope_mismatch(const json& scope, const ApprovalUse& use) {
    auto field = [&](const char* key) -> std::optional<std::string> {
        if (!scope.contains(key)) return std::nullopt;
        return scope[key].get<std::string>();
    };
    if (auto r = field("repository"); r && r != use.repository)
        return "bound to repository \"" + *r + "\", but " + use.where + "'s repository is " +
               or_unknown(use.repository, "no GITHUB_REPOSITORY or CI_PROJECT_PATH");
    if (auto c = field("commit"); c && c != use.commit)
        return "bound to commit " + *c + ", but " + use.where + "'s commit is " +
               or_unknown(use.commit, "no GITHUB_SHA or CI_COMMIT_SHA");
    if (auto r = field("run");
        r && std::find(use.runs.begin(), use.runs.end(), *r) == use.runs.end()) {
        std::string runs;
        for (const auto& x : use.runs)
            runs += (runs.empty() ? "" : ", ") + x;
        return "bound to run " + *r + ", but " + use.where + " is run " +
               (runs.empty() ? std::string("(unknown)") : runs) +
               " (an approval is not replayed "
               "for another run)";
    }
    if (auto d = field("report_sha256"); d) {
        if (!use.report_sha256)
            return "bound to the report with sha256 " + *d +
                   "; it is for `airlock gate` or `airlock apply` on that report, not for a run";
        if (*d != *use.report_sha256)
            return "bound to the report with sha256 " + *d + ", but " + use.where +
                   "'s report.json has sha256 " + *use.report_sha256 + " (another report)";
    }
    return std::nullopt;
}

} // namespace

std::string format_utc(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::optional<std::time_t> parse_utc(const std::string& text) {
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    char z = 0;
    int n = 0;
    if (text.size() != 20 ||
        std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &y, &mo, &d, &h, &mi, &s, &z,
                    &n) != 7 ||
        n != 20 || z != 'Z' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        s > 60 || y < 1970 || y > 9999)
        return std::nullopt;
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    const std::time_t t = timegm(&tm);
    if (format_utc(t) != text) return std::nullopt; // 31 February and the like
    return t;
}

json PresentedApproval::to_json() const {
    json j = {{"source", source}, {"valid", valid}};
    if (!id.empty()) j["id"] = id;
    if (!capabilities.empty()) j["capabilities"] = capabilities;
    if (!approver.empty()) j["approver"] = approver;
    if (!keyid.empty()) j["keyid"] = keyid;
    if (!scope.empty()) j["scope"] = scope;
    if (!expires_at.empty()) j["expires_at"] = expires_at;
    if (!reason.empty()) j["reason"] = reason;
    if (!valid) j["refusal"] = refusal;
    return j;
}

Result<std::string> make_approval(const ApprovalClaims& c, std::string_view private_pem,
                                  const std::string& key_name) {
    if (c.capabilities.empty())
        return make_error(ErrorKind::invalid_input, "an approval needs at least one --capability");
    for (const auto& cap : c.capabilities)
        if (auto why = policy::capability_problem(cap))
            return make_error(ErrorKind::invalid_input, "--capability \"" + cap + "\" " + *why);
    if (c.scope.empty())
        return make_error(ErrorKind::invalid_input,
                          "an approval must be bound: give --for-repo, --for-commit, --for-run "
                          "or --for-report");
    if (c.expires_at <= c.issued_at)
        return make_error(ErrorKind::invalid_input, "--expires must be in the future");
    json payload = {{"_type", k_approval_type},
                    {"id", c.id},
                    {"capabilities", c.capabilities},
                    {"scope", scope_json(c.scope)},
                    {"issued_at", format_utc(c.issued_at)},
                    {"expires_at", format_utc(c.expires_at)},
                    {"reason", c.reason}};
    return make_typed_envelope(k_approval_payload_type, payload.dump(), private_pem, key_name);
}

PresentedApproval check_approval(std::string_view text, const std::string& source,
                                 const json& approvers, const ApprovalUse& use) {
    PresentedApproval p;
    p.source = source;
    auto refuse = [&](std::string why) {
        p.valid = false;
        p.refusal = std::move(why);
        return p;
    };
    auto opened = open_envelope(text);
    if (!opened)
        return refuse("not a signed approval (" + opened.error().message +
                      "); make one with `airlock approve`");
    if (opened->payload_type != k_approval_payload_type)
        return refuse("not an approval: its payloadType is \"" + opened->payload_type +
                      "\", not \"" + std::string(k_approval_payload_type) + "\"");
    for (const auto& k : opened->keyids)
        p.keyid = p.keyid.empty() ? k : p.keyid;
    // Who signed it: an approver the policy lists, whose key verifies the signature.
    const json* signer = nullptr;
    const json* claimed = nullptr;
    std::string names;
    if (approvers.is_array())
        for (const auto& a : approvers) {
            names += (names.empty() ? "" : ", ") + a.value("name", "?");
            const std::string keyid = a.value("keyid", "");
            if (std::find(opened->keyids.begin(), opened->keyids.end(), keyid) !=
                opened->keyids.end())
                claimed = &a;
            if (!signer && envelope_verifies(text, a.value("public_key", ""))) signer = &a;
        }
    if (!signer) {
        if (!approvers.is_array() || approvers.empty())
            return refuse("the policy lists no approvers (approvals.approvers), so no signed "
                          "approval is accepted");
        if (claimed)
            return refuse("the signature does not verify with " + claimed->value("name", "?") +
                          "'s key (keyid " + claimed->value("keyid", "") +
                          "): the approval was changed after signing");
        return refuse("signed by keyid " +
                      (p.keyid.empty() ? std::string("(none given)") : p.keyid) +
                      ", which is not a key approvals.approvers lists (" + names + ")");
    }
    p.approver = signer->value("name", "");
    p.keyid = signer->value("keyid", "");
    const json claims = json::parse(opened->payload, nullptr, false);
    if (claims.is_discarded() || !claims.is_object() ||
        claims.value("_type", json()) != k_approval_type)
        return refuse("the signed payload is not an airlock approval v1");
    const auto str = [&](const char* key) -> std::optional<std::string> {
        if (!claims.contains(key) || !claims[key].is_string()) return std::nullopt;
        return claims[key].get<std::string>();
    };
    p.id = str("id").value_or("");
    p.reason = str("reason").value_or("");
    p.expires_at = str("expires_at").value_or("");
    const json& caps = claims.contains("capabilities") ? claims["capabilities"] : json();
    if (!caps.is_array() || caps.empty()) return refuse("the approval names no capabilities");
    for (const auto& c : caps) {
        if (!c.is_string() || policy::capability_problem(c.get<std::string>()))
            return refuse("the approval names a malformed capability " + c.dump());
        p.capabilities.push_back(c.get<std::string>());
    }
    const json& scope = claims.contains("scope") ? claims["scope"] : json();
    if (!scope.is_object() || scope.empty()) return refuse("the approval is not bound to a scope");
    for (auto it = scope.begin(); it != scope.end(); ++it) {
        const std::string& k = it.key();
        if ((k != "repository" && k != "commit" && k != "run" && k != "report_sha256") ||
            !it->is_string())
            return refuse("the approval's scope has an unknown or malformed field \"" + k + "\"");
    }
    p.scope = scope;
    const auto issued = parse_utc(str("issued_at").value_or(""));
    const auto expires = parse_utc(p.expires_at);
    if (!issued || !expires) return refuse("the approval's issued_at or expires_at is malformed");
    // The approver's own limits.
    const json& allowed = signer->contains("capabilities") ? (*signer)["capabilities"] : json();
    if (allowed.is_array())
        for (const auto& c : p.capabilities) {
            bool ok = false;
            std::string list;
            for (const auto& a : allowed) {
                ok = ok || policy::capability_pattern_covers(a.get<std::string>(), c);
                list += (list.empty() ? "" : ", ") + a.get<std::string>();
            }
            if (!ok)
                return refuse(p.approver + " may approve only " + list +
                              " (approvals.approvers), "
                              "not " +
                              c);
        }
    if (*expires <= use.now)
        return refuse("expired at " + p.expires_at + " (now " + format_utc(use.now) + ")");
    if (*issued > use.now + k_clock_skew)
        return refuse("issued at " + format_utc(*issued) + ", in the future (now " +
                      format_utc(use.now) + "): check the approver's clock");
    if (auto why = scope_mismatch(scope, use)) return refuse(*why);
    p.valid = true;
    return p;
}

Result<std::vector<PresentedApproval>> check_approval_files(const std::vector<std::string>& files,
                                                            const json& approvers,
                                                            const ApprovalUse& use) {
    std::vector<PresentedApproval> out;
    for (const auto& f : files) {
        std::string text;
        const auto st = util::read_limited(f, 64u << 10, text);
        if (st != util::ReadStatus::ok)
            return make_error(ErrorKind::invalid_input,
                              "--approvals " + f +
                                  (st == util::ReadStatus::too_large
                                       ? ": larger than 64 KiB (not an approval)"
                                       : ": cannot be read (give a file written by `airlock "
                                         "approve`)"));
        out.push_back(check_approval(text, f, approvers, use));
    }
    return out;
}

} // namespace airlock::audit
