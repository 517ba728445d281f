// OTLP/HTTP JSON payloads and settings, built from a report and its events without a collector.
#include "telemetry/otlp.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace airlock;
using namespace airlock::telemetry;
using nlohmann::json;

namespace {

LookupEnv env_of(std::map<std::string, std::string> vars) {
    return [vars](const std::string& n) -> std::optional<std::string> {
        auto it = vars.find(n);
        return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
}

json report() {
    return {
        {"run_id", "20261127t010203-abcdef"},
        {"started_at", "2026-11-27T01:02:03.500Z"},
        {"ended_at", "2026-11-27T01:02:05.000Z"},
        {"image", {{"reference", "airlock/agent-base:latest"}, {"id", "sha256:1"}}},
        {"container", {{"id", "c0ffee"}}},
        {"limits", {{"runtime", "runc"}}},
        {"ci", {{"repository", "org/repo"}, {"commit", "abc"}}},
        {"result", {{"outcome", "success"}, {"status_code", 0}, {"exit_code", 0}}},
        {"steps",
         json::array(
             {{{"step", "resolve"}, {"start_ms", 0}, {"duration_ms", 5}, {"ok", true}},
              {{"step", "start-wait"}, {"start_ms", 100}, {"duration_ms", 1200}, {"ok", true}}})}};
}

std::map<std::string, json> attrs(const json& list) {
    std::map<std::string, json> out;
    for (const auto& a : list)
        out[a["key"]] = a["value"];
    return out;
}

} // namespace

TEST_CASE("traceparent: only valid version-00 values are taken", "[telemetry]") {
    auto ok = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    REQUIRE(ok);
    CHECK(ok->first == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(ok->second == "00f067aa0ba902b7");
    CHECK_FALSE(parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
    CHECK_FALSE(parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
    CHECK_FALSE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    CHECK_FALSE(parse_traceparent("garbage"));

    auto ctx = make_trace_context(
        env_of({{"TRACEPARENT", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}));
    CHECK(ctx.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(ctx.parent_span_id == "00f067aa0ba902b7");
    CHECK(ctx.child_traceparent() ==
          "00-4bf92f3577b34da6a3ce929d0e0e4736-" + ctx.task_span_id + "-01");
    auto fresh = make_trace_context(env_of({{"TRACEPARENT", "nonsense"}}));
    CHECK(fresh.trace_id.size() == 32);
    CHECK(fresh.parent_span_id.empty());
    CHECK(fresh.run_span_id != fresh.task_span_id);
}

TEST_CASE("OTLP settings come from the standard variables", "[telemetry]") {
    CHECK_FALSE(settings_from_env(env_of({})));
    auto s = settings_from_env(env_of({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"},
                                       {"OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%3Db,x=1"},
                                       {"OTEL_SERVICE_NAME", "ci-agents"},
                                       {"AIRLOCK_OTLP_TIMEOUT", "2s"}}));
    REQUIRE(s);
    CHECK(s->traces_url == "http://collector:4318/v1/traces");
    CHECK(s->logs_url == "http://collector:4318/v1/logs");
    CHECK(s->headers ==
          std::vector<std::pair<std::string, std::string>>{{"api-key", "a=b"}, {"x", "1"}});
    CHECK(s->service_name == "ci-agents");
    CHECK(s->budget == std::chrono::milliseconds(2000));
    auto only = settings_from_env(env_of({{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t/x"}}));
    REQUIRE(only);
    CHECK(only->traces_url == "http://t/x");
    CHECK(only->logs_url.empty());
}

TEST_CASE("the trace has a run span and a span per step, the task's as the child parent",
          "[telemetry]") {
    auto ctx = make_trace_context(
        env_of({{"TRACEPARENT", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}));
    json t = trace_request(report(), ctx, "airlock");
    const json& rs = t["resourceSpans"][0];
    CHECK(attrs(rs["resource"]["attributes"])["service.name"]["stringValue"] == "airlock");
    const json& spans = rs["scopeSpans"][0]["spans"];
    REQUIRE(spans.size() == 3);
    CHECK(spans[0]["name"] == "airlock run");
    CHECK(spans[0]["parentSpanId"] == "00f067aa0ba902b7");
    CHECK(spans[0]["startTimeUnixNano"] == "1795741323500000000");
    CHECK(spans[0]["endTimeUnixNano"] == "1795741325000000000");
    CHECK(spans[0]["status"]["code"] == 1);
    auto a = attrs(spans[0]["attributes"]);
    CHECK(a["cicd.pipeline.task.run.id"]["stringValue"] == "20261127t010203-abcdef");
    CHECK(a["container.id"]["stringValue"] == "c0ffee");
    CHECK(a["process.exit.code"]["intValue"] == "0");
    CHECK(a["vcs.ref.head.revision"]["stringValue"] == "abc");
    CHECK(spans[2]["name"] == "start-wait");
    CHECK(spans[2]["spanId"] == ctx.task_span_id);
    CHECK(spans[2]["parentSpanId"] == ctx.run_span_id);
    CHECK(spans[2]["startTimeUnixNano"] == "1795741323600000000");
    CHECK(spans[2]["endTimeUnixNano"] == "1795741324800000000");
    for (const auto& s : spans)
        CHECK(s["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST_CASE("each event is a log record, refusals and violations are warnings", "[telemetry]") {
    auto ctx = make_trace_context(env_of({}));
    std::vector<json> events = {
        {{"seq", 1}, {"time", "2026-11-27T01:02:03.500Z"}, {"type", "run.start"}, {"image", "x"}},
        {{"seq", 2},
         {"time", "2026-11-27T01:02:04.000Z"},
         {"type", "network.decision"},
         {"decision", "deny"},
         {"host", "evil.example"}}};
    json l = logs_request(events, report(), ctx, "airlock");
    const json& records = l["resourceLogs"][0]["scopeLogs"][0]["logRecords"];
    REQUIRE(records.size() == 2);
    CHECK(records[0]["severityText"] == "INFO");
    CHECK(records[0]["body"]["stringValue"] == "run.start");
    CHECK(records[0]["traceId"] == ctx.trace_id);
    CHECK(attrs(records[0]["attributes"])["event.name"]["stringValue"] == "airlock.run.start");
    CHECK(attrs(records[0]["attributes"])["airlock.seq"]["intValue"] == "1");
    CHECK(records[1]["severityText"] == "WARN");
    CHECK(attrs(records[1]["attributes"])["airlock.host"]["stringValue"] == "evil.example");
}

TEST_CASE("log records stop at the cap, and the report counts the events left out", "[telemetry]") {
    auto ctx = make_trace_context(env_of({}));
    std::vector<json> events;
    for (std::size_t i = 1; i <= k_max_log_records + 5; ++i)
        events.push_back({{"seq", i}, {"time", "2026-11-27T01:02:03.500Z"}, {"type", "x"}});
    json r = report();
    r["events"] = {{"count", k_max_log_records + 7}}; // two lines were not even read
    json l = logs_request(events, r, ctx, "airlock");
    const json& records = l["resourceLogs"][0]["scopeLogs"][0]["logRecords"];
    REQUIRE(records.size() == k_max_log_records);
    CHECK(attrs(records.back()["attributes"])["airlock.seq"]["intValue"] ==
          std::to_string(k_max_log_records));
    CHECK(logs_dropped(r, events.size()) == 7);
    CHECK(logs_dropped(r, k_max_log_records - 1) == 8);
    r["events"]["count"] = 3;
    CHECK(logs_dropped(r, 3) == 0);
    CHECK(logs_dropped(report(), 0) == 0); // no events.count: nothing known to be left out
}

TEST_CASE("an unreachable collector costs at most the budget", "[telemetry]") {
    Settings s;
    s.traces_url = "http://127.0.0.1:9/v1/traces"; // discard port: nothing listens
    s.budget = std::chrono::milliseconds(800);
    const auto t0 = std::chrono::steady_clock::now();
    json r = export_run(s, json::object(), json::object());
    const auto spent = std::chrono::steady_clock::now() - t0;
    CHECK(spent < std::chrono::milliseconds(1500));
    CHECK(r["traces"]["exported"] == false);
    CHECK(r["traces"]["attempts"].get<int>() >= 2); // retried with backoff
    CHECK_FALSE(r["traces"]["error"].get<std::string>().empty());
}
