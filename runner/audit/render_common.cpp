#include "audit/render.hpp"

#include "audit/render_detail.hpp"
#include "audit/verdict.hpp"
#include "util/sha256.hpp"

namespace airlock::audit {

using detail::at;
using detail::text;
using nlohmann::json;

json with_verdict(const json& report) {
    json out = report.is_object() ? report : json::object();
    if (!out.contains("violations") || !out["violations"].is_array())
        out["violations"] = violations_of(out);
    if (!out.contains("checks") || !out["checks"].is_array())
        out["checks"] = gate_checks(out, at(out, {"policy", "values"}), "");
    if (!out.contains("verdict") || !out["verdict"].is_object())
        out["verdict"] = verdict_of(out["checks"]);
    return out;
}

std::string location_of(const json& violation) {
    const json& path = at(violation, {"location", "path"});
    if (!path.is_string() || path.get_ref<const std::string&>().empty()) return k_fallback_location;
    std::string p = path.get<std::string>();
    // Workspace-relative: no leading "./" or "/".
    while (p.rfind("./", 0) == 0)
        p.erase(0, 2);
    while (!p.empty() && p.front() == '/')
        p.erase(0, 1);
    return p.empty() ? std::string(k_fallback_location) : p;
}

std::string fingerprint_of(const json& violation, std::size_t occurrence) {
    // NUL separators: no field can contain one after the report went through JSON.
    std::string key = text(at(violation, {"rule"}));
    key += '\0';
    key += location_of(violation);
    key += '\0';
    key += text(at(violation, {"message"}));
    if (occurrence > 0) {
        key += '\0';
        key += std::to_string(occurrence);
    }
    return util::sha256_hex(key);
}

std::string to_valid_utf8(std::string_view s) {
    static constexpr std::string_view k_replacement = "\xEF\xBF\xBD";
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = 0;
        char32_t cp = 0;
        char32_t min = 0;
        if (c < 0x80) {
            out += s[i++];
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        }
        bool ok = len > 0 && i + len <= s.size();
        for (std::size_t k = 1; ok && k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) ok = false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
        if (!ok) {
            out += k_replacement;
            ++i;
            continue;
        }
        out.append(s.substr(i, len));
        i += len;
    }
    return out;
}

} // namespace airlock::audit
