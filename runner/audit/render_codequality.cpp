#include "audit/render.hpp"

#include "audit/render_detail.hpp"

#include <map>

namespace airlock::audit {

using detail::at;
using detail::text;
using nlohmann::json;

json render_codequality(const json& report) {
    const json r = with_verdict(report);
    json issues = json::array();
    std::map<std::string, std::size_t> seen;
    for (const auto& v : at(r, {"violations"})) {
        const std::string rule = to_valid_utf8(text(at(v, {"rule"})));
        std::string message = to_valid_utf8(text(at(v, {"message"})));
        if (message.empty()) message = "airlock rule " + rule;
        // GitLab merges issues with equal fingerprints, so repeats get their occurrence number.
        const std::string fp = fingerprint_of(v);
        issues.push_back(
            {{"type", "issue"},
             {"description", std::move(message)},
             {"check_name", rule.empty() ? std::string("airlock") : rule},
             {"categories", {"Security"}},
             {"fingerprint", fingerprint_of(v, seen[fp]++)},
             {"severity", at(v, {"severity"}) == "error" ? "critical" : "minor"},
             {"location", {{"path", to_valid_utf8(location_of(v))}, {"lines", {{"begin", 1}}}}}});
    }
    return issues;
}

} // namespace airlock::audit
