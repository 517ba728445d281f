// OTLP export of real runs to receivers this test starts on 127.0.0.1: one that accepts, one that
// answers 503, one that never answers. The run's exit code never changes, and the export stays
// within its budget.
#include "harness.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

using namespace airlock;
using namespace airlock::test;
using nlohmann::json;

namespace {

// A tiny HTTP/1.1 receiver: records each request's path and body, answers by its mode.
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
    std::vector<std::pair<std::string, json>> requests() {
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
            const std::string path = in.substr(sp + 1, in.find(' ', sp + 1) - sp - 1);
            const auto end = in.find("\r\n\r\n");
            json body =
                end == std::string::npos ? json() : json::parse(in.substr(end + 4), nullptr, false);
            {
                std::lock_guard lock(m_mu);
                m_requests.emplace_back(path, body);
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
    std::vector<std::pair<std::string, json>> m_requests;
    std::thread m_thread;
};

struct Exported {
    Proc proc;
    json report;
    std::string out;
};

Exported run_exporting(const std::string& endpoint, std::vector<std::string> env) {
    TempDir ws, out;
    ProcOptions opts;
    opts.env = std::move(env);
    opts.env.push_back("OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint);
    opts.env.push_back("AIRLOCK_OTLP_TIMEOUT=2s");
    Exported e;
    e.proc = run_airlock(run_args(ws.path(), out.path() / "run", {},
                                  {"sh", "-c", "echo \"traceparent=$TRACEPARENT\""}),
                         opts);
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
    auto e = run_exporting(r.endpoint(), {"TRACEPARENT=" + parent});
    INFO(e.proc.err);
    REQUIRE(e.proc.exit_code == 0);
    auto reqs = r.requests();
    REQUIRE(reqs.size() == 2);
    CHECK(reqs[0].first == "/v1/traces");
    CHECK(reqs[1].first == "/v1/logs");
    const json& spans = reqs[0].second["resourceSpans"][0]["scopeSpans"][0]["spans"];
    REQUIRE(spans.size() == e.report["steps"].size() + 1);
    CHECK(spans[0]["parentSpanId"] == "00f067aa0ba902b7");
    std::string task_span;
    for (const auto& s : spans) {
        CHECK(s["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736");
        if (s["name"] == "start-wait") task_span = s["spanId"];
    }
    // The task ran as a child of the task span.
    CHECK(e.out == "traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-" + task_span + "-01\n");
    const json& records = reqs[1].second["resourceLogs"][0]["scopeLogs"][0]["logRecords"];
    CHECK(records.size() == e.report["events"]["count"]);
    const json& t = e.report["telemetry"];
    CHECK(t["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(t["signals"]["traces"]["exported"] == true);
    CHECK(t["signals"]["logs"]["exported"] == true);
    require_nothing_left(e.proc);
}

TEST_CASE("telemetry: a collector that answers 503 or never answers changes nothing but the "
          "report, within the budget",
          "[integration][telemetry]") {
    REQUIRE_ENGINE();
    for (auto mode : {Receiver::Mode::unavailable, Receiver::Mode::silent}) {
        Receiver r(mode);
        auto e = run_exporting(r.endpoint(), {});
        INFO(e.proc.err);
        CHECK(e.proc.exit_code == 0);
        const json& t = e.report["telemetry"];
        CHECK(t["signals"]["traces"]["exported"] == false);
        CHECK(t["duration_ms"].get<long>() <= 2500); // budget 2 s, plus one attempt's slack
        CHECK_THAT(e.proc.err, Catch::Contains("telemetry: traces not exported"));
        if (mode == Receiver::Mode::unavailable) {
            CHECK(t["signals"]["traces"]["error"] == "HTTP 503");
            CHECK(t["signals"]["traces"]["attempts"].get<int>() >= 2);
        }
        require_nothing_left(e.proc);
    }
}
