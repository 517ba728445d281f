// Suggestions from run reports: only what the evidence asks for (refused and audited hosts, the
// allowlist mode after an audit, doubled time and memory), everything else as a note for a person.
#include "policy/suggest.hpp"

#include "policy/capability.hpp"
#include "policy/patterns.hpp"
#include "policy/policy.hpp"
#include "util/json_text.hpp"
#include "util/units.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <optional>

namespace airlock::policy {

using nlohmann::json;
using nlohmann::ordered_json;
using util::ErrorKind;
using util::make_error;

namespace {

// Bounds that keep doubling a report's numbers within what a policy file can say.
constexpr std::int64_t k_max_timeout_ms = 500'000'000'000; // doubled: 1e12 ms, parse_duration's
constexpr std::int64_t k_max_memory_bytes = std::int64_t{1} << 52; // doubled: 8 PiB
constexpr std::size_t k_max_text = 200;
constexpr std::size_t k_paths_shown = 3;

const json& at(const json& j, std::initializer_list<const char*> path) {
    return util::json_at(j, path);
}

// A string from a report, safe to print on one line: control characters replaced, length capped.
std::string clean(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, k_max_text)) {
        const auto u = static_cast<unsigned char>(c);
        out += u < 0x20 || u == 0x7f ? '?' : c;
    }
    if (s.size() > k_max_text) out += "...";
    return out;
}

std::string text_of(const json& v, std::string_view fallback = {}) {
    return v.is_string() && !v.get<std::string>().empty() ? clean(v.get<std::string>())
                                                          : std::string(fallback);
}

std::string dotted(std::string_view path) {
    std::string s(path);
    std::replace(s.begin(), s.end(), '/', '.');
    return s;
}

std::string in_quotes(const std::string& s) {
    return "\"" + s + "\"";
}

// A word a shell reads back as `s`: as it is when plain, else in single quotes.
std::string shell_word(const std::string& s) {
    if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789_./:@%+=-") == std::string::npos)
        return s;
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

std::string plural(std::int64_t n, const char* word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::optional<std::int64_t> whole(const json& v, std::int64_t lo, std::int64_t hi) {
    std::int64_t n = 0;
    if (v.is_number_unsigned()) {
        if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(hi)) return std::nullopt;
        n = static_cast<std::int64_t>(v.get<std::uint64_t>());
    } else if (v.is_number_integer()) {
        n = v.get<std::int64_t>();
    } else {
        return std::nullopt;
    }
    if (n < lo || n > hi) return std::nullopt;
    return n;
}

// An address rather than a name ("10.0.0.5", "[fd00::1]"): host rules cannot name those.
bool ip_literal(const std::string& host) {
    return host.find(':') != std::string::npos ||
           host.find_first_not_of("0123456789.") == std::string::npos;
}

std::vector<HostRule> host_rules(const json& list) {
    std::vector<HostRule> out;
    if (!list.is_array()) return out;
    for (const auto& e : list)
        if (e.is_string())
            if (auto r = parse_host_rule(e.get<std::string>())) out.push_back(*r);
    return out;
}

bool covered(const std::vector<HostRule>& rules, const HostRule& r) {
    for (const auto& o : rules)
        if (host_rule_covers(o, r)) return true;
    return false;
}

std::optional<std::string> first_covering(const json& list, const HostRule& r) {
    if (!list.is_array()) return std::nullopt;
    for (const auto& e : list)
        if (e.is_string())
            if (auto o = parse_host_rule(e.get<std::string>()); o && host_rule_covers(*o, r))
                return clean(e.get<std::string>());
    return std::nullopt;
}

// "run A", "runs A, B", "runs A, B, C and 2 more".
std::string runs_phrase(const std::vector<std::string>& runs) {
    std::string s = runs.size() == 1 ? "run " : "runs ";
    for (std::size_t i = 0; i < runs.size() && i < 3; ++i)
        s += (i ? ", " : "") + runs[i];
    if (runs.size() > 3) s += " and " + std::to_string(runs.size() - 3) + " more";
    return s;
}

// What the reports say about one host rule.
struct Evidence {
    std::vector<std::string> runs;
    std::int64_t audited = 0, refused = 0;
    std::string first_refused; // RFC 3339, so the smallest string is the earliest
    void seen_in(const std::string& run) {
        if (std::find(runs.begin(), runs.end(), run) == runs.end()) runs.push_back(run);
    }
    std::string why() const {
        std::string s = runs_phrase(runs);
        if (audited) s += ", " + plural(audited, "request") + " in audit mode";
        if (refused) {
            s += ", " + plural(refused, "request") + " refused";
            if (!first_refused.empty()) s += ", first at " + first_refused;
        }
        return s;
    }
};

// Notes that repeat per request are counted: "run R: TARGET: 3 requests TEXT".
class Counted {
public:
    void add(const std::string& target, const std::string& text, std::int64_t n = 1) {
        const auto key = std::make_pair(target, text);
        if (!m_counts.count(key)) m_order.push_back(key);
        m_counts[key] += n;
    }
    void flush(const std::string& run, std::vector<std::string>& notes) {
        for (const auto& key : m_order)
            notes.push_back("run " + run + ": " + key.first + ": " +
                            plural(m_counts[key], "request") + " " + key.second);
        m_order.clear();
        m_counts.clear();
    }

private:
    using Key = std::pair<std::string, std::string>;
    std::vector<Key> m_order;
    std::map<Key, std::int64_t> m_counts;
};

// "--allow-cidr 172.18.0.0/16)" in a private-address reason, when it names a valid CIDR.
std::string cidr_in(const json& reason) {
    if (!reason.is_string()) return {};
    const std::string r = reason.get<std::string>();
    static const std::string marker = "--allow-cidr ";
    auto pos = r.find(marker);
    if (pos == std::string::npos) return {};
    pos += marker.size();
    auto end = r.find_first_of(") ;,", pos);
    std::string c = r.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    return parse_cidr(c) ? c : std::string();
}

struct Reader {
    const json& base; // the first report's policy.values
    std::map<std::string, Evidence> allow;
    std::vector<std::string> notes;
    std::vector<std::string> audit_runs;

    void refusals(const json& report, const std::string& run) {
        const json& list = at(report, {"network", "summary", "refusals"});
        if (!list.is_array()) return;
        const json& rules = at(report, {"network", "rules", "allow"});
        const auto effective = host_rules(
            rules.is_array() ? rules : at(report, {"policy", "values", "network", "allow"}));
        const std::string budget = upload_budget(report);
        Counted counted;
        for (const auto& d : list) {
            if (!d.is_object() || at(d, {"endpoint"}).is_string()) continue; // credential endpoint
            const std::string decision = text_of(at(d, {"decision"}));
            const std::string rule = text_of(at(d, {"rule"}), "no rule recorded");
            const std::string host = text_of(at(d, {"host"}));
            const auto port = whole(at(d, {"port"}), 1, 65535);
            const std::string target =
                host.empty() ? "an unnamed host" : host + (port ? ":" + std::to_string(*port) : "");
            if (rule == "upload budget") {
                counted.add(host.empty() ? "an unnamed host" : host,
                            std::string(decision == "cut" ? "cut" : "refused") +
                                " by the upload budget" + budget +
                                ": raise network.upload_budget if that upload is expected");
            } else if (decision == "cut") {
                counted.add(target, "cut (" + rule +
                                        (rule == "sni mismatch"
                                             ? "): the client's TLS named another host than its "
                                               "CONNECT; not a policy matter"
                                             : "): not a policy matter"));
            } else if (rule.rfind("private address", 0) == 0) {
                const std::string cidr = cidr_in(at(d, {"reason"}));
                counted.add(target, "refused: " + host +
                                        " resolves to a private address; if that is intended, add "
                                        "its range to network.allow_cidrs" +
                                        (cidr.empty() ? "" : " (e.g. " + in_quotes(cidr) + ")") +
                                        ", which is never suggested automatically");
            } else if (rule.rfind("network.deny", 0) == 0) {
                counted.add(target, "refused by " + rule +
                                        " (deny wins over allow): narrow or remove that deny rule "
                                        "if the traffic is expected");
            } else if (rule.rfind("method ", 0) == 0) {
                counted.add(target, "refused for the plain-HTTP " + rule + ": add " +
                                        in_quotes(rule.substr(7)) +
                                        " to network.methods if that is expected");
            } else if (decision == "deny" && rule == "no allow rule") {
                candidate(host, port, run, effective, d, target, counted);
            } else {
                counted.add(target, "refused (" + rule + "): not about the allow list");
            }
        }
        counted.flush(run, notes);
    }

    void audited(const json& report, const std::string& run) {
        audit_runs.push_back(run);
        const json& hosts = at(report, {"network", "summary", "hosts"});
        if (!hosts.is_array()) return;
        const json& rules = at(report, {"network", "rules", "allow"});
        const auto effective = host_rules(
            rules.is_array() ? rules : at(report, {"policy", "values", "network", "allow"}));
        Counted counted;
        for (const auto& h : hosts) {
            if (!h.is_object()) continue;
            const std::string host = text_of(at(h, {"host"}));
            const auto port = whole(at(h, {"port"}), 1, 65535);
            const auto requests = whole(at(h, {"requests"}), 1, std::int64_t{1} << 40).value_or(1);
            const std::string target =
                host.empty() ? "an unnamed host" : host + (port ? ":" + std::to_string(*port) : "");
            if (host.empty() || !port) {
                counted.add(target, "in audit mode, with no usable host and port in the report",
                            requests);
                continue;
            }
            if (ip_literal(host)) {
                counted.add(target,
                            "in audit mode to an address: host rules name hosts, not addresses; "
                            "reach it by a name",
                            requests);
                continue;
            }
            auto rule = valid_rule(host, *port);
            if (!rule) {
                counted.add(target, "in audit mode, but no valid host rule names it", requests);
                continue;
            }
            auto parsed = parse_host_rule(*rule);
            if (skip(*parsed, *rule, effective, counted, requests)) continue;
            Evidence& e = allow[*rule];
            e.seen_in(run);
            e.audited += requests;
        }
        counted.flush(run, notes);
    }

private:
    std::string upload_budget(const json& report) const {
        if (auto b = whole(at(report, {"network", "rules", "upload_budget_bytes"}), 1,
                           std::numeric_limits<std::int64_t>::max()))
            return " (" + format_value(*find_spec("network/upload_budget"), json(*b)) + ")";
        return {};
    }

    static std::optional<std::string> valid_rule(const std::string& host, std::int64_t port) {
        std::string lower;
        for (char c : host)
            lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower.find('*') != std::string::npos) return std::nullopt;
        std::string rule = lower + ":" + std::to_string(port);
        if (host_rule_problem(rule) || !parse_host_rule(rule)) return std::nullopt;
        return rule;
    }

    // True when the rule must not be suggested: the policy allows it already, the run's own rules
    // did (flags), or the policy's deny list refuses it anyway.
    bool skip(const HostRule& parsed, const std::string& rule,
              const std::vector<HostRule>& effective, Counted& counted, std::int64_t n) const {
        const json& base_allow = at(base, {"network", "allow"});
        if (base_allow.is_array() && covered(host_rules(base_allow), parsed)) return true;
        if (auto deny = first_covering(at(base, {"network", "deny"}), parsed)) {
            counted.add(rule,
                        "not suggested: network.deny " + in_quotes(*deny) +
                            " refuses it (deny wins over allow)",
                        n);
            return true;
        }
        if (covered(effective, parsed)) {
            counted.add(rule,
                        "allowed by the run's own rules (--allow or a task file), not by the "
                        "policy; add " +
                            in_quotes(rule) + " to network.allow to need neither",
                        n);
            return true;
        }
        return false;
    }

    void candidate(const std::string& host, std::optional<std::int64_t> port,
                   const std::string& run, const std::vector<HostRule>& effective, const json& d,
                   const std::string& target, Counted& counted) {
        if (host.empty() || !port) {
            counted.add(target, "refused, with no usable host and port in the report");
            return;
        }
        if (ip_literal(host)) {
            counted.add(target, "refused: host rules name hosts, not addresses; reach it by a name "
                                "(and network.allow_cidrs for a private range)");
            return;
        }
        auto rule = valid_rule(host, *port);
        if (!rule) {
            counted.add(target, "refused, but no valid host rule names it");
            return;
        }
        auto parsed = parse_host_rule(*rule);
        if (skip(*parsed, *rule, effective, counted, 1)) return;
        Evidence& e = allow[*rule];
        e.seen_in(run);
        ++e.refused;
        const std::string time = text_of(at(d, {"time"}));
        if (!time.empty() && (e.first_refused.empty() || time < e.first_refused))
            e.first_refused = time;
    }
};

bool flag(const json& report, const char* key, const char* outcome) {
    return at(report, {"result", key}) == true || at(report, {"result", "outcome"}) == outcome ||
           at(report, {"result", "task", "outcome"}) == outcome;
}

// One resource whose limit a run hit: timeout (timed out) or memory (OOM).
struct LimitKind {
    const char* name;     // "timeout", also the key in limits_origin and the flag
    const char* limits;   // "timeout_ms"
    const char* result;   // "timed_out"
    const char* outcome;  // "timeout"
    const char* happened; // "timed out"
    std::int64_t max_value;
};
constexpr LimitKind k_timeout{"timeout", "timeout_ms", "timed_out",
                              "timeout", "timed out",  k_max_timeout_ms};
constexpr LimitKind k_memory{
    "memory",          "memory_bytes", "oom_killed", "oom", "was killed for lack of memory",
    k_max_memory_bytes};

// A policy value as written ("30m", "2g", or a number) in canonical units, when it reads.
std::optional<std::int64_t> canonical(const LimitKind& k, const json& v) {
    if (v.is_number()) return whole(v, 1, std::numeric_limits<std::int64_t>::max());
    if (!v.is_string()) return std::nullopt;
    const std::string s = v.get<std::string>();
    if (std::string_view(k.name) == "timeout") {
        auto r = util::parse_duration(s, k.name);
        if (r) return r->count();
    } else {
        auto r = util::parse_size(s, k.name);
        if (r && *r <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            return static_cast<std::int64_t>(*r);
    }
    return std::nullopt;
}

void suggest_limit(const LimitKind& k, const std::vector<json>& reports,
                   const std::vector<std::string>& runs, const json& base, Suggestion& out) {
    const std::string def_path = "resources/" + std::string(k.name) + "/default";
    const std::string max_path = "resources/" + std::string(k.name) + "/max";
    const FieldSpec& def_spec = *find_spec(def_path);
    auto show = [&](std::int64_t v) { return format_value(def_spec, json(v)); };
    std::optional<std::int64_t> want_default, want_flag;
    std::vector<std::string> default_runs;
    for (std::size_t i = 0; i < reports.size(); ++i) {
        const json& r = reports[i];
        if (!flag(r, k.result, k.outcome)) continue;
        auto limit = whole(at(r, {"limits", k.limits}), 1, k.max_value);
        if (!limit) {
            out.notes.push_back("run " + runs[i] + " " + k.happened + " but its report has no " +
                                "usable limits." + k.limits + "; nothing suggested for it");
            continue;
        }
        const std::int64_t want = *limit * 2;
        const std::string origin = text_of(at(r, {"limits_origin", k.name}), "policy");
        if (origin.rfind("policy", 0) == 0 || origin == "default") { // a policy default set it
            want_default = std::max(want_default.value_or(0), want);
            default_runs.push_back(runs[i] + " " + k.happened + " at " + show(*limit));
        } else {
            want_flag = std::max(want_flag.value_or(0), want);
            out.notes.push_back("run " + runs[i] + " " + k.happened + " at " + show(*limit) +
                                ", set by " + origin + " rather than the policy: pass " +
                                show(want) +
                                " there instead (the policy's maximum is raised if it is lower)");
        }
    }
    const json& base_def = at(base, {"resources", k.name, "default"});
    const json& base_max = at(base, {"resources", k.name, "max"});
    const auto old_def = canonical(k, base_def);
    std::int64_t new_def = old_def.value_or(0);
    if (want_default && *want_default > new_def) {
        std::string why = default_runs.size() == 1 ? "run " : "runs ";
        for (std::size_t i = 0; i < default_runs.size(); ++i)
            why += (i ? "; " : "") + default_runs[i];
        out.changes.push_back({def_path, ChangeOp::set, show(*want_default),
                               old_def ? show(*old_def) : text_of(base_def, "unset"),
                               why + "; twice that"});
        new_def = *want_default;
    } else if (want_default) {
        out.notes.push_back("the policy's " + dotted(def_path) + " " + show(new_def) +
                            " is already at least twice what the runs that " + k.happened +
                            " had; they ran under another policy or limit");
    }
    const std::int64_t need_max = std::max(new_def, want_flag.value_or(0));
    const auto old_max = canonical(k, base_max);
    if ((want_default || want_flag) && old_max && *old_max < need_max)
        out.changes.push_back({max_path, ChangeOp::set, show(need_max), show(*old_max),
                               "so that " + show(need_max) + " is within the ceiling"});
}

// "/"-separated path into nested objects, made as needed.
ordered_json& slot(ordered_json& doc, std::string_view path) {
    ordered_json* cur = &doc;
    while (true) {
        auto slash = path.find('/');
        std::string key(path.substr(0, slash));
        if (!cur->is_object()) *cur = ordered_json::object();
        cur = &(*cur)[key];
        if (slash == std::string_view::npos) return *cur;
        path.remove_prefix(slash + 1);
    }
}

const json* lookup(const json& values, std::string_view path) {
    const json* cur = &values;
    while (true) {
        auto slash = path.find('/');
        std::string key(path.substr(0, slash));
        if (!cur->is_object()) return nullptr;
        auto it = cur->find(key);
        if (it == cur->end()) return nullptr;
        cur = &*it;
        if (slash == std::string_view::npos) return cur;
        path.remove_prefix(slash + 1);
    }
}

// to_json writes numbers as text ("1000" for min_uid); the document wants them back as numbers.
ordered_json as_written(const FieldSpec& spec, const json& v) {
    const bool whole_number = spec.kind == Kind::min_uid || spec.kind == Kind::count_default ||
                              spec.kind == Kind::count_max;
    if (whole_number && v.is_string()) {
        const std::string s = v.get<std::string>();
        if (!s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos)
            return std::stoll(s);
    }
    return ordered_json::parse(v.dump(-1, ' ', false, json::error_handler_t::replace));
}

} // namespace

std::string SuggestedChange::line() const {
    std::string s = dotted(path) + ": ";
    if (op == ChangeOp::add)
        s += "+ " + (value.is_string() ? in_quotes(value.get<std::string>()) : value.dump());
    else
        s += from + " -> " + (value.is_string() ? value.get<std::string>() : value.dump());
    return s + "  (" + why + ")";
}

std::string Suggestion::text() const {
    std::string s;
    for (const auto& c : changes)
        s += c.line() + "\n";
    if (changes.empty()) s += "no changes suggested\n";
    for (const auto& n : notes)
        s += "# note: " + n + "\n";
    return s;
}

Suggestion suggest(const std::vector<json>& reports, const std::vector<std::string>& out_dirs) {
    Suggestion out;
    for (std::size_t i = 0; i < reports.size(); ++i)
        out.runs.push_back(text_of(at(reports[i], {"run_id"}), i < out_dirs.size()
                                                                   ? clean(out_dirs[i])
                                                                   : "#" + std::to_string(i + 1)));
    static const json empty = json::object();
    const json& base = reports.empty() ? empty : at(reports.front(), {"policy", "values"});
    Reader reader{base, {}, {}, {}};
    for (std::size_t i = 0; i < reports.size(); ++i) {
        const json& r = reports[i];
        const std::string& run = out.runs[i];
        const std::string mode = text_of(at(r, {"network", "mode"}));
        reader.refusals(r, run);
        if (mode == "audit") reader.audited(r, run);
        const std::string outcome = text_of(at(r, {"result", "outcome"}));
        if (mode == "none" && !outcome.empty() && outcome != "success")
            reader.notes.push_back("run " + run + " (" + outcome +
                                   ") had no network, so nothing about hosts was recorded; if it "
                                   "needs the network, rerun it with --network audit and suggest "
                                   "from that run");
        const json& hits = at(r, {"protected_changes", "changes"});
        // Approved changes carry approved_by (each, or the whole section in older reports).
        if (hits.is_array() && at(r, {"protected_changes", "approved_by"}).is_null()) {
            std::map<std::string, std::vector<std::string>> by_pattern;
            for (const auto& h : hits)
                if (at(h, {"approved_by"}).is_null())
                    by_pattern[text_of(at(h, {"pattern"}), "?")].push_back(
                        text_of(at(h, {"path"}), "?"));
            const std::string dir = i < out_dirs.size() ? clean(out_dirs[i]) : "OUT";
            for (const auto& [pattern, paths] : by_pattern) {
                std::string listed;
                for (std::size_t p = 0; p < paths.size() && p < k_paths_shown; ++p)
                    listed += (p ? ", " : "") + paths[p];
                if (paths.size() > k_paths_shown)
                    listed += " and " + std::to_string(paths.size() - k_paths_shown) + " more";
                reader.notes.push_back("run " + run + " changed " + listed +
                                       " under the protected " + in_quotes(pattern) +
                                       ": that needs an approval, not a policy change: airlock "
                                       "approve --key KEY --for-report " +
                                       shell_word(dir) + " --capability " +
                                       shell_word("path:" + pattern));
            }
        }
    }
    for (const auto& [rule, evidence] : reader.allow) // std::map: sorted, no duplicates
        out.changes.push_back({"network/allow", ChangeOp::add, rule, {}, evidence.why()});
    if (!reader.audit_runs.empty()) {
        const std::string why = runs_phrase(reader.audit_runs) + " ran in audit mode";
        const json& modes = at(base, {"network", "modes"});
        if (!(modes.is_array() &&
              std::find(modes.begin(), modes.end(), "allowlist") != modes.end()))
            out.changes.push_back({"network/modes",
                                   ChangeOp::add,
                                   "allowlist",
                                   {},
                                   "so that network.default may be allowlist"});
        const std::string def = text_of(at(base, {"network", "default"}), "unset");
        if (def != "allowlist")
            out.changes.push_back({"network/default", ChangeOp::set, "allowlist", def,
                                   why + "; allowlist enforces the allow rules instead"});
        std::vector<std::string> required; // well-formed capability patterns only
        const json& listed = at(base, {"approvals", "required"});
        if (listed.is_array())
            for (const auto& e : listed)
                if (e.is_string() && !capability_problem(e.get<std::string>()))
                    required.push_back(e.get<std::string>());
        if (any_covers(required, "network.allowlist"))
            reader.notes.push_back("approvals.required covers network.allowlist, so runs in the "
                                   "allowlist mode still need an approval");
    }
    suggest_limit(k_timeout, reports, out.runs, base, out);
    suggest_limit(k_memory, reports, out.runs, base, out);
    out.notes.insert(out.notes.begin(), reader.notes.begin(), reader.notes.end());
    return out;
}

util::Result<ordered_json> suggested_policy(const json& first_report,
                                            const Suggestion& suggestion) {
    const json& values = at(first_report, {"policy", "values"});
    if (!values.is_object())
        return make_error(ErrorKind::invalid_input,
                          "the first report has no policy.values (its run stopped before the "
                          "policy was resolved); give a run that started first");
    std::string base;
    for (const auto& l : at(first_report, {"policy", "layers"}))
        if (auto src = text_of(at(l, {"source"})); !src.empty() && src != "built-in")
            base += (base.empty() ? "" : " + ") + src;
    ordered_json doc = ordered_json::object();
    doc["name"] = "suggested from " + runs_phrase(suggestion.runs);
    doc["description"] = "Written by `airlock policy suggest` from " +
                         runs_phrase(suggestion.runs) + ": the effective policy of run " +
                         (suggestion.runs.empty() ? std::string("?") : suggestion.runs.front()) +
                         (base.empty() ? "" : " (" + base + ")") + " with " +
                         plural(static_cast<std::int64_t>(suggestion.changes.size()), "change") +
                         ". Review it before use.";
    for (const auto& spec : field_specs()) {
        const json* v = lookup(values, spec.path);
        if (!v || v->is_null()) continue; // null is "no limit", which a file says by leaving out
        slot(doc, spec.path) = as_written(spec, *v);
    }
    for (const auto& c : suggestion.changes) {
        ordered_json& s = slot(doc, c.path);
        const ordered_json v =
            ordered_json::parse(c.value.dump(-1, ' ', false, json::error_handler_t::replace));
        if (c.op == ChangeOp::set) {
            s = v;
        } else {
            if (!s.is_array()) s = ordered_json::array();
            if (std::find(s.begin(), s.end(), v) == s.end()) s.push_back(v);
        }
    }
    // Checked the way `--policy FILE` loads it, so what gets written also loads.
    const std::string text = doc.dump(2, ' ', false, json::error_handler_t::replace);
    auto parsed = parse_document(text, "the suggested policy", ".");
    std::vector<Problem> problems;
    if (auto* ps = std::get_if<std::vector<Problem>>(&parsed)) {
        problems = *ps;
    } else {
        Policy p = builtin();
        problems = apply_layer(p, std::get<Document>(parsed));
    }
    if (!problems.empty()) {
        std::string msg;
        for (const auto& p : problems)
            msg += (msg.empty() ? "" : "; ") + p.str();
        return make_error(ErrorKind::invalid_input,
                          "the first report's policy.values do not make a valid policy (" + msg +
                              "); was the report edited, or written by another airlock version?");
    }
    return doc;
}

} // namespace airlock::policy
