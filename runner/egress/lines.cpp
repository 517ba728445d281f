#include "egress/lines.hpp"

#include <cstdio>
#include <ctime>

namespace airlock::egress {

std::string rfc3339(std::chrono::system_clock::time_point time) {
    using namespace std::chrono;
    const auto ms = duration_cast<milliseconds>(time.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    const auto frac = static_cast<int>(ms - static_cast<long long>(secs) * 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return buf;
}

nlohmann::json ready_line() {
    return {{"type", "ready"}};
}

nlohmann::json error_line(std::string_view message) {
    return {{"type", "error"}, {"message", std::string(message)}};
}

nlohmann::json decision_line(const DecisionRecord& r) {
    auto or_null = [](const auto& v) -> nlohmann::json {
        if (v) return *v;
        return nullptr;
    };
    nlohmann::json line = {{"type", "decision"},
                           {"time", rfc3339(r.time)},
                           {"method", or_null(r.method)},
                           {"host", or_null(r.host)},
                           {"port", or_null(r.port)},
                           {"address", or_null(r.address)},
                           {"decision", to_string(r.verdict.outcome)},
                           {"rule", r.verdict.rule},
                           {"reason", r.verdict.reason},
                           {"bytes_up", r.bytes_up},
                           {"bytes_down", r.bytes_down},
                           {"duration_ms", r.duration_ms}};
    if (r.listener == Listener::credential) {
        line["path"] = or_null(r.path);
        line["endpoint"] = or_null(r.endpoint);
        line["status"] = or_null(r.status);
        return line;
    }
    if (r.kind == RequestKind::absolute) line["path"] = or_null(r.path);
    if (r.kind == RequestKind::connect) line["sni"] = or_null(r.sni);
    return line;
}

std::string render_line(const nlohmann::json& line) {
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

} // namespace airlock::egress
