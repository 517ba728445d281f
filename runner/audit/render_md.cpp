#include "audit/render.hpp"

#include "audit/render_detail.hpp"

#include <cinttypes>
#include <cstdio>

namespace airlock::audit {

using detail::at;
using detail::text;
using nlohmann::json;

namespace {

constexpr std::size_t k_cell_max = 1000;         // bytes of one table cell
constexpr std::size_t k_message_max = 64 * 1024; // bytes of one violation message
constexpr std::size_t k_violations_shown = 20;

// Cuts at a UTF-8 boundary, marking the cut.
std::string clip(std::string s, std::size_t max) {
    if (s.size() <= max) return s;
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
        --n;
    s.resize(n);
    return s + "…";
}

// Text from the report, made inert for GitHub-flavoured Markdown: no HTML, no table breaks, no
// code spans, links or emphasis; newlines become <br>; other control characters are dropped.
std::string md(const std::string& raw, std::size_t max = k_cell_max) {
    const std::string s = clip(to_valid_utf8(raw), max);
    std::string out;
    out.reserve(s.size() + 16);
    for (char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '\n':
            out += "<br>";
            break;
        case '|':
        case '`':
        case '\\':
        case '[':
        case ']':
        case '*':
        case '_':
        case '~':
        case '#':
        case '!':
            out += '\\';
            out += c;
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20 && c != '\t') break;
            if (c == '\x7f') break;
            out += c == '\t' ? ' ' : c;
        }
    }
    return out;
}

std::int64_t num(const json& j) {
    if (j.is_number_integer()) return j.get<std::int64_t>();
    if (j.is_number_unsigned()) return static_cast<std::int64_t>(j.get<std::uint64_t>());
    return 0;
}

std::string bytes(std::int64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[48];
    if (u == 0)
        std::snprintf(buf, sizeof buf, "%" PRId64 " B", b);
    else
        std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
    return buf;
}

std::string duration(std::int64_t ms) {
    char buf[48];
    if (ms < 1000)
        std::snprintf(buf, sizeof buf, "%" PRId64 " ms", ms);
    else if (ms < 120000)
        std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000);
    else
        std::snprintf(buf, sizeof buf, "%" PRId64 " min %" PRId64 " s", ms / 60000, ms / 1000 % 60);
    return buf;
}

void row(std::string& out, const char* key, const std::string& value_md) {
    out += "| ";
    out += key;
    out += " | ";
    out += value_md.empty() ? "–" : value_md;
    out += " |\n";
}

std::string joined_command(const json& command) {
    std::string s;
    for (const auto& a : command) {
        if (!s.empty()) s += ' ';
        const std::string arg = text(a);
        s += arg.find_first_of(" \t\n'\"") == std::string::npos ? arg : "'" + arg + "'";
    }
    return s;
}

void facts(std::string& out, const json& r) {
    out += "| | |\n| --- | --- |\n";
    std::string image = text(at(r, {"image", "reference"}));
    const std::string id = text(at(r, {"image", "id"}));
    if (!id.empty()) image += " (" + id.substr(0, 19) + ")";
    row(out, "image", md(image));
    row(out, "command", md(joined_command(at(r, {"command"}))));
    const json& result = at(r, {"result"});
    std::string outcome = text(at(result, {"outcome"}));
    const std::string why = text(at(result, {"description"})) + text(at(result, {"message"}));
    if (!why.empty()) outcome += ": " + why;
    row(out, "outcome", md(outcome));
    std::string exit = text(at(result, {"exit_code"}));
    if (!at(result, {"status_code"}).is_null())
        exit += " (task status " + text(at(result, {"status_code"})) + ")";
    row(out, "exit code", md(exit));
    row(out, "duration",
        md(duration(num(at(r, {"duration_ms"}))) + " (task " +
           duration(num(at(r, {"task_duration_ms"}))) + ")"));
    const json& res = at(r, {"resources"});
    if (num(at(res, {"samples"})) > 0) {
        row(out, "memory peak", md(bytes(num(at(res, {"memory_peak_bytes"})))));
        row(out, "pids peak", md(text(at(res, {"pids_peak"}))));
        row(out, "CPU time", md(duration(num(at(res, {"cpu_ns"})) / 1000000)));
    } else {
        row(out, "resources", "not sampled (the task ended before the first sample at 1 s)");
    }
    const json& net = at(r, {"network"});
    std::string network = text(at(net, {"mode"}));
    if (const json& s = at(net, {"summary"}); s.is_object())
        network += ": " + std::to_string(num(at(s, {"decisions"}))) + " decisions, " +
                   std::to_string(num(at(s, {"allowed"}))) + " allowed, " +
                   std::to_string(num(at(s, {"denied"}))) + " denied, " +
                   std::to_string(num(at(s, {"cut"}))) + " cut";
    row(out, "network", md(network));
    const json& ch = at(r, {"changes"});
    row(out, "changes",
        md(std::to_string(num(at(ch, {"added"}))) + " added, " +
           std::to_string(num(at(ch, {"modified"}))) + " modified, " +
           std::to_string(num(at(ch, {"deleted"}))) + " deleted (" + bytes(num(at(ch, {"bytes"}))) +
           ")"));
    if (const json& ci = at(r, {"ci"}); ci.is_object()) {
        std::string where = text(at(ci, {"provider"})) + " " + text(at(ci, {"repository"}));
        if (const std::string c = text(at(ci, {"commit"})); !c.empty())
            where += " @ " + c.substr(0, 12);
        if (const std::string ref = text(at(ci, {"ref"})); !ref.empty()) where += " (" + ref + ")";
        row(out, "CI", md(where));
        if (const std::string url = text(at(ci, {"url"})); !url.empty())
            row(out, "CI run", md(url));
    }
}

void failed_checks(std::string& out, const json& checks) {
    std::string rows, ask;
    std::size_t n = 0, n_ask = 0;
    for (const auto& c : checks) {
        const std::string row =
            "| " + md(text(at(c, {"id"}))) + " | " + md(text(at(c, {"message"}))) + " |\n";
        if (at(c, {"status"}) == "fail") {
            ++n;
            rows += row;
        } else if (at(c, {"status"}) == "needs_approval") {
            ++n_ask;
            ask += row;
        }
    }
    if (n == 0 && n_ask == 0) {
        out += "\nEvery enforced gate check passed.\n";
        return;
    }
    if (n)
        out += "\n### Failed checks (" + std::to_string(n) +
               ")\n\n| check | message |\n| --- | --- |\n" + rows;
    if (n_ask)
        out += "\n### Needs an approval (" + std::to_string(n_ask) +
               ")\n\n| check | message |\n| --- | --- |\n" + ask +
               "\nAn approver signs one with `airlock approve --for-report OUT` "
               "(docs/approvals.md); `airlock gate OUT --approvals FILE` then passes.\n";
}

void violations(std::string& out, const json& list) {
    if (!list.is_array() || list.empty()) return;
    out += "\n### Violations (";
    out += list.size() > k_violations_shown ? "first " + std::to_string(k_violations_shown) + " of "
                                            : std::string();
    out += std::to_string(list.size()) + ")\n\n";
    std::size_t shown = 0;
    for (const auto& v : list) {
        if (shown++ == k_violations_shown) break;
        out += std::to_string(shown) + ". **" + md(text(at(v, {"severity"}))) + "** " +
               md(text(at(v, {"rule"})));
        if (const json& p = at(v, {"location", "path"}); p.is_string())
            out += " (" + md(p.get<std::string>()) + ")";
        out += ": " + md(text(at(v, {"message"})), k_message_max) + "\n";
    }
}

void cis_failures(std::string& out, const json& cis) {
    std::string rows;
    for (const auto& c : at(cis, {"checks"}))
        if (at(c, {"status"}) == "fail")
            rows += "| " + md(text(at(c, {"id"}))) + " | " + md(text(at(c, {"title"}))) + " | " +
                    md(text(at(c, {"reason"}))) + " |\n";
    if (rows.empty()) return;
    out += "\n### " + md(text(at(cis, {"benchmark"})) + " " + text(at(cis, {"version"}))) +
           ": failed checks\n\n| id | title | reason |\n| --- | --- | --- |\n" + rows;
}

} // namespace

std::string render_markdown(const json& report, std::size_t max_bytes) {
    const json r = with_verdict(report);
    const bool passed = at(r, {"verdict", "passed"}) == true;
    const bool ask = at(r, {"verdict", "needs_approval"}) == true;
    std::string out = passed ? "## ✅ airlock: passed"
                      : ask  ? "## ✋ airlock: needs approval"
                             : "## ❌ airlock: failed";
    out += " · run " + md(text(at(r, {"run_id"}))) + "\n\n";
    facts(out, r);
    failed_checks(out, at(r, {"checks"}));
    violations(out, at(r, {"violations"}));
    cis_failures(out, at(r, {"cis"}));
    if (out.size() <= max_bytes) return out;
    const std::string note = "\n\n*airlock: summary cut at " +
                             bytes(static_cast<std::int64_t>(max_bytes)) +
                             "; see report.json for the rest.*\n";
    if (max_bytes < note.size()) return {};
    std::size_t cut = out.rfind('\n', max_bytes - note.size());
    if (cut == std::string::npos) cut = 0;
    out.resize(cut);
    return out + note;
}

} // namespace airlock::audit
