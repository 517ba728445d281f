#include "egress/relay.hpp"

#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace airlock::egress {

namespace {

// Bytes per read. With what each direction holds pending, 48 KiB a connection: 512 of them fit
// well within the sidecar's memory limit.
constexpr std::size_t k_chunk = 64 * 1024;

struct Direction {
    int from;
    int to;
    std::string pending; // read from `from`, not yet written to `to`
    std::size_t offset = 0;
    bool reading = true;   // `from` may still send
    bool eof = false;      // `from` sent EOF: shut `to` for writing once flushed
    bool finished = false; // nothing more goes to `to`

    bool has_pending() const { return offset < pending.size(); }

    void settle() {
        if (has_pending() || finished) return;
        if (eof) ::shutdown(to, SHUT_WR);
        finished = eof || !reading;
    }

    // Writes what it can; false on a failed peer.
    bool flush(std::uint64_t& counter) {
        while (has_pending()) {
            const ssize_t n = ::send(to, pending.data() + offset, pending.size() - offset,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                offset += static_cast<std::size_t>(n);
                counter += static_cast<std::uint64_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        }
        pending.clear();
        offset = 0;
        return true;
    }

    short events_from() const { return reading && !has_pending() ? POLLIN : 0; }
    short events_to() const { return has_pending() ? POLLOUT : 0; }
};

enum class Read { data, eof, again, failed };

Read read_some(int fd, std::vector<char>& chunk, std::size_t& n) {
    while (true) {
        const ssize_t got = ::recv(fd, chunk.data(), chunk.size(), MSG_DONTWAIT);
        if (got > 0) {
            n = static_cast<std::size_t>(got);
            return Read::data;
        }
        if (got == 0) return Read::eof;
        if (errno == EINTR) continue;
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? Read::again : Read::failed;
    }
}

// Upstream to client without copying through user space: splice() moves pages from the upstream
// socket into a pipe and from the pipe to the client's socket. Downloads are most of the bytes a
// task moves; this keeps the proxy's CPU per byte low. Unavailable (no pipe, or a kernel that
// refuses to splice these sockets): the copying path takes over.
class Splice {
public:
    Splice() {
        int fds[2];
        if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return;
        m_read = fds[0];
        m_write = fds[1];
    }
    ~Splice() {
        if (m_read >= 0) ::close(m_read);
        if (m_write >= 0) ::close(m_write);
    }
    Splice(const Splice&) = delete;
    Splice& operator=(const Splice&) = delete;

    bool usable() const { return m_read >= 0 && !m_broken; }
    bool has_pending() const { return m_pending > 0; }

    // From `from` into the pipe (only when it is empty).
    Read fill(int from) {
        while (true) {
            const ssize_t n = ::splice(from, nullptr, m_write, nullptr, k_chunk * 4,
                                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                m_pending += static_cast<std::size_t>(n);
                return Read::data;
            }
            if (n == 0) return Read::eof;
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return Read::again;
            if (errno == EINVAL || errno == ENOSYS) m_broken = true;
            return Read::failed;
        }
    }

    // From the pipe to `to`; false on a failed peer.
    bool flush(int to, std::uint64_t& counter) {
        while (m_pending > 0) {
            const ssize_t n = ::splice(m_read, nullptr, to, nullptr, m_pending,
                                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                m_pending -= static_cast<std::size_t>(n);
                counter += static_cast<std::uint64_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        }
        return true;
    }

private:
    int m_read = -1, m_write = -1;
    std::size_t m_pending = 0; // in the pipe, not yet sent on
    bool m_broken = false;
};

} // namespace

RelayResult relay(int client, int upstream, int stop_fd, RelayOptions& options) {
    RelayResult result;
    Direction up{client, upstream, std::move(options.first_up)};
    Direction down{upstream, client, {}};
    if (options.body && options.body->done()) up.reading = false;
    std::vector<char> chunk(k_chunk);
    Splice pipe;

    while (true) {
        up.settle();
        if (!pipe.has_pending()) down.settle();
        // A plain-HTTP exchange ends with the response; a tunnel when both sides have closed.
        if (down.finished && (up.finished || options.body)) return result;

        // A side we neither read nor write is still watched for hang-up (a client gone while the
        // upstream is silent), unless bytes for the other side wait: those go out first.
        const bool down_pending = down.has_pending() || pipe.has_pending();
        const short down_to = down_pending ? POLLOUT : 0;
        const short down_from = down.reading && !down_pending ? POLLIN : 0;
        const short client_events = static_cast<short>(up.events_from() | down_to);
        const short upstream_events = static_cast<short>(down_from | up.events_to());
        const bool watch_client = client_events || !up.has_pending();
        const bool watch_upstream = upstream_events || !down_pending;
        pollfd fds[3] = {{watch_client ? client : -1, client_events, 0},
                         {watch_upstream ? upstream : -1, upstream_events, 0},
                         {stop_fd, POLLIN, 0}};
        if (::poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            result.end = RelayEnd::reset;
            return result;
        }
        if (fds[2].revents) {
            result.end = RelayEnd::stopped;
            return result;
        }
        if ((!client_events && fds[0].revents) || (!upstream_events && fds[1].revents)) {
            result.end = RelayEnd::reset;
            return result;
        }

        if (up.has_pending() && fds[1].revents && !up.flush(result.up)) {
            result.end = RelayEnd::reset;
            return result;
        }
        if (down.has_pending() && fds[0].revents && !down.flush(result.down)) {
            result.end = RelayEnd::reset;
            return result;
        }
        if (pipe.has_pending() && fds[0].revents && !pipe.flush(client, result.down)) {
            result.end = RelayEnd::reset;
            return result;
        }

        if (up.reading && !up.has_pending() && fds[0].revents) {
            std::size_t n = 0;
            const Read r = read_some(client, chunk, n);
            if (r == Read::failed) {
                result.end = RelayEnd::reset;
                return result;
            }
            if (r == Read::eof) {
                up.reading = false;
                up.eof = true;
            }
            if (r == Read::data) {
                std::string_view bytes(chunk.data(), n);
                if (options.body) {
                    bytes = bytes.substr(0, options.body->feed(bytes));
                    if (options.body->failed()) {
                        result.end = RelayEnd::bad_body;
                        return result;
                    }
                    if (options.body->done()) up.reading = false;
                }
                if (!bytes.empty() && options.take_upload && !options.take_upload(bytes.size())) {
                    result.end = RelayEnd::budget;
                    return result;
                }
                up.pending.assign(bytes);
                up.offset = 0;
                if (!up.flush(result.up)) {
                    result.end = RelayEnd::reset;
                    return result;
                }
            }
        }

        if (down.reading && !down.has_pending() && !pipe.has_pending() && fds[1].revents &&
            pipe.usable()) {
            const Read r = pipe.fill(upstream);
            if (r == Read::eof) {
                down.reading = false;
                down.eof = true;
            }
            if (r == Read::data && !pipe.flush(client, result.down)) {
                result.end = RelayEnd::reset;
                return result;
            }
            if (r == Read::failed && pipe.usable()) {
                result.end = RelayEnd::reset;
                return result;
            }
            if (r != Read::failed) continue;
        }
        if (down.reading && !down.has_pending() && !pipe.has_pending() && fds[1].revents) {
            std::size_t n = 0;
            const Read r = read_some(upstream, chunk, n);
            if (r == Read::failed) {
                result.end = RelayEnd::reset;
                return result;
            }
            if (r == Read::eof) {
                down.reading = false;
                down.eof = true;
            }
            if (r == Read::data) {
                down.pending.assign(chunk.data(), n);
                down.offset = 0;
                if (!down.flush(result.down)) {
                    result.end = RelayEnd::reset;
                    return result;
                }
            }
        }
    }
}

} // namespace airlock::egress
