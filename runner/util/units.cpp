#include "util/units.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>

namespace airlock::util {

namespace {

std::string lower(std::string_view s) {
    std::string out;
    for (char c : s)
        out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return out;
}

// Parses a leading decimal number ("12", "1.5"); returns chars consumed, 0 if none.
std::size_t parse_number(std::string_view s, double& out) {
    std::size_t i = 0;
    double v = 0;
    bool digits = false;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
        v = v * 10 + (s[i] - '0');
        ++i;
        digits = true;
    }
    if (i < s.size() && s[i] == '.') {
        ++i;
        double scale = 0.1;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
            v += (s[i] - '0') * scale;
            scale /= 10;
            ++i;
            digits = true;
        }
    }
    if (!digits) return 0;
    out = v;
    return i;
}

Error bad(std::string_view field, std::string_view text, const char* hint) {
    return make_error(ErrorKind::invalid_input,
                      std::string(field) + ": \"" + std::string(text) + "\" " + hint);
}

} // namespace

Result<std::uint64_t> parse_size(std::string_view text, std::string_view field) {
    const char* hint = "is not a size (use a number with an optional unit: 512m, 2g, 1GiB)";
    double v = 0;
    std::size_t n = parse_number(text, v);
    if (n == 0) return bad(field, text, hint);
    std::string unit = lower(text.substr(n));
    double mult = 0;
    if (unit.empty() || unit == "b")
        mult = 1;
    else if (unit == "k" || unit == "kb" || unit == "kib")
        mult = 1024.0;
    else if (unit == "m" || unit == "mb" || unit == "mib")
        mult = 1024.0 * 1024;
    else if (unit == "g" || unit == "gb" || unit == "gib")
        mult = 1024.0 * 1024 * 1024;
    else if (unit == "t" || unit == "tb" || unit == "tib")
        mult = 1024.0 * 1024 * 1024 * 1024;
    else
        return bad(field, text, hint);
    double bytes = v * mult;
    if (bytes > 9.0e18) return bad(field, text, "is too large");
    if (bytes < 1) return bad(field, text, "must be at least 1 byte");
    return static_cast<std::uint64_t>(std::llround(bytes));
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view field) {
    const char* hint = "is not a duration (use 500ms, 30s, 10m, 1h30m, 7d)";
    if (text.empty()) return bad(field, text, hint);
    double total_ms = 0;
    std::string_view rest = text;
    bool bare = true;
    while (!rest.empty()) {
        double v = 0;
        std::size_t n = parse_number(rest, v);
        if (n == 0) return bad(field, text, hint);
        rest.remove_prefix(n);
        std::size_t u = 0;
        while (u < rest.size() && std::isalpha(static_cast<unsigned char>(rest[u])))
            ++u;
        std::string unit = lower(rest.substr(0, u));
        rest.remove_prefix(u);
        if (unit.empty()) {
            if (!rest.empty() || !bare) return bad(field, text, hint);
            unit = "s";
        }
        bare = false;
        if (unit == "ms")
            total_ms += v;
        else if (unit == "s")
            total_ms += v * 1000;
        else if (unit == "m")
            total_ms += v * 60000;
        else if (unit == "h")
            total_ms += v * 3600000;
        else if (unit == "d")
            total_ms += v * 86400000;
        else
            return bad(field, text, hint);
    }
    if (total_ms < 1) return bad(field, text, "must be at least 1ms");
    if (total_ms > 1.0e12) return bad(field, text, "is too long");
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(total_ms)));
}

Result<std::int64_t> parse_cpus(std::string_view text, std::string_view field) {
    double v = 0;
    std::size_t n = parse_number(text, v);
    if (n == 0 || n != text.size())
        return bad(field, text, "is not a CPU count (use 1, 0.5, 2.25)");
    if (v < 0.01) return bad(field, text, "must be at least 0.01");
    if (v > 1024) return bad(field, text, "is more than 1024 CPUs");
    return static_cast<std::int64_t>(std::llround(v * 1e9));
}

Result<std::int64_t> parse_count(std::string_view text, std::string_view field, std::int64_t max) {
    std::int64_t v = 0;
    if (text.empty()) return bad(field, text, "is not a whole number");
    for (char c : text) {
        if (c < '0' || c > '9') return bad(field, text, "is not a whole number");
        v = v * 10 + (c - '0');
        if (v > max) return bad(field, text, ("is more than " + std::to_string(max)).c_str());
    }
    if (v < 1) return bad(field, text, "must be at least 1");
    return v;
}

std::string format_size(std::uint64_t bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    if (u == 0)
        std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
    else
        std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
    return buf;
}

std::string format_duration(std::chrono::milliseconds ms) {
    char buf[32];
    auto c = ms.count();
    if (c < 1000)
        std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(c));
    else if (c < 60000)
        std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(c) / 1000);
    else
        std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(c / 60000),
                      static_cast<long long>((c / 1000) % 60));
    return buf;
}

} // namespace airlock::util
