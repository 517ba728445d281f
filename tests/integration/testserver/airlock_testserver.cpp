// airlock-testserver: the HTTP(S) origin of the network integration tests. It runs in a scratch
// container on a docker network the test creates (aliases like allowed.test), and prints one JSON
// line per connection and per request so a test can tell what reached it.
//
// Usage: airlock-testserver --name NAME [--http PORT] [--https PORT]
// The TLS certificate (chain) and key are PEM in AIRLOCK_TS_CERT and AIRLOCK_TS_KEY.
// Endpoints (every response has Connection: close):
//   GET /hello        200 "hello from NAME\n"
//   POST|PUT /upload  reads the body (Content-Length, chunked, or until EOF): "received N\n"
//   GET /bytes/N      N bytes of 'x' (N <= 2^40), in 64 KiB writes, with Content-Length
//   GET /headers      the request head as received
//   GET /stream/N     chunked: N chunks "chunk i\n" (i = 0..N-1), 200 ms apart
//   anything else     404
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <optional>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

constexpr int k_exit_usage = 2;
constexpr std::size_t k_max_head = 64 * 1024;
constexpr std::size_t k_write_block = 64 * 1024;
constexpr std::uint64_t k_max_bytes = std::uint64_t{1} << 40;
constexpr std::uint64_t k_max_chunks = 100000;
constexpr auto k_chunk_gap = std::chrono::milliseconds(200);
constexpr int k_idle_seconds = 60; // a silent client's thread does not wait forever

constexpr const char* k_usage = "usage: airlock-testserver --name NAME [--http PORT] [--https PORT]"
                                " (TLS: PEM in AIRLOCK_TS_CERT and AIRLOCK_TS_KEY)";

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "airlock-testserver: %s\n", message.c_str());
    std::exit(k_exit_usage);
}

std::string openssl_errors() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "no detail" : out;
}

// ---- output ----

std::mutex g_out;

void emit(const std::string& line) {
    std::lock_guard lock(g_out);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

// ---- options ----

struct Options {
    std::string name;
    std::optional<std::uint16_t> http_port, https_port;
};

std::uint16_t parse_port(const std::string& flag, const std::string& value) {
    if (value.empty() || value.size() > 5 || value.find_first_not_of("0123456789") != value.npos ||
        std::stoul(value) > 65535)
        die(flag + " \"" + value + "\": not a port (use 0-65535; 0 picks a free one)");
    return static_cast<std::uint16_t>(std::stoul(value));
}

Options parse_args(int argc, char** argv) {
    Options opts;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i], value;
        if (const auto eq = arg.find('='); arg.starts_with("--") && eq != arg.npos) {
            value = arg.substr(eq + 1);
            arg.resize(eq);
        } else if (arg == "--name" || arg == "--http" || arg == "--https") {
            if (i + 1 == argc) die(arg + " needs a value; " + k_usage);
            value = argv[++i];
        }
        if (arg == "--name") {
            opts.name = value;
        } else if (arg == "--http") {
            opts.http_port = parse_port(arg, value);
        } else if (arg == "--https") {
            opts.https_port = parse_port(arg, value);
        } else if (arg == "--help" || arg == "-h") {
            std::printf("%s\n", k_usage);
            std::exit(0);
        } else {
            die("unknown argument \"" + arg + "\"; " + k_usage);
        }
    }
    if (opts.name.empty()) die(std::string("--name is required; ") + k_usage);
    if (!opts.http_port && !opts.https_port)
        die(std::string("give --http PORT, --https PORT or both; ") + k_usage);
    return opts;
}

// ---- TLS ----

SSL_CTX* make_tls_context() {
    const char* cert = std::getenv("AIRLOCK_TS_CERT");
    const char* key = std::getenv("AIRLOCK_TS_KEY");
    if (!cert || !*cert || !key || !*key)
        die("--https needs the certificate and key as PEM in AIRLOCK_TS_CERT and AIRLOCK_TS_KEY");
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) die("SSL_CTX_new: " + openssl_errors());
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF); // a body until EOF over TLS

    BIO* bio = BIO_new_mem_buf(cert, -1);
    X509* leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    if (!leaf || SSL_CTX_use_certificate(ctx, leaf) != 1)
        die("AIRLOCK_TS_CERT: no PEM certificate (" + openssl_errors() + ")");
    X509_free(leaf);
    while (X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr))
        if (SSL_CTX_add_extra_chain_cert(ctx, extra) != 1)
            die("AIRLOCK_TS_CERT: " + openssl_errors());
    ERR_clear_error(); // the end of the chain reads as an error
    BIO_free(bio);

    bio = BIO_new_mem_buf(key, -1);
    EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (!pkey) die("AIRLOCK_TS_KEY: no unencrypted PEM private key (" + openssl_errors() + ")");
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        die("AIRLOCK_TS_KEY is not the key of the certificate in AIRLOCK_TS_CERT (" +
            openssl_errors() + ")");
    EVP_PKEY_free(pkey);
    return ctx;
}

// ---- a connection ----

class Conn {
public:
    Conn(int fd, SSL* ssl) : m_fd(fd), m_ssl(ssl) {}
    ~Conn() {
        if (m_ssl) SSL_free(m_ssl);
        ::close(m_fd);
    }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    // Up to n bytes: buffered ones first. 0 at EOF, -1 on an error.
    long read(char* buf, std::size_t n) {
        if (m_at < m_buf.size()) {
            const std::size_t take = std::min(n, m_buf.size() - m_at);
            std::memcpy(buf, m_buf.data() + m_at, take);
            m_at += take;
            return static_cast<long>(take);
        }
        return raw_read(buf, n);
    }
    bool write(std::string_view data) {
        while (!data.empty()) {
            long n;
            if (m_ssl) {
                const int chunk = static_cast<int>(std::min<std::size_t>(data.size(), 1 << 30));
                n = SSL_write(m_ssl, data.data(), chunk);
                if (n <= 0) return false;
            } else {
                n = ::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) return false;
            }
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
    // The request head, through the blank line; the bytes after it stay buffered for read().
    // Empty when the client left before finishing it; nullopt when it is too large.
    std::optional<std::string> read_head() {
        std::string data;
        char buf[16 * 1024];
        for (;;) {
            if (const auto end = data.find("\r\n\r\n"); end != data.npos) {
                m_buf = data.substr(end + 4);
                m_at = 0;
                return data.substr(0, end + 4);
            }
            if (data.size() > k_max_head) return std::nullopt;
            const long n = raw_read(buf, sizeof buf);
            if (n <= 0) return std::string();
            data.append(buf, static_cast<std::size_t>(n));
        }
    }
    // A line of the body (chunk sizes), without its CRLF.
    std::optional<std::string> read_line() {
        std::string line;
        char c;
        while (read(&c, 1) == 1) {
            if (c == '\n') {
                if (!line.empty() && line.back() == '\r') line.pop_back();
                return line;
            }
            if (line.size() > 4096) return std::nullopt;
            line += c;
        }
        return std::nullopt;
    }
    // Sends our FIN (close_notify first over TLS) and reads what the client still sends for a
    // moment, so closing does not reset a response it has not read yet.
    void finish() {
        if (m_ssl) SSL_shutdown(m_ssl);
        ::shutdown(m_fd, SHUT_WR);
        const timeval linger{2, 0};
        ::setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &linger, sizeof linger);
        char buf[16 * 1024];
        for (std::size_t total = 0; total < (std::size_t{1} << 20);) {
            const ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            total += static_cast<std::size_t>(n);
        }
    }

private:
    long raw_read(char* buf, std::size_t n) {
        if (m_ssl) {
            const int r = SSL_read(m_ssl, buf, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
            if (r > 0) return r;
            return SSL_get_error(m_ssl, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
        }
        for (;;) {
            const ssize_t r = ::recv(m_fd, buf, n, 0);
            if (r < 0 && errno == EINTR) continue;
            return r;
        }
    }

    int m_fd;
    SSL* m_ssl;
    std::string m_buf; // read past the head
    std::size_t m_at = 0;
};

// ---- HTTP ----

struct Request {
    std::string head, method, target, path, host;
    std::vector<std::pair<std::string, std::string>> headers;

    std::optional<std::string> header(std::string_view name) const {
        for (const auto& [k, v] : headers)
            if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0)
                return v;
        return std::nullopt;
    }
};

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return std::string(s);
}

// The path of an origin-form ("/a?b") or absolute-form ("http://host/a?b") target, no query.
std::string path_of(const std::string& target) {
    std::string path = target;
    if (const auto scheme = target.find("://"); target.front() != '/' && scheme != target.npos) {
        const auto slash = target.find('/', scheme + 3);
        path = slash == target.npos ? "/" : target.substr(slash);
    }
    return path.substr(0, path.find_first_of("?#"));
}

std::optional<Request> parse_request(std::string head) {
    Request req;
    req.head = std::move(head);
    std::size_t at = 0;
    auto next_line = [&]() -> std::string_view {
        const auto end = req.head.find("\r\n", at);
        std::string_view line(req.head.data() + at, end - at);
        at = end + 2;
        return line;
    };
    const std::string_view start = next_line();
    const auto sp1 = start.find(' ');
    const auto sp2 = start.rfind(' ');
    if (sp1 == start.npos || sp2 == sp1 || !start.substr(sp2 + 1).starts_with("HTTP/"))
        return std::nullopt;
    req.method = std::string(start.substr(0, sp1));
    req.target = std::string(start.substr(sp1 + 1, sp2 - sp1 - 1));
    if (req.target.empty()) return std::nullopt;
    for (std::string_view line = next_line(); !line.empty(); line = next_line()) {
        const auto colon = line.find(':');
        if (colon == line.npos || colon == 0) return std::nullopt;
        req.headers.emplace_back(std::string(line.substr(0, colon)), trim(line.substr(colon + 1)));
    }
    req.path = path_of(req.target);
    req.host = req.header("Host").value_or("");
    return req;
}

const char* reason(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Error";
    }
}

std::string response_head(int status, const std::string& length_or_chunked) {
    return "HTTP/1.1 " + std::to_string(status) + " " + reason(status) +
           "\r\nContent-Type: text/plain\r\n" + length_or_chunked + "\r\nConnection: close\r\n\r\n";
}

bool respond(Conn& conn, int status, const std::string& body) {
    return conn.write(response_head(status, "Content-Length: " + std::to_string(body.size())) +
                      body);
}

std::optional<std::uint64_t> parse_number(std::string_view s, int base = 10) {
    if (s.empty() || s.size() > 16) return std::nullopt;
    std::uint64_t v = 0;
    for (const char c : s) {
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return std::nullopt;
        v = v * static_cast<std::uint64_t>(base) + static_cast<std::uint64_t>(d);
    }
    return v;
}

// Reads and counts the body; nullopt when it is malformed or the connection fails midway.
std::optional<std::uint64_t> read_body(Conn& conn, const Request& req) {
    char buf[64 * 1024];
    std::uint64_t total = 0;
    auto drain = [&](std::optional<std::uint64_t> limit) -> bool {
        while (!limit || total < *limit) {
            const std::size_t want =
                limit ? std::min<std::uint64_t>(sizeof buf, *limit - total) : sizeof buf;
            const long n = conn.read(buf, want);
            if (n < 0) return false;
            if (n == 0) return !limit;
            total += static_cast<std::uint64_t>(n);
        }
        return true;
    };
    if (req.header("Expect").value_or("").starts_with("100"))
        conn.write("HTTP/1.1 100 Continue\r\n\r\n");
    if (req.header("Transfer-Encoding").value_or("").find("chunked") != std::string::npos) {
        for (;;) {
            const auto line = conn.read_line();
            if (!line) return std::nullopt;
            const auto size = parse_number(line->substr(0, line->find(';')), 16);
            if (!size) return std::nullopt;
            if (*size == 0) break;
            if (!drain(total + *size) || !conn.read_line()) return std::nullopt;
        }
        while (const auto trailer = conn.read_line()) // trailers, to the blank line
            if (trailer->empty()) return total;
        return std::nullopt;
    }
    if (const auto length = req.header("Content-Length")) {
        const auto n = parse_number(*length);
        if (!n) return std::nullopt;
        return drain(*n) ? std::optional(total) : std::nullopt;
    }
    return drain(std::nullopt) ? std::optional(total) : std::nullopt;
}

void send_bytes(Conn& conn, std::uint64_t n) {
    if (!conn.write(response_head(200, "Content-Length: " + std::to_string(n)))) return;
    const std::string block(k_write_block, 'x');
    while (n > 0) {
        const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n, block.size()));
        if (!conn.write(std::string_view(block).substr(0, take))) return;
        n -= take;
    }
}

void send_stream(Conn& conn, std::uint64_t chunks) {
    if (!conn.write(response_head(200, "Transfer-Encoding: chunked"))) return;
    char size[32];
    for (std::uint64_t i = 0; i < chunks; ++i) {
        if (i > 0) std::this_thread::sleep_for(k_chunk_gap);
        const std::string data = "chunk " + std::to_string(i) + "\n";
        std::snprintf(size, sizeof size, "%zx\r\n", data.size());
        if (!conn.write(size + data + "\r\n")) return;
    }
    conn.write("0\r\n\r\n");
}

void handle(Conn& conn, const Request& req, const std::string& name) {
    const std::string& p = req.path;
    const bool get = req.method == "GET";
    if (get && p == "/hello") {
        respond(conn, 200, "hello from " + name + "\n");
    } else if ((req.method == "POST" || req.method == "PUT") && p == "/upload") {
        const auto n = read_body(conn, req);
        if (n)
            respond(conn, 200, "received " + std::to_string(*n) + "\n");
        else
            respond(conn, 400, "bad or incomplete body\n");
    } else if (get && p.starts_with("/bytes/") && parse_number(p.substr(7))) {
        const std::uint64_t n = *parse_number(p.substr(7));
        if (n > k_max_bytes)
            respond(conn, 400, "at most 2^40 bytes\n");
        else
            send_bytes(conn, n);
    } else if (get && p == "/headers") {
        respond(conn, 200, req.head);
    } else if (get && p.starts_with("/stream/") && parse_number(p.substr(8))) {
        const std::uint64_t n = *parse_number(p.substr(8));
        if (n > k_max_chunks)
            respond(conn, 400, "at most 100000 chunks\n");
        else
            send_stream(conn, n);
    } else {
        respond(conn, 404, "not found\n");
    }
}

std::atomic<std::uint64_t> g_connections{0};

void serve(int fd, std::string peer, SSL_CTX* tls, const std::string& name) {
    const std::uint64_t id = ++g_connections;
    emit("{\"conn\":" + std::to_string(id) + ",\"peer\":" + json_string(peer) +
         ",\"tls\":" + (tls ? "true" : "false") + "}");
    const timeval idle{k_idle_seconds, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &idle, sizeof idle);
    SSL* ssl = nullptr;
    if (tls) {
        ssl = SSL_new(tls);
        if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1) {
            std::fprintf(stderr, "airlock-testserver: conn %llu from %s: TLS handshake: %s\n",
                         static_cast<unsigned long long>(id), peer.c_str(),
                         openssl_errors().c_str());
            if (ssl) SSL_free(ssl);
            ::close(fd);
            return;
        }
    }
    Conn conn(fd, ssl);
    const auto head = conn.read_head();
    if (head && head->empty()) return; // left without a whole request
    const auto req = head ? parse_request(*head) : std::nullopt;
    if (!req) {
        if (head)
            respond(conn, 400, "bad request\n");
        else
            respond(conn, 431, "request head over 64 KiB\n");
        return conn.finish();
    }
    emit("{\"request\":" + std::to_string(id) + ",\"method\":" + json_string(req->method) +
         ",\"target\":" + json_string(req->target) + ",\"host\":" + json_string(req->host) + "}");
    handle(conn, *req, name);
    conn.finish();
}

int listen_on(std::uint16_t port, const char* scheme) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd, SOMAXCONN) != 0)
        die(std::string("--") + scheme + " " + std::to_string(port) +
            ": cannot listen: " + std::strerror(errno));
    return fd;
}

std::uint16_t bound_port(int fd) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
}

[[noreturn]] void accept_loop(int listener, SSL_CTX* tls, const std::string& name) {
    for (;;) {
        sockaddr_in peer{};
        socklen_t len = sizeof peer;
        const int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char ip[INET_ADDRSTRLEN] = "?";
        ::inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
        try {
            std::thread(serve, fd, std::string(ip), tls, std::cref(name)).detach();
        } catch (const std::system_error& e) { // out of threads: this one connection fails
            std::fprintf(stderr, "airlock-testserver: no thread for a connection from %s: %s\n", ip,
                         e.what());
            ::close(fd);
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    const Options opts = parse_args(argc, argv);
    SSL_CTX* tls = opts.https_port ? make_tls_context() : nullptr;
    std::signal(SIGPIPE, SIG_IGN);
    // As PID 1 of its container the default would ignore them: docker stop should not wait.
    std::signal(SIGTERM, [](int) { _exit(0); });
    std::signal(SIGINT, [](int) { _exit(0); });

    std::string listening;
    std::vector<std::thread> loops;
    if (opts.http_port) {
        const int fd = listen_on(*opts.http_port, "http");
        listening += " http :" + std::to_string(bound_port(fd));
        loops.emplace_back(accept_loop, fd, nullptr, std::cref(opts.name));
    }
    if (opts.https_port) {
        const int fd = listen_on(*opts.https_port, "https");
        listening += " https :" + std::to_string(bound_port(fd));
        loops.emplace_back(accept_loop, fd, tls, std::cref(opts.name));
    }
    // On stderr, so stdout stays one JSON line per connection or request.
    std::fprintf(stderr, "airlock-testserver: %s listening on%s\n", opts.name.c_str(),
                 listening.c_str());
    for (auto& loop : loops)
        loop.join();
}
