// POST /build without an engine: the request target, and the JSON lines of the build stream.
#include "docker/build.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

using namespace airlock::docker;

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1; // url_encode writes upper-case escapes only
}

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

// The query of a target as NAME -> raw (still encoded) value; each name at most once.
std::map<std::string, std::string> query_of(const std::string& target) {
    auto q = target.find('?');
    REQUIRE(q != std::string::npos);
    std::map<std::string, std::string> out;
    std::string rest = target.substr(q + 1);
    std::size_t pos = 0;
    while (pos <= rest.size()) {
        auto amp = rest.find('&', pos);
        std::string part =
            rest.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
        auto eq = part.find('=');
        REQUIRE(eq != std::string::npos);
        INFO(part);
        REQUIRE(out.emplace(part.substr(0, eq), part.substr(eq + 1)).second);
        if (amp == std::string::npos) break;
        pos = amp + 1;
    }
    return out;
}

BuildEvent parse(std::string_view line) {
    auto ev = parse_build_line(line);
    REQUIRE(ev.has_value());
    return *ev;
}

} // namespace

TEST_CASE("build_target always asks for rm and forcerm and no pull", "[docker][build]") {
    BuildOptions o;
    const std::string t = build_target(o);
    CHECK(t.rfind("/build?", 0) == 0);
    auto q = query_of(t);
    CHECK(q.at("rm") == "1");
    CHECK(q.at("forcerm") == "1");
    CHECK(q.at("pull") == "0");
    CHECK(q.at("dockerfile") == "Dockerfile");
    // Nothing the caller did not ask for.
    CHECK(q.count("t") == 0);
    CHECK(q.count("buildargs") == 0);
    CHECK(q.count("labels") == 0);
    CHECK(q.count("networkmode") == 0);
    CHECK(q.count("nocache") == 0);
}

TEST_CASE("build_target escapes the tag and the network mode", "[docker][build]") {
    BuildOptions o;
    o.tag = "airlock/agent-base:it-42";
    o.network_mode = "host";
    o.no_cache = NoCache::yes;
    auto q = query_of(build_target(o));
    CHECK(q.at("t") == "airlock%2Fagent-base%3Ait-42");
    CHECK(url_decode(q.at("t")) == "airlock/agent-base:it-42");
    CHECK(q.at("networkmode") == "host");
    CHECK(q.at("nocache") == "1");

    // A value that tries to add a parameter stays one value.
    o.tag = "x&pull=1 y#z";
    q = query_of(build_target(o));
    CHECK(q.at("pull") == "0");
    CHECK(url_decode(q.at("t")) == "x&pull=1 y#z");
}

TEST_CASE("build_target sends buildargs and labels as escaped JSON objects", "[docker][build]") {
    BuildOptions o;
    o.build_args = {{"BASE", "airlock/debian:bookworm"},
                    {"EXTRA_CA_CERTS", "-----BEGIN CERTIFICATE-----\nMIIB+/=\n-----END "
                                       "CERTIFICATE-----"},
                    {"QUOTE", "say \"hi\" & {x}"}};
    o.labels = {{"io.airlock.image", "agent-base"}};
    auto q = query_of(build_target(o));
    for (const char* key : {"buildargs", "labels"}) {
        INFO(key);
        for (char c : q.at(key)) {
            bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~' ||
                         c == '%';
            CHECK(plain);
        }
    }
    Json args = Json::parse(url_decode(q.at("buildargs")));
    CHECK(args == Json{{"BASE", "airlock/debian:bookworm"},
                       {"EXTRA_CA_CERTS",
                        "-----BEGIN CERTIFICATE-----\nMIIB+/=\n-----END CERTIFICATE-----"},
                       {"QUOTE", "say \"hi\" & {x}"}});
    CHECK(Json::parse(url_decode(q.at("labels"))) == Json{{"io.airlock.image", "agent-base"}});
}

TEST_CASE("parse_build_line: builder output keeps its text as sent", "[docker][build]") {
    auto ev = parse(R"({"stream":"Step 1/5 : FROM airlock/debian:bookworm\n"})");
    CHECK(ev.kind == BuildEventKind::stream);
    CHECK(ev.text == "Step 1/5 : FROM airlock/debian:bookworm\n");

    ev = parse(R"({"stream":" ---\u003e 47a72d6d9675\n"})");
    CHECK(ev.text == " ---> 47a72d6d9675\n");

    // A RUN step's partial line, without its newline.
    ev = parse(R"({"stream":"Reading package lists..."})");
    CHECK(ev.kind == BuildEventKind::stream);
    CHECK(ev.text == "Reading package lists...");
}

TEST_CASE("parse_build_line: status with id and progress", "[docker][build]") {
    auto ev = parse(
        R"({"status":"Downloading","progressDetail":{"current":1024,"total":4096},"progress":"[=====>    ] 1.024kB/4.096kB","id":"a1b2c3"})");
    CHECK(ev.kind == BuildEventKind::status);
    CHECK(ev.id == "a1b2c3");
    CHECK(ev.text == "a1b2c3: Downloading");
    CHECK(ev.progress == "[=====>    ] 1.024kB/4.096kB");

    ev = parse(R"({"status":"Pulling from library/debian","id":"bookworm"})");
    CHECK(ev.text == "bookworm: Pulling from library/debian");
    CHECK(ev.progress.empty());

    ev = parse(R"({"status":"Digest: sha256:abc"})");
    CHECK(ev.kind == BuildEventKind::status);
    CHECK(ev.id.empty());
    CHECK(ev.text == "Digest: sha256:abc");
}

TEST_CASE("parse_build_line: error and errorDetail", "[docker][build]") {
    auto ev = parse(
        R"({"errorDetail":{"code":3,"message":"The command '/bin/sh -c exit 3' returned a non-zero code: 3"},"error":"The command '/bin/sh -c exit 3' returned a non-zero code: 3"})");
    CHECK(ev.kind == BuildEventKind::error);
    CHECK(ev.text == "The command '/bin/sh -c exit 3' returned a non-zero code: 3");

    // Only errorDetail: its message.
    ev = parse(R"({"errorDetail":{"message":"pull access denied for nope\n"}})");
    CHECK(ev.kind == BuildEventKind::error);
    CHECK(ev.text == "pull access denied for nope");

    // An error wins over anything else in the object.
    ev = parse(R"({"stream":"Step 2/2 : RUN false\n","error":"boom"})");
    CHECK(ev.kind == BuildEventKind::error);
    CHECK(ev.text == "boom");

    // A non-string error is still an error, shown as JSON.
    ev = parse(R"({"error":{"why":"odd"}})");
    CHECK(ev.kind == BuildEventKind::error);
    CHECK(ev.text == R"({"why":"odd"})");
}

TEST_CASE("parse_build_line: aux carries the image id", "[docker][build]") {
    auto ev = parse(R"({"aux":{"ID":"sha256:0123456789abcdef"}})");
    CHECK(ev.kind == BuildEventKind::aux);
    CHECK(ev.image_id == "sha256:0123456789abcdef");

    // aux without an ID (BuildKit's trace messages) is nothing we use.
    ev = parse(R"({"aux":"c29tZXRoaW5n","id":"moby.buildkit.trace"})");
    CHECK(ev.kind == BuildEventKind::other);
}

TEST_CASE("parse_build_line: garbage is passed on and never fatal", "[docker][build]") {
    CHECK_FALSE(parse_build_line("").has_value());
    CHECK_FALSE(parse_build_line("  \r").has_value());

    auto ev = parse("this is not json\r");
    CHECK(ev.kind == BuildEventKind::other);
    CHECK(ev.text == "this is not json");

    ev = parse(R"({"stream": "unterminated)");
    CHECK(ev.kind == BuildEventKind::other);

    ev = parse("[1,2,3]");
    CHECK(ev.kind == BuildEventKind::other);
    ev = parse("42");
    CHECK(ev.kind == BuildEventKind::other);

    ev = parse(R"({"unknown":"field"})");
    CHECK(ev.kind == BuildEventKind::other);
    CHECK(ev.text == R"({"unknown":"field"})");

    ev = parse(std::string("{\"stream\":\"\xff\xfe\"}"));
    CHECK(ev.kind == BuildEventKind::other); // not UTF-8: not JSON
}

TEST_CASE("BuildStream splits chunks into lines and keeps the first error", "[docker][build]") {
    std::vector<BuildEvent> seen;
    BuildStream s([&](const BuildEvent& e) { seen.push_back(e); });
    const std::string body =
        "{\"stream\":\"Step 1/2 : FROM x\\n\"}\r\n"
        "{\"stream\":\" ---> 0123456789ab\\n\"}\n"
        "\n"
        "{\"errorDetail\":{\"code\":3,\"message\":\"first\"},\"error\":\"first\"}\n"
        "{\"error\":\"second\"}\n";
    // One byte at a time: lines cut anywhere.
    for (char c : body)
        REQUIRE(s.feed(std::string_view(&c, 1)));
    s.finish();
    REQUIRE(seen.size() == 4);
    CHECK(seen[0].kind == BuildEventKind::stream);
    CHECK(seen[1].text == " ---> 0123456789ab\n");
    CHECK(seen[2].kind == BuildEventKind::error);
    CHECK(s.failed());
    CHECK(s.error() == "first");
}

TEST_CASE("BuildStream: the image id from aux or from the classic builder's last line",
          "[docker][build]") {
    {
        BuildStream s(nullptr);
        REQUIRE(s.feed("{\"aux\":{\"ID\":\"sha256:feedface\"}}\n{\"stream\":\"Successfully built "
                       "feedfacecafe\\n\"}\n"));
        s.finish();
        CHECK_FALSE(s.failed());
        CHECK(s.image_id() == "sha256:feedface");
    }
    {
        BuildStream s(nullptr);
        // The last line may come without a newline.
        REQUIRE(s.feed("{\"stream\":\"Successfully built 0123456789ab\\n\"}\n{\"stream\":"
                       "\"Successfully tagged airlock/x:latest\\n\"}"));
        s.finish();
        CHECK(s.image_id() == "0123456789ab");
    }
    {
        BuildStream s(nullptr);
        REQUIRE(s.feed("{\"stream\":\"Successfully built not-an-id!\\n\"}\n"));
        s.finish();
        CHECK(s.image_id().empty());
    }
}

TEST_CASE("BuildStream refuses a line longer than 4 MiB", "[docker][build]") {
    BuildStream s(nullptr);
    const std::string chunk(1 << 20, 'x');
    bool ok = true;
    for (int i = 0; i < 6 && ok; ++i)
        ok = s.feed(chunk);
    CHECK_FALSE(ok);
    CHECK(s.protocol_error() == "a line of the build stream is longer than 4 MiB");
    CHECK_FALSE(s.feed("\n"));
}
