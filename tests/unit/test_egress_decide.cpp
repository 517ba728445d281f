// The proxy's decisions, the words that explain them, the refusal response, the upload budget
// and where a request body ends.
#include "egress/body.hpp"
#include "egress/budget.hpp"
#include "egress/decide.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace airlock::egress;

namespace {

Config config(Mode mode = Mode::allowlist) {
    Config c;
    c.mode = mode;
    for (const char* r : {"allowed.test:443", "*.example.com", "plain.test"})
        c.allow.push_back({r, *airlock::policy::parse_host_rule(r)});
    for (const char* r : {"*.internal", "secret.example.com"})
        c.deny.push_back({r, *airlock::policy::parse_host_rule(r)});
    c.methods = {"GET", "HEAD"};
    return c;
}

} // namespace

TEST_CASE("egress decide: allow rules", "[egress]") {
    const Config c = config();
    auto v = decide(c, RequestKind::connect, "CONNECT", "allowed.test", 443);
    CHECK(v.outcome == Outcome::allow);
    CHECK(v.rule == "network.allow \"allowed.test:443\"");
    CHECK(decide(c, RequestKind::connect, "CONNECT", "a.b.example.com", 8443).rule ==
          "network.allow \"*.example.com\"");
    CHECK(decide(c, RequestKind::absolute, "GET", "plain.test", 80).outcome == Outcome::allow);
}

TEST_CASE("egress decide: no allow rule says what to add", "[egress]") {
    const Config c = config();
    auto v = decide(c, RequestKind::connect, "CONNECT", "denied.test", 443);
    CHECK(v.outcome == Outcome::deny);
    CHECK(v.rule == "no allow rule");
    CHECK(v.reason == "no network.allow rule matches denied.test:443; add \"denied.test:443\" to "
                      "network.allow in the policy, or pass --allow denied.test:443 where the "
                      "policy lets flags add hosts");
    CHECK(decide(c, RequestKind::connect, "CONNECT", "allowed.test", 8443).rule == "no allow rule");
    CHECK(decide(c, RequestKind::connect, "CONNECT", "example.com", 443).rule == "no allow rule");
    CHECK(decide(c, RequestKind::connect, "CONNECT", "::1", 443).reason.find("IPv6") !=
          std::string::npos);
}

TEST_CASE("egress decide: deny wins over allow, in audit mode too", "[egress]") {
    for (Mode mode : {Mode::allowlist, Mode::audit}) {
        const Config c = config(mode);
        auto v = decide(c, RequestKind::connect, "CONNECT", "secret.example.com", 443);
        CHECK(v.outcome == Outcome::deny);
        CHECK(v.rule == "network.deny \"secret.example.com\"");
        CHECK(v.reason.find("remove or narrow that deny rule") != std::string::npos);
        CHECK(decide(c, RequestKind::absolute, "GET", "db.internal", 80).rule ==
              "network.deny \"*.internal\"");
    }
}

TEST_CASE("egress decide: plain-HTTP methods", "[egress]") {
    const Config c = config();
    auto v = decide(c, RequestKind::absolute, "POST", "plain.test", 80);
    CHECK(v.outcome == Outcome::deny);
    CHECK(v.rule == "method POST");
    CHECK(v.reason == "the plain-HTTP method POST is not in network.methods (GET, HEAD); add "
                      "\"POST\" to network.methods in the policy to allow it");
    // CONNECT is governed by host rules only.
    CHECK(decide(c, RequestKind::connect, "CONNECT", "allowed.test", 443).outcome ==
          Outcome::allow);
    // A host without an allow rule is refused for that first.
    CHECK(decide(c, RequestKind::absolute, "POST", "other.test", 80).rule == "no allow rule");
}

TEST_CASE("egress decide: audit lets everything else through", "[egress]") {
    const Config c = config(Mode::audit);
    for (auto v : {decide(c, RequestKind::connect, "CONNECT", "anything.test", 22),
                   decide(c, RequestKind::absolute, "DELETE", "plain.test", 80)}) {
        CHECK(v.outcome == Outcome::allow);
        CHECK(v.rule == "audit");
    }
}

TEST_CASE("egress decide: fence, SNI and budget refusals", "[egress]") {
    auto p = private_address_verdict("db.test", {*parse_ip("172.18.0.2"), *parse_ip("fd00::2")});
    CHECK(p.rule == "private address 172.18.0.2");
    CHECK(p.reason == "db.test resolves only to addresses the proxy does not reach: 172.18.0.2 "
                      "(private), fd00::2 (unique-local); to allow it, add its CIDR to "
                      "network.allow_cidrs (or --allow-cidr 172.18.0.2/32)");
    auto s = sni_mismatch_verdict("allowed.test", "evil.test", true);
    CHECK(s.outcome == Outcome::cut);
    CHECK(s.rule == "sni mismatch");
    CHECK(s.reason.find("\"evil.test\"") != std::string::npos);
    CHECK(s.reason.find("\"allowed.test\"") != std::string::npos);
    auto b = budget_verdict("allowed.test", 1000, Outcome::cut);
    CHECK(b.rule == "upload budget");
    CHECK(b.reason == "the upload budget of 1000 bytes for allowed.test is spent; raise "
                      "network.upload_budget in the policy to send more");
}

TEST_CASE("egress decide: the refusal response", "[egress]") {
    const std::string r = refusal_response(403, "no rule\r\nInjected: yes");
    const std::string body = "airlock egress: no rule  Injected: yes\n";
    CHECK(r == "HTTP/1.1 403 Forbidden\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n"
               "X-Airlock-Deny-Reason: no rule  Injected: yes\r\n"
               "Content-Length: " +
                   std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    CHECK(refusal_response(408, "slow").substr(0, 30) == "HTTP/1.1 408 Request Timeout\r\n");
    CHECK(refusal_response(431, "big").substr(0, 45) ==
          "HTTP/1.1 431 Request Header Fields Too Large\r");
}

TEST_CASE("egress budget: per host, shared, and spent for good once cut", "[egress]") {
    UploadBudget none(std::nullopt);
    CHECK(none.take("a", 1u << 30));
    CHECK_FALSE(none.spent("a"));

    UploadBudget budget(100);
    CHECK(budget.take("a", 60));
    CHECK_FALSE(budget.take("a", 41));
    CHECK(budget.spent("a"));
    CHECK_FALSE(budget.take("a", 1));
    CHECK(budget.take("b", 100));
    CHECK(budget.spent("b"));
    CHECK_FALSE(budget.spent("c"));
    CHECK(UploadBudget(0).spent("c"));

    UploadBudget shared(10000);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i)
                (void)shared.take("h", 3);
        });
    for (auto& t : threads)
        t.join();
    CHECK(shared.spent("h"));
}

TEST_CASE("egress body: Content-Length", "[egress]") {
    BodyScanner none(BodyFraming::none, 0);
    CHECK(none.done());
    CHECK(none.feed("GET http://x/ HTTP/1.1\r\n\r\n") == 0);
    BodyScanner len(BodyFraming::length, 5);
    CHECK(len.feed("abc") == 3);
    CHECK_FALSE(len.done());
    CHECK(len.feed("deNEXT") == 2);
    CHECK(len.done());
    CHECK(len.feed("more") == 0);
}

TEST_CASE("egress body: chunked, at every split point", "[egress]") {
    const std::string body = "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: v\r\n\r\n";
    const std::string after = "GET http://x/ HTTP/1.1\r\n\r\n";
    for (std::size_t cut = 0; cut <= body.size() + after.size(); ++cut) {
        const std::string all = body + after;
        BodyScanner s(BodyFraming::chunked, 0);
        const std::size_t first = s.feed(std::string_view(all).substr(0, cut));
        const std::size_t second = s.feed(std::string_view(all).substr(cut));
        CHECK(first + second == body.size());
        CHECK(s.done());
    }
}

TEST_CASE("egress body: broken chunked framing fails", "[egress]") {
    for (const char* bad : {"x\r\n", "5\nhello\r\n", "5\r\nhelloX\r\n", "\r\n",
                            "10000000000000000\r\n", "0\r\n\r\r", "1\r\na\r\n0\r\nbad\x01\r\n"}) {
        BodyScanner s(BodyFraming::chunked, 0);
        s.feed(bad);
        CHECK(s.failed());
        CHECK_FALSE(s.done());
    }
    BodyScanner ok(BodyFraming::chunked, 0);
    CHECK(ok.feed("0\r\n\r\n") == 5);
    CHECK(ok.done());
}
