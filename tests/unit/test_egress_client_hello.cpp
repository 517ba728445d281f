// Reading the server name (SNI) from a TLS ClientHello, on real ClientHellos made by OpenSSL.
#include "egress/client_hello.hpp"

#include <catch2/catch.hpp>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>

using namespace airlock::egress;

namespace {

// The first flight OpenSSL's client sends, naming `sni` when given.
std::string client_hello(const char* sni, long max_version = 0) {
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                          SSL_CTX_free);
    REQUIRE(ctx);
    if (max_version) SSL_CTX_set_max_proto_version(ctx.get(), max_version);
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl.get(), in, out); // ssl owns both now
    // SSL_set_tlsext_host_name(), without the macro's C cast.
    if (sni)
        SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(sni));
    SSL_set_connect_state(ssl.get());
    CHECK(SSL_do_handshake(ssl.get()) <= 0); // waits for the server
    std::string bytes(static_cast<std::size_t>(BIO_pending(out)), '\0');
    REQUIRE(!bytes.empty());
    REQUIRE(BIO_read(out, bytes.data(), static_cast<int>(bytes.size())) ==
            static_cast<int>(bytes.size()));
    return bytes;
}

// The same handshake message cut into records of at most `piece` bytes.
std::string fragmented(const std::string& hello, std::size_t piece) {
    const std::string message = hello.substr(5);
    std::string out;
    for (std::size_t at = 0; at < message.size(); at += piece) {
        const std::string part = message.substr(at, piece);
        out += hello.substr(0, 3);
        out += static_cast<char>(part.size() >> 8);
        out += static_cast<char>(part.size() & 0xff);
        out += part;
    }
    return out;
}

} // namespace

TEST_CASE("egress client hello: the SNI of a real ClientHello", "[egress]") {
    const std::string hello = client_hello("Allowed.Test");
    auto parsed = parse_client_hello(hello);
    CHECK(parsed.status == HelloStatus::ok);
    CHECK(parsed.sni == "allowed.test");
    // TLS 1.2 only: a different extension list, same name.
    CHECK(parse_client_hello(client_hello("a.example.com", TLS1_2_VERSION)).sni == "a.example.com");
    // Whatever follows the ClientHello does not matter.
    CHECK(parse_client_hello(hello + "trailing bytes").sni == "allowed.test");
}

TEST_CASE("egress client hello: without SNI", "[egress]") {
    auto parsed = parse_client_hello(client_hello(nullptr));
    CHECK(parsed.status == HelloStatus::ok);
    CHECK_FALSE(parsed.sni);
}

TEST_CASE("egress client hello: every truncation needs more bytes", "[egress]") {
    const std::string hello = client_hello("allowed.test");
    for (std::size_t n = 0; n < hello.size(); ++n) {
        auto parsed = parse_client_hello(std::string_view(hello).substr(0, n));
        CHECK(parsed.status == HelloStatus::need_more);
    }
}

TEST_CASE("egress client hello: a handshake split across records", "[egress]") {
    const std::string hello = client_hello("allowed.test");
    for (std::size_t piece : {1u, 7u, 100u, 512u}) {
        const std::string split = fragmented(hello, piece);
        CHECK(parse_client_hello(split).sni == "allowed.test");
        CHECK(parse_client_hello(std::string_view(split).substr(0, split.size() - 1)).status ==
              HelloStatus::need_more);
    }
}

TEST_CASE("egress client hello: what is not a ClientHello", "[egress]") {
    auto check_refused = [](const std::string& bytes) {
        auto parsed = parse_client_hello(bytes);
        CHECK(parsed.status == HelloStatus::not_hello);
        CHECK_FALSE(parsed.problem.empty());
    };
    check_refused("GET / HTTP/1.1\r\n\r\n");
    check_refused("SSH-2.0-OpenSSH_9.2\r\n");
    check_refused(std::string("\x16\x02", 2));             // bad record version
    check_refused(std::string("\x16\x03\x01\x00\x00", 5)); // empty record
    check_refused(std::string("\x16\x03\x01\x40\x01", 5)); // record over 16 KiB
    check_refused(std::string("\x17\x03\x03\x00\x05hello", 10));
    // A ServerHello (type 2) instead.
    check_refused(std::string("\x16\x03\x03\x00\x04\x02\x00\x00\x00", 9));

    const std::string hello = client_hello("allowed.test");
    // Damage the extension block's length: it no longer matches what follows.
    std::string broken = hello;
    const std::size_t ext_len_at = broken.size() - 1; // any byte inside the extensions
    broken[ext_len_at] = static_cast<char>(broken[ext_len_at] ^ 0xff);
    (void)parse_client_hello(broken); // must not crash; may still parse
    // A handshake length larger than 16 KiB.
    std::string huge = hello;
    huge[6] = 0x01;
    check_refused(huge);
}

TEST_CASE("egress client hello: the server name must be one host name", "[egress]") {
    // A minimal ClientHello with the given server_name extension body.
    auto with_sni = [](const std::string& ext) {
        std::string body;
        body += std::string("\x03\x03", 2) + std::string(32, 'r'); // version, random
        body += '\0';                                              // session id
        body += std::string("\x00\x02\x13\x01", 4);                // one cipher suite
        body += std::string("\x01\x00", 2);                        // null compression
        std::string exts = std::string("\x00\x00", 2);
        exts += static_cast<char>(ext.size() >> 8);
        exts += static_cast<char>(ext.size() & 0xff);
        exts += ext;
        body += static_cast<char>(exts.size() >> 8);
        body += static_cast<char>(exts.size() & 0xff);
        body += exts;
        std::string msg = "\x01";
        msg += '\0';
        msg += static_cast<char>(body.size() >> 8);
        msg += static_cast<char>(body.size() & 0xff);
        msg += body;
        std::string rec = std::string("\x16\x03\x01", 3);
        rec += static_cast<char>(msg.size() >> 8);
        rec += static_cast<char>(msg.size() & 0xff);
        return rec + msg;
    };
    auto name = [](const std::string& host) {
        std::string entry = std::string("\x00", 1);
        entry += static_cast<char>(host.size() >> 8);
        entry += static_cast<char>(host.size() & 0xff);
        entry += host;
        return entry;
    };
    auto list = [](const std::string& entries) {
        std::string out;
        out += static_cast<char>(entries.size() >> 8);
        out += static_cast<char>(entries.size() & 0xff);
        return out + entries;
    };
    CHECK(parse_client_hello(with_sni(list(name("ok.test.")))).sni == "ok.test");
    CHECK(parse_client_hello(with_sni(list(name("two.test") + name("names.test")))).status ==
          HelloStatus::not_hello);
    CHECK(parse_client_hello(with_sni(list(name(std::string("a\0b.test", 8))))).status ==
          HelloStatus::not_hello);
    CHECK(parse_client_hello(with_sni(list(name("")))).status == HelloStatus::not_hello);
    CHECK(parse_client_hello(with_sni(list(""))).status == HelloStatus::not_hello);
    CHECK(parse_client_hello(with_sni(list(name("ok.test")) + "x")).status ==
          HelloStatus::not_hello);
}
