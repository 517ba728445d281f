#include "egress/client.hpp"

#include <cerrno>
#include <poll.h>
#include <sys/socket.h>

namespace airlock::egress {

namespace {
// After a refusal, how long to read what the client still sends, so closing with unread bytes
// does not reset the connection before the client has read the response.
constexpr auto k_linger = std::chrono::milliseconds(500);
constexpr std::size_t k_linger_bytes = 256 * 1024;
} // namespace

Verdict ClientSession::head_timeout_verdict() const {
    return verdict(Outcome::deny, "head timeout",
                   "the request head did not arrive within " +
                       std::to_string(m_state.config().head_timeout_ms) + " ms");
}

bool ClientSession::take_client() {
    Handoff h = receive_handoff(m_client.get(), m_state.stop_fd(), head_deadline());
    switch (h.kind) {
    case Handoff::Kind::none:
    case Handoff::Kind::stopped:
        return false; // no byte, no request
    case Handoff::Kind::timeout:
        refuse(408, head_timeout_verdict());
        return false;
    case Handoff::Kind::byte:
        m_buffer.assign(1, h.byte);
        return true;
    case Handoff::Kind::socket:
        m_client = std::move(h.socket);
        return true;
    case Handoff::Kind::malformed:
        finish(verdict(Outcome::deny, "malformed handoff", std::move(h.problem)));
        return false;
    }
    return false;
}

bool ClientSession::read_head(HeadParser parse) {
    const auto deadline = head_deadline();
    std::size_t searched = 0;
    while (true) {
        if (auto end = find_head_end(m_buffer, searched)) {
            ParsedHead parsed = parse(std::string_view(m_buffer).substr(0, *end));
            m_buffer.erase(0, *end);
            if (auto* error = std::get_if<HeadError>(&parsed)) {
                refuse_head(*error);
                return false;
            }
            m_head = std::move(std::get<RequestHead>(parsed));
            return true;
        }
        if (auto problem = incomplete_head_problem(m_buffer)) {
            refuse_head(*problem);
            return false;
        }
        searched = m_buffer.size();
        const Wait w = wait_for(m_client.get(), POLLIN, m_state.stop_fd(), deadline);
        if (w == Wait::stopped) {
            if (!m_buffer.empty())
                finish(verdict(Outcome::deny, "shutting down",
                               "the proxy stopped before the request head was complete"));
            return false;
        }
        if (w == Wait::timeout) {
            refuse(408, head_timeout_verdict());
            return false;
        }
        const Received got = receive(std::min(k_read_chunk, k_max_head + 1 - m_buffer.size()));
        if (got == Received::again) continue;
        if (got == Received::ended) {
            // A client that connects and leaves without a byte made no request.
            if (m_buffer.empty()) return false;
            refuse(400, verdict(Outcome::deny, "malformed request",
                                "the client closed the connection before the request head "
                                "was complete"));
            return false;
        }
    }
}

ClientSession::Received ClientSession::receive(std::size_t room) {
    const std::size_t old = m_buffer.size();
    m_buffer.resize(old + room);
    const ssize_t n = ::recv(m_client.get(), m_buffer.data() + old, room, MSG_DONTWAIT);
    const int err = errno;
    m_buffer.resize(old + static_cast<std::size_t>(n > 0 ? n : 0));
    if (n > 0) return Received::data;
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)) return Received::again;
    return Received::ended;
}

void ClientSession::refuse_head(const HeadError& error) {
    const char* rule = error.status == 414   ? "request line too long"
                       : error.status == 431 ? "head too large"
                                             : "malformed request";
    refuse(error.status, verdict(Outcome::deny, rule, error.message));
}

bool ClientSession::resolve_and_fence(const std::string& host) {
    auto resolution = resolve(host, m_state.stop_fd());
    if (!resolution) {
        finish(
            verdict(Outcome::deny, "shutting down", "the proxy stopped while resolving " + host));
        return false;
    }
    if (!resolution->error.empty()) {
        refuse(502, verdict(Outcome::deny, "resolve failed",
                            "could not resolve " + host + ": " + resolution->error));
        return false;
    }
    std::vector<IpAddress> refused;
    for (const auto& a : resolution->addresses)
        (address_allowed(a, m_state.allow_cidrs()) ? m_addresses : refused).push_back(a);
    if (m_addresses.empty()) {
        refuse(403, private_address_verdict(host, refused));
        return false;
    }
    return true;
}

std::optional<Fd> ClientSession::connect_upstream(const std::string& host, std::uint16_t port,
                                                  std::string& error) {
    for (const auto& a : m_addresses) {
        const auto deadline =
            Clock::now() + std::chrono::milliseconds(m_state.config().connect_timeout_ms);
        auto fd = connect_to(a, port, m_state.stop_fd(), deadline);
        if (fd) {
            m_record.address = to_string(a);
            return std::move(*fd);
        }
        if (fd.error().kind == util::ErrorKind::cancelled) {
            m_stopped = true;
            error = "the proxy stopped before connecting to " + authority(host, port);
            return std::nullopt;
        }
        error += (error.empty() ? "" : "; ") + to_string(a) + ": " + fd.error().message;
    }
    error = "could not connect to " + authority(host, port) + " (" + error + ")";
    return std::nullopt;
}

void ClientSession::finish(Verdict v) {
    m_record.verdict = std::move(v);
    m_record.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - m_start).count();
    m_state.emit(decision_line(m_record));
}

void ClientSession::refuse(int status, const Verdict& v) {
    m_record.status = status;
    finish(v);
    const Io sent = send_all(m_client.get(), refusal_response(status, v.reason), m_state.stop_fd(),
                             Clock::now() + k_write_timeout);
    if (sent != Io::done) return;
    ::shutdown(m_client.get(), SHUT_WR);
    const auto deadline = Clock::now() + k_linger;
    std::size_t drained = 0;
    char sink[4096];
    while (drained < k_linger_bytes &&
           wait_for(m_client.get(), POLLIN, m_state.stop_fd(), deadline) == Wait::ready) {
        const ssize_t n = ::recv(m_client.get(), sink, sizeof sink, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
        if (n > 0) drained += static_cast<std::size_t>(n);
    }
}

} // namespace airlock::egress
