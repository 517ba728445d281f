// The credential endpoint's pure parts: its --config fields, the secrets line on stdin, routing,
// and the head sent upstream.
#include "egress/config.hpp"
#include "egress/credentials.hpp"
#include "egress/response.hpp"
#include "egress/secrets_line.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <thread>
#include <unistd.h>

using namespace airlock::egress;
using nlohmann::json;

namespace {

json base() {
    return {{"mode", "allowlist"},
            {"listen", "/run/airlock/egress.sock"},
            {"allow", json::array()},
            {"deny", json::array()},
            {"methods", {"GET"}},
            {"allow_cidrs", json::array()},
            {"upload_budget", nullptr},
            {"credential_listen", "/run/airlock/credentials.sock"},
            {"ca_file", "/etc/ssl/certs/ca-certificates.crt"},
            {"credentials",
             {{{"name", "openai"},
               {"host", "API.OpenAI.com"},
               {"port", 443},
               {"base_path", "/v1"},
               {"header", "Authorization"},
               {"template", "Bearer {secret}"},
               {"max_requests", nullptr},
               {"max_bytes", 1000000}}}}};
}

std::string error_of(const json& doc) {
    auto c = parse_config(doc.dump());
    if (c) FAIL("accepted: " << doc.dump());
    return c.error().message;
}

std::vector<Credential> two() {
    Credential a;
    a.name = "openai";
    a.host = "api.openai.com";
    a.header = "Authorization";
    a.header_template = "Bearer {secret}";
    Credential b = a;
    b.name = "anthropic";
    b.header = "x-api-key";
    b.header_template = "{secret}";
    return {a, b};
}

} // namespace

TEST_CASE("egress credential config: a full endpoint", "[egress][credentials]") {
    auto c = parse_config(base().dump());
    REQUIRE(c);
    REQUIRE(c->credentials.size() == 1);
    const Credential& e = c->credentials[0];
    CHECK(e.name == "openai");
    CHECK(e.host == "api.openai.com");
    CHECK(e.port == 443);
    CHECK(e.base_path == "/v1");
    CHECK(e.header == "Authorization");
    CHECK(e.header_template == "Bearer {secret}");
    CHECK_FALSE(e.max_requests);
    CHECK(e.max_bytes == 1000000u);
    CHECK(c->credential_listen == "/run/airlock/credentials.sock");
    CHECK(c->ca_file == "/etc/ssl/certs/ca-certificates.crt");
}

TEST_CASE("egress credential config: absent means none", "[egress][credentials]") {
    json doc = base();
    doc.erase("credentials");
    doc.erase("credential_listen");
    doc.erase("ca_file");
    auto c = parse_config(doc.dump());
    REQUIRE(c);
    CHECK(c->credentials.empty());
    CHECK(c->credential_listen.empty());
}

TEST_CASE("egress credential config: errors", "[egress][credentials]") {
    json doc = base();
    doc["credentials"][0]["hedaer"] = "x";
    CHECK(error_of(doc) ==
          "/credentials/0/hedaer: unknown field \"hedaer\" (did you mean \"header\"?)");

    doc = base();
    doc["credentials"][0]["name"] = "Open AI";
    CHECK(error_of(doc) == "/credentials/0/name: \"Open AI\" is not an endpoint name (lower-case "
                           "letters, digits, '-' and '_', starting with a letter or digit, at "
                           "most 63)");
    doc["credentials"][0]["name"] = "_x";
    CHECK(error_of(doc).find("is not an endpoint name") != std::string::npos);
    doc["credentials"][0]["name"] = std::string(64, 'a');
    CHECK(error_of(doc).find("is not an endpoint name") != std::string::npos);

    doc = base();
    doc["credentials"].push_back(doc["credentials"][0]);
    CHECK(error_of(doc) ==
          "/credentials/1/name: \"openai\" names two endpoints (names are unique)");

    doc = base();
    doc["credentials"][0]["host"] = "api..openai.com";
    CHECK(error_of(doc) == "/credentials/0/host: \"api..openai.com\" is not a host name or IP "
                           "address (e.g. \"api.openai.com\")");
    doc["credentials"][0]["host"] = "127.1";
    CHECK(error_of(doc).find("is not a host name") != std::string::npos);
    doc["credentials"][0]["host"] = "::1";
    CHECK(parse_config(doc.dump()));

    doc = base();
    doc["credentials"][0]["port"] = 0;
    CHECK(error_of(doc) == "/credentials/0/port: must be a whole number from 1 to 65535");

    for (const char* path : {"v1", "/v1/", "/v1?x", "/v#1", "/"}) {
        doc = base();
        doc["credentials"][0]["base_path"] = path;
        CHECK(error_of(doc).find("/credentials/0/base_path: ") == 0);
    }
    doc["credentials"][0]["base_path"] = "";
    CHECK(parse_config(doc.dump()));

    doc = base();
    doc["credentials"][0]["header"] = "Content-Length";
    CHECK(error_of(doc) == "/credentials/0/header: \"Content-Length\" cannot carry a credential "
                           "(it frames or routes the request); use e.g. \"Authorization\"");
    doc["credentials"][0]["header"] = "host";
    CHECK(error_of(doc).find("cannot carry a credential") != std::string::npos);
    doc["credentials"][0]["header"] = "X Key";
    CHECK(error_of(doc) ==
          "/credentials/0/header: \"X Key\" is not an HTTP header name (e.g. \"Authorization\")");

    doc = base();
    doc["credentials"][0]["template"] = "Bearer";
    CHECK(
        error_of(doc) ==
        "/credentials/0/template: must hold \"{secret}\" exactly once (e.g. \"Bearer {secret}\")");
    doc["credentials"][0]["template"] = "{secret}{secret}";
    CHECK(error_of(doc).find("exactly once") != std::string::npos);
    doc["credentials"][0]["template"] = "Bearer {secret}\r\nX: y";
    CHECK(error_of(doc) == "/credentials/0/template: contains a CR, LF or NUL byte");

    doc = base();
    doc["credentials"][0]["max_requests"] = 0;
    CHECK(error_of(doc) ==
          "/credentials/0/max_requests: must be a positive whole number, or null for no limit");

    doc = base();
    doc.erase("credential_listen");
    CHECK(error_of(doc) == "/credential_listen: is required when credentials are configured");
    doc = base();
    doc.erase("ca_file");
    CHECK(error_of(doc) == "/ca_file: is required when credentials are configured");
    doc = base();
    doc["credentials"] = json::array();
    CHECK(error_of(doc) == "/credential_listen: is set but there are no credentials (remove it, "
                           "or add credentials)");
    doc = base();
    doc["credentials"][0].erase("template");
    CHECK(error_of(doc) == "/credentials/0/template: is required");
    doc = base();
    doc["credentail_listen"] = "/x";
    CHECK(error_of(doc) == "/credentail_listen: unknown field \"credentail_listen\" (did you mean "
                           "\"credential_listen\"?)");
}

TEST_CASE("egress secrets line: parsed, checked, never quoted", "[egress][credentials]") {
    auto ok = parse_secrets_line(R"({"secrets":{"openai":"sk-1","anthropic":"sk-2"}})", two());
    REQUIRE(ok);
    CHECK(ok->values.at("openai") == "sk-1");
    CHECK(ok->values.at("anthropic") == "sk-2");
    CHECK(parse_secrets_line("{\"secrets\":{\"openai\":\"a\",\"anthropic\":\"b\"}}\r", two()));

    auto error = [](std::string_view line) {
        auto r = parse_secrets_line(line, two());
        if (r) FAIL("accepted: " << line);
        CHECK(r.error().message.find("SECRETVALUE") == std::string::npos);
        return r.error().message;
    };
    CHECK(error(R"({"secrets":{"openai":"SECRETVALUE"}})") ==
          "the secrets line on stdin: /secrets/anthropic: is missing (every endpoint needs its "
          "secret)");
    CHECK(error(R"({"secrets":{"openai":"SECRETVALUE","anthropic":"x","other":"y"}})") ==
          "the secrets line on stdin: /secrets/other: no credential endpoint has this name in "
          "--config");
    CHECK(error(R"({"secrets":{"openai":"SECRET\nVALUE","anthropic":"x"}})") ==
          "the secrets line on stdin: /secrets/openai: contains a CR, LF or NUL byte, which "
          "cannot go in a header");
    CHECK(error(R"({"secrets":{"openai":"SECRET\u0000VALUE","anthropic":"x"}})")
              .find("contains a CR, LF or NUL byte") != std::string::npos);
    CHECK(error(R"({"secrets":{"openai":"SECRET\rVALUE","anthropic":"x"}})")
              .find("contains a CR, LF or NUL byte") != std::string::npos);
    CHECK(error(R"({"secrets":{"openai":1,"anthropic":"x"}})") ==
          "the secrets line on stdin: /secrets/openai: must be a string");
    CHECK(error(R"({"secrets":{"openai":"SECRETVALUE",)") ==
          "the secrets line on stdin: is not valid JSON");
    CHECK(error(R"({"secret":{}})").find("must be a JSON object") != std::string::npos);
    CHECK(error(R"({"secrets":{"openai":"SECRETVALUE","anthropic":"x"},"x":1})") ==
          "the secrets line on stdin: unknown field \"x\" (only \"secrets\")");
    CHECK(error("") == "the secrets line on stdin: is not valid JSON");
}

TEST_CASE("egress secrets line: read from a descriptor", "[egress][credentials]") {
    int p[2];
    REQUIRE(::pipe(p) == 0);
    const std::string text = "{\"secrets\":{}}\nrest";
    REQUIRE(::write(p[1], text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    auto line = read_secrets_line(p[0], std::chrono::milliseconds(1000));
    REQUIRE(line);
    CHECK(*line == "{\"secrets\":{}}");
    char rest[4] = {};
    CHECK(::read(p[0], rest, 4) == 4); // nothing after the line was consumed
    ::close(p[1]);
    auto eof = read_secrets_line(p[0], std::chrono::milliseconds(1000));
    REQUIRE_FALSE(eof);
    CHECK(eof.error().message == "stdin ended before the secrets line was complete");
    ::close(p[0]);

    REQUIRE(::pipe(p) == 0);
    auto late = read_secrets_line(p[0], std::chrono::milliseconds(50));
    REQUIRE_FALSE(late);
    CHECK(late.error().message == "no secrets line arrived on stdin within 0 s");
    const std::string big(k_max_secrets_line + 1, 'x');
    std::thread writer([&] { [[maybe_unused]] auto n = ::write(p[1], big.data(), big.size()); });
    auto too_long = read_secrets_line(p[0], std::chrono::milliseconds(5000));
    writer.join();
    REQUIRE_FALSE(too_long);
    CHECK(too_long.error().message == "the secrets line on stdin is longer than 64 KiB");
    ::close(p[0]);
    ::close(p[1]);
}

TEST_CASE("egress credentials: routing and the upstream head", "[egress][credentials]") {
    Credential c = two()[0];
    c.base_path = "/v1";
    CHECK(upstream_target(c, "/openai") == "/v1/");
    CHECK(upstream_target(c, "/openai/") == "/v1/");
    CHECK(upstream_target(c, "/openai/chat/completions?x=1") == "/v1/chat/completions?x=1");
    CHECK(upstream_target(c, "/openai?x=1") == "/v1/?x=1");
    c.base_path = "";
    CHECK(upstream_target(c, "/openai") == "/");
    CHECK(upstream_target(c, "/openai/models") == "/models");

    CredentialEndpoint endpoint(c, credential_header_line(c, "sk-1"));
    auto parsed =
        parse_origin_head("POST /openai/x HTTP/1.1\r\nHost: 127.0.0.1:3129\r\n"
                          "authorization: Bearer placeholder\r\nConnection: keep-alive, "
                          "X-Hop\r\nX-Hop: 1\r\nProxy-Authorization: p\r\nContent-Length: "
                          "2\r\nUser-Agent: t\r\n\r\n");
    REQUIRE(std::holds_alternative<RequestHead>(parsed));
    const RequestHead& head = std::get<RequestHead>(parsed);
    CHECK(head.body == BodyFraming::length);
    CHECK(credential_upstream_head(head, endpoint, "/x") ==
          "POST /x HTTP/1.1\r\nHost: api.openai.com\r\nContent-Length: 2\r\nUser-Agent: "
          "t\r\nAuthorization: Bearer sk-1\r\nConnection: close\r\n\r\n");

    auto absolute = parse_origin_head("GET http://other/x HTTP/1.1\r\n\r\n");
    REQUIRE(std::holds_alternative<HeadError>(absolute));
    CHECK(std::get<HeadError>(absolute).status == 400);
    CHECK(std::get<HeadError>(absolute).message ==
          "the credential endpoint takes origin-form requests only (GET /<endpoint>/path "
          "HTTP/1.1), not \"http://other/x\"");
    auto connect = parse_origin_head("CONNECT api.openai.com:443 HTTP/1.1\r\n\r\n");
    REQUIRE(std::holds_alternative<HeadError>(connect));
    CHECK(std::get<HeadError>(connect).message.find("origin-form requests only") !=
          std::string::npos);
}

TEST_CASE("egress credentials: the upstream's response head", "[egress][credentials]") {
    auto ok = parse_response_head("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: "
                                  "timeout=5\r\nTransfer-Encoding: chunked\r\nContent-Length: "
                                  "9\r\nX: y\r\n\r\n",
                                  "POST");
    REQUIRE(std::holds_alternative<ResponseHead>(ok));
    const auto& head = std::get<ResponseHead>(ok);
    CHECK(head.status == 200);
    CHECK(head.body == ResponseBody::chunked);
    CHECK(head.forwarded ==
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\nConnection: close\r\n\r\n");

    auto length = parse_response_head("HTTP/1.1 404 \r\nContent-Length: 12\r\n\r\n", "GET");
    REQUIRE(std::holds_alternative<ResponseHead>(length));
    CHECK(std::get<ResponseHead>(length).body == ResponseBody::length);
    CHECK(std::get<ResponseHead>(length).content_length == 12);
    auto head_request =
        parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", "HEAD");
    CHECK(std::get<ResponseHead>(head_request).body == ResponseBody::none);
    auto no_content = parse_response_head("HTTP/1.1 204 No Content\r\n\r\n", "GET");
    CHECK(std::get<ResponseHead>(no_content).body == ResponseBody::none);
    auto until_close = parse_response_head("HTTP/1.0 200 OK\r\n\r\n", "GET");
    CHECK(std::get<ResponseHead>(until_close).body == ResponseBody::until_close);

    CHECK(std::holds_alternative<ResponseError>(parse_response_head("SSH-2.0\r\n\r\n", "GET")));
    CHECK(std::holds_alternative<ResponseError>(parse_response_head(
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "GET")));
}
