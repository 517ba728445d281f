// airlock-init: the loopback-to-unix-socket relay and handoff (driven on a thread) and the binary
// itself (the copy embedded in airlock, run as a child process): exit codes, signals, orphans,
// relays, handoffs.
#include "init/relay.hpp"
#include "init/sidecar_binaries.hpp"
#include "util/fd.hpp"
#include "util/sha256.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <random>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

using airlock::init::Forwarding;
using airlock::init::Relay;
using airlock::util::Fd;
using airlock::util::write_all;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Short, under /tmp: a unix socket path must fit in 108 bytes.
class TempDir {
public:
    TempDir() {
        std::string tmpl = "/tmp/airlock-relay-XXXXXX";
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        m_path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(m_path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return m_path; }

private:
    fs::path m_path;
};

std::size_t open_fds() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd"))
        ++n;
    return n - 1; // the iterator's own
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

enum class Mode {
    echo,        // echoes everything; at EOF sends the trailer and closes
    greet_first, // sends "hello\n", shuts down its side, then counts what arrives until EOF
    take_socket, // receives the handoff (0x00 and a TCP socket), then on that socket sends
                 // "hello\n" and echoes everything
};

// The byte and the one descriptor of a handoff; an invalid Fd when it was not one.
Fd receive_handoff(int fd) {
    char byte = 1;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC) != 1) return Fd();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (c == nullptr || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
        c->cmsg_len != CMSG_LEN(sizeof(int)))
        return Fd();
    int received = -1;
    std::memcpy(&received, CMSG_DATA(c), sizeof received);
    Fd socket(received);
    int domain = 0;
    socklen_t len = sizeof domain;
    if (byte != 0 || ::getsockopt(received, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 ||
        domain != AF_INET)
        return Fd();
    return socket;
}

// A unix-socket server on a thread per connection, standing in for the egress proxy.
class UnixServer {
public:
    UnixServer(const fs::path& path, Mode mode, std::string trailer = {})
        : m_mode(mode), m_trailer(std::move(trailer)) {
        m_listener = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(m_listener.valid());
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        REQUIRE(path.string().size() < sizeof addr.sun_path);
        std::strcpy(addr.sun_path, path.c_str());
        REQUIRE(::bind(m_listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(m_listener.get(), SOMAXCONN) == 0);
        REQUIRE(::pipe2(m_stop, O_CLOEXEC) == 0);
        m_acceptor = std::thread([this] { accept_loop(); });
    }
    ~UnixServer() {
        ::close(m_stop[1]);
        m_acceptor.join();
        for (auto& worker : m_workers)
            worker.join();
        ::close(m_stop[0]);
    }
    UnixServer(const UnixServer&) = delete;
    UnixServer& operator=(const UnixServer&) = delete;

    int active() const { return m_active.load(); }
    std::size_t received() const { return m_received.load(); }
    int handoffs() const { return m_handoffs.load(); }
    int bad_handoffs() const { return m_bad_handoffs.load(); }

private:
    // Readable fd, or -1 once the server stops.
    int wait_readable(int fd) {
        pollfd fds[2] = {{fd, POLLIN, 0}, {m_stop[0], POLLIN, 0}};
        while (::poll(fds, 2, -1) < 0) {
        }
        return fds[1].revents ? -1 : fd;
    }

    void accept_loop() {
        while (wait_readable(m_listener.get()) >= 0) {
            const int fd = ::accept4(m_listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            ++m_active;
            std::lock_guard lock(m_mutex);
            m_workers.emplace_back([this, fd] {
                serve(fd);
                ::close(fd);
                --m_active;
            });
        }
    }

    void serve(int unix_fd) {
        Fd handed;
        if (m_mode == Mode::take_socket) {
            if (wait_readable(unix_fd) < 0) return;
            handed = receive_handoff(unix_fd);
            ++(handed.valid() ? m_handoffs : m_bad_handoffs);
            if (!handed.valid()) return;
            write_all(handed.get(), "hello\n");
        }
        const int fd = handed.valid() ? handed.get() : unix_fd;
        if (m_mode == Mode::greet_first) {
            write_all(fd, "hello\n");
            ::shutdown(fd, SHUT_WR);
        }
        std::vector<char> buf(64 * 1024);
        while (wait_readable(fd) >= 0) {
            const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
            if (n < 0) return;
            if (n == 0) {
                if (m_mode == Mode::echo) write_all(fd, m_trailer);
                return;
            }
            m_received += static_cast<std::size_t>(n);
            if (m_mode != Mode::greet_first &&
                !write_all(fd, std::string_view(buf.data(), static_cast<std::size_t>(n))))
                return;
        }
    }

    Mode m_mode;
    std::string m_trailer;
    Fd m_listener;
    int m_stop[2] = {-1, -1};
    std::thread m_acceptor;
    std::mutex m_mutex;
    std::vector<std::thread> m_workers;
    std::atomic<int> m_active{0};
    std::atomic<std::size_t> m_received{0};
    std::atomic<int> m_handoffs{0};
    std::atomic<int> m_bad_handoffs{0};
};

// A Relay on an ephemeral loopback port, run on its own thread until destroyed.
class RelayThread {
public:
    explicit RelayThread(const fs::path& socket_path, Forwarding forwarding = Forwarding::relay) {
        auto port = m_relay.add(0, socket_path.string(), forwarding);
        REQUIRE(port.ok());
        m_port = *port;
        REQUIRE(::pipe2(m_stop, O_CLOEXEC) == 0);
        m_thread = std::thread([this] {
            m_tid = ::gettid();
            m_relay.run(m_stop[0]);
        });
        REQUIRE(wait_until([&] { return m_tid.load() != 0; }));
    }
    ~RelayThread() {
        ::write(m_stop[1], "x", 1);
        m_thread.join();
        ::close(m_stop[0]);
        ::close(m_stop[1]);
    }
    RelayThread(const RelayThread&) = delete;
    RelayThread& operator=(const RelayThread&) = delete;

    std::uint16_t port() const { return m_port; }
    const Relay& relay() const { return m_relay; }
    pid_t tid() const { return m_tid.load(); }

private:
    Relay m_relay;
    std::uint16_t m_port = 0;
    int m_stop[2] = {-1, -1};
    std::atomic<pid_t> m_tid{0};
    std::thread m_thread;
};

Fd tcp_socket() {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd.valid());
    const timeval timeout{10, 0}; // a stuck relay fails the test instead of hanging it
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    return fd;
}

int connect_raw(int fd, std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
}

Fd connect_to(std::uint16_t port) {
    Fd fd = tcp_socket();
    REQUIRE(connect_raw(fd.get(), port) == 0);
    return fd;
}

std::string read_n(int fd, std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
        const ssize_t r = ::recv(fd, out.data() + got, n - got, 0);
        if (r <= 0) break;
        got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    return out;
}

// Everything until EOF; throws when the 10 s receive timeout passes first.
std::string read_all(int fd) {
    std::string out;
    char buf[64 * 1024];
    for (;;) {
        const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r == 0) return out;
        if (r < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
        }
        out.append(buf, static_cast<std::size_t>(r));
    }
}

// A free loopback port for the binary's --relay (the kernel picks, we let go of it).
std::uint16_t free_port() {
    Fd fd = tcp_socket();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    return ntohs(addr.sin_port);
}

// CPU clock ticks a thread has used, read through an fd opened beforehand; -1 on failure.
// Asserts nothing: it runs while every descriptor is taken.
long cpu_ticks(int stat_fd) {
    char buf[1024];
    const ssize_t n = ::pread(stat_fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = '\0';
    // Fields after the ")" of the command name: state is 3, utime 14, stime 15.
    const char* p = std::strrchr(buf, ')');
    long utime = 0, stime = 0;
    if (p == nullptr || std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
                                    &utime, &stime) != 2)
        return -1;
    return utime + stime;
}

} // namespace

TEST_CASE("relay carries bytes both ways", "[init][relay]") {
    TempDir dir;
    UnixServer server(dir.path() / "proxy.sock", Mode::echo);
    RelayThread relay(dir.path() / "proxy.sock");
    CHECK(relay.port() != 0);

    Fd client = connect_to(relay.port());
    REQUIRE(write_all(client.get(), "hello relay"));
    CHECK(read_n(client.get(), 11) == "hello relay");
    REQUIRE(write_all(client.get(), "again"));
    CHECK(read_n(client.get(), 5) == "again");
}

TEST_CASE("relay carries 10 MiB intact in both directions", "[init][relay]") {
    TempDir dir;
    UnixServer server(dir.path() / "proxy.sock", Mode::echo);
    RelayThread relay(dir.path() / "proxy.sock");

    std::string data(10 * 1024 * 1024, '\0');
    std::mt19937_64 random(42);
    for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
        const std::uint64_t v = random();
        std::memcpy(data.data() + i, &v, 8);
    }
    Fd client = connect_to(relay.port());
    std::thread writer([&] {
        write_all(client.get(), data);
        ::shutdown(client.get(), SHUT_WR);
    });
    std::string back;
    CHECK_NOTHROW(back = read_all(client.get()));
    writer.join();
    CHECK(back.size() == data.size());
    CHECK(airlock::util::sha256_hex(back) == airlock::util::sha256_hex(data));
}

TEST_CASE("relay passes a half-close on and keeps the other direction going", "[init][relay]") {
    TempDir dir;

    SECTION("the client finishes sending first") {
        UnixServer server(dir.path() / "proxy.sock", Mode::echo, "bye\n");
        RelayThread relay(dir.path() / "proxy.sock");
        Fd client = connect_to(relay.port());
        REQUIRE(write_all(client.get(), "ping"));
        REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
        // The server saw EOF (it sent "bye") and its bytes still arrived after our FIN.
        CHECK(read_all(client.get()) == "pingbye\n");
    }

    SECTION("the server finishes sending first") {
        UnixServer server(dir.path() / "proxy.sock", Mode::greet_first);
        RelayThread relay(dir.path() / "proxy.sock");
        Fd client = connect_to(relay.port());
        CHECK(read_all(client.get()) == "hello\n");
        REQUIRE(write_all(client.get(), "still talking"));
        CHECK(wait_until([&] { return server.received() == 13; }));
        REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
        CHECK(wait_until([&] { return relay.relay().connections() == 0; }));
    }
}

TEST_CASE("relay leaks no descriptors over 500 sequential and 100 concurrent connections",
          "[init][relay]") {
    TempDir dir;
    UnixServer server(dir.path() / "proxy.sock", Mode::echo);
    RelayThread relay(dir.path() / "proxy.sock");
    const std::size_t before = open_fds();

    for (int i = 0; i < 500; ++i) {
        Fd client = connect_to(relay.port());
        const std::string msg = "message " + std::to_string(i);
        REQUIRE(write_all(client.get(), msg));
        REQUIRE(read_n(client.get(), msg.size()) == msg);
    }

    std::vector<Fd> clients;
    for (int i = 0; i < 100; ++i)
        clients.push_back(connect_to(relay.port()));
    for (std::size_t i = 0; i < clients.size(); ++i)
        REQUIRE(write_all(clients[i].get(), "concurrent " + std::to_string(i)));
    for (std::size_t i = 0; i < clients.size(); ++i) {
        const std::string msg = "concurrent " + std::to_string(i);
        REQUIRE(read_n(clients[i].get(), msg.size()) == msg);
    }
    CHECK(wait_until([&] { return relay.relay().connections() == 100; }));
    clients.clear();

    CHECK(wait_until([&] { return relay.relay().connections() == 0 && server.active() == 0; }));
    CHECK(open_fds() == before);
}

TEST_CASE("relay retries the connect while the unix socket's backlog is full", "[init][relay]") {
    TempDir dir;
    const auto path = dir.path() / "slow.sock";
    // A proxy that is slow to accept: a backlog of one, nobody accepting yet.
    Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener.get(), 0) == 0);
    RelayThread relay(path);

    std::vector<Fd> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(connect_to(relay.port()));
        REQUIRE(write_all(clients.back().get(), "msg" + std::to_string(i)));
    }
    REQUIRE(wait_until([&] { return relay.relay().connections() == 3; }));
    std::this_thread::sleep_for(100ms); // some connects have now failed with EAGAIN, and wait

    // Accept and echo each one as it comes: the relay's retries bring all three.
    for (int i = 0; i < 3; ++i) {
        pollfd pfd{listener.get(), POLLIN, 0};
        REQUIRE(::poll(&pfd, 1, 5000) == 1);
        Fd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        REQUIRE(conn.valid());
        const std::string msg = read_n(conn.get(), 4);
        REQUIRE(write_all(conn.get(), msg));
    }
    std::vector<std::string> got;
    for (auto& client : clients)
        got.push_back(read_n(client.get(), 4));
    CHECK(got == std::vector<std::string>{"msg0", "msg1", "msg2"});
}

TEST_CASE("relay waits for a proxy that is still starting", "[init][relay]") {
    TempDir dir;
    RelayThread relay(dir.path() / "late.sock");
    Fd client = connect_to(relay.port());
    REQUIRE(write_all(client.get(), "early"));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    UnixServer server(dir.path() / "late.sock", Mode::echo);
    CHECK(read_n(client.get(), 5) == "early");
}

TEST_CASE("relay closes the client once the proxy it reached is gone", "[init][relay]") {
    TempDir dir;
    RelayThread relay(dir.path() / "gone.sock");
    {
        UnixServer server(dir.path() / "gone.sock", Mode::echo);
        Fd first = connect_to(relay.port());
        REQUIRE(write_all(first.get(), "one"));
        CHECK(read_n(first.get(), 3) == "one");
    }
    std::filesystem::remove(dir.path() / "gone.sock");
    Fd client = connect_to(relay.port());
    std::string got = "unset";
    CHECK_NOTHROW(got = read_all(client.get()));
    CHECK(got.empty());
    CHECK(wait_until([&] { return relay.relay().connections() == 0; }));
}

TEST_CASE("relay rests when out of descriptors and serves the backlog later", "[init][relay]") {
    TempDir dir;
    UnixServer server(dir.path() / "proxy.sock", Mode::echo);
    RelayThread relay(dir.path() / "proxy.sock");
    Fd stat(::open(("/proc/self/task/" + std::to_string(relay.tid()) + "/stat").c_str(),
                   O_RDONLY | O_CLOEXEC));
    REQUIRE(stat.valid());

    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    struct Restore {
        rlimit limit;
        ~Restore() { ::setrlimit(RLIMIT_NOFILE, &limit); }
    } restore{saved};
    rlimit low = saved;
    low.rlim_cur = std::min<rlim_t>(saved.rlim_cur, open_fds() + 256);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);

    // Every descriptor taken: the clients' sockets first, then fillers up to the limit. No
    // assertions until the fillers are gone: sanitizer checks need a descriptor themselves.
    std::vector<Fd> clients;
    for (int i = 0; i < 3; ++i)
        clients.push_back(tcp_socket());
    Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    REQUIRE(null.valid());
    std::vector<Fd> fillers;
    int fill_errno = 0;
    for (;;) {
        Fd fd(::fcntl(null.get(), F_DUPFD_CLOEXEC, 0));
        if (!fd.valid()) {
            fill_errno = errno;
            break;
        }
        fillers.push_back(std::move(fd));
    }
    int connected = 0;
    for (auto& client : clients) // completes in the kernel's backlog
        connected += connect_raw(client.get(), relay.port()) == 0 ? 1 : 0;
    const long ticks_before = cpu_ticks(stat.get());
    std::this_thread::sleep_for(500ms);
    const long ticks_after = cpu_ticks(stat.get());
    const std::size_t accepted = relay.relay().connections();
    fillers.clear();

    CHECK(fill_errno == EMFILE);
    CHECK(connected == 3);
    CHECK(accepted == 0);
    REQUIRE(ticks_before >= 0);
    CHECK(ticks_after - ticks_before <= 10); // 100 ms of 500: resting, not spinning on accept

    for (std::size_t i = 0; i < clients.size(); ++i) {
        const std::string msg = "late " + std::to_string(i);
        REQUIRE(write_all(clients[i].get(), msg));
        CHECK(read_n(clients[i].get(), msg.size()) == msg);
    }
}

TEST_CASE("relay add names the port and the fix when it cannot listen", "[init][relay]") {
    TempDir dir;
    Relay relay;

    Fd taken = tcp_socket();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(taken.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(taken.get(), 1) == 0);
    REQUIRE(::getsockname(taken.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    const std::string port = std::to_string(ntohs(addr.sin_port));

    auto in_use = relay.add(ntohs(addr.sin_port), (dir.path() / "proxy.sock").string());
    REQUIRE_FALSE(in_use.ok());
    CHECK(in_use.error().message ==
          "--relay " + port + ": cannot listen on 127.0.0.1:" + port +
              ": Address already in use (something else listens there: pick another port)");

    auto long_path = relay.add(0, "/" + std::string(200, 'x'));
    REQUIRE_FALSE(long_path.ok());
    CHECK_THAT(long_path.error().message,
               Catch::StartsWith("--relay 0: \"/xxx") &&
                   Catch::EndsWith("\" is not a unix socket path (use 1 to 107 bytes, e.g. "
                                   "/run/airlock/egress.sock)"));
}

TEST_CASE("handoff passes the accepted socket itself to the unix socket", "[init][relay]") {
    TempDir dir;
    UnixServer server(dir.path() / "proxy.sock", Mode::take_socket);
    RelayThread relay(dir.path() / "proxy.sock", Forwarding::handoff);

    Fd client = connect_to(relay.port());
    CHECK(read_n(client.get(), 6) == "hello\n");
    REQUIRE(write_all(client.get(), "straight through"));
    CHECK(read_n(client.get(), 16) == "straight through");
    // Init let go of both ends once sent: nothing of the connection is left in the relay.
    CHECK(wait_until([&] { return relay.relay().connections() == 0; }));
    CHECK(server.handoffs() == 1);
    CHECK(server.bad_handoffs() == 0);
    REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
    CHECK(read_all(client.get()).empty());
}

TEST_CASE("handoff leaks no descriptors over 200 connections", "[init][relay]") {
    TempDir dir;
    UnixServer server(dir.path() / "proxy.sock", Mode::take_socket);
    RelayThread relay(dir.path() / "proxy.sock", Forwarding::handoff);
    const std::size_t before = open_fds();

    for (int i = 0; i < 200; ++i) {
        Fd client = connect_to(relay.port());
        const std::string msg = "message " + std::to_string(i);
        REQUIRE(read_n(client.get(), 6) == "hello\n");
        REQUIRE(write_all(client.get(), msg));
        REQUIRE(read_n(client.get(), msg.size()) == msg);
    }
    CHECK(wait_until([&] { return relay.relay().connections() == 0 && server.active() == 0; }));
    CHECK(server.handoffs() == 200);
    CHECK(open_fds() == before);
}

TEST_CASE("handoff waits for a proxy that is still starting", "[init][relay]") {
    TempDir dir;
    RelayThread relay(dir.path() / "late.sock", Forwarding::handoff);
    Fd client = connect_to(relay.port());
    REQUIRE(write_all(client.get(), "early"));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(relay.relay().connections() == 1);
    UnixServer server(dir.path() / "late.sock", Mode::take_socket);
    // Init read nothing: the early bytes wait in the socket for whoever holds it.
    CHECK(read_n(client.get(), 11) == "hello\nearly");
    CHECK(wait_until([&] { return relay.relay().connections() == 0; }));
}

TEST_CASE("handoff closes the client once the proxy it reached is gone", "[init][relay]") {
    TempDir dir;
    RelayThread relay(dir.path() / "gone.sock", Forwarding::handoff);
    {
        UnixServer server(dir.path() / "gone.sock", Mode::take_socket);
        Fd first = connect_to(relay.port());
        CHECK(read_n(first.get(), 6) == "hello\n");
    }
    std::filesystem::remove(dir.path() / "gone.sock");
    Fd client = connect_to(relay.port());
    std::string got = "unset";
    CHECK_NOTHROW(got = read_all(client.get()));
    CHECK(got.empty());
    CHECK(wait_until([&] { return relay.relay().connections() == 0; }));
}

TEST_CASE("handoff add names its option when it cannot listen", "[init][relay]") {
    Relay relay;
    auto long_path = relay.add(0, "/" + std::string(200, 'x'), Forwarding::handoff);
    REQUIRE_FALSE(long_path.ok());
    CHECK_THAT(long_path.error().message, Catch::StartsWith("--handoff 0: \"/xxx"));
}

// ---- the airlock-init binary ----

namespace {

// The airlock-init that airlock embeds, written out once for these tests.
const std::string& init_binary_path() {
    static TempDir dir;
    static const std::string path = [] {
        const std::string p = (dir.path() / "airlock-init").string();
        std::ofstream(p, std::ios::binary) << airlock::init::init_binary();
        fs::permissions(p, fs::perms::owner_all);
        return p;
    }();
    return path;
}

class InitProcess {
public:
    explicit InitProcess(const std::vector<std::string>& args) {
        m_err_path = (m_dir.path() / "stderr").string();
        int out[2];
        REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
        m_out = Fd(out[0]);
        Fd out_write(out[1]);

        std::vector<std::string> argv{init_binary_path()};
        argv.insert(argv.end(), args.begin(), args.end());
        std::vector<char*> cargv;
        for (auto& a : argv)
            cargv.push_back(a.data());
        cargv.push_back(nullptr);

        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, m_err_path.c_str(),
                                         O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int rc = ::posix_spawn(&m_pid, cargv[0], &actions, nullptr, cargv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        REQUIRE(rc == 0);
    }
    ~InitProcess() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            ::waitpid(m_pid, nullptr, 0);
        }
    }
    InitProcess(const InitProcess&) = delete;
    InitProcess& operator=(const InitProcess&) = delete;

    pid_t pid() const { return m_pid; }
    // One line of the command's stdout, without the newline.
    std::string read_line() {
        std::string line;
        char c;
        while (::read(m_out.get(), &c, 1) == 1 && c != '\n')
            line += c;
        return line;
    }
    // Exit code, or 128 + signal.
    int wait() {
        int status = 0;
        REQUIRE(::waitpid(m_pid, &status, 0) == m_pid);
        m_pid = -1;
        return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    }
    std::string err() const {
        std::ifstream in(m_err_path);
        return {std::istreambuf_iterator<char>(in), {}};
    }

private:
    TempDir m_dir;
    std::string m_err_path;
    Fd m_out;
    pid_t m_pid = -1;
};

struct Ran {
    int code;
    std::string err;
};

Ran run_init(const std::vector<std::string>& args) {
    InitProcess init(args);
    const int code = init.wait();
    return {code, init.err()};
}

// Zombie children of `parent`, from /proc.
int zombies_of(pid_t parent) {
    int n = 0;
    for (const auto& entry : fs::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream in(entry.path() / "stat");
        std::string text((std::istreambuf_iterator<char>(in)), {});
        const auto close = text.rfind(')');
        if (close == std::string::npos) continue;
        char state = 0;
        int ppid = 0;
        if (std::sscanf(text.c_str() + close + 2, "%c %d", &state, &ppid) == 2 && state == 'Z' &&
            ppid == parent)
            ++n;
    }
    return n;
}

} // namespace

TEST_CASE("relay binary: exits with the command's code, or 128 + its signal", "[init][relay]") {
    CHECK(run_init({"--", "sh", "-c", "exit 3"}).code == 3);
    CHECK(run_init({"--", "true"}).code == 0);
    CHECK(run_init({"sh", "-c", "exit 7"}).code == 7); // "--" is optional
    CHECK(run_init({"--", "sh", "-c", "kill -TERM $$"}).code == 128 + SIGTERM);
    CHECK(run_init({"--", "sh", "-c", "kill -KILL $$"}).code == 128 + SIGKILL);
}

TEST_CASE("relay binary: a command that cannot run exits 127 or 126", "[init][relay]") {
    const Ran missing = run_init({"--", "airlock-no-such-command"});
    CHECK(missing.code == 127);
    CHECK(missing.err == "airlock-init: airlock-no-such-command: command not found\n");

    TempDir dir;
    const auto script = dir.path() / "not-executable";
    std::ofstream(script) << "#!/bin/sh\n";
    fs::permissions(script, fs::perms::owner_read | fs::perms::owner_write);
    const Ran denied = run_init({"--", script.string()});
    CHECK(denied.code == 126);
    CHECK(denied.err == "airlock-init: " + script.string() + ": Permission denied\n");
}

TEST_CASE("relay binary: bad arguments exit 125 with a message", "[init][relay]") {
    const std::string usage =
        "usage: airlock-init [--relay|--handoff PORT=UNIX_SOCKET_PATH]... -- COMMAND [ARGS...]";
    const std::string form =
        " (use PORT=UNIX_SOCKET_PATH, e.g. --relay 3128=/run/airlock/egress.sock)\n";
    const std::string handoff_form =
        " (use PORT=UNIX_SOCKET_PATH, e.g. --handoff 3128=/run/airlock/egress.sock)\n";
    struct Case {
        std::vector<std::string> args;
        std::string err;
    };
    const Case cases[] = {
        {{}, "airlock-init: no command to run; " + usage + "\n"},
        {{"--relay", "3128=/x.sock"}, "airlock-init: no command to run; " + usage + "\n"},
        {{"--relay"}, "airlock-init: --relay needs a value; " + usage + "\n"},
        {{"--relay", "3128", "--", "true"}, "airlock-init: --relay \"3128\": no '='" + form},
        {{"--relay=x=/a", "--", "true"},
         "airlock-init: --relay \"x=/a\": \"x\" is not a port" + form},
        {{"--relay", "0=/a", "--", "true"},
         "airlock-init: --relay \"0=/a\": port 0 is not in 1-65535" + form},
        {{"--relay", "70000=/a", "--", "true"},
         "airlock-init: --relay \"70000=/a\": port 70000 is not in 1-65535" + form},
        {{"--relay", "3128=", "--", "true"},
         "airlock-init: --relay \"3128=\": no socket path" + form},
        {{"--relay", "3128=/a", "--relay", "3128=/b", "--", "true"},
         "airlock-init: --relay 3128 is given twice (one per port)\n"},
        {{"--handoff"}, "airlock-init: --handoff needs a value; " + usage + "\n"},
        {{"--handoff", "3128", "--", "true"},
         "airlock-init: --handoff \"3128\": no '='" + handoff_form},
        {{"--handoff=0=/a", "--", "true"},
         "airlock-init: --handoff \"0=/a\": port 0 is not in 1-65535" + handoff_form},
        {{"--relay", "3128=/a", "--handoff", "3128=/b", "--", "true"},
         "airlock-init: --handoff 3128 is given twice (one per port)\n"},
        {{"--verbose", "--", "true"},
         "airlock-init: unknown option \"--verbose\"; " + usage + "\n"},
    };
    for (const auto& c : cases) {
        INFO(c.err);
        const Ran ran = run_init(c.args);
        CHECK(ran.code == 125);
        CHECK(ran.err == c.err);
    }
}

TEST_CASE("relay binary: forwards SIGTERM and SIGUSR1 to the command", "[init][relay]") {
    InitProcess init({"--", "sh", "-c",
                      "trap 'echo usr1' USR1; trap 'exit 42' TERM; echo ready; "
                      "while :; do sleep 0.02; done"});
    REQUIRE(init.read_line() == "ready");
    ::kill(init.pid(), SIGUSR1);
    CHECK(init.read_line() == "usr1");
    ::kill(init.pid(), SIGTERM);
    CHECK(init.wait() == 42);
}

TEST_CASE("relay binary: reaps orphans of the command", "[init][relay]") {
    // The subshell's sleep is orphaned, then reparented to airlock-init (a subreaper outside a
    // container, PID 1 inside one), which must reap it when it exits.
    InitProcess init({"--", "sh", "-c", "(sleep 0.1 &); echo ready; sleep 2"});
    REQUIRE(init.read_line() == "ready");
    std::this_thread::sleep_for(600ms);
    CHECK(zombies_of(init.pid()) == 0);
    ::kill(init.pid(), SIGTERM);
    CHECK(init.wait() == 128 + SIGTERM);
}

TEST_CASE("relay binary: listens before the command starts and relays to the socket",
          "[init][relay]") {
    TempDir dir;
    const auto socket = dir.path() / "egress.sock";
    UnixServer server(socket, Mode::echo);
    const std::uint16_t port = free_port();

    InitProcess init({"--relay", std::to_string(port) + "=" + socket.string(), "--", "sh", "-c",
                      "echo ready; exec sleep 30"});
    REQUIRE(init.read_line() == "ready");
    Fd client = connect_to(port);
    REQUIRE(write_all(client.get(), "through init"));
    CHECK(read_n(client.get(), 12) == "through init");
    ::kill(init.pid(), SIGTERM);
    CHECK(init.wait() == 128 + SIGTERM);
    CHECK(init.err().empty());
}

TEST_CASE("relay binary: hands connections off to the socket", "[init][relay]") {
    TempDir dir;
    const auto socket = dir.path() / "egress.sock";
    UnixServer server(socket, Mode::take_socket);
    const std::uint16_t port = free_port();

    InitProcess init({"--handoff", std::to_string(port) + "=" + socket.string(), "--", "sh", "-c",
                      "echo ready; exec sleep 30"});
    REQUIRE(init.read_line() == "ready");
    for (int i = 0; i < 3; ++i) {
        Fd client = connect_to(port);
        CHECK(read_n(client.get(), 6) == "hello\n");
        REQUIRE(write_all(client.get(), "past init"));
        CHECK(read_n(client.get(), 9) == "past init");
    }
    CHECK(server.handoffs() == 3);
    ::kill(init.pid(), SIGTERM);
    CHECK(init.wait() == 128 + SIGTERM);
    CHECK(init.err().empty());
}
