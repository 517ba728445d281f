// Telemetry over OTLP/HTTP JSON (docs/telemetry.md): a trace for the run, a span per pipeline
// step, and a log record per event, sent when OTEL_EXPORTER_OTLP_ENDPOINT (or the per-signal
// variables) is set. The export is bounded in time; a collector that is down or slow never fails
// the run, and the report says what was not exported.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace airlock::telemetry {

using LookupEnv = std::function<std::optional<std::string>(const std::string&)>;

// W3C trace context: 32 and 16 lower-case hex digits.
struct TraceContext {
    std::string trace_id;
    std::string parent_span_id; // from TRACEPARENT; empty for a root
    std::string run_span_id;    // the run's own span
    std::string task_span_id;   // the task step's span: the task's TRACEPARENT parent
    // "00-<trace>-<span>-01" for the task's environment.
    std::string child_traceparent() const;
};

// A fresh context, under TRACEPARENT when it is set and valid (anything else is ignored).
TraceContext make_trace_context(const LookupEnv& env);
// nullopt unless `value` is a valid version-00 traceparent; {trace_id, span_id}.
std::optional<std::pair<std::string, std::string>> parse_traceparent(const std::string& value);

struct Settings {
    std::string traces_url, logs_url; // empty: that signal is not sent
    std::vector<std::pair<std::string, std::string>> headers;
    std::string service_name = "airlock";
    std::chrono::milliseconds budget{5000}; // all requests and retries of one export together
};
// From OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces, /v1/logs), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// and _LOGS_ENDPOINT (used as they are), OTEL_EXPORTER_OTLP_HEADERS (k=v,k2=v2, URL-decoded),
// OTEL_SERVICE_NAME, AIRLOCK_OTLP_TIMEOUT (e.g. 5s). nullopt when nothing is configured.
std::optional<Settings> settings_from_env(const LookupEnv& env);

// The ExportTraceServiceRequest for a finished run, from its report (steps, result, image...).
nlohmann::json trace_request(const nlohmann::json& report, const TraceContext& ctx,
                             const std::string& service_name);
// At most this many events of a run become log records (the first ones), so one export stays
// small; the report counts the rest (logs_dropped).
inline constexpr std::size_t k_max_log_records = 10000;

// The ExportLogsServiceRequest: one record per event, for the first k_max_log_records.
nlohmann::json logs_request(const std::vector<nlohmann::json>& events, const nlohmann::json& report,
                            const TraceContext& ctx, const std::string& service_name);

// The report's telemetry.logs_dropped: the run's events (report events.count) that are not
// among the `events_read` given to logs_request, or beyond its cap.
std::uint64_t logs_dropped(const nlohmann::json& report, std::size_t events_read);

// Sends both; retries 429/502/503/504 and connection failures with backoff within the budget.
// Returns {signal: {"exported": bool, "attempts": n, "error": "..."}} for the report.
nlohmann::json export_run(const Settings& settings, const nlohmann::json& traces,
                          const nlohmann::json& logs);

} // namespace airlock::telemetry
