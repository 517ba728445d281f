// The credential endpoint end to end, in process: serve() with both listeners on unix sockets in
// a temporary directory, against TLS servers on 127.0.0.1 with a CA made for the test.
#include "egress/credentials.hpp"
#include "egress/net.hpp"
#include "egress/proxy.hpp"

#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace airlock::egress;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr const char* k_secret = "sk-test-SECRET-0123456789";

void set_timeouts(int fd) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool send_text(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

std::string read_all(int fd) {
    std::string out;
    char buf[16384];
    while (true) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return out;
        out.append(buf, static_cast<std::size_t>(n));
    }
}

std::string read_until(int fd, std::string_view marker) {
    std::string out;
    char c;
    while (out.find(marker) == std::string::npos && ::recv(fd, &c, 1, 0) == 1)
        out += c;
    return out;
}

std::string header(const std::string& response, const std::string& name) {
    const auto at = response.find("\r\n" + name + ": ");
    if (at == std::string::npos) return {};
    const auto start = at + name.size() + 4;
    return response.substr(start, response.find("\r\n", start) - start);
}

// A key and a certificate; `issuer` null: self-signed CA.
struct Cert {
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    ~Cert() {
        X509_free(cert);
        EVP_PKEY_free(key);
    }
};

void make_cert(Cert& out, const char* cn, const Cert* issuer, const char* san) {
    out.key = EVP_EC_gen("P-256");
    REQUIRE(out.key);
    out.cert = X509_new();
    X509_set_version(out.cert, 2);
    static std::atomic<long> serial{1};
    ASN1_INTEGER_set(X509_get_serialNumber(out.cert), serial++);
    X509_gmtime_adj(X509_getm_notBefore(out.cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(out.cert), 86400);
    X509_set_pubkey(out.cert, out.key);
    X509_NAME* name = X509_get_subject_name(out.cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                               -1, -1, 0);
    X509_set_issuer_name(out.cert, issuer ? X509_get_subject_name(issuer->cert) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer->cert : out.cert, out.cert, nullptr, nullptr, 0);
    auto add = [&](int nid, const char* value) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        REQUIRE(ext);
        X509_add_ext(out.cert, ext, -1);
        X509_EXTENSION_free(ext);
    };
    if (issuer) {
        add(NID_basic_constraints, "critical,CA:FALSE");
        add(NID_subject_alt_name, san);
    } else {
        add(NID_basic_constraints, "critical,CA:TRUE");
        add(NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    REQUIRE(X509_sign(out.cert, issuer ? issuer->key : out.key, EVP_sha256()) > 0);
}

void write_pem(const std::string& path, X509* cert) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    PEM_write_X509(f, cert);
    std::fclose(f);
}

// A throwaway CA and a server certificate for "localhost" it signed, plus a CA that signed
// nothing; in a temporary directory.
struct Pki {
    std::string dir;
    Cert ca, other_ca, server;
    SSL_CTX* server_ctx = nullptr;
    Pki() {
        char tmpl[] = "/tmp/airlock-cred-test-XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        dir = tmpl;
        make_cert(ca, "airlock test CA", nullptr, nullptr);
        make_cert(other_ca, "another CA", nullptr, nullptr);
        make_cert(server, "localhost", &ca, "DNS:localhost");
        write_pem(ca_file(), ca.cert);
        write_pem(dir + "/other.pem", other_ca.cert);
        server_ctx = SSL_CTX_new(TLS_server_method());
        REQUIRE(SSL_CTX_use_certificate(server_ctx, server.cert) == 1);
        REQUIRE(SSL_CTX_use_PrivateKey(server_ctx, server.key) == 1);
    }
    ~Pki() {
        SSL_CTX_free(server_ctx);
        std::filesystem::remove_all(dir);
    }
    std::string ca_file() const { return dir + "/ca.pem"; }
};

Pki& pki() {
    static Pki p;
    return p;
}

std::string ssl_read_until(SSL* ssl, std::string_view marker) {
    std::string out;
    char c;
    while (out.find(marker) == std::string::npos && SSL_read(ssl, &c, 1) == 1)
        out += c;
    return out;
}

std::string ssl_read_n(SSL* ssl, std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
        const int r = SSL_read(ssl, out.data() + got, static_cast<int>(n - got));
        if (r <= 0) break;
        got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    return out;
}

void ssl_send(SSL* ssl, std::string_view text) {
    SSL_write(ssl, text.data(), static_cast<int>(text.size()));
}

// A TLS server on 127.0.0.1 that runs `handler` on its own thread for each connection after a
// successful handshake; counts connections and failed handshakes.
class TlsUpstream {
public:
    explicit TlsUpstream(std::function<void(SSL*)> handler) : m_handler(std::move(handler)) {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        socklen_t len = sizeof addr;
        ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&addr), &len);
        m_port = ntohs(addr.sin_port);
        REQUIRE(::listen(m_fd, 64) == 0);
        REQUIRE(::pipe(m_stop) == 0);
        m_thread = std::thread([this] { accept_loop(); });
    }
    ~TlsUpstream() {
        [[maybe_unused]] ssize_t n = ::write(m_stop[1], "x", 1);
        m_thread.join();
        for (auto& t : m_workers)
            t.join();
        ::close(m_fd);
        ::close(m_stop[0]);
        ::close(m_stop[1]);
    }
    std::uint16_t port() const { return m_port; }
    int connections() const { return m_accepted.load(); }
    int failed_handshakes() const { return m_failed.load(); }

private:
    void accept_loop() {
        while (true) {
            pollfd fds[2] = {{m_fd, POLLIN, 0}, {m_stop[0], POLLIN, 0}};
            ::poll(fds, 2, -1);
            if (fds[1].revents) return;
            const int c = ::accept4(m_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) continue;
            ++m_accepted;
            set_timeouts(c);
            m_workers.emplace_back([this, c] {
                SSL* ssl = SSL_new(pki().server_ctx);
                SSL_set_fd(ssl, c);
                if (SSL_accept(ssl) == 1) {
                    m_handler(ssl);
                    SSL_shutdown(ssl);
                } else {
                    ++m_failed;
                }
                SSL_free(ssl);
                ::close(c);
            });
        }
    }

    std::function<void(SSL*)> m_handler;
    int m_fd = -1;
    int m_stop[2] = {-1, -1};
    std::uint16_t m_port = 0;
    std::atomic<int> m_accepted{0};
    std::atomic<int> m_failed{0};
    std::thread m_thread;
    std::vector<std::thread> m_workers;
};

// serve() with both listeners, the endpoint "model" pointing at `port` on `host`.
class Proxy {
public:
    Proxy(std::uint16_t port, std::function<void(Credential&)> adjust = {},
          std::string host = "localhost", std::string ca_file = pki().ca_file()) {
        char dir[] = "/tmp/airlock-cred-proxy-XXXXXX";
        REQUIRE(::mkdtemp(dir));
        m_dir = dir;
        Config config;
        config.allow_cidrs.push_back({"127.0.0.0/8", *airlock::policy::parse_cidr("127.0.0.0/8")});
        config.listen = m_dir + "/egress.sock";
        config.credential_listen = m_dir + "/credentials.sock";
        config.ca_file = ca_file;
        Credential c;
        c.name = "model";
        c.host = host;
        c.port = port;
        c.base_path = "/v1";
        c.header = "Authorization";
        c.header_template = "Bearer {secret}";
        if (adjust) adjust(c);
        config.credentials.push_back(c);
        Secrets secrets;
        secrets.values["model"] = k_secret;
        auto endpoints = CredentialEndpoints::make(config, secrets);
        REQUIRE(endpoints);
        m_path = config.credential_listen;
        auto fd = listen_unix(config.listen);
        auto cred_fd = listen_unix(config.credential_listen);
        REQUIRE(fd);
        REQUIRE(cred_fd);
        m_listen = std::move(*fd);
        m_cred = std::move(*cred_fd);
        m_thread = std::jthread([this, config, e = *endpoints](std::stop_token stop) {
            serve(
                config, m_listen.get(), m_cred.get(), e,
                [this](const json& line) {
                    std::lock_guard lock(m_mutex);
                    m_lines.push_back(line);
                    m_changed.notify_all();
                },
                stop);
        });
    }
    ~Proxy() {
        m_thread.request_stop();
        m_thread.join();
        std::filesystem::remove_all(m_dir);
        // No line ever carries the secret.
        for (const auto& line : m_lines)
            CHECK(line.dump().find("SECRET") == std::string::npos);
    }

    Fd connect() const {
        Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", m_path.c_str());
        REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        set_timeouts(fd.get());
        return fd;
    }
    std::string exchange(const std::string& request) const {
        Fd fd = connect();
        REQUIRE(send_text(fd.get(), request));
        return read_all(fd.get());
    }
    json line(std::size_t index) {
        std::unique_lock lock(m_mutex);
        m_changed.wait_for(lock, 10s, [&] { return m_lines.size() > index; });
        REQUIRE(m_lines.size() > index);
        return m_lines[index];
    }

private:
    std::string m_dir;
    std::string m_path;
    Fd m_listen;
    Fd m_cred;
    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::vector<json> m_lines;
    std::jthread m_thread;
};

// An upstream that records the head and body of each request and answers "ok".
struct RecordingUpstream {
    std::mutex mutex;
    std::vector<std::string> requests;
    TlsUpstream server{[this](SSL* ssl) {
        std::string got = ssl_read_until(ssl, "\r\n\r\n");
        const std::string length = header(got, "Content-Length");
        if (!length.empty()) got += ssl_read_n(ssl, std::stoul(length));
        {
            std::lock_guard lock(mutex);
            requests.push_back(got);
        }
        ssl_send(ssl, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
    }};
};

const std::string k_post = "POST /model/chat/completions?stream=1 HTTP/1.1\r\nHost: "
                           "127.0.0.1:3129\r\nAuthorization: Bearer placeholder\r\nContent-Length: "
                           "5\r\nUser-Agent: agent\r\n\r\nhello";

} // namespace

TEST_CASE("egress credentials: the secret header replaces the placeholder",
          "[egress][credentials]") {
    RecordingUpstream up;
    Proxy proxy(up.server.port());
    const std::string response = proxy.exchange(k_post);
    CHECK(response == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    REQUIRE(up.requests.size() == 1);
    const std::string expected = "POST /v1/chat/completions?stream=1 HTTP/1.1\r\nHost: localhost:" +
                                 std::to_string(up.server.port()) +
                                 "\r\nContent-Length: 5\r\nUser-Agent: agent\r\nAuthorization: "
                                 "Bearer " +
                                 k_secret + "\r\nConnection: close\r\n\r\nhello";
    CHECK(up.requests[0] == expected);

    const json line = proxy.line(0);
    CHECK(line["decision"] == "allow");
    CHECK(line["rule"] == "credential model");
    CHECK(line["endpoint"] == "model");
    CHECK(line["status"] == 200);
    CHECK(line["method"] == "POST");
    CHECK(line["host"] == "localhost");
    CHECK(line["port"] == up.server.port());
    CHECK(line["path"] == "/model/chat/completions");
    CHECK(line["address"] == "127.0.0.1");
    CHECK(line["bytes_up"] == expected.size());
    CHECK(line["bytes_down"] == response.size());
    CHECK(line["duration_ms"].is_number_integer());
    CHECK(line["duration_ms"].get<long>() >= 0);
    CHECK_FALSE(line.contains("sni"));
}

TEST_CASE("egress credentials: other paths get 404 naming the endpoints", "[egress][credentials]") {
    RecordingUpstream up;
    Proxy proxy(up.server.port());
    const std::string response = proxy.exchange("GET /modelx/v1 HTTP/1.1\r\n\r\n");
    CHECK(response.substr(0, 24) == "HTTP/1.1 404 Not Found\r\n");
    CHECK(header(response, "X-Airlock-Deny-Reason") ==
          "no credential endpoint matches \"/modelx/v1\"; the endpoints are /model/ (send "
          "/<endpoint>/path)");
    const json line = proxy.line(0);
    CHECK(line["decision"] == "deny");
    CHECK(line["rule"] == "no credential endpoint");
    CHECK(line["endpoint"] == nullptr);
    CHECK(line["status"] == 404);
    CHECK(line["path"] == "/modelx/v1");
    CHECK(up.server.connections() == 0);
}

TEST_CASE("egress credentials: path_escape names what could leave the prefix",
          "[egress][credentials]") {
    CHECK(path_escape("/model/../admin") == "the segment \"..\"");
    CHECK(path_escape("/model/a/..") == "the segment \"..\"");
    CHECK(path_escape("/model/./x") == "the segment \".\"");
    CHECK(path_escape("/model/.") == "the segment \".\"");
    CHECK(path_escape("/model/%2e%2e/admin") == "\"%2e\" (an encoded \".\")");
    CHECK(path_escape("/model/%2E./admin") == "\"%2E\" (an encoded \".\")");
    CHECK(path_escape("/model/a%2Fb") == "\"%2F\" (an encoded \"/\")");
    CHECK(path_escape("/model/a%5cb") == "\"%5c\" (an encoded \"\\\")");
    CHECK(path_escape("/model/a\\..\\b") == "a backslash");
    CHECK(path_escape("/model/v1/chat") == std::nullopt);
    CHECK(path_escape("/model/") == std::nullopt);
    CHECK(path_escape("/model/a..b/.x/x./...") == std::nullopt);
    CHECK(path_escape("/model/%20%2g%") == std::nullopt);
}

TEST_CASE("egress credentials: a path that could leave the prefix gets 400, nothing upstream",
          "[egress][credentials]") {
    RecordingUpstream up;
    Proxy proxy(up.server.port());
    const std::vector<std::string> paths = {
        "/model/../admin", "/model/%2e%2e/admin", "/model/a/..", "/model/./x",
        "/model/a%2Fb",    "/model/a%5Cb",        "/model/a\\b", "/../model/x"};
    for (std::size_t i = 0; i < paths.size(); ++i) {
        INFO(paths[i]);
        const std::string response = proxy.exchange(
            "GET " + paths[i] + "?q=1 HTTP/1.1\r\nAuthorization: Bearer placeholder\r\n\r\n");
        CHECK(response.substr(0, 26) == "HTTP/1.1 400 Bad Request\r\n");
        CHECK(header(response, "Content-Type") == "text/plain; charset=utf-8");
        CHECK(response.find("\r\n\r\nairlock egress: the path \"") != std::string::npos);
        CHECK(header(response, "X-Airlock-Deny-Reason") ==
              "the path \"" + paths[i] + "\" holds " + *path_escape(paths[i]) +
                  ", which could leave the endpoint's prefix or the upstream's base path (send "
                  "the path without it)");
        const json line = proxy.line(i);
        CHECK(line["decision"] == "deny");
        CHECK(line["rule"] == "unsafe path");
        CHECK(line["status"] == 400);
        CHECK(line["method"] == "GET");
        CHECK(line["path"] == paths[i]);
        CHECK(line["endpoint"] == nullptr);
        CHECK(line["bytes_up"] == 0);
        CHECK(line["duration_ms"].is_number_integer());
    }
    CHECK(up.server.connections() == 0);
    CHECK(up.requests.empty());

    // An ordinary path still goes through.
    const std::string ok = proxy.exchange("GET /model/v1/chat HTTP/1.1\r\n\r\n");
    CHECK(ok == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    REQUIRE(up.requests.size() == 1);
    CHECK(up.requests[0].substr(0, 27) == "GET /v1/v1/chat HTTP/1.1\r\nH");
    CHECK(proxy.line(paths.size())["rule"] == "credential model");
    CHECK(up.server.connections() == 1);
}

TEST_CASE("egress credentials: absolute form is refused with 400", "[egress][credentials]") {
    RecordingUpstream up;
    Proxy proxy(up.server.port());
    const std::string response =
        proxy.exchange("GET http://localhost/model/x HTTP/1.1\r\nHost: localhost\r\n\r\n");
    CHECK(response.substr(0, 26) == "HTTP/1.1 400 Bad Request\r\n");
    CHECK(header(response, "X-Airlock-Deny-Reason")
              .find("the credential endpoint takes origin-form requests only") == 0);
    const json line = proxy.line(0);
    CHECK(line["rule"] == "malformed request");
    CHECK(line["status"] == 400);
    CHECK(up.server.connections() == 0);
}

TEST_CASE("egress credentials: a certificate that does not verify gets 502, no plain retry",
          "[egress][credentials]") {
    SECTION("signed by another CA") {
        RecordingUpstream up;
        Proxy proxy(up.server.port(), {}, "localhost", pki().dir + "/other.pem");
        const std::string response = proxy.exchange(k_post);
        CHECK(response.substr(0, 26) == "HTTP/1.1 502 Bad Gateway\r\n");
        const std::string reason = header(response, "X-Airlock-Deny-Reason");
        CHECK(reason == "the TLS certificate of localhost:" + std::to_string(up.server.port()) +
                            " does not verify against ca_file: unable to get local issuer "
                            "certificate; the credential is only sent over verified TLS");
        const json line = proxy.line(0);
        CHECK(line["rule"] == "upstream certificate");
        CHECK(line["decision"] == "deny");
        CHECK(line["status"] == 502);
        CHECK(line["bytes_up"] == 0);
        for (int i = 0; i < 100 && up.server.failed_handshakes() == 0; ++i)
            std::this_thread::sleep_for(10ms);
        CHECK(up.server.connections() == 1);
        CHECK(up.server.failed_handshakes() == 1);
        CHECK(up.requests.empty());
    }
    SECTION("not naming the address") {
        RecordingUpstream up;
        Proxy proxy(up.server.port(), {}, "127.0.0.1");
        const std::string response = proxy.exchange(k_post);
        CHECK(header(response, "X-Airlock-Deny-Reason")
                  .find("does not verify against ca_file: IP address mismatch") !=
              std::string::npos);
        CHECK(proxy.line(0)["rule"] == "upstream certificate");
        CHECK(up.server.connections() == 1);
    }
}

TEST_CASE("egress credentials: a chunked response arrives piece by piece",
          "[egress][credentials]") {
    std::mutex mutex;
    std::condition_variable cv;
    bool client_has_first = false;
    bool waited_for_client = false;
    TlsUpstream up([&](SSL* ssl) {
        ssl_read_until(ssl, "\r\n\r\nhello");
        ssl_send(ssl, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: "
                      "chunked\r\n\r\n");
        ssl_send(ssl, "d\r\ndata: first\n\n\r\n");
        {
            std::unique_lock lock(mutex);
            waited_for_client = cv.wait_for(lock, 5s, [&] { return client_has_first; });
        }
        std::this_thread::sleep_for(300ms);
        ssl_send(ssl, "e\r\ndata: second\n\n\r\n0\r\n\r\n");
    });
    Proxy proxy(up.port());
    Fd fd = proxy.connect();
    REQUIRE(send_text(fd.get(), k_post));
    const std::string first = read_until(fd.get(), "data: first\n\n\r\n");
    CHECK(first.find("HTTP/1.1 200 OK\r\n") == 0);
    CHECK(first.find("data: second") == std::string::npos);
    {
        std::lock_guard lock(mutex);
        client_has_first = true;
    }
    cv.notify_all();
    const std::string rest = read_all(fd.get());
    CHECK(rest == "e\r\ndata: second\n\n\r\n0\r\n\r\n");
    CHECK(waited_for_client);
    const json line = proxy.line(0);
    CHECK(line["decision"] == "allow");
    CHECK(line["status"] == 200);
    CHECK(line["bytes_down"] == first.size() + rest.size());
}

TEST_CASE("egress credentials: max_requests gives 429", "[egress][credentials]") {
    RecordingUpstream up;
    Proxy proxy(up.server.port(), [](Credential& c) { c.max_requests = 1; });
    CHECK(proxy.exchange(k_post).substr(0, 15) == "HTTP/1.1 200 OK");
    const std::string second = proxy.exchange(k_post);
    CHECK(second.substr(0, 30) == "HTTP/1.1 429 Too Many Requests");
    CHECK(header(second, "X-Airlock-Deny-Reason") ==
          "the credential endpoint model has used its budget (max_requests 1); raise it in the "
          "policy to send more");
    const json line = proxy.line(1);
    CHECK(line["decision"] == "deny");
    CHECK(line["rule"] == "credential budget");
    CHECK(line["status"] == 429);
    CHECK(up.requests.size() == 1);
}

TEST_CASE("egress credentials: max_bytes cuts both sides", "[egress][credentials]") {
    const std::string body(4000, 'x');
    TlsUpstream up([&](SSL* ssl) {
        ssl_read_until(ssl, "\r\n\r\nhello");
        ssl_send(ssl, "HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n");
        std::this_thread::sleep_for(100ms);
        ssl_send(ssl, body);
    });
    Proxy proxy(up.port(), [](Credential& c) { c.max_bytes = 1000; });
    const std::string response = proxy.exchange(k_post);
    CHECK(response.find("HTTP/1.1 200 OK\r\n") == 0);
    CHECK(response.size() < 1000);
    const json line = proxy.line(0);
    CHECK(line["decision"] == "cut");
    CHECK(line["rule"] == "credential budget");
    CHECK(line["status"] == 200);
    CHECK(line["bytes_up"].get<int>() + line["bytes_down"].get<int>() <= 1000);
    // Spent: the next request is refused before it goes anywhere.
    const std::string next = proxy.exchange(k_post);
    CHECK(next.substr(0, 12) == "HTTP/1.1 429");
    CHECK(proxy.line(1)["decision"] == "deny");
    CHECK(up.connections() == 1);
}

TEST_CASE("egress credentials: the CA file is loaded once, errors name it",
          "[egress][credentials]") {
    auto missing = TlsClientContext::load("/nonexistent/ca.pem");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message ==
          "ca_file /nonexistent/ca.pem: No such file or directory (mount a PEM CA bundle there)");
    const std::string empty = pki().dir + "/empty.pem";
    std::ofstream(empty) << "not a certificate\n";
    auto bad = TlsClientContext::load(empty);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("ca_file " + empty + ": holds no PEM certificate") == 0);
}

TEST_CASE("egress credentials: a socket handed over by airlock-init is served",
          "[egress][credentials]") {
    RecordingUpstream up;
    Proxy proxy(up.server.port());
    // A connected TCP pair on 127.0.0.1: `accepted` goes to the proxy as SCM_RIGHTS.
    Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener.get(), 1) == 0);
    REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    Fd task(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::connect(task.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    Fd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    set_timeouts(task.get());
    {
        Fd unix_fd = proxy.connect();
        char byte = 0;
        iovec iov{&byte, 1};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        const int fd = accepted.get();
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
        REQUIRE(::sendmsg(unix_fd.get(), &msg, MSG_NOSIGNAL) == 1);
    }
    accepted.reset();
    REQUIRE(send_text(task.get(), k_post));
    CHECK(read_all(task.get()) ==
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    CHECK(proxy.line(0)["endpoint"] == "model");
}
