// The pure helpers of the engine client: query encoding, label filters, versions, errors.
#include "docker/client.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace airlock::docker;
using airlock::util::ErrorKind;

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// Strict percent-decoding: fails the test on a malformed escape.
std::string url_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        REQUIRE(i + 2 < s.size());
        int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        REQUIRE(hi >= 0);
        REQUIRE(lo >= 0);
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

bool only_unreserved_or_escapes(std::string_view s) {
    for (char c : s) {
        bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
        if (!unreserved && c != '%') return false;
    }
    return true;
}

Response response(long status, std::string body) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

} // namespace

TEST_CASE("url_encode keeps RFC 3986 unreserved characters", "[docker][client]") {
    CHECK(url_encode("") == "");
    CHECK(url_encode("abcXYZ019-_.~") == "abcXYZ019-_.~");
}

TEST_CASE("url_encode escapes everything else with upper-case hex", "[docker][client]") {
    CHECK(url_encode(" ") == "%20");
    CHECK(url_encode("a/b") == "a%2Fb");
    CHECK(url_encode("ubuntu:22.04") == "ubuntu%3A22.04");
    CHECK(url_encode("a=b&c") == "a%3Db%26c");
    CHECK(url_encode("100%") == "100%25");
    CHECK(url_encode("{\"x\"}") == "%7B%22x%22%7D");
    CHECK(url_encode("\xc3\xa9") == "%C3%A9"); // UTF-8 é, byte by byte
    CHECK(url_encode(std::string_view("\0\xff", 2)) == "%00%FF");
}

TEST_CASE("url_encode round-trips every byte value", "[docker][client]") {
    std::string all;
    for (int i = 0; i < 256; ++i)
        all.push_back(static_cast<char>(i));
    std::string enc = url_encode(all);
    CHECK(only_unreserved_or_escapes(enc));
    CHECK(url_decode(enc) == all);
}

TEST_CASE("label_filter is a url-encoded JSON filter on KEY=VALUE", "[docker][client]") {
    std::string f = label_filter("io.airlock.run", "run-123");
    CHECK(only_unreserved_or_escapes(f));
    auto j = Json::parse(url_decode(f));
    CHECK(j == Json{{"label", Json::array({"io.airlock.run=run-123"})}});
}

TEST_CASE("label_filter with an empty value selects on the key alone", "[docker][client]") {
    auto j = Json::parse(url_decode(label_filter("io.airlock.run", "")));
    REQUIRE(j.is_object());
    REQUIRE(j.contains("label"));
    CHECK(j["label"] == Json::array({"io.airlock.run"}));
}

TEST_CASE("label_filter survives quotes and special characters in the value", "[docker][client]") {
    const std::string value = "a \"quoted\" & /weird\\ value=1";
    auto j = Json::parse(url_decode(label_filter("k", value)));
    CHECK(j["label"][0] == "k=" + value);
}

TEST_CASE("compare_api_versions compares numerically, part by part", "[docker][client]") {
    CHECK(compare_api_versions("1.41", "1.41") == 0);
    CHECK(compare_api_versions("1.40", "1.41") < 0);
    CHECK(compare_api_versions("1.41", "1.40") > 0);
    CHECK(compare_api_versions("1.9", "1.41") < 0); // not a string comparison
    CHECK(compare_api_versions("1.100", "1.41") > 0);
    CHECK(compare_api_versions("2.0", "1.41") > 0);
    CHECK(compare_api_versions("1.43", k_max_api_version) > 0);
    CHECK(compare_api_versions(k_min_api_version, k_max_api_version) < 0);
}

TEST_CASE("error_from_response picks the kind from the status", "[docker][client]") {
    struct Case {
        long status;
        ErrorKind kind;
    };
    const Case cases[] = {
        {404, ErrorKind::not_found},     {409, ErrorKind::conflict},
        {500, ErrorKind::server_error},  {502, ErrorKind::server_error},
        {503, ErrorKind::server_error},  {400, ErrorKind::invalid_input},
        {403, ErrorKind::invalid_input}, {401, ErrorKind::protocol},
        {418, ErrorKind::protocol},
    };
    for (const auto& c : cases) {
        INFO("status " << c.status);
        auto e = error_from_response(response(c.status, R"({"message":"m"})"), "thing");
        CHECK(e.kind == c.kind);
        CHECK(e.message == "thing: engine said " + std::to_string(c.status) + ": m");
    }
}

TEST_CASE("error_from_response takes the engine's JSON message", "[docker][client]") {
    auto e = error_from_response(response(404, R"({"message":"No such container: abc123"})"),
                                 "container abc123");
    CHECK(e.kind == ErrorKind::not_found);
    CHECK(e.message == "container abc123: engine said 404: No such container: abc123");

    auto c = error_from_response(
        response(409,
                 "{\"message\":\"Conflict. The container name \\\"/x\\\" is already in use\"}\n"),
        "create x");
    CHECK(c.kind == ErrorKind::conflict);
    CHECK(c.message ==
          "create x: engine said 409: Conflict. The container name \"/x\" is already in use");
}

TEST_CASE("error_from_response tolerates a body that is not JSON", "[docker][client]") {
    auto e = error_from_response(response(500, "Internal Server Error\r\n\n"), "ping");
    CHECK(e.kind == ErrorKind::server_error);
    CHECK(e.message == "ping: engine said 500: Internal Server Error");

    auto empty = error_from_response(response(502, ""), "ping");
    CHECK(empty.kind == ErrorKind::server_error);
    CHECK(empty.message == "ping: engine said 502: ");

    auto broken = error_from_response(response(404, "{\"message\":"), "image x");
    CHECK(broken.kind == ErrorKind::not_found);
    CHECK(broken.message == "image x: engine said 404: {\"message\":");
}

TEST_CASE("error_from_response uses the raw body when there is no string message",
          "[docker][client]") {
    auto no_message = error_from_response(response(500, R"({"error":"boom"})"), "x");
    CHECK(no_message.message == R"(x: engine said 500: {"error":"boom"})");

    auto number = error_from_response(response(500, R"({"message":42})"), "x");
    CHECK(number.message == R"(x: engine said 500: {"message":42})");

    auto array = error_from_response(response(500, R"(["message"])"), "x");
    CHECK(array.message == R"(x: engine said 500: ["message"])");
}

TEST_CASE("error_from_response cuts a long body to 300 characters", "[docker][client]") {
    std::string body = std::string(1000, 'h');
    auto e = error_from_response(response(500, body), "x");
    CHECK(e.message == "x: engine said 500: " + std::string(300, 'h'));
}
