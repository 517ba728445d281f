// The sidecar's --config: every field, and the messages for bad ones.
#include "egress/config.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

using namespace airlock::egress;
using nlohmann::json;

namespace {

json base() {
    return {{"mode", "allowlist"},
            {"listen", "/run/airlock/egress.sock"},
            {"allow", {"allowed.test:443", "*.example.com"}},
            {"deny", {"*.internal"}},
            {"methods", {"GET", "HEAD"}},
            {"allow_cidrs", {"10.0.0.0/8"}},
            {"upload_budget", nullptr}};
}

std::string error_of(const json& doc) {
    auto c = parse_config(doc.dump());
    if (c) FAIL("accepted: " << doc.dump());
    return c.error().message;
}

} // namespace

TEST_CASE("egress config: a full configuration", "[egress]") {
    json doc = base();
    doc["upload_budget"] = 1048576;
    doc["max_connections"] = 64;
    doc["head_timeout_ms"] = 500;
    doc["hello_timeout_ms"] = 700;
    auto c = parse_config(doc.dump());
    REQUIRE(c);
    CHECK(c->mode == Mode::allowlist);
    REQUIRE(c->allow.size() == 2);
    CHECK(c->allow[0].text == "allowed.test:443");
    CHECK(c->allow[0].rule.ports == std::vector<std::uint16_t>{443});
    CHECK(c->allow[1].rule.wildcard);
    CHECK(c->deny[0].text == "*.internal");
    CHECK(c->methods == std::vector<std::string>{"GET", "HEAD"});
    CHECK(c->allow_cidrs[0].text == "10.0.0.0/8");
    CHECK(c->upload_budget == 1048576u);
    CHECK(c->listen == "/run/airlock/egress.sock");
    CHECK(c->max_connections == 64);
    CHECK(c->head_timeout_ms == 500);
    CHECK(c->hello_timeout_ms == 700);
}

TEST_CASE("egress config: defaults", "[egress]") {
    auto c = parse_config(base().dump());
    REQUIRE(c);
    CHECK_FALSE(c->upload_budget);
    CHECK(c->max_connections == 512);
    CHECK(c->head_timeout_ms == 10000);
    CHECK(c->hello_timeout_ms == 10000);
    json audit = base();
    audit["mode"] = "audit";
    CHECK(parse_config(audit.dump())->mode == Mode::audit);
}

TEST_CASE("egress config: errors name the field and the fix", "[egress]") {
    CHECK(error_of(json::array()) == "the configuration must be a JSON object");
    CHECK(parse_config("{").error().message == "the configuration is not valid JSON");
    json doc = base();
    doc["alow"] = json::array();
    CHECK(error_of(doc) == "/alow: unknown field \"alow\" (did you mean \"allow\"?)");
    doc = base();
    doc.erase("deny");
    CHECK(error_of(doc) == "/deny: is required");
    doc = base();
    doc["mode"] = "open";
    CHECK(error_of(doc) == "/mode: must be \"allowlist\" or \"audit\"");
    doc = base();
    doc["allow"] = {"ok.test", "*.*.com"};
    CHECK(error_of(doc) == "/allow/1: \"*.*.com\" is not a host pattern (use \"*.example.com\")");
    doc = base();
    doc["deny"] = {"Upper.test"};
    CHECK(error_of(doc).substr(0, 9) == "/deny/0: ");
    doc = base();
    doc["methods"] = {"GET", "BAD METHOD"};
    CHECK(error_of(doc) == "/methods/1: \"BAD METHOD\" is not an HTTP method (e.g. \"GET\")");
    doc = base();
    doc["allow_cidrs"] = {"10.0.0.0/33"};
    CHECK(error_of(doc).substr(0, 15) == "/allow_cidrs/0:");
    doc = base();
    doc["upload_budget"] = -1;
    CHECK(error_of(doc) ==
          "/upload_budget: must be a whole number of bytes, or null for no budget");
    doc["upload_budget"] = 1.5;
    CHECK(error_of(doc).substr(0, 15) == "/upload_budget:");
    doc = base();
    doc["listen"] = "relative.sock";
    CHECK(error_of(doc) == "/listen: must be an absolute path");
    doc["listen"] = "/" + std::string(200, 'x');
    CHECK(error_of(doc) == "/listen: is longer than 107 bytes");
    doc = base();
    doc["max_connections"] = 0;
    CHECK(error_of(doc) == "/max_connections: must be a whole number from 1 to 65536");
    doc = base();
    doc["head_timeout_ms"] = "10s";
    CHECK(error_of(doc) == "/head_timeout_ms: must be a whole number from 1 to 600000");
    doc = base();
    doc["allow"] = "allowed.test";
    CHECK(error_of(doc) == "/allow: must be an array of strings");
    doc["allow"] = {1};
    CHECK(error_of(doc) == "/allow/0: must be a string");
}
