#include "init/relay.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <system_error>
#include <unistd.h>

namespace airlock::init {

namespace {

using Clock = std::chrono::steady_clock;

// Out of descriptors on accept: the listener rests this long instead of spinning on the backlog.
constexpr auto k_accept_pause = std::chrono::milliseconds(100);
// The unix socket's backlog is full: retry the connect this often, for this long.
constexpr auto k_connect_retry = std::chrono::milliseconds(20);
constexpr auto k_connect_patience = std::chrono::seconds(3);
// The task may start while the proxy is still starting (airlock starts both at once): until a
// first connect succeeds, a missing or refusing socket is waited for this long.
constexpr auto k_startup_patience = std::chrono::seconds(15);
// Reads per direction per event, so one busy connection cannot starve the others.
constexpr int k_reads_per_event = 16;
constexpr int k_accepts_per_event = 64;
constexpr int k_max_events = 64;

util::Error listen_error(Forwarding forwarding, std::uint16_t port, const std::string& what) {
    const char* option = forwarding == Forwarding::handoff ? "--handoff " : "--relay ";
    return util::make_error(util::ErrorKind::invalid_input,
                            option + std::to_string(port) + ": " + what);
}

} // namespace

// What epoll reports on: the base of every registered object.
struct Relay::Handle {
    enum class Kind : std::uint8_t { listener, side, watched };
    Kind kind;
};

struct Relay::Listener : Handle {
    int fd = -1;
    std::string path;
    Forwarding forwarding = Forwarding::relay;
    bool paused = false;
    Clock::time_point resume_at;
};

// One end of a relayed connection (a handed-off client never enters the epoll set). `pending` holds
// bytes read from the other end that this end has not taken yet; while it is not empty the other
// end is not read.
struct Relay::Side : Handle {
    Conn* conn = nullptr;
    int fd = -1;
    std::uint32_t events = 0; // registered with epoll; 0: not in the set
    bool eof = false;         // this end will send no more
    bool shut = false;        // we sent this end our FIN
    std::string pending;
    std::size_t pending_at = 0;
};

struct Relay::Conn {
    Side client;
    Side upstream;
    const Listener* listener = nullptr;
    bool connecting = false;      // upstream connect in progress (EPOLLOUT tells)
    bool retrying = false;        // upstream backlog full: start_connect again at retry_at
    Clock::time_point retry_at;   // next connect attempt
    Clock::time_point give_up_at; // no connect after this: close the client
    Clock::time_point accepted_at;
    std::size_t index = 0; // in m_conns
    bool closed = false;
};

Relay::Relay() : m_scratch(new char[k_relay_buffer]) {
    m_epoll = ::epoll_create1(EPOLL_CLOEXEC);
    if (m_epoll < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
}

Relay::~Relay() {
    for (auto& conn : m_conns) {
        ::close(conn->client.fd);
        if (conn->upstream.fd >= 0) ::close(conn->upstream.fd);
    }
    for (auto& listener : m_listeners)
        ::close(listener->fd);
    if (m_epoll >= 0) ::close(m_epoll);
}

util::Result<std::uint16_t> Relay::add(std::uint16_t port, std::string socket_path,
                                       Forwarding forwarding) {
    if (socket_path.empty() || socket_path.size() >= sizeof(sockaddr_un::sun_path))
        return listen_error(forwarding, port,
                            "\"" + socket_path + "\" is not a unix socket path (use 1 to " +
                                std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                " bytes, e.g. /run/airlock/egress.sock)");
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return listen_error(forwarding, port, std::string("socket: ") + std::strerror(errno));
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd, SOMAXCONN) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        const int err = errno;
        ::close(fd);
        std::string fix = err == EADDRINUSE ? " (something else listens there: pick another port)"
                          : err == EACCES   ? " (ports below 1024 need root: pick a port >= 1024)"
                                            : "";
        return listen_error(forwarding, port,
                            "cannot listen on 127.0.0.1:" + std::to_string(port) + ": " +
                                std::strerror(err) + fix);
    }
    auto listener = std::make_unique<Listener>();
    listener->kind = Handle::Kind::listener;
    listener->fd = fd;
    listener->path = std::move(socket_path);
    listener->forwarding = forwarding;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = static_cast<Handle*>(listener.get());
    if (::epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &ev) != 0) {
        const int err = errno;
        ::close(fd);
        return listen_error(forwarding, port, std::string("epoll: ") + std::strerror(err));
    }
    m_listeners.push_back(std::move(listener));
    return static_cast<std::uint16_t>(ntohs(addr.sin_port));
}

void Relay::watch(int fd) {
    auto handle = std::make_unique<Handle>();
    handle->kind = Handle::Kind::watched;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = handle.get();
    if (::epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &ev) == 0) m_watched.push_back(std::move(handle));
}

void Relay::run(int stop_fd) {
    watch(stop_fd);
    while (!run_once(-1)) {
    }
}

bool Relay::run_once(int timeout_ms) {
    epoll_event events[k_max_events];
    const int n = ::epoll_wait(m_epoll, events, k_max_events, timer_timeout(timeout_ms));
    bool woken = false;
    for (int i = 0; i < n; ++i) {
        auto* handle = static_cast<Handle*>(events[i].data.ptr);
        switch (handle->kind) {
        case Handle::Kind::watched:
            woken = true;
            break;
        case Handle::Kind::listener:
            accept_from(*static_cast<Listener*>(handle));
            break;
        case Handle::Kind::side: {
            auto& side = *static_cast<Side*>(handle);
            if (!side.conn->closed) on_event(side, events[i].events);
            break;
        }
        }
    }
    wake_timers();
    m_closed.clear();
    return woken;
}

int Relay::timer_timeout(int timeout_ms) const {
    std::optional<Clock::time_point> next;
    auto consider = [&](Clock::time_point t) {
        if (!next || t < *next) next = t;
    };
    for (const auto& listener : m_listeners)
        if (listener->paused) consider(listener->resume_at);
    if (m_retrying > 0)
        for (const auto& conn : m_conns)
            if (conn->retrying) consider(conn->retry_at);
    if (!next) return timeout_ms;
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now()).count();
    const int ms = static_cast<int>(std::max<decltype(wait)>(wait, 0));
    return timeout_ms < 0 ? ms : std::min(ms, timeout_ms);
}

void Relay::wake_timers() {
    const auto now = Clock::now();
    for (auto& listener : m_listeners) {
        if (!listener->paused || listener->resume_at > now) continue;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = static_cast<Handle*>(listener.get());
        if (::epoll_ctl(m_epoll, EPOLL_CTL_ADD, listener->fd, &ev) == 0) {
            listener->paused = false;
        } else {
            listener->resume_at = now + k_accept_pause;
        }
    }
    if (m_retrying == 0) return;
    // start_connect may close a connection, which reorders m_conns: collect first.
    std::vector<Conn*> due;
    for (auto& conn : m_conns)
        if (conn->retrying && conn->retry_at <= now) due.push_back(conn.get());
    for (Conn* conn : due)
        start_connect(*conn);
}

void Relay::accept_from(Listener& listener) {
    for (int i = 0; i < k_accepts_per_event; ++i) {
        const int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays in the backlog; rest rather
            // than be woken for it again at once.
            ::epoll_ctl(m_epoll, EPOLL_CTL_DEL, listener.fd, nullptr);
            listener.paused = true;
            listener.resume_at = Clock::now() + k_accept_pause;
            return;
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        auto conn = std::make_unique<Conn>();
        conn->client.kind = conn->upstream.kind = Handle::Kind::side;
        conn->client.conn = conn->upstream.conn = conn.get();
        conn->client.fd = fd;
        conn->listener = &listener;
        conn->accepted_at = Clock::now();
        conn->give_up_at = conn->accepted_at + k_connect_patience;
        conn->index = m_conns.size();
        Conn& ref = *conn;
        m_conns.push_back(std::move(conn));
        ++m_count;
        start_connect(ref);
    }
}

void Relay::start_connect(Conn& conn) {
    if (conn.retrying) {
        conn.retrying = false;
        --m_retrying;
    }
    if (conn.upstream.fd < 0) {
        conn.upstream.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (conn.upstream.fd < 0) return close(conn);
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, conn.listener->path.c_str(), conn.listener->path.size() + 1);
    int rc;
    do {
        rc = ::connect(conn.upstream.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) {
        m_upstream_seen = true;
        conn.connecting = false;
        return update(conn);
    }
    if (errno == EINPROGRESS) {
        m_upstream_seen = true;
        conn.connecting = true;
        return update(conn);
    }
    const int err = errno;
    const bool not_up_yet = (err == ENOENT || err == ECONNREFUSED) && !m_upstream_seen &&
                            Clock::now() < conn.accepted_at + k_startup_patience;
    if (not_up_yet) {
        // A fresh socket for the next attempt.
        ::close(conn.upstream.fd);
        conn.upstream.fd = -1;
    }
    if ((err == EAGAIN && Clock::now() < conn.give_up_at) || not_up_yet) {
        conn.retrying = true;
        ++m_retrying;
        conn.retry_at = Clock::now() + k_connect_retry;
        return;
    }
    close(conn); // no proxy there: the client reads EOF
}

void Relay::set_events(Side& side, std::uint32_t events) {
    if (events == side.events) return;
    // An end with nothing to wait for leaves the set, so a hung-up socket cannot keep waking us.
    if (events == 0) {
        ::epoll_ctl(m_epoll, EPOLL_CTL_DEL, side.fd, nullptr);
    } else {
        epoll_event ev{};
        ev.events = events;
        ev.data.ptr = static_cast<Handle*>(&side);
        ::epoll_ctl(m_epoll, side.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, side.fd, &ev);
    }
    side.events = events;
}

void Relay::update(Conn& conn) {
    Side& c = conn.client;
    Side& u = conn.upstream;
    if (conn.connecting) {
        set_events(c, 0);
        set_events(u, EPOLLOUT);
        return;
    }
    if (conn.listener->forwarding == Forwarding::handoff) return hand_off(conn);
    if (c.eof && u.eof && c.pending.empty() && u.pending.empty()) return close(conn);
    auto wanted = [](const Side& self, const Side& other) {
        std::uint32_t events = 0;
        if (!self.eof && other.pending.empty()) events |= EPOLLIN;
        if (!self.pending.empty()) events |= EPOLLOUT;
        return events;
    };
    set_events(c, wanted(c, u));
    set_events(u, wanted(u, c));
}

void Relay::on_event(Side& side, std::uint32_t events) {
    Conn& conn = *side.conn;
    if (conn.connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(side.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
            return close(conn);
        conn.connecting = false;
        return update(conn);
    }
    if (events & EPOLLERR) return close(conn);
    if (conn.listener->forwarding == Forwarding::handoff) return hand_off(conn);
    Side& other = &side == &conn.client ? conn.upstream : conn.client;
    // Away from this end first: a peer that hung up may have left bytes to deliver.
    if ((events & (EPOLLIN | EPOLLHUP)) && !pump(side, other)) return close(conn);
    if ((events & (EPOLLOUT | EPOLLHUP)) && !pump(other, side)) return close(conn);
    update(conn);
}

bool Relay::pump(Side& from, Side& to) {
    char* buf = m_scratch.get();
    for (int reads = 0;;) {
        if (!to.pending.empty()) {
            const ssize_t n = ::send(to.fd, to.pending.data() + to.pending_at,
                                     to.pending.size() - to.pending_at, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                return errno == EAGAIN || errno == EWOULDBLOCK;
            }
            to.pending_at += static_cast<std::size_t>(n);
            if (to.pending_at < to.pending.size()) return true; // full: wait for EPOLLOUT
            std::string().swap(to.pending);                     // a slow reader's memory back
            to.pending_at = 0;
        }
        if (from.eof) {
            if (!to.shut) {
                ::shutdown(to.fd, SHUT_WR);
                to.shut = true;
            }
            return true;
        }
        if (reads++ == k_reads_per_event) return true; // level-triggered: epoll calls again
        const ssize_t n = ::recv(from.fd, buf, k_relay_buffer, 0);
        if (n == 0) {
            from.eof = true;
            continue;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        ssize_t sent;
        do {
            sent = ::send(to.fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
        } while (sent < 0 && errno == EINTR);
        if (sent < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
            sent = 0;
        }
        if (sent < n) {
            to.pending.assign(buf + sent, static_cast<std::size_t>(n - sent));
            to.pending_at = 0;
        }
    }
}

void Relay::hand_off(Conn& conn) {
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &conn.client.fd, sizeof(int));
    ssize_t n;
    do {
        n = ::sendmsg(conn.upstream.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return set_events(conn.upstream, EPOLLOUT);
    // Sent: the proxy holds the socket now. Failed: closing it gives the client EOF.
    close(conn);
}

void Relay::close(Conn& conn) {
    if (conn.closed) return;
    conn.closed = true;
    if (conn.retrying) --m_retrying;
    // close() drops the fds from the epoll set.
    ::close(conn.client.fd);
    if (conn.upstream.fd >= 0) ::close(conn.upstream.fd);
    const std::size_t i = conn.index;
    std::swap(m_conns[i], m_conns.back());
    m_conns[i]->index = i;
    m_closed.push_back(std::move(m_conns.back()));
    m_conns.pop_back();
    --m_count;
}

} // namespace airlock::init
