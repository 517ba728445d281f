// Network modes against the real engine, with the project's own test hosts only: a docker network
// this test creates, HTTP(S) test servers on it with aliases (allowed.test, denied.test), a test
// CA, and the egress proxy pointed at that network with --egress-network. Nothing here sends
// traffic to any address but the containers this file starts.
#include "net_fixture.hpp"

#include "audit/events.hpp"
#include "sandbox/scratch_image.hpp"
#include "util/fd.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

using namespace airlock;
using namespace airlock::test;
using nlohmann::json;
namespace fs = std::filesystem;

TEST_CASE("allowlist: allowed hosts work over HTTP and HTTPS, denied ones get 403, and the agent "
          "has no other way out",
          "[integration][network]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    TempDir ws, out;
    const int allowed_before = TestNet::connections(net.allowed);
    const int denied_before = TestNet::connections(net.denied);
    const std::string script =
        // Were the agent ever given an interface, the lookups below could leave the test's
        // networks: stop first.
        "[ \"$(ls /sys/class/net)\" = lo ] || { echo iface_leak; exit 0; }\n"
        "curl -sS --max-time 10 http://allowed.test/hello; echo \"http=$?\"\n"
        "curl -sS --max-time 10 --cacert /workspace/ca.pem https://allowed.test/hello; "
        "echo \"https=$?\"\n"
        "curl -sS --max-time 10 -D /tmp/h -o /tmp/b http://denied.test/hello; "
        "echo \"denied_http=$?\"; head -n1 /tmp/h | tr -d '\\r'; "
        "grep -i '^x-airlock-deny-reason:' /tmp/h | tr -d '\\r'; cat /tmp/b\n"
        "curl -sS --max-time 10 --cacert /workspace/ca.pem https://denied.test/hello; "
        "echo \"denied_https=$?\"\n"
        "curl -sS --noproxy '*' --max-time 5 http://" +
        net.allowed.ip +
        "/hello; echo \"direct=$?\"\n"
        "getent hosts allowed.test; echo \"dns=$?\"\n"
        "getent hosts nosuch.test; echo \"dns_other=$?\"\n";
    auto r = run_script(
        ws, out, allowlist_args({"--allow", "allowed.test", "--allow-cidr", net.subnet}), script);
    INFO(r.proc.err);
    INFO(r.out);
    REQUIRE(r.proc.exit_code == 0);
    REQUIRE_FALSE(has_line(r.out, "iface_leak"));
    CHECK(has_line(r.out, "hello from allowed"));
    CHECK(has_line(r.out, "http=0"));
    CHECK(has_line(r.out, "https=0"));
    CHECK(has_line(r.out, "denied_http=0")); // curl got an answer: the 403
    CHECK(has_line(r.out, "HTTP/1.1 403 Forbidden"));
    CHECK_THAT(r.out, Catch::Contains("X-Airlock-Deny-Reason:") ||
                          Catch::Contains("x-airlock-deny-reason:"));
    CHECK_THAT(r.out, Catch::Contains("network.allow"));
    CHECK_FALSE(has_line(r.out, "denied_https=0"));
    CHECK_FALSE(has_line(r.out, "direct=0"));
    CHECK_FALSE(has_line(r.out, "dns=0"));
    CHECK_FALSE(has_line(r.out, "dns_other=0"));
    CHECK_THAT(r.out, !Catch::Contains("hello from denied"));

    // The servers saw exactly the two allowed requests and nothing for denied.test.
    CHECK(TestNet::connections(net.allowed) == allowed_before + 2);
    CHECK(TestNet::connections(net.denied) == denied_before);

    const json& n = r.report["network"];
    CHECK(n["mode"] == "allowlist");
    CHECK(n["egress_network"] == net.name);
    CHECK(n["proxy"]["enforcement"]["verified"] == true);
    CHECK(n["summary"]["allowed"] == 2);
    CHECK(n["summary"]["denied"] == 2);
    int hosts = 0;
    for (const auto& h : n["summary"]["hosts"])
        if (h["host"] == "allowed.test") {
            ++hosts;
            CHECK(h["requests"] == 1);
            CHECK(h["bytes_down"].get<long>() > 0);
        }
    CHECK(hosts == 2); // :80 and :443
    for (const auto& d : n["summary"]["refusals"]) {
        CHECK(d["host"] == "denied.test");
        CHECK(d["decision"] == "deny");
        CHECK_FALSE(d.value("reason", "").empty());
    }
    // Every decision is an event too, and the chain holds.
    auto chain = audit::verify_event_chain(r.dir / "events.jsonl");
    REQUIRE(chain);
    const std::string events = read_file(r.dir / "events.jsonl");
    std::size_t decisions = 0;
    for (std::size_t pos = 0;
         (pos = events.find("\"type\":\"network.decision\"", pos)) != std::string::npos; ++pos)
        ++decisions;
    CHECK(decisions == 4);
    require_nothing_left(r.proc);
}

TEST_CASE("allowlist: a CONNECT whose TLS SNI names another host is cut before any connect",
          "[integration][network]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    TempDir ws, out;
    const int before = TestNet::connections(net.allowed);
    auto r = run_script(
        ws, out, allowlist_args({"--allow", "allowed.test", "--allow-cidr", net.subnet}),
        "openssl s_client -proxy 127.0.0.1:3128 -connect allowed.test:443 -servername denied.test"
        " </dev/null >/tmp/o 2>&1; echo \"sni=$?\"");
    INFO(r.out);
    REQUIRE(r.proc.exit_code == 0);
    CHECK_FALSE(has_line(r.out, "sni=0"));
    auto cut = refusals(r.report, "sni");
    REQUIRE(cut.size() == 1);
    CHECK(cut[0]["decision"] == "cut");
    CHECK(cut[0]["sni"] == "denied.test");
    CHECK(TestNet::connections(net.allowed) == before);
    require_nothing_left(r.proc);
}

TEST_CASE("allowlist: a name that resolves to a private address is refused unless its CIDR is "
          "allowed",
          "[integration][network]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    TempDir ws, out;
    const int before = TestNet::connections(net.allowed);
    auto r = run_script(ws, out, allowlist_args({"--allow", "allowed.test"}),
                        "curl -sS --max-time 10 -D /tmp/h http://allowed.test/hello; "
                        "grep -i '^x-airlock-deny-reason:' /tmp/h");
    INFO(r.out);
    REQUIRE(r.proc.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("--allow-cidr"));
    auto refused = refusals(r.report, "private address");
    REQUIRE(refused.size() == 1);
    CHECK_THAT(refused[0]["rule"].get<std::string>(), Catch::Contains(net.allowed.ip));
    CHECK(TestNet::connections(net.allowed) == before); // refused before any connect
    require_nothing_left(r.proc);
}

TEST_CASE("allowlist: link-local addresses are refused before any connect",
          "[integration][network]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    TempDir ws, out;
    const int before = TestNet::connections(net.metadata);
    // The test's own link-local network, where metadata.test is a test server of ours: were the
    // fence to fail, the connection would still reach only our container, and we would see it.
    auto r = run_script(ws, out,
                        {"--policy", "permissive", "--network", "allowlist", "--egress-network",
                         net.ll_name, "--allow", "metadata.test"},
                        "curl -sS --max-time 10 http://metadata.test/hello; echo \"http=$?\"\n"
                        "curl -sS --max-time 10 --cacert /workspace/ca.pem "
                        "https://metadata.test/hello; echo \"https=$?\"");
    INFO(r.out);
    REQUIRE(r.proc.exit_code == 0);
    CHECK_THAT(r.out, !Catch::Contains("hello from metadata"));
    auto refused = refusals(r.report, "private address");
    REQUIRE(refused.size() == 2);
    for (const auto& d : refused)
        CHECK_THAT(d["rule"].get<std::string>(), Catch::Contains("169.254.77."));
    CHECK(TestNet::connections(net.metadata) == before);
    require_nothing_left(r.proc);
}

TEST_CASE("allowlist: the upload budget cuts an upload", "[integration][network]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    TempDir ws, out, pol;
    write_file(pol.path() / "budget.json",
               R"({"name": "budget", "network": {"upload_budget": "64k"}})");
    auto r = run_script(ws, out,
                        allowlist_args({"--policy", (pol.path() / "budget.json").string(),
                                        "--allow", "allowed.test", "--allow-cidr", net.subnet}),
                        "head -c 1048576 /dev/zero > /tmp/blob\n"
                        "curl -sS --max-time 20 --data-binary @/tmp/blob "
                        "http://allowed.test/upload; echo \"http=$?\"\n"
                        "curl -sS --max-time 20 --cacert /workspace/ca.pem --data-binary "
                        "@/tmp/blob https://allowed.test/upload; echo \"https=$?\"\n"
                        "curl -sS --max-time 20 http://allowed.test/hello; echo \"after=$?\"");
    INFO(r.out);
    REQUIRE(r.proc.exit_code == 0);
    CHECK_THAT(r.out, !Catch::Contains("received 1048576"));
    auto cut = refusals(r.report, "upload budget");
    REQUIRE(cut.size() >= 1);
    CHECK(cut[0]["decision"] == "cut");
    CHECK(cut[0]["bytes_up"].get<long>() <= 64 * 1024);
    // Each cut is a violation too.
    std::size_t cuts = 0, violations = 0;
    for (const auto& d : cut)
        cuts += d["decision"] == "cut" ? 1 : 0;
    for (const auto& v : r.report["violations"])
        if (v.value("rule", "") == "network-denied" &&
            v.value("message", "").rfind("cut:", 0) == 0) {
            ++violations;
            CHECK_THAT(v["message"].get<std::string>(), Catch::EndsWith(" (upload budget)"));
        }
    CHECK(violations == cuts);
    require_nothing_left(r.proc);
}

TEST_CASE("audit: everything goes through and is recorded", "[integration][network]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    TempDir ws, out;
    auto r = run_script(ws, out,
                        {"--policy", "permissive", "--network", "audit", "--egress-network",
                         net.name, "--allow-cidr", net.subnet},
                        "curl -sS --max-time 10 http://denied.test/hello; echo \"http=$?\"\n"
                        "curl -sS --max-time 10 --cacert /workspace/ca.pem "
                        "https://allowed.test/hello; echo \"https=$?\"");
    INFO(r.out);
    REQUIRE(r.proc.exit_code == 0);
    CHECK(has_line(r.out, "hello from denied"));
    CHECK(has_line(r.out, "hello from allowed"));
    const json& s = r.report["network"]["summary"];
    CHECK(r.report["network"]["mode"] == "audit");
    CHECK(s["allowed"] == 2);
    CHECK(s["refusals"].empty());
    require_nothing_left(r.proc);
}

TEST_CASE("open: an approved run puts the task on the egress network itself",
          "[integration][network]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    TempDir ws, out, pol;
    write_file(pol.path() / "open.json",
               R"({"name": "open", "approvals": {"flag": ["network.open"]}})");
    const int before = TestNet::connections(net.allowed);
    auto r =
        run_script(ws, out,
                   {"--policy", "permissive", "--policy", (pol.path() / "open.json").string(),
                    "--network", "open", "--approve", "network.open", "--egress-network", net.name},
                   "[ \"$(ls /sys/class/net)\" = lo ] && echo only_lo\n"
                   "curl -sS --noproxy '*' --max-time 10 http://allowed.test/hello; "
                   "echo \"direct=$?\"");
    INFO(r.out);
    REQUIRE(r.proc.exit_code == 0);
    CHECK_FALSE(has_line(r.out, "only_lo")); // an interface on the egress network
    CHECK(has_line(r.out, "hello from allowed"));
    CHECK(has_line(r.out, "direct=0"));
    CHECK(TestNet::connections(net.allowed) == before + 1);
    CHECK(r.report["network"]["mode"] == "open");
    CHECK(r.report["network"]["egress_network"] == net.name);
    require_nothing_left(r.proc);
}

TEST_CASE("network flags are checked against the policy before anything starts",
          "[integration][network]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    SECTION("standard does not let flags add hosts") {
        auto p =
            run_airlock(run_args(ws.path(), out.path() / "r",
                                 {"--network", "allowlist", "--allow", "allowed.test"}, {"true"}));
        CHECK(p.exit_code == 126);
        CHECK_THAT(p.err, Catch::Contains("network.flags_may_add_hosts"));
    }
    SECTION("open needs an approval") {
        auto p = run_airlock(run_args(ws.path(), out.path() / "r",
                                      {"--policy", "permissive", "--network", "open"}, {"true"}));
        CHECK(p.exit_code == 126);
        CHECK_THAT(p.err, Catch::Contains("network.open"));
    }
    SECTION("a missing egress network is a usage error, and nothing is left") {
        auto p = run_airlock(run_args(ws.path(), out.path() / "r",
                                      {"--policy", "permissive", "--network", "allowlist",
                                       "--egress-network", "airlock-no-such-network"},
                                      {"true"}));
        CHECK(p.exit_code == 2);
        CHECK_THAT(p.err, Catch::Contains("docker network create airlock-no-such-network"));
        require_nothing_left(p);
    }
    CHECK(airlock_leftovers().empty());
}

TEST_CASE("allowlist: a thousand requests in one run, each one a decision",
          "[integration][network]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    TempDir ws, out;
    std::string urls;
    for (int i = 0; i < 1000; ++i)
        urls += "url = \"http://allowed.test/hello\"\noutput = /dev/null\n";
    write_file(ws.path() / "urls", urls);
    auto r = run_script(
        ws, out, allowlist_args({"--allow", "allowed.test", "--allow-cidr", net.subnet}),
        "curl -sS --max-time 120 -K /workspace/urls -w '%{http_code}\\n' | sort | uniq -c");
    INFO(r.out);
    REQUIRE(r.proc.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("1000 200"));
    CHECK(r.report["network"]["summary"]["allowed"] == 1000);
    CHECK(r.report["network"]["summary"]["hosts"][0]["requests"] == 1000);
    require_nothing_left(r.proc);
}

TEST_CASE("allowlist: Ctrl-C and the timeout take the proxy down with the run",
          "[integration][network][teardown]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    SECTION("SIGINT") {
        TempDir ws, out;
        ProcOptions po;
        bool saw_proxy = false;
        po.while_running = [&](int pid) {
            for (int i = 0; i < 200 && !saw_proxy; ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                auto cs = client().containers_by_label("io.airlock.role", "egress");
                if (cs)
                    for (auto& c : *cs)
                        if (c.value("State", "") == "running") saw_proxy = true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            ::kill(pid, SIGINT);
        };
        auto p = run_airlock(
            run_args(
                ws.path(), out.path() / "run",
                allowlist_args({"--allow", "allowed.test", "--allow-cidr", net.subnet}),
                {"sh", "-c", "while :; do curl -s http://allowed.test/hello; sleep 0.1; done"}),
            po);
        INFO(p.err);
        REQUIRE(saw_proxy);
        CHECK(p.exit_code == 130);
        CHECK(p.seconds < 60);
        require_nothing_left(p);
    }
    SECTION("timeout") {
        TempDir ws, out;
        auto p = run_airlock(run_args(
            ws.path(), out.path() / "run",
            allowlist_args({"--allow", "allowed.test", "--allow-cidr", net.subnet, "--timeout",
                            "3s", "--grace", "1s"}),
            {"sh", "-c", "while :; do curl -s http://allowed.test/hello; sleep 0.1; done"}));
        INFO(p.err);
        CHECK(p.exit_code == 124);
        auto rep = read_report(out.path() / "run");
        CHECK(rep["network"]["summary"]["allowed"].get<int>() > 3);
        require_nothing_left(p);
    }
}

TEST_CASE("allowlist: a plain-HTTP method the policy does not list is refused",
          "[integration][network]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    TempDir ws, out, pol;
    write_file(pol.path() / "get-only.json",
               R"({"name": "get-only", "network": {"methods": ["GET", "HEAD"]}})");
    const int before = TestNet::connections(net.allowed);
    auto r = run_script(ws, out,
                        allowlist_args({"--policy", (pol.path() / "get-only.json").string(),
                                        "--allow", "allowed.test", "--allow-cidr", net.subnet}),
                        "curl -sS --max-time 10 -o /dev/null -w '%{http_code}\\n' "
                        "--data-binary x http://allowed.test/upload\n"
                        "curl -sS --max-time 10 http://allowed.test/hello");
    INFO(r.out);
    REQUIRE(r.proc.exit_code == 0);
    CHECK(has_line(r.out, "403"));
    CHECK(has_line(r.out, "hello from allowed"));
    auto refused = refusals(r.report, "method");
    REQUIRE(refused.size() == 1);
    CHECK(refused[0]["method"] == "POST");
    CHECK(TestNet::connections(net.allowed) == before + 1); // only the GET reached the server
    require_nothing_left(r.proc);
}
