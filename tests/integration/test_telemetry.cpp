// OTLP export of real runs to receivers this test starts on 127.0.0.1: one that accepts (and sees
// the configured headers and service name), one that answers 503, one that never answers. The
// run's exit code never changes, and its wall time grows by no more than the export budget.
#include "harness.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

using namespace airlock;
using namespace airlock::test;
using nlohmann::json;

namespace {

struct Request {
    std::string path;
    std::map<std::string, std::string> headers; // names in lower case
    json body;
};

// A tiny HTTP/1.1 receiver: records each request's path, headers and body, answers by its mode.
class Receiver {
public:
    enum class Mode { ok, unavailable, silent };
    explicit Receiver(Mode mode) : m_mode(mode) {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(m_fd, 16) == 0);
        socklen_t len = sizeof a;
        ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&a), &len);
        m_port = ntohs(a.sin_port);
        m_thread = std::thread([this] { serve(); });
    }
    ~Receiver() {
        m_stop = true;
        m_thread.join();
        ::close(m_fd);
    }
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(m_port); }
    std::vector<Request> requests() {
        std::lock_guard lock(m_mu);
        return m_requests;
    }

private:
    void serve() {
        std::vector<int> held; // silent mode keeps connections open, unanswered
        while (!m_stop) {
            pollfd p{m_fd, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            const int c = ::accept4(m_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) continue;
            std::string in;
            char buf[65536];
            std::size_t need = std::string::npos;
            while (true) {
                pollfd q{c, POLLIN, 0};
                if (::poll(&q, 1, 2000) <= 0) break;
                const ssize_t n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0) break;
                in.append(buf, static_cast<std::size_t>(n));
                const auto end = in.find("\r\n\r\n");
                if (end == std::string::npos) continue;
                if (need == std::string::npos) {
                    const auto cl = in.find("Content-Length: ");
                    need = end + 4 + (cl == std::string::npos ? 0 : std::stoul(in.substr(cl + 16)));
                }
                if (in.size() >= need) break;
            }
            const auto sp = in.find(' ');
            Request req;
            req.path = in.substr(sp + 1, in.find(' ', sp + 1) - sp - 1);
            const auto end = in.find("\r\n\r\n");
            for (auto line = in.find("\r\n"); line != std::string::npos && line < end;) {
                const auto next = in.find("\r\n", line + 2);
                const std::string h = in.substr(line + 2, next - line - 2);
                if (const auto colon = h.find(": "); colon != std::string::npos) {
                    std::string name = h.substr(0, colon);
                    std::transform(name.begin(), name.end(), name.begin(),
                                   [](unsigned char ch) { return std::tolower(ch); });
                    req.headers[name] = h.substr(colon + 2);
                }
                line = next;
            }
            req.body =
                end == std::string::npos ? json() : json::parse(in.substr(end + 4), nullptr, false);
            {
                std::lock_guard lock(m_mu);
                m_requests.push_back(std::move(req));
            }
            if (m_mode == Mode::silent) {
                held.push_back(c);
                continue;
            }
            const std::string resp =
                m_mode == Mode::ok
                    ? "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                      "Connection: close\r\n\r\n{}"
                    : "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: "
                      "close\r\n\r\n";
            (void)::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
            ::close(c);
        }
        for (int c : held)
            ::close(c);
    }

    Mode m_mode;
    int m_fd = -1;
    std::uint16_t m_port = 0;
    std::atomic<bool> m_stop{false};
    std::mutex m_mu;
    std::vector<Request> m_requests;
    std::thread m_thread;
};

struct Exported {
    Proc proc;
    json report;
    std::string out;
    std::chrono::milliseconds wall{0}; // the airlock process, start to exit, as the test saw it
};

// The export budget the runs below set (AIRLOCK_OTLP_TIMEOUT).
constexpr std::chrono::milliseconds k_budget{2000};

// A run exporting to `endpoint`; without one, a run that exports nothing.
Exported run_exporting(const std::string& endpoint, std::vector<std::string> env) {
    TempDir ws, out;
    ProcOptions opts;
    opts.env = std::move(env);
    if (!endpoint.empty()) opts.env.push_back("OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint);
    opts.env.push_back("AIRLOCK_OTLP_TIMEOUT=2s");
    Exported e;
    const auto t0 = std::chrono::steady_clock::now();
    e.proc = run_airlock(run_args(ws.path(), out.path() / "run", {},
                                  {"sh", "-c", "echo \"traceparent=$TRACEPARENT\""}),
                         opts);
    e.wall = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    e.report = read_report(out.path() / "run");
    e.out = read_file(out.path() / "run" / "logs" / "stdout.log");
    return e;
}

} // namespace

TEST_CASE("telemetry: the run's trace and events reach an OTLP receiver, under the caller's trace",
          "[integration][telemetry]") {
    REQUIRE_ENGINE();
    Receiver r(Receiver::Mode::ok);
    const std::string parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    auto e = run_exporting(r.endpoint(), {"TRACEPARENT=" + parent,
                                          "OTEL_EXPORTER_OTLP_HEADERS=x-test-token=abc%20d",
                                          "OTEL_SERVICE_NAME=airlock-under-test"});
    INFO(e.proc.err);
    REQUIRE(e.proc.exit_code == 0);
    auto reqs = r.requests();
    REQUIRE(reqs.size() == 2);
    CHECK(reqs[0].path == "/v1/traces");
    CHECK(reqs[1].path == "/v1/logs");
    // OTEL_EXPORTER_OTLP_HEADERS (percent-decoded) on every request, OTEL_SERVICE_NAME as the
    // resource's service.name in both signals.
    for (const auto& [req, resources] :
         {std::pair{reqs[0], "resourceSpans"}, std::pair{reqs[1], "resourceLogs"}}) {
        INFO(req.path);
        REQUIRE(req.headers.count("x-test-token") == 1);
        CHECK(req.headers.at("x-test-token") == "abc d");
        const json& attributes = req.body[resources][0]["resource"]["attributes"];
        REQUIRE(attributes.size() == 2);
        CHECK(attributes[0] ==
              json{{"key", "service.name"}, {"value", {{"stringValue", "airlock-under-test"}}}});
        CHECK(attributes[1]["key"] == "service.version");
    }
    const json& spans = reqs[0].body["resourceSpans"][0]["scopeSpans"][0]["spans"];
    REQUIRE(spans.size() == e.report["steps"].size() + 1);
    CHECK(spans[0]["parentSpanId"] == "00f067aa0ba902b7");
    std::string task_span;
    for (const auto& s : spans) {
        CHECK(s["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736");
        if (s["name"] == "start-wait") task_span = s["spanId"];
    }
    // The task ran as a child of the task span.
    CHECK(e.out == "traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-" + task_span + "-01\n");
    const json& records = reqs[1].body["resourceLogs"][0]["scopeLogs"][0]["logRecords"];
    CHECK(records.size() == e.report["events"]["count"]);
    const json& t = e.report["telemetry"];
    CHECK(t["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(t["signals"]["traces"]["exported"] == true);
    CHECK(t["signals"]["logs"]["exported"] == true);
    check_against_schema(e.report);
    require_nothing_left(e.proc);
}

TEST_CASE("telemetry: a collector that answers 503 or never answers changes nothing but the "
          "report, within the budget",
          "[integration][telemetry]") {
    REQUIRE_ENGINE();
    // The same run without a collector: what the run costs on this machine now.
    const auto baseline = run_exporting("", {});
    REQUIRE(baseline.proc.exit_code == 0);
    CHECK_FALSE(baseline.report.contains("telemetry"));
    require_nothing_left(baseline.proc);
    // Container start and teardown vary between runs on a busy machine; the export itself may
    // take the budget, and a collector that held the run longer would exceed it by far more.
    constexpr std::chrono::milliseconds k_margin{4000};
    for (auto mode : {Receiver::Mode::unavailable, Receiver::Mode::silent}) {
        Receiver r(mode);
        auto e = run_exporting(r.endpoint(), {});
        INFO(e.proc.err);
        CHECK(e.proc.exit_code == 0);
        INFO("wall " << e.wall.count() << " ms, without a collector " << baseline.wall.count()
                     << " ms");
        CHECK(e.wall <= baseline.wall + k_budget + k_margin);
        const json& t = e.report["telemetry"];
        CHECK(t["signals"]["traces"]["exported"] == false);
        CHECK(t["duration_ms"].get<long>() <= 2500); // budget 2 s, plus one attempt's slack
        check_against_schema(e.report);
        CHECK_THAT(e.proc.err, Catch::Contains("telemetry: traces not exported"));
        if (mode == Receiver::Mode::unavailable) {
            CHECK(t["signals"]["traces"]["error"] == "HTTP 503");
            CHECK(t["signals"]["traces"]["attempts"].get<int>() >= 2);
        }
        require_nothing_left(e.proc);
    }
}
