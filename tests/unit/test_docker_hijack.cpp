// Attach with stdin: the hand-parsed response head, the upgrade request, and the whole exchange
// against a fake engine on a temporary unix socket.
#include "docker/client.hpp"
#include "docker/hijack.hpp"

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace airlock::docker;
using airlock::util::CancelToken;
using airlock::util::ErrorKind;
using namespace std::string_literals;

namespace {

const char k_head_101[] = "HTTP/1.1 101 UPGRADED\r\n"
                          "Content-Type: application/vnd.docker.raw-stream\r\n"
                          "Connection: Upgrade\r\n"
                          "Upgrade: tcp\r\n"
                          "\r\n";

std::string frame(StreamId stream, std::string_view payload) {
    const auto n = static_cast<std::uint32_t>(payload.size());
    std::string out;
    out.push_back(static_cast<char>(stream));
    out.append(3, '\0');
    out.push_back(static_cast<char>((n >> 24) & 0xff));
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    out.push_back(static_cast<char>((n >> 8) & 0xff));
    out.push_back(static_cast<char>(n & 0xff));
    out.append(payload);
    return out;
}

void write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) return;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

// Reads until `stop` is in what was read, the peer closes, or 5 s pass without a byte.
std::string read_until(int fd, std::string_view stop) {
    std::string got;
    while (got.find(stop) == std::string::npos) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) break;
        char c;
        if (::read(fd, &c, 1) != 1) break; // one byte at a time: never read past `stop`
        got.push_back(c);
    }
    return got;
}

// One connection on a temporary unix socket: reads the request head, then hands the socket to
// `serve`. Catch2 is not used on the server thread; tests check what it recorded afterwards.
class FakeEngine {
public:
    using Serve = std::function<void(int fd)>;

    explicit FakeEngine(Serve serve) : m_serve(std::move(serve)) {
        char tmpl[] = "/tmp/airlock-hijack-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        m_dir = tmpl;
        m_path = m_dir + "/engine.sock";
        m_listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(m_listener >= 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        REQUIRE(m_path.size() < sizeof(addr.sun_path));
        m_path.copy(addr.sun_path, m_path.size());
        REQUIRE(::bind(m_listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(m_listener, 4) == 0);
        m_thread = std::thread([this] { run(); });
    }
    ~FakeEngine() {
        wait();
        ::close(m_listener);
        ::unlink(m_path.c_str());
        ::rmdir(m_dir.c_str());
    }
    FakeEngine(const FakeEngine&) = delete;
    FakeEngine& operator=(const FakeEngine&) = delete;

    // Waits for the connection to be served (or for no one to connect within 10 s).
    void wait() {
        if (m_thread.joinable()) m_thread.join();
    }
    Endpoint endpoint() const {
        Endpoint ep;
        ep.kind = Endpoint::Kind::unix_socket;
        ep.socket_path = m_path;
        return ep;
    }
    // The request head as received (valid once the client call returned).
    std::string request;

private:
    void run() {
        pollfd p{m_listener, POLLIN, 0};
        if (::poll(&p, 1, 10000) <= 0) return;
        int fd = ::accept4(m_listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        request = read_until(fd, "\r\n\r\n");
        m_serve(fd);
        ::close(fd);
    }

    Serve m_serve;
    std::string m_dir, m_path;
    int m_listener = -1;
    std::thread m_thread;
};

struct Collected {
    std::string out, err;
    std::vector<bool> ready; // every on_ready call, in order
    bool output_before_ready = false;
};

airlock::util::Result<void> attach(Client& c, Collected& got, std::string_view stdin_data,
                                   const CancelToken* cancel = nullptr,
                                   const std::string& id = "abc123") {
    return c.container_attach(
        id,
        [&](StreamId s, std::string_view d) {
            if (got.ready.empty()) got.output_before_ready = true;
            (s == StreamId::stderr_ ? got.err : got.out).append(d);
            return true;
        },
        [&](bool ok) { got.ready.push_back(ok); }, cancel, stdin_data);
}

} // namespace

TEST_CASE("parse_response_head reads the engine's 101 and leaves the stream after it",
          "[docker][hijack]") {
    const std::string data = std::string(k_head_101) + "\x01\0\0\0"s + "rest";
    auto r = parse_response_head(data);
    REQUIRE(r);
    REQUIRE(r->has_value());
    const ResponseHead& h = **r;
    CHECK(h.status == 101);
    CHECK(h.reason == "UPGRADED");
    CHECK(h.size == std::string(k_head_101).size());
    CHECK(data.substr(h.size) == "\x01\0\0\0rest"s);
    REQUIRE(h.headers.size() == 3);
    CHECK(h.headers[0].first == "Content-Type");
    CHECK(h.headers[0].second == "application/vnd.docker.raw-stream");
    CHECK(h.header("upgrade") == std::optional<std::string>("tcp"));
    CHECK(h.header("CONNECTION") == std::optional<std::string>("Upgrade"));
    CHECK_FALSE(h.header("Content-Length").has_value());
}

TEST_CASE("parse_response_head waits for the blank line, whatever the split", "[docker][hijack]") {
    const std::string head = k_head_101;
    for (std::size_t i = 0; i < head.size(); ++i) {
        INFO("prefix of " << i << " bytes");
        auto r = parse_response_head(std::string_view(head).substr(0, i));
        REQUIRE(r);
        CHECK_FALSE(r->has_value());
    }
    auto full = parse_response_head(head);
    REQUIRE(full);
    REQUIRE(full->has_value());
    CHECK((*full)->size == head.size());
}

TEST_CASE("parse_response_head takes bare LF lines, no reason, and trims values",
          "[docker][hijack]") {
    const std::string data = "HTTP/1.0 200\nX-Empty:\nContent-Length:  12 \t\n\n{}";
    auto r = parse_response_head(data);
    REQUIRE(r);
    REQUIRE(r->has_value());
    CHECK((*r)->status == 200);
    CHECK((*r)->reason.empty());
    CHECK((*r)->header("x-empty") == std::optional<std::string>(""));
    CHECK((*r)->header("content-length") == std::optional<std::string>("12"));
    CHECK(data.substr((*r)->size) == "{}");

    auto e = parse_response_head("HTTP/1.1 404 Not Found\r\n\r\n");
    REQUIRE(e);
    REQUIRE(e->has_value());
    CHECK((*e)->status == 404);
    CHECK((*e)->reason == "Not Found");
    CHECK((*e)->headers.empty());
}

TEST_CASE("parse_response_head refuses what is not an HTTP/1.x head", "[docker][hijack]") {
    auto bad = parse_response_head("SSH-2.0-OpenSSH\r\n\r\n");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind == ErrorKind::protocol);
    CHECK(bad.error().message ==
          "the engine did not answer with an HTTP/1.x status line (got \"SSH-2.0-OpenSSH\")");

    for (const char* line : {"HTTP/2 200 OK", "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK",
                             "HTTP/1.1  200 OK", "HTTP/1.1 2x0 OK", "http/1.1 200 OK", ""}) {
        INFO(line);
        CHECK_FALSE(parse_response_head(std::string(line) + "\r\n\r\n"));
    }

    auto header = parse_response_head("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n");
    REQUIRE_FALSE(header);
    CHECK(header.error().message ==
          "malformed header line in the engine's response: \"no colon here\"");
    CHECK_FALSE(parse_response_head("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n"));
    CHECK_FALSE(parse_response_head("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"));
    CHECK_FALSE(parse_response_head("HTTP/1.1 200 OK\r\n folded: x\r\n\r\n"));
}

TEST_CASE("parse_response_head caps the head at 64 KiB", "[docker][hijack]") {
    std::string head = "HTTP/1.1 200 OK\r\nX-Big: ";
    head.append(k_max_response_head - head.size() - 10, 'a');
    auto under = parse_response_head(head);
    REQUIRE(under);
    CHECK_FALSE(under->has_value()); // still waiting

    head.append(20, 'a');
    auto over = parse_response_head(head);
    REQUIRE_FALSE(over);
    CHECK(over.error().message == "the engine's response head exceeds 64 KiB");

    auto ok =
        parse_response_head("HTTP/1.1 200 OK\r\nX-Big: " + std::string(60000, 'b') + "\r\n\r\n");
    REQUIRE(ok);
    CHECK(ok->has_value());
}

TEST_CASE("upgrade_request asks for a raw stream with an empty body", "[docker][hijack]") {
    CHECK(upgrade_request("POST", "/v1.41/containers/x/attach?stream=1&stdin=1", "localhost") ==
          "POST /v1.41/containers/x/attach?stream=1&stdin=1 HTTP/1.1\r\n"
          "Host: localhost\r\n"
          "Content-Type: text/plain\r\n"
          "Content-Length: 0\r\n"
          "Connection: Upgrade\r\n"
          "Upgrade: tcp\r\n"
          "\r\n");
}

TEST_CASE("decode_chunked decodes a complete body and waits for the last chunk",
          "[docker][hijack]") {
    CHECK(decode_chunked("5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n") ==
          std::optional<std::string>("hello, world"));
    CHECK(decode_chunked("A\r\n0123456789\r\n0\r\n") == std::optional<std::string>("0123456789"));
    CHECK(decode_chunked("0\r\n\r\n") == std::optional<std::string>(""));
    CHECK_FALSE(decode_chunked(""));
    CHECK_FALSE(decode_chunked("5\r\nhel"));
    CHECK_FALSE(decode_chunked("5\r\nhello\r\n"));
    CHECK_FALSE(decode_chunked("zz\r\nhello\r\n0\r\n\r\n"));
    CHECK_FALSE(decode_chunked("5\r\nhelloXX0\r\n\r\n"));
}

TEST_CASE("attach with stdin upgrades the connection, sends stdin, then reads the output",
          "[docker][hijack]") {
    const std::string secret = "sk-test-0123456789\n";
    std::string received;
    FakeEngine engine([&](int fd) {
        // The first frame rides in the same write as the head.
        write_all(fd, std::string(k_head_101) + frame(StreamId::stdout_, "ready\n"));
        received = read_until(fd, "\n");
        write_all(fd, frame(StreamId::stdout_, "got:" + received.substr(0, received.size() - 1)));
        write_all(fd, frame(StreamId::stderr_, "warn\n"));
        write_all(fd, frame(StreamId::stdout_, "\n"));
    });
    Client c(engine.endpoint());
    Collected got;
    auto r = attach(c, got, secret);
    INFO((r ? std::string() : r.error().message));
    REQUIRE(r);
    CHECK(received == secret);
    CHECK(got.ready == std::vector<bool>{true});
    CHECK_FALSE(got.output_before_ready);
    CHECK(got.out == "ready\ngot:sk-test-0123456789\n");
    CHECK(got.err == "warn\n");

    const std::string& req = engine.request;
    CHECK(req.rfind("POST /v1.41/containers/abc123/attach?stream=1&stdin=1&stdout=1&stderr=1 "
                    "HTTP/1.1\r\n",
                    0) == 0);
    CHECK(req.find("\r\nHost: localhost\r\n") != std::string::npos);
    CHECK(req.find("\r\nUpgrade: tcp\r\n") != std::string::npos);
    CHECK(req.find("\r\nConnection: Upgrade\r\n") != std::string::npos);
    CHECK(req.find("\r\nContent-Length: 0\r\n") != std::string::npos);
    CHECK(req.find("\r\nContent-Type: text/plain\r\n") != std::string::npos);
    CHECK(req.find("sk-test") == std::string::npos); // stdin only after the head
}

TEST_CASE("attach with stdin accepts a plain 200 as well", "[docker][hijack]") {
    std::string received;
    FakeEngine engine([&](int fd) {
        write_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n");
        received = read_until(fd, "\n");
        write_all(fd, frame(StreamId::stdout_, "ok\n"));
    });
    Client c(engine.endpoint());
    Collected got;
    auto r = attach(c, got, "x\n");
    REQUIRE(r);
    CHECK(received == "x\n");
    CHECK(got.ready == std::vector<bool>{true});
    CHECK(got.out == "ok\n");
}

TEST_CASE("attach with stdin maps an engine error and never sends stdin", "[docker][hijack]") {
    std::string after_head;
    FakeEngine engine([&](int fd) {
        const std::string body = R"({"message":"No such container: abc123"})";
        write_all(fd, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                      "Content-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body);
        after_head = read_until(fd, "\n"); // the client must not send stdin; it hangs up
    });
    Client c(engine.endpoint());
    Collected got;
    auto r = attach(c, got, "sk-secret-value\n");
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::not_found);
    CHECK(r.error().message ==
          "attach to container abc123: engine said 404: No such container: abc123");
    CHECK(got.ready == std::vector<bool>{false});
    engine.wait();
    CHECK(after_head.empty());
}

TEST_CASE("attach with stdin reads a chunked error body", "[docker][hijack]") {
    FakeEngine engine([&](int fd) {
        write_all(fd, "HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "1a\r\n{\"message\":\"is not running\r\n3\r\n\"}\n\r\n0\r\n\r\n");
        read_until(fd, "never");
    });
    Client c(engine.endpoint());
    Collected got;
    auto r = attach(c, got, "x\n");
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::conflict);
    CHECK(r.error().message == "attach to container abc123: engine said 409: is not running");
    CHECK(got.ready == std::vector<bool>{false});
}

TEST_CASE("attach with stdin keeps the secret out of errors on a corrupt stream",
          "[docker][hijack]") {
    const std::string secret = "sk-corrupt-secret\n";
    FakeEngine engine([&](int fd) {
        write_all(fd, k_head_101);
        std::string in = read_until(fd, "\n");
        write_all(fd, "\x09\x01\x02\x03" + in); // not a frame header; echoes stdin back
    });
    Client c(engine.endpoint());
    Collected got;
    auto r = attach(c, got, secret);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::protocol);
    CHECK(r.error().message.find("attach to container abc123: corrupt log frame header") == 0);
    CHECK(r.error().message.find("sk-corrupt") == std::string::npos);
}

TEST_CASE("attach with stdin stops promptly when cancelled", "[docker][hijack]") {
    std::atomic<bool> done{false};
    FakeEngine engine([&](int fd) {
        write_all(fd, k_head_101);
        read_until(fd, "\n");
        while (!done.load())
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    });
    Client c(engine.endpoint());
    CancelToken cancel;
    Collected got;
    std::thread canceller([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        cancel.cancel();
    });
    const auto start = std::chrono::steady_clock::now();
    auto r = attach(c, got, "x\n", &cancel);
    const auto took = std::chrono::steady_clock::now() - start;
    done = true;
    canceller.join();
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::cancelled);
    CHECK(got.ready == std::vector<bool>{true});
    CHECK(took < std::chrono::milliseconds(1500));
}

TEST_CASE("attach with stdin reports an engine that is not there", "[docker][hijack]") {
    Endpoint ep;
    ep.socket_path = "/nonexistent/airlock-hijack.sock";
    Client c(ep);
    Collected got;
    auto r = attach(c, got, "x\n");
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::unreachable);
    CHECK(r.error().message.find(
              "cannot reach the Docker engine at unix:///nonexistent/airlock-hijack.sock") == 0);
    CHECK(got.ready == std::vector<bool>{false});
}

TEST_CASE("attach without stdin keeps the plain request", "[docker][hijack]") {
    FakeEngine engine([&](int fd) {
        write_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                      "\r\n" +
                          frame(StreamId::stdout_, "plain\n"));
    });
    Client c(engine.endpoint());
    Collected got;
    auto r = c.container_attach(
        "abc123",
        [&](StreamId, std::string_view d) {
            got.out.append(d);
            return true;
        },
        [&](bool ok) { got.ready.push_back(ok); }, nullptr);
    REQUIRE(r);
    CHECK(got.ready == std::vector<bool>{true});
    CHECK(got.out == "plain\n");
    CHECK(engine.request.rfind(
              "POST /v1.41/containers/abc123/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n", 0) ==
          0);
    CHECK(engine.request.find("Upgrade") == std::string::npos);
}
