#include "egress/connection.hpp"

#include "egress/body.hpp"
#include "egress/client.hpp"
#include "egress/client_hello.hpp"
#include "egress/net.hpp"
#include "egress/relay.hpp"

#include <cerrno>
#include <poll.h>
#include <sys/socket.h>

namespace airlock::egress {

ProxyState::ProxyState(const Config& config, LineSink sink, Fd stop_read,
                       std::shared_ptr<CredentialEndpoints> credentials)
    : m_config(config), m_budget(config.upload_budget), m_sink(std::move(sink)),
      m_stop_read(std::move(stop_read)), m_credentials(std::move(credentials)) {
    for (const auto& c : config.allow_cidrs)
        m_cidrs.push_back(c.cidr);
}

void ProxyState::emit(const nlohmann::json& line) {
    std::lock_guard lock(m_sink_mutex);
    if (m_sink) m_sink(line);
}

namespace {

class Connection : ClientSession {
public:
    Connection(ProxyState& state, Fd client, DecisionRecord record)
        : ClientSession(state, std::move(client), std::move(record)) {}

    void run() {
        if (!take_client()) return;
        if (!read_head(parse_request_head)) return;
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
        if (!resolve_and_fence(m_head.host)) return;
        if (m_head.kind == RequestKind::connect)
            tunnel();
        else
            forward();
    }

private:
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
        auto upstream = connect_upstream(m_head.host, m_head.port, error);
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
        auto upstream = connect_upstream(m_head.host, m_head.port, error);
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

    Verdict m_allowed;
};

} // namespace

void handle_connection(ProxyState& state, Fd client, DecisionRecord record) {
    Connection(state, std::move(client), std::move(record)).run();
}

void refuse_busy(ProxyState& state, Fd client, DecisionRecord record, std::string reason) {
    record.verdict = {Outcome::deny, "too many connections", std::move(reason)};
    record.status = 503;
    state.emit(decision_line(record));
    // A handoff already there brings the client's own socket: the answer goes to it.
    Handoff h = receive_handoff(client.get(), state.stop_fd(), Clock::now());
    if (h.kind == Handoff::Kind::socket) client = std::move(h.socket);
    const std::string response = refusal_response(503, record.verdict.reason);
    [[maybe_unused]] ssize_t ignored =
        ::send(client.get(), response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

} // namespace airlock::egress
