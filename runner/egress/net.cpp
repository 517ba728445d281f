#include "egress/net.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <memory>
#include <mutex>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

namespace airlock::egress {

namespace {

using util::ErrorKind;
using util::make_error;

int ms_until(std::optional<Clock::time_point> deadline) {
    if (!deadline) return -1;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
    if (left <= 0) return 0;
    return left > 60000 ? 60000 : static_cast<int>(left) + 1;
}

void* thread_main(void* arg) {
    std::unique_ptr<std::function<void()>> fn(static_cast<std::function<void()>*>(arg));
    (*fn)();
    return nullptr;
}

struct ResolveJob {
    Fd read_end;
    Fd write_end;
    std::string host;
    std::mutex mutex;
    Resolution result;
};

Resolution lookup(const std::string& host) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
    Resolution r;
    if (rc != 0) {
        r.error = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
        return r;
    }
    for (const addrinfo* ai = list; ai; ai = ai->ai_next) {
        auto a = from_sockaddr(ai->ai_addr);
        if (!a) continue;
        bool repeat = false;
        for (const auto& seen : r.addresses)
            repeat = repeat || (seen.v6 == a->v6 && std::memcmp(seen.bytes, a->bytes, 16) == 0);
        if (!repeat) r.addresses.push_back(*a);
    }
    ::freeaddrinfo(list);
    if (r.addresses.empty()) r.error = "no IPv4 or IPv6 address";
    return r;
}

} // namespace

Wait wait_for(int fd, short events, int stop_fd, std::optional<Clock::time_point> deadline) {
    while (true) {
        pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
        const int n = ::poll(fds, 2, ms_until(deadline));
        if (n < 0 && errno != EINTR) return Wait::ready; // let the caller's I/O report it
        if (fds[1].revents) return Wait::stopped;
        if (n > 0 && fds[0].revents) return Wait::ready;
        if (deadline && Clock::now() >= *deadline) return Wait::timeout;
    }
}

Io send_all(int fd, std::string_view data, int stop_fd, Clock::time_point deadline) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            const Wait w = wait_for(fd, POLLOUT, stop_fd, deadline);
            if (w == Wait::stopped) return Io::stopped;
            if (w == Wait::timeout) return Io::timeout;
            continue;
        }
        return Io::failed;
    }
    return Io::done;
}

bool spawn_detached(std::function<void()> fn, std::size_t stack_size) {
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0) return false;
    pthread_attr_setstacksize(&attr, stack_size);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    auto* arg = new std::function<void()>(std::move(fn));
    pthread_t thread;
    const int rc = pthread_create(&thread, &attr, thread_main, arg);
    pthread_attr_destroy(&attr);
    if (rc != 0) delete arg;
    return rc == 0;
}

namespace {
// Successful lookups are kept for a short while, as curl and browsers do: a client making many
// small requests to its API host should not pay a DNS round trip on each. The fence still checks
// every address on every request.
constexpr auto k_cache_ttl = std::chrono::seconds(30);
constexpr std::size_t k_cache_max = 1024;
std::mutex g_cache_mutex;
std::map<std::string, std::pair<Resolution, Clock::time_point>> g_cache;

std::optional<Resolution> cached(const std::string& host) {
    std::lock_guard lock(g_cache_mutex);
    auto it = g_cache.find(host);
    if (it == g_cache.end()) return std::nullopt;
    if (Clock::now() >= it->second.second) {
        g_cache.erase(it);
        return std::nullopt;
    }
    return it->second.first;
}

void remember(const std::string& host, const Resolution& r) {
    if (!r.error.empty() || r.addresses.empty()) return;
    std::lock_guard lock(g_cache_mutex);
    if (g_cache.size() >= k_cache_max) g_cache.clear();
    g_cache[host] = {r, Clock::now() + k_cache_ttl};
}
} // namespace

std::optional<Resolution> resolve(const std::string& host, int stop_fd) {
    if (auto hit = cached(host)) return hit;
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
        return Resolution{{}, std::string("pipe: ") + std::strerror(errno)};
    auto job = std::make_shared<ResolveJob>();
    job->read_end = Fd(p[0]);
    job->write_end = Fd(p[1]);
    job->host = host;
    const bool started = spawn_detached(
        [job] {
            Resolution r = lookup(job->host);
            {
                std::lock_guard lock(job->mutex);
                job->result = std::move(r);
            }
            const char done = 1;
            [[maybe_unused]] ssize_t ignored = ::write(job->write_end.get(), &done, 1);
        },
        k_resolver_stack);
    if (!started) return Resolution{{}, "no thread could be started to resolve it"};
    if (wait_for(job->read_end.get(), POLLIN, stop_fd, std::nullopt) == Wait::stopped)
        return std::nullopt;
    std::lock_guard lock(job->mutex);
    remember(host, job->result);
    return std::move(job->result);
}

util::Result<Fd> connect_to(const IpAddress& address, std::uint16_t port, int stop_fd,
                            Clock::time_point deadline) {
    sockaddr_storage ss{};
    socklen_t size = 0;
    if (address.v6) {
        sockaddr_in6 in6{};
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(port);
        std::memcpy(&in6.sin6_addr, address.bytes, 16);
        std::memcpy(&ss, &in6, sizeof in6);
        size = sizeof in6;
    } else {
        sockaddr_in in{};
        in.sin_family = AF_INET;
        in.sin_port = htons(port);
        std::memcpy(&in.sin_addr, address.bytes, 4);
        std::memcpy(&ss, &in, sizeof in);
        size = sizeof in;
    }
    Fd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid())
        return make_error(ErrorKind::io, std::string("socket: ") + std::strerror(errno));
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&ss), size) == 0) return fd;
    if (errno != EINPROGRESS && errno != EINTR)
        return make_error(ErrorKind::unreachable, std::strerror(errno));
    const Wait w = wait_for(fd.get(), POLLOUT, stop_fd, deadline);
    if (w == Wait::stopped) return make_error(ErrorKind::cancelled, "the proxy is stopping");
    if (w == Wait::timeout) return make_error(ErrorKind::timeout, "the connection timed out");
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) return make_error(ErrorKind::unreachable, std::strerror(err));
    return fd;
}

namespace {

// Room for a few: a peer sending more has them cut off (MSG_CTRUNC), and is malformed anyway.
constexpr std::size_t k_max_handoff_fds = 4;

// Closes a received descriptor; a socket the sender set to linger does not hold the thread.
void drop(Fd& fd) {
    const linger off{0, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &off, sizeof off);
    fd.reset();
}

std::string family_name(int family) {
    switch (family) {
    case AF_UNIX:
        return "a unix";
    case AF_NETLINK:
        return "a netlink";
    case AF_PACKET:
        return "a packet";
    default:
        return "a family " + std::to_string(family);
    }
}

// Empty when `fd` is a connected TCP socket over IPv4 or IPv6; otherwise what it is instead.
std::string handed_socket_problem(int fd) {
    int domain = 0, type = 0, protocol = 0, listening = 0;
    socklen_t len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
        return errno == ENOTSOCK
                   ? "the handed-over descriptor is not a socket"
                   : std::string("the handed-over socket cannot be read: ") + std::strerror(errno);
    if (domain != AF_INET && domain != AF_INET6)
        return "the handed-over socket is " + family_name(domain) +
               " socket, not TCP over IPv4 or IPv6";
    len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
        return "the handed-over socket is not a stream socket (type " + std::to_string(type) + ")";
    len = sizeof protocol;
    if (::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0 || protocol != IPPROTO_TCP)
        return "the handed-over socket is not TCP (protocol " + std::to_string(protocol) + ")";
    len = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening != 0)
        return "the handed-over socket is listening, not connected";
    sockaddr_storage peer{};
    len = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0)
        return "the handed-over socket is not connected";
    return {};
}

} // namespace

Handoff receive_handoff(int fd, int stop_fd, Clock::time_point deadline) {
    Handoff h;
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(k_max_handoff_fds * sizeof(int))];
    msghdr msg{};
    ssize_t n = 0;
    while (true) {
        msg = {};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n >= 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) break;
        if (errno == EINTR) continue;
        const Wait w = wait_for(fd, POLLIN, stop_fd, deadline);
        if (w == Wait::stopped) h.kind = Handoff::Kind::stopped;
        if (w == Wait::timeout) h.kind = Handoff::Kind::timeout;
        if (w != Wait::ready) return h;
    }
    if (n <= 0) return h; // descriptors come only with a byte
    std::vector<Fd> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int received = -1;
            std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof received);
            fds.emplace_back(received);
        }
    }
    const bool cut = (msg.msg_flags & MSG_CTRUNC) != 0;
    const auto drop_all = [&] {
        for (auto& received : fds)
            drop(received);
    };
    if (byte != 0) {
        drop_all();
        h.kind = Handoff::Kind::byte;
        h.byte = byte;
        return h;
    }
    h.kind = Handoff::Kind::malformed;
    if (fds.empty() && !cut) {
        h.problem = "the handoff byte 0x00 came without a socket (airlock-init sends the "
                    "accepted TCP connection with it, as SCM_RIGHTS)";
    } else if (fds.size() > 1 || cut) {
        h.problem = "the handoff byte 0x00 came with " + std::string(cut ? "more than " : "") +
                    std::to_string(fds.size()) + " descriptors instead of one";
    } else {
        h.problem = handed_socket_problem(fds[0].get());
    }
    if (!h.problem.empty()) {
        drop_all();
        return h;
    }
    // F_SETFL to exactly O_NONBLOCK also clears O_ASYNC and O_APPEND, whatever the sender set.
    const linger off{0, 0};
    if (::fcntl(fds[0].get(), F_SETFL, O_NONBLOCK) != 0 ||
        ::setsockopt(fds[0].get(), SOL_SOCKET, SO_LINGER, &off, sizeof off) != 0) {
        h.problem = std::string("the handed-over socket cannot be set up: ") + std::strerror(errno);
        drop_all();
        return h;
    }
    h.kind = Handoff::Kind::socket;
    h.socket = std::move(fds[0]);
    return h;
}

util::Result<Fd> listen_unix(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path)
        return make_error(ErrorKind::invalid_input, path + ": too long for a unix socket path");
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return make_error(ErrorKind::conflict,
                              path + ": exists and is not a socket (remove it or pick another "
                                     "listen path)");
        ::unlink(path.c_str());
    }
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid())
        return make_error(ErrorKind::io, std::string("socket: ") + std::strerror(errno));
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        return make_error(ErrorKind::io, path + ": bind: " + std::strerror(errno));
    // Mode 0666: the task's user, whoever it is, must be able to connect.
    if (::chmod(path.c_str(), 0666) != 0)
        return make_error(ErrorKind::io, path + ": chmod: " + std::strerror(errno));
    if (::listen(fd.get(), SOMAXCONN) != 0)
        return make_error(ErrorKind::io, path + ": listen: " + std::strerror(errno));
    return fd;
}

} // namespace airlock::egress
