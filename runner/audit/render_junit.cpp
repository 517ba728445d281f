#include "audit/render.hpp"

#include "audit/render_detail.hpp"

#include <cstdio>

namespace airlock::audit {

using detail::at;
using detail::text;
using nlohmann::json;

namespace {

enum class Place { content, attribute };

// Characters XML 1.0 allows, escaped: control characters other than tab and newline, C1
// controls, U+FFFE and U+FFFF are dropped; invalid UTF-8 becomes U+FFFD first.
std::string xml(const std::string& raw, Place place = Place::content) {
    const std::string s = to_valid_utf8(raw);
    std::string out;
    out.reserve(s.size() + 16);
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xA0) {
            ++i; // U+0080..U+009F
            continue;
        }
        if (c == 0xEF && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xBF &&
            static_cast<unsigned char>(s[i + 2]) >= 0xBE) {
            i += 2; // U+FFFE, U+FFFF
            continue;
        }
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
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&apos;";
            break;
        case '\n':
            out += place == Place::attribute ? "&#10;" : "\n";
            break;
        case '\t':
            out += place == Place::attribute ? "&#9;" : "\t";
            break;
        default:
            if (c < 0x20 || c == 0x7F) break;
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::string attr(const std::string& s) {
    return xml(s, Place::attribute);
}

struct Counts {
    std::size_t tests = 0, failures = 0, skipped = 0;
};

void testcase(std::string& out, Counts& n, const std::string& classname, const std::string& name,
              const std::string& status, const std::string& message) {
    ++n.tests;
    out += "    <testcase classname=\"" + attr(classname) + "\" name=\"" + attr(name) +
           "\" time=\"0\"";
    if (status == "fail" || status == "needs_approval") {
        ++n.failures;
        const std::string m = status == "fail" ? message : "needs approval: " + message;
        out += ">\n      <failure message=\"" + attr(m) + "\" type=\"" + attr(classname) + "\">" +
               xml(m) + "</failure>\n    </testcase>\n";
    } else if (status == "not_enforced" || status == "not_applicable") {
        ++n.skipped;
        out += ">\n      <skipped message=\"" + attr(status + ": " + message) +
               "\"/>\n    </testcase>\n";
    } else {
        out += "/>\n";
    }
}

} // namespace

std::string render_junit(const json& report) {
    const json r = with_verdict(report);
    std::string cases;
    Counts n;
    for (const auto& c : at(r, {"checks"}))
        testcase(cases, n, "airlock.gate", text(at(c, {"id"})), text(at(c, {"status"})),
                 text(at(c, {"message"})));
    const std::string cis = "airlock.cis " + text(at(r, {"cis", "version"}));
    for (const auto& c : at(r, {"cis", "checks"}))
        testcase(cases, n, cis, text(at(c, {"id"})) + " " + text(at(c, {"title"})),
                 text(at(c, {"status"})), text(at(c, {"reason"})));

    char seconds[32];
    const json& ms = at(r, {"duration_ms"});
    std::snprintf(seconds, sizeof seconds, "%.3f",
                  ms.is_number() ? ms.get<double>() / 1000.0 : 0.0);
    const std::string counts = " tests=\"" + std::to_string(n.tests) + "\" failures=\"" +
                               std::to_string(n.failures) + "\" errors=\"0\" skipped=\"" +
                               std::to_string(n.skipped) + "\" time=\"" + seconds + "\"";
    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += "<testsuites name=\"airlock\"" + counts + ">\n";
    out += "  <testsuite name=\"airlock\"" + counts + ">\n    <properties>\n";
    const std::pair<const char*, json> props[] = {
        {"run_id", at(r, {"run_id"})},
        {"started_at", at(r, {"started_at"})},
        {"image", at(r, {"image", "reference"})},
        {"outcome", at(r, {"result", "outcome"})},
        {"verdict", at(r, {"verdict", "passed"}) == true ? "passed" : "failed"}};
    for (const auto& [key, value] : props)
        out += "      <property name=\"" + std::string(key) + "\" value=\"" + attr(text(value)) +
               "\"/>\n";
    out += "    </properties>\n" + cases;
    std::string violations;
    for (const auto& v : at(r, {"violations"}))
        violations += text(at(v, {"severity"})) + " " + text(at(v, {"rule"})) + ": " +
                      text(at(v, {"message"})) + "\n";
    if (!violations.empty()) out += "    <system-out>" + xml(violations) + "</system-out>\n";
    out += "  </testsuite>\n</testsuites>\n";
    return out;
}

} // namespace airlock::audit
