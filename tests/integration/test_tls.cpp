// DOCKER_HOST=tcp:// with DOCKER_TLS_VERIFY=1 against a real peer: socat terminates mutual TLS
// on 127.0.0.1 in front of the local engine's socket (tls_fixture.hpp); nothing leaves loopback.
#include "harness.hpp"
#include "tls_fixture.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <regex>
#include <thread>

using namespace airlock::test;
namespace fs = std::filesystem;

namespace {

// The run id airlock printed ("airlock: run ID: ..."), or empty.
std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

// socat -d -d logs one line per accepted TCP connection.
bool socat_accepted_from_loopback(const std::string& log) {
    return contains(log, "accepting connection from AF=2 127.0.0.1:");
}

} // namespace

TEST_CASE("airlock run reaches the engine over TCP with mutual TLS", "[integration][tls]") {
    REQUIRE_ENGINE();
    REQUIRE_TLS_PROXY_TOOLS(engine_socket);
    TlsProxy proxy(engine_socket);
    TempDir ws, out;
    write_file(ws.path() / "hello.txt", "sent through the archive API, over TLS\n");
    ProcOptions po;
    po.env = proxy.env(proxy.good_certs());
    auto p =
        run_airlock({"run", "--quiet", "--pull", "never", "--workspace", ws.path().string(),
                     "--out", (out.path() / "run").string(), "--", "sh", "-c", "echo over-tls"},
                    po);
    INFO("stderr: " << p.err << "\nsocat log:\n" << proxy.log());
    REQUIRE(p.exit_code == 0);
    CHECK(read_file(out.path() / "run/logs/stdout.log") == "over-tls\n");
    auto rep = read_report(out.path() / "run");
    std::string endpoint = rep["engine"]["endpoint"].get<std::string>();
    CHECK(contains(endpoint, "tcp://127.0.0.1"));
    CHECK(contains(endpoint, "(TLS)"));
    CHECK(endpoint == proxy.docker_host() + " (TLS)");
    // The requests went through socat (not the default socket): it accepted from loopback.
    CHECK(socat_accepted_from_loopback(proxy.log()));
    require_nothing_left(p);
}

TEST_CASE("a server certificate from an unrelated CA is refused with exit 125",
          "[integration][tls]") {
    REQUIRE_ENGINE();
    REQUIRE_TLS_PROXY_TOOLS(engine_socket);
    TlsProxy proxy(engine_socket);
    TempDir ws, out;
    ProcOptions po;
    po.env = proxy.env(proxy.wrong_ca_certs());
    auto p =
        run_airlock({"run", "--quiet", "--pull", "never", "--workspace", ws.path().string(),
                     "--out", (out.path() / "run").string(), "--", "sh", "-c", "echo over-tls"},
                    po);
    INFO("stderr: " << p.err << "\nsocat log:\n" << proxy.log());
    CHECK(p.exit_code == 125);
    CHECK(contains(p.err, "cannot reach the Docker engine at " + proxy.docker_host() + " (TLS)"));
    // curl's verdict on the peer: "SSL peer certificate or SSH remote key was not OK", or with
    // its error buffer the OpenSSL detail ("certificate verify failed ...").
    CHECK(contains(lower(p.err), "certificate"));
    CHECK(socat_accepted_from_loopback(proxy.log()));
    // The task never started.
    CHECK_FALSE(contains(read_file(out.path() / "run/logs/stdout.log"), "over-tls"));
    require_nothing_left(p);
}

TEST_CASE("a client certificate the engine's CA did not sign is refused with exit 125",
          "[integration][tls]") {
    REQUIRE_ENGINE();
    REQUIRE_TLS_PROXY_TOOLS(engine_socket);
    TlsProxy proxy(engine_socket);
    TempDir ws, out;
    ProcOptions po;
    po.env = proxy.env(proxy.rogue_client_certs());
    auto p =
        run_airlock({"run", "--quiet", "--pull", "never", "--workspace", ws.path().string(),
                     "--out", (out.path() / "run").string(), "--", "sh", "-c", "echo over-tls"},
                    po);
    INFO("stderr: " << p.err << "\nsocat log:\n" << proxy.log());
    CHECK(p.exit_code == 125);
    CHECK(contains(p.err, "cannot reach the Docker engine at " + proxy.docker_host() + " (TLS)"));
    // The server side really checked the client certificate (and not, say, a bad port).
    CHECK(socat_accepted_from_loopback(proxy.log()));
    CHECK(contains(lower(proxy.log()), "certificate"));
    require_nothing_left(p);
}

TEST_CASE("airlock doctor reports the TLS engine", "[integration][tls]") {
    REQUIRE_ENGINE();
    REQUIRE_TLS_PROXY_TOOLS(engine_socket);
    TlsProxy proxy(engine_socket);
    ProcOptions po;
    po.env = proxy.env(proxy.good_certs());
    auto p = run_airlock({"doctor"}, po);
    INFO("stdout:\n" << p.out << "stderr: " << p.err << "\nsocat log:\n" << proxy.log());
    CHECK(contains(p.out, "ok    engine at " + proxy.docker_host() + " (TLS): "));
    CHECK_FALSE(contains(p.out, "reached over TCP without TLS"));
    CHECK(socat_accepted_from_loopback(proxy.log()));
}
