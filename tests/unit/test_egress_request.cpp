// The proxy's request-head parser: the two request forms it forwards, and every refusal.
#include "egress/request.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace airlock::egress;

namespace {

RequestHead ok(const std::string& head) {
    ParsedHead parsed = parse_request_head(head);
    if (auto* e = std::get_if<HeadError>(&parsed)) FAIL("refused: " << e->message);
    return std::get<RequestHead>(parsed);
}

HeadError refused(const std::string& head) {
    ParsedHead parsed = parse_request_head(head);
    if (std::holds_alternative<RequestHead>(parsed)) FAIL("accepted: " << head);
    return std::get<HeadError>(parsed);
}

} // namespace

TEST_CASE("egress request: CONNECT host:port", "[egress]") {
    auto h = ok("CONNECT Api.Example.COM.:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n");
    CHECK(h.kind == RequestKind::connect);
    CHECK(h.method == "CONNECT");
    CHECK(h.host == "api.example.com");
    CHECK(h.port == 443);
    CHECK(h.target.empty());
    REQUIRE(h.headers.size() == 1);
    CHECK(h.headers[0].name == "Host");
    CHECK(h.headers[0].value == "api.example.com:443");
}

TEST_CASE("egress request: CONNECT to an IPv6 literal", "[egress]") {
    auto h = ok("CONNECT [2001:DB8::1]:8443 HTTP/1.1\r\n\r\n");
    CHECK(h.host == "2001:db8::1");
    CHECK(h.port == 8443);
    CHECK(authority(h.host, h.port) == "[2001:db8::1]:8443");
    CHECK(refused("CONNECT 2001:db8::1:443 HTTP/1.1\r\n\r\n").message.find("brackets") !=
          std::string::npos);
    CHECK(refused("CONNECT [nope]:443 HTTP/1.1\r\n\r\n").status == 400);
    CHECK(refused("CONNECT [::1:443 HTTP/1.1\r\n\r\n").status == 400);
    CHECK(refused("CONNECT [fe80::1%eth0]:443 HTTP/1.1\r\n\r\n").status == 400);
}

TEST_CASE("egress request: CONNECT needs a port from 1 to 65535", "[egress]") {
    CHECK(refused("CONNECT example.com HTTP/1.1\r\n\r\n").message ==
          "CONNECT needs host:port, got \"example.com\"");
    CHECK(refused("CONNECT example.com: HTTP/1.1\r\n\r\n").status == 400);
    CHECK(refused("CONNECT example.com:0 HTTP/1.1\r\n\r\n").status == 400);
    CHECK(refused("CONNECT example.com:65536 HTTP/1.1\r\n\r\n").status == 400);
    CHECK(refused("CONNECT example.com:+443 HTTP/1.1\r\n\r\n").status == 400);
    CHECK(ok("CONNECT example.com:65535 HTTP/1.1\r\n\r\n").port == 65535);
}

TEST_CASE("egress request: absolute http:// URIs", "[egress]") {
    auto h = ok("GET http://Example.com/a/b?q=1#frag HTTP/1.1\r\nAccept: */*\r\n\r\n");
    CHECK(h.kind == RequestKind::absolute);
    CHECK(h.host == "example.com");
    CHECK(h.port == 80);
    CHECK(h.target == "/a/b?q=1");
    CHECK(target_path(h.target) == "/a/b");
    CHECK(h.body == BodyFraming::none);

    CHECK(ok("GET http://example.com HTTP/1.0\r\n\r\n").target == "/");
    CHECK(ok("GET http://example.com?x=1 HTTP/1.1\r\n\r\n").target == "/?x=1");
    CHECK(ok("GET HTTP://example.com:8080/ HTTP/1.1\r\n\r\n").port == 8080);
    CHECK(ok("GET http://example.com:/ HTTP/1.1\r\n\r\n").port == 80);
    auto v6 = ok("HEAD http://[::1]:8080/x HTTP/1.1\r\n\r\n");
    CHECK(v6.host == "::1");
    CHECK(v6.port == 8080);
    // Bare LF line ends are read too.
    CHECK(ok("GET http://example.com/ HTTP/1.1\nA: b\n\n").headers.size() == 1);
}

TEST_CASE("egress request: targets the proxy does not forward", "[egress]") {
    auto origin = refused("GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n");
    CHECK(origin.status == 400);
    CHECK(origin.message.find("origin-form") != std::string::npos);
    CHECK(origin.message.find("http://host/path") != std::string::npos);
    auto https = refused("GET https://example.com/ HTTP/1.1\r\n\r\n");
    CHECK(https.message.find("CONNECT") != std::string::npos);
    CHECK(refused("GET ftp://example.com/ HTTP/1.1\r\n\r\n").message ==
          "the scheme \"ftp\" is not supported (http:// or CONNECT only)");
    CHECK(refused("OPTIONS * HTTP/1.1\r\n\r\n").status == 400);
    CHECK(refused("GET example.com:80 HTTP/1.1\r\n\r\n").status == 400);
    CHECK(refused("GET http://user:pw@example.com/ HTTP/1.1\r\n\r\n").message.find("user") !=
          std::string::npos);
    CHECK(refused("GET http:///x HTTP/1.1\r\n\r\n").status == 400);
}

TEST_CASE("egress request: host names", "[egress]") {
    CHECK(refused("GET http://exa mple.com/ HTTP/1.1\r\n\r\n").status == 400);
    CHECK(refused("GET http://a..b/ HTTP/1.1\r\n\r\n").status == 400);
    CHECK(refused("GET http://a%2eb/ HTTP/1.1\r\n\r\n").status == 400);
    CHECK(refused("GET http://" + std::string(64, 'a') + ".com/ HTTP/1.1\r\n\r\n").status == 400);
    CHECK(ok("GET http://_srv.example.com/ HTTP/1.1\r\n\r\n").host == "_srv.example.com");
    CHECK(ok("GET http://10.0.0.1/ HTTP/1.1\r\n\r\n").host == "10.0.0.1");
    // Forms getaddrinfo reads as IPv4 addresses, which host rules would not recognise.
    for (const char* odd : {"127.1", "0x7f000001", "2130706433", "017700000001", "10.1.1"})
        CHECK(refused(std::string("CONNECT ") + odd + ":443 HTTP/1.1\r\n\r\n")
                  .message.find("non-standard") != std::string::npos);
}

TEST_CASE("egress request: request line and version", "[egress]") {
    CHECK(refused("GET  http://a/ HTTP/1.1\r\n\r\n").status == 400);
    CHECK(refused("GET http://a/ HTTP/1.1 \r\n\r\n").status == 400);
    CHECK(refused("GET http://a/\r\n\r\n").status == 400);
    CHECK(refused("G(T http://a/ HTTP/1.1\r\n\r\n").status == 400);
    CHECK(refused("GET http://a/ HTTP/2.0\r\n\r\n").status == 505);
    CHECK(refused("GET http://a/ FOO/1.1\r\n\r\n").status == 400);
    CHECK(refused("GET http://a/\x01 HTTP/1.1\r\n\r\n").status == 400);
    CHECK(refused("\r\n\r\n").status == 400);
}

TEST_CASE("egress request: header lines", "[egress]") {
    CHECK(refused("GET http://a/ HTTP/1.1\r\nNoColon\r\n\r\n").message ==
          "the header line \"NoColon\" has no colon");
    CHECK(refused("GET http://a/ HTTP/1.1\r\nHost : a\r\n\r\n").status == 400);
    CHECK(refused("GET http://a/ HTTP/1.1\r\nA: b\r\n c\r\n\r\n").message.find("folding") !=
          std::string::npos);
    CHECK(refused("GET http://a/ HTTP/1.1\r\nA: b\rc\r\n\r\n").status == 400);
    CHECK(refused("GET http://a/ HTTP/1.1\r\nA: b\x7f\r\n\r\n").status == 400);
    CHECK(refused("GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status == 400);
    auto h = ok("GET http://a/ HTTP/1.1\r\nX-Tab:\tv\t \r\nEmpty:\r\n\r\n");
    CHECK(h.headers[0].value == "v");
    CHECK(h.headers[1].value.empty());
}

TEST_CASE("egress request: body framing", "[egress]") {
    auto len = ok("POST http://a/ HTTP/1.1\r\nContent-Length: 12\r\n\r\n");
    CHECK(len.body == BodyFraming::length);
    CHECK(len.content_length == 12);
    CHECK(ok("POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n")
              .content_length == 3);
    auto chunked = ok("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n");
    CHECK(chunked.body == BodyFraming::chunked);
    CHECK(refused("POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n")
              .status == 400);
    CHECK(refused("POST http://a/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n").status == 400);
    CHECK(refused("POST http://a/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: "
                  "chunked\r\n\r\n")
              .message.find("both") != std::string::npos);
    CHECK(refused("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").status == 501);
    CHECK(refused("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n").status == 501);
    CHECK(refused("POST http://a/ HTTP/1.1\r\nTransfer-Encoding:\r\nContent-Length: 1\r\n\r\n")
              .status == 400);
    CHECK(refused("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n").status == 501);
    CHECK(refused("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").status ==
          501);
}

TEST_CASE("egress request: finding the end of the head", "[egress]") {
    CHECK(find_head_end("GET http://a/ HTTP/1.1\r\n\r\nbody") == 26u);
    CHECK(find_head_end("GET http://a/ HTTP/1.1\n\nbody") == 24u);
    CHECK(find_head_end("GET http://a/ HTTP/1.1\r\nA: b\r\n") == std::nullopt);
    // Resuming a search across the boundary of two reads.
    const std::string head = "GET http://a/ HTTP/1.1\r\nA: b\r\n\r\n";
    for (std::size_t cut = 0; cut <= head.size(); ++cut)
        CHECK(find_head_end(head, cut) == head.size());
}

TEST_CASE("egress request: size limits", "[egress]") {
    const std::string line_ok =
        "GET http://a/" + std::string(k_max_request_line - 22, 'x') + " HTTP/1.1";
    REQUIRE(line_ok.size() == k_max_request_line);
    CHECK(ok(line_ok + "\r\n\r\n").target.size() == k_max_request_line - 21);
    const std::string line_long = "GET http://a/" + std::string(k_max_request_line, 'x');
    CHECK(refused(line_long + " HTTP/1.1\r\n\r\n").status == 414);
    CHECK(incomplete_head_problem(line_long)->status == 414);
    CHECK(incomplete_head_problem(line_long.substr(0, 100)) == std::nullopt);

    std::string many = "GET http://a/ HTTP/1.1\r\n";
    for (std::size_t i = 0; i < k_max_header_lines; ++i)
        many += "X-" + std::to_string(i) + ": v\r\n";
    CHECK(ok(many + "\r\n").headers.size() == k_max_header_lines);
    CHECK(incomplete_head_problem(many) == std::nullopt);
    many += "X-last: v\r\n";
    CHECK(refused(many + "\r\n").status == 431);
    CHECK(incomplete_head_problem(many)->status == 431);

    std::string big = "GET http://a/ HTTP/1.1\r\n";
    for (int i = 0; i < 8; ++i)
        big += "X-" + std::to_string(i) + ": " + std::string(4096, 'v') + "\r\n";
    CHECK(refused(big + "\r\n").status == 431);
    CHECK(incomplete_head_problem(big)->message == "the request head is larger than 32 KiB");
}

TEST_CASE("egress request: the head sent upstream", "[egress]") {
    auto h = ok("POST http://Example.com:8080/up?x=1 HTTP/1.0\r\n"
                "Host: evil.test\r\n"
                "Proxy-Connection: keep-alive\r\n"
                "Proxy-Authorization: Basic eA==\r\n"
                "Connection: keep-alive, X-Secret, Content-Length\r\n"
                "Keep-Alive: 5\r\nTE: trailers\r\nTrailer: X\r\nUpgrade: h2c\r\n"
                "X-Secret: s\r\nContent-Length: 3\r\nAccept: */*\r\n\r\n");
    CHECK(upstream_head(h) == "POST /up?x=1 HTTP/1.1\r\n"
                              "Host: example.com:8080\r\n"
                              "Content-Length: 3\r\n"
                              "Accept: */*\r\n"
                              "Connection: close\r\n\r\n");
    CHECK(upstream_head(ok("GET http://a.test/ HTTP/1.1\r\n\r\n")) ==
          "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    CHECK(upstream_head(ok("GET http://[::1]/ HTTP/1.1\r\n\r\n")) ==
          "GET / HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n");
}
