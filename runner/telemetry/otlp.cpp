#include "telemetry/otlp.hpp"

#include "util/json_text.hpp"

#include "util/units.hpp"

#include <curl/curl.h>
#include <openssl/rand.h>

#include <algorithm>
#include <ctime>
#include <thread>

namespace airlock::telemetry {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const json& at(const json& j, std::initializer_list<const char*> path) {
    return util::json_at(j, path);
}

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> b(bytes);
    if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1)
        for (auto& c : b)
            c = static_cast<unsigned char>(std::rand());
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : b) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

bool is_hex(const std::string& s, std::size_t n) {
    if (s.size() != n) return false;
    bool nonzero = false;
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        nonzero = nonzero || c != '0';
    }
    return nonzero;
}

// "2026-11-27T09:20:57.123Z" -> nanoseconds since the epoch, as OTLP/JSON wants it: a string.
std::string unix_nanos(const std::string& rfc3339, std::int64_t plus_ms = 0) {
    std::tm tm{};
    int ms = 0;
    if (std::sscanf(rfc3339.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return "0";
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const std::int64_t seconds = static_cast<std::int64_t>(timegm(&tm));
    const std::int64_t total_ms = seconds * 1000 + ms + plus_ms;
    return std::to_string(total_ms) + "000000";
}

json attr(const std::string& key, const json& v) {
    json value;
    if (v.is_boolean())
        value = {{"boolValue", v.get<bool>()}};
    else if (v.is_number_integer())
        value = {{"intValue", std::to_string(v.get<std::int64_t>())}};
    else if (v.is_number())
        value = {{"doubleValue", v.get<double>()}};
    else if (v.is_string())
        value = {{"stringValue", v.get<std::string>()}};
    else
        value = {{"stringValue", v.dump()}};
    return {{"key", key}, {"value", value}};
}

json resource(const std::string& service_name) {
    return {{"attributes", json::array({attr("service.name", service_name),
                                        attr("service.version", AIRLOCK_VERSION)})}};
}

json scope() {
    return {{"name", "airlock"}, {"version", AIRLOCK_VERSION}};
}

} // namespace

std::string TraceContext::child_traceparent() const {
    return "00-" + trace_id + "-" + task_span_id + "-01";
}

std::optional<std::pair<std::string, std::string>> parse_traceparent(const std::string& value) {
    // version-traceid-parentid-flags: 2+1+32+1+16+1+2
    if (value.size() != 55 || value.substr(0, 3) != "00-" || value[35] != '-' || value[52] != '-')
        return std::nullopt;
    const std::string trace = value.substr(3, 32), span = value.substr(36, 16);
    const std::string flags = value.substr(53, 2);
    auto hex2 = [](const std::string& s) {
        for (char c : s)
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        return true;
    };
    if (!is_hex(trace, 32) || !is_hex(span, 16) || !hex2(flags)) return std::nullopt;
    return std::make_pair(trace, span);
}

TraceContext make_trace_context(const LookupEnv& env) {
    TraceContext ctx;
    if (auto tp = env("TRACEPARENT"))
        if (auto parsed = parse_traceparent(*tp)) {
            ctx.trace_id = parsed->first;
            ctx.parent_span_id = parsed->second;
        }
    if (ctx.trace_id.empty()) ctx.trace_id = random_hex(16);
    ctx.run_span_id = random_hex(8);
    ctx.task_span_id = random_hex(8);
    return ctx;
}

std::optional<Settings> settings_from_env(const LookupEnv& env) {
    Settings s;
    auto get = [&env](const char* name) {
        auto v = env(name);
        return v ? *v : std::string();
    };
    std::string base = get("OTEL_EXPORTER_OTLP_ENDPOINT");
    while (!base.empty() && base.back() == '/')
        base.pop_back();
    s.traces_url = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    s.logs_url = get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT");
    if (s.traces_url.empty() && !base.empty()) s.traces_url = base + "/v1/traces";
    if (s.logs_url.empty() && !base.empty()) s.logs_url = base + "/v1/logs";
    if (s.traces_url.empty() && s.logs_url.empty()) return std::nullopt;
    auto decode = [](std::string v) {
        std::string out;
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (v[i] == '%' && i + 2 < v.size()) {
                out.push_back(static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16)));
                i += 2;
            } else {
                out.push_back(v[i]);
            }
        }
        return out;
    };
    const std::string headers = get("OTEL_EXPORTER_OTLP_HEADERS");
    std::size_t start = 0;
    while (start < headers.size()) {
        auto comma = headers.find(',', start);
        std::string pair = headers.substr(start, comma - start);
        auto eq = pair.find('=');
        if (eq != std::string::npos && eq > 0) {
            try {
                s.headers.emplace_back(decode(pair.substr(0, eq)), decode(pair.substr(eq + 1)));
            } catch (const std::exception&) {
                // a malformed %xx: the header is left out rather than sent mangled
            }
        }
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    if (auto name = get("OTEL_SERVICE_NAME"); !name.empty()) s.service_name = name;
    if (auto t = get("AIRLOCK_OTLP_TIMEOUT"); !t.empty())
        if (auto d = util::parse_duration(t, "AIRLOCK_OTLP_TIMEOUT"); d && d->count() > 0)
            s.budget = *d;
    return s;
}

json trace_request(const json& report, const TraceContext& ctx, const std::string& service_name) {
    const std::string started = at(report, {"started_at"}).is_string()
                                    ? report["started_at"].get<std::string>()
                                    : std::string();
    const std::string ended =
        at(report, {"ended_at"}).is_string() ? report["ended_at"].get<std::string>() : started;
    const json& result = at(report, {"result"});
    const std::string outcome =
        at(result, {"outcome"}).is_string() ? result["outcome"].get<std::string>() : "";
    json run_attrs = json::array({attr("cicd.pipeline.task.name", "airlock run"),
                                  attr("cicd.pipeline.task.run.id", at(report, {"run_id"})),
                                  attr("airlock.outcome", outcome),
                                  attr("airlock.exit_code", at(result, {"exit_code"}))});
    auto add = [&run_attrs](const char* key, const json& v) {
        if (!v.is_null()) run_attrs.push_back(attr(key, v));
    };
    add("container.id", at(report, {"container", "id"}));
    add("container.image.name", at(report, {"image", "reference"}));
    add("container.image.id", at(report, {"image", "id"}));
    add("container.runtime", at(report, {"limits", "runtime"}));
    add("process.exit.code", at(result, {"status_code"}));
    add("vcs.repository.name", at(report, {"ci", "repository"}));
    add("vcs.ref.head.revision", at(report, {"ci", "commit"}));
    add("vcs.ref.head.name", at(report, {"ci", "ref"}));
    add("cicd.pipeline.run.id", at(report, {"ci", "run_id"}));
    add("cicd.pipeline.run.url.full", at(report, {"ci", "url"}));
    add("airlock.verdict.passed", at(report, {"verdict", "passed"}));
    const bool ok = outcome == "success";
    json spans = json::array();
    json run_span = {{"traceId", ctx.trace_id},
                     {"spanId", ctx.run_span_id},
                     {"name", "airlock run"},
                     {"kind", 1},
                     {"startTimeUnixNano", unix_nanos(started)},
                     {"endTimeUnixNano", unix_nanos(ended)},
                     {"attributes", run_attrs},
                     {"status", {{"code", ok ? 1 : 2}, {"message", ok ? "" : outcome}}}};
    if (!ctx.parent_span_id.empty()) run_span["parentSpanId"] = ctx.parent_span_id;
    spans.push_back(run_span);
    for (const auto& s : at(report, {"steps"})) {
        const std::string name = at(s, {"step"}).is_string() ? s["step"].get<std::string>() : "";
        const std::int64_t start =
            at(s, {"start_ms"}).is_number_integer() ? s["start_ms"].get<std::int64_t>() : 0;
        const std::int64_t duration =
            at(s, {"duration_ms"}).is_number_integer() ? s["duration_ms"].get<std::int64_t>() : 0;
        const bool step_ok = at(s, {"ok"}) == true;
        json attrs = json::array({attr("airlock.step", name)});
        if (name == "start-wait") {
            if (!at(result, {"status_code"}).is_null())
                attrs.push_back(attr("process.exit.code", result["status_code"]));
            if (!at(report, {"container", "id"}).is_null())
                attrs.push_back(attr("container.id", report["container"]["id"]));
        }
        spans.push_back({{"traceId", ctx.trace_id},
                         {"spanId", name == "start-wait" ? ctx.task_span_id : random_hex(8)},
                         {"parentSpanId", ctx.run_span_id},
                         {"name", name},
                         {"kind", 1},
                         {"startTimeUnixNano", unix_nanos(started, start)},
                         {"endTimeUnixNano", unix_nanos(started, start + duration)},
                         {"attributes", attrs},
                         {"status", {{"code", step_ok ? 1 : 2}}}});
    }
    return {
        {"resourceSpans",
         json::array({{{"resource", resource(service_name)},
                       {"scopeSpans", json::array({{{"scope", scope()}, {"spans", spans}}})}}})}};
}

json logs_request(const std::vector<json>& events, const json& report, const TraceContext& ctx,
                  const std::string& service_name) {
    json records = json::array();
    for (const auto& e : events) {
        if (records.size() == k_max_log_records) break;
        const std::string type = at(e, {"type"}).is_string() ? e["type"].get<std::string>() : "";
        const std::string time = at(e, {"time"}).is_string() ? e["time"].get<std::string>() : "";
        const bool bad = type == "violation" || type == "timeout" || type == "oom" ||
                         (type == "network.decision" && at(e, {"decision"}) != "allow");
        json attrs = json::array({attr("event.name", "airlock." + type),
                                  attr("airlock.run.id", at(report, {"run_id"}))});
        for (auto it = e.begin(); it != e.end(); ++it)
            if (it.key() != "type" && it.key() != "time")
                attrs.push_back(attr("airlock." + it.key(), it.value()));
        records.push_back({{"timeUnixNano", unix_nanos(time)},
                           {"observedTimeUnixNano", unix_nanos(time)},
                           {"severityNumber", bad ? 13 : 9},
                           {"severityText", bad ? "WARN" : "INFO"},
                           {"body", {{"stringValue", type}}},
                           {"attributes", attrs},
                           {"traceId", ctx.trace_id},
                           {"spanId", ctx.run_span_id}});
    }
    return {{"resourceLogs",
             json::array(
                 {{{"resource", resource(service_name)},
                   {"scopeLogs", json::array({{{"scope", scope()}, {"logRecords", records}}})}}})}};
}

std::uint64_t logs_dropped(const json& report, std::size_t events_read) {
    const json& count = at(report, {"events", "count"});
    const std::uint64_t total =
        count.is_number_integer() && count.get<std::int64_t>() > 0 ? count.get<std::uint64_t>() : 0;
    const std::uint64_t sent = std::min<std::uint64_t>(events_read, k_max_log_records);
    return total > sent ? total - sent : 0;
}

namespace {

std::size_t discard(char*, std::size_t size, std::size_t n, void*) {
    return size * n;
}

// One POST; the HTTP status, or 0 when the request did not complete (error set).
long post(const std::string& url, const std::string& body, const Settings& s,
          std::chrono::milliseconds timeout, std::string& error) {
    CURL* curl = curl_easy_init();
    if (!curl) {
        error = "libcurl: cannot create a handle";
        return 0;
    }
    char errbuf[CURL_ERROR_SIZE] = {};
    struct curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    for (const auto& [k, v] : s.headers)
        headers = curl_slist_append(headers, (k + ": " + v).c_str());
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(std::max<long long>(timeout.count(), 1)));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::max<long long>(timeout.count(), 1)));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    const CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    else
        error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return status;
}

json send(const std::string& url, const json& payload, const Settings& s,
          Clock::time_point deadline) {
    const std::string body = payload.dump(-1, ' ', false, json::error_handler_t::replace);
    int attempts = 0;
    std::string error;
    auto backoff = std::chrono::milliseconds(100);
    while (true) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) break;
        ++attempts;
        error.clear();
        const long status = post(url, body, s, left, error);
        if (status >= 200 && status < 300)
            return {{"exported", true}, {"attempts", attempts}, {"url", url}};
        if (status != 0) error = "HTTP " + std::to_string(status);
        const bool retry =
            status == 0 || status == 429 || status == 502 || status == 503 || status == 504;
        if (!retry) break;
        if (Clock::now() + backoff >= deadline) break;
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
    if (error.empty()) error = "no time left within the export budget";
    return {{"exported", false}, {"attempts", attempts}, {"url", url}, {"error", error}};
}

} // namespace

json export_run(const Settings& s, const json& traces, const json& logs) {
    const auto deadline = Clock::now() + s.budget;
    json out = json::object();
    if (!s.traces_url.empty()) out["traces"] = send(s.traces_url, traces, s, deadline);
    if (!s.logs_url.empty()) out["logs"] = send(s.logs_url, logs, s, deadline);
    return out;
}

} // namespace airlock::telemetry
