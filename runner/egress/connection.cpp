#include "egress/connection.hpp"

#include "egress/body.hpp"
#include "egress/client_hello.hpp"
#include "egress/net.hpp"
#include "egress/relay.hpp"

#include <cerrno>
#include <poll.h>
#include <sys/socket.h>

namespace airlock::egress {

ProxyState::ProxyState(const Config& config, LineSink sink, Fd stop_read)
    : m_config(config), m_budget(config.upload_budget), m_sink(std::move(sink)),
      m_stop_read(std::move(stop_read)) {
    for (const auto& c : config.allow_cidrs)
        m_cidrs.push_back(c.cidr);
}

void ProxyState::emit(const nlohmann::json& line) {
    std::lock_guard lock(m_sink_mutex);
    if (m_sink) m_sink(line);
}

namespace {

constexpr auto k_write_timeout = std::chrono::seconds(10);
// After a refusal, how long to read what the client still sends, so closing with unread bytes
// does not reset the connection before the client has read the response.
constexpr auto k_linger = std::chrono::milliseconds(500);
constexpr std::size_t k_linger_bytes = 256 * 1024;
constexpr std::size_t k_read_chunk = 16 * 1024;

Verdict verdict(Outcome outcome, std::string rule, std::string reason) {
    return {outcome, std::move(rule), std::move(reason)};
}

class Connection {
public:
    Connection(ProxyState& state, Fd client, DecisionRecord record)
        : m_state(state), m_client(std::move(client)), m_record(std::move(record)),
          m_start(Clock::now()) {}

    void run() {
        if (!take_client()) return;
        if (!read_head()) return;
        m_record.method = m_head.method;
        m_record.host = m_head.host;
        m_record.port = m_head.port;
        m_record.kind = m_head.kind;
        if (m_head.kind == RequestKind::absolute)
            m_record.path = std::string(target_path(m_head.target));

        Verdict v = decide(m_state.config(), m_head.kind, m_head.method, m_head.host, m_head.port);
        if (v.outcome != Outcome::allow) return refuse(403, v);
        if (m_state.budget().spent(m_head.host))
            return refuse(403,
                          budget_verdict(m_head.host, *m_state.budget().limit(), Outcome::deny));
        m_allowed = std::move(v);
        if (!resolve_and_fence()) return;
        if (m_head.kind == RequestKind::connect)
            tunnel();
        else
            forward();
    }

private:
    Clock::time_point head_deadline() const {
        return m_start + std::chrono::milliseconds(m_state.config().head_timeout_ms);
    }

    Verdict head_timeout_verdict() const {
        return verdict(Outcome::deny, "head timeout",
                       "the request head did not arrive within " +
                           std::to_string(m_state.config().head_timeout_ms) + " ms");
    }

    // The first byte, within the head's deadline: airlock-init's handoff swaps the client's TCP
    // socket in for the unix connection; any other byte begins the request. False when the
    // connection is done.
    bool take_client() {
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

    // The whole head within head_timeout_ms of the accept; false when the connection is done.
    bool read_head() {
        const auto deadline = head_deadline();
        std::size_t searched = 0;
        while (true) {
            if (auto end = find_head_end(m_buffer, searched)) {
                ParsedHead parsed = parse_request_head(std::string_view(m_buffer).substr(0, *end));
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

    enum class Received { data, again, ended };
    // Appends up to `room` bytes from the client to m_buffer; `ended` on EOF or an error.
    Received receive(std::size_t room) {
        const std::size_t old = m_buffer.size();
        m_buffer.resize(old + room);
        const ssize_t n = ::recv(m_client.get(), m_buffer.data() + old, room, MSG_DONTWAIT);
        const int err = errno;
        m_buffer.resize(old + static_cast<std::size_t>(n > 0 ? n : 0));
        if (n > 0) return Received::data;
        if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)) return Received::again;
        return Received::ended;
    }

    void refuse_head(const HeadError& error) {
        const char* rule = error.status == 414   ? "request line too long"
                           : error.status == 431 ? "head too large"
                                                 : "malformed request";
        refuse(error.status, verdict(Outcome::deny, rule, error.message));
    }

    // Resolves the host and keeps the addresses the fence lets through; false when refused.
    bool resolve_and_fence() {
        auto resolution = resolve(m_head.host, m_state.stop_fd());
        if (!resolution) {
            finish(verdict(Outcome::deny, "shutting down",
                           "the proxy stopped while resolving " + m_head.host));
            return false;
        }
        if (!resolution->error.empty()) {
            refuse(502, verdict(Outcome::deny, "resolve failed",
                                "could not resolve " + m_head.host + ": " + resolution->error));
            return false;
        }
        std::vector<IpAddress> refused;
        for (const auto& a : resolution->addresses)
            (address_allowed(a, m_state.allow_cidrs()) ? m_addresses : refused).push_back(a);
        if (m_addresses.empty()) {
            refuse(403, private_address_verdict(m_head.host, refused));
            return false;
        }
        return true;
    }

    // The first checked address that accepts; otherwise nullopt, and `error` names each failure
    // (or the stop that came first: m_stopped).
    std::optional<Fd> connect_upstream(std::string& error) {
        for (const auto& a : m_addresses) {
            const auto deadline =
                Clock::now() + std::chrono::milliseconds(m_state.config().connect_timeout_ms);
            auto fd = connect_to(a, m_head.port, m_state.stop_fd(), deadline);
            if (fd) {
                m_record.address = to_string(a);
                return std::move(*fd);
            }
            if (fd.error().kind == util::ErrorKind::cancelled) {
                m_stopped = true;
                error =
                    "the proxy stopped before connecting to " + authority(m_head.host, m_head.port);
                return std::nullopt;
            }
            error += (error.empty() ? "" : "; ") + to_string(a) + ": " + fd.error().message;
        }
        error = "could not connect to " + authority(m_head.host, m_head.port) + " (" + error + ")";
        return std::nullopt;
    }

    void tunnel() {
        const std::string established = "HTTP/1.1 200 Connection established\r\n\r\n";
        if (send_all(m_client.get(), established, m_state.stop_fd(),
                     Clock::now() + k_write_timeout) != Io::done)
            return finish(verdict(Outcome::cut, "client gone",
                                  "the client went away before the tunnel was set up"));
        auto hello = read_client_hello();
        if (!hello) return;
        if (!m_state.budget().take(m_head.host, m_buffer.size()))
            return finish(budget_verdict(m_head.host, *m_state.budget().limit(), Outcome::cut));
        std::string error;
        auto upstream = connect_upstream(error);
        if (!upstream)
            return finish(
                verdict(Outcome::deny, m_stopped ? "shutting down" : "connect failed", error));
        relay_and_finish(upstream->get(), nullptr);
    }

    // The ClientHello, checked against the CONNECT host; nullopt when the tunnel was cut.
    std::optional<ClientHello> read_client_hello() {
        const auto deadline =
            Clock::now() + std::chrono::milliseconds(m_state.config().hello_timeout_ms);
        const bool ip_literal = parse_ip(m_head.host).has_value();
        while (true) {
            ClientHello hello = parse_client_hello(m_buffer);
            if (hello.status == HelloStatus::need_more && m_buffer.size() >= k_max_client_hello)
                hello = {HelloStatus::not_hello, std::nullopt, "the ClientHello is too large"};
            if (hello.status == HelloStatus::not_hello) {
                finish(sni_mismatch_verdict(m_head.host, hello.problem, false));
                return std::nullopt;
            }
            if (hello.status == HelloStatus::ok) {
                m_record.sni = hello.sni;
                if (!hello.sni && !ip_literal) {
                    finish(sni_mismatch_verdict(m_head.host, "it names no server (SNI)", false));
                    return std::nullopt;
                }
                if (hello.sni && *hello.sni != m_head.host) {
                    finish(sni_mismatch_verdict(m_head.host, *hello.sni, true));
                    return std::nullopt;
                }
                return hello;
            }
            const Wait w = wait_for(m_client.get(), POLLIN, m_state.stop_fd(), deadline);
            if (w == Wait::stopped) {
                finish(verdict(Outcome::cut, "shutting down",
                               "the proxy stopped before the ClientHello arrived"));
                return std::nullopt;
            }
            if (w == Wait::timeout) {
                finish(verdict(Outcome::cut, "hello timeout",
                               "no TLS ClientHello arrived within " +
                                   std::to_string(m_state.config().hello_timeout_ms) +
                                   " ms of the CONNECT"));
                return std::nullopt;
            }
            const Received got = receive(k_max_client_hello - m_buffer.size());
            if (got == Received::again) continue;
            if (got == Received::ended) {
                finish(sni_mismatch_verdict(
                    m_head.host, "the client closed the tunnel before a complete ClientHello",
                    false));
                return std::nullopt;
            }
        }
    }

    void forward() {
        BodyScanner body(m_head.body, m_head.content_length);
        const std::size_t in_body = body.feed(m_buffer);
        if (body.failed())
            return refuse(400, verdict(Outcome::deny, "malformed request",
                                       "the chunked request body is malformed"));
        std::string first = upstream_head(m_head);
        first.append(m_buffer, 0, in_body);
        if (!m_state.budget().take(m_head.host, first.size()))
            return refuse(403,
                          budget_verdict(m_head.host, *m_state.budget().limit(), Outcome::cut));
        m_buffer = std::move(first);
        std::string error;
        auto upstream = connect_upstream(error);
        if (m_stopped) return finish(verdict(Outcome::deny, "shutting down", error));
        if (!upstream) return refuse(502, verdict(Outcome::deny, "connect failed", error));
        relay_and_finish(upstream->get(), &body);
    }

    void relay_and_finish(int upstream, BodyScanner* body) {
        RelayOptions options;
        options.first_up = std::move(m_buffer);
        options.body = body;
        options.take_upload = [this](std::size_t n) {
            return m_state.budget().take(m_head.host, n);
        };
        const RelayResult r = relay(m_client.get(), upstream, m_state.stop_fd(), options);
        m_record.bytes_up = r.up;
        m_record.bytes_down = r.down;
        switch (r.end) {
        case RelayEnd::budget:
            // Nothing of the response reached a plain-HTTP client yet: it can still be told.
            if (body && r.down == 0) {
                ::shutdown(upstream, SHUT_RDWR);
                return refuse(403,
                              budget_verdict(m_head.host, *m_state.budget().limit(), Outcome::cut));
            }
            return finish(budget_verdict(m_head.host, *m_state.budget().limit(), Outcome::cut));
        case RelayEnd::bad_body:
            return finish(verdict(Outcome::cut, "malformed request",
                                  "the chunked request body broke its framing"));
        case RelayEnd::stopped:
            m_allowed.reason += " (ended when the proxy stopped)";
            return finish(m_allowed);
        case RelayEnd::reset:
        case RelayEnd::closed:
            return finish(m_allowed);
        }
    }

    void finish(Verdict v) {
        m_record.verdict = std::move(v);
        m_record.duration_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - m_start).count();
        m_state.emit(decision_line(m_record));
    }

    // Records the refusal, then answers it: the line is out before the client can react.
    void refuse(int status, const Verdict& v) {
        finish(v);
        const Io sent = send_all(m_client.get(), refusal_response(status, v.reason),
                                 m_state.stop_fd(), Clock::now() + k_write_timeout);
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

    ProxyState& m_state;
    Fd m_client;
    DecisionRecord m_record;
    Clock::time_point m_start;
    std::string m_buffer; // bytes read past what has been handled
    RequestHead m_head;
    Verdict m_allowed;
    std::vector<IpAddress> m_addresses; // resolved and through the fence
    bool m_stopped = false;             // the stop came while connecting upstream
};

} // namespace

void handle_connection(ProxyState& state, Fd client, DecisionRecord record) {
    Connection(state, std::move(client), std::move(record)).run();
}

void refuse_busy(ProxyState& state, Fd client, DecisionRecord record, std::string reason) {
    record.verdict = verdict(Outcome::deny, "too many connections", std::move(reason));
    state.emit(decision_line(record));
    // A handoff already there brings the client's own socket: the answer goes to it.
    Handoff h = receive_handoff(client.get(), state.stop_fd(), Clock::now());
    if (h.kind == Handoff::Kind::socket) client = std::move(h.socket);
    const std::string response = refusal_response(503, record.verdict.reason);
    [[maybe_unused]] ssize_t ignored =
        ::send(client.get(), response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

} // namespace airlock::egress
