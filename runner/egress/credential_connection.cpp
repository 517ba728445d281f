// One request on credential_listen: route /<name>/... to its endpoint, forward it over verified
// TLS with the secret header, stream the response back as it arrives.
#include "egress/body.hpp"
#include "egress/client.hpp"
#include "egress/credentials.hpp"
#include "egress/response.hpp"
#include "egress/tls.hpp"

#include <poll.h>
#include <sys/socket.h>

namespace airlock::egress {

namespace {

// Models can think for minutes before the first byte of an answer.
constexpr auto k_response_timeout = std::chrono::seconds(300);
// Silence allowed between two pieces of a body, either way.
constexpr auto k_body_idle = std::chrono::seconds(300);
constexpr auto k_upstream_write_timeout = std::chrono::seconds(60);

std::string quote_path(std::string_view s) {
    std::string out = "\"";
    for (char c : s.substr(0, 64))
        out += (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == 0x7f) ? '?' : c;
    return out + (s.size() > 64 ? "...\"" : "\"");
}

class CredentialConnection : ClientSession {
public:
    CredentialConnection(ProxyState& state, Fd client, DecisionRecord record)
        : ClientSession(state, std::move(client), std::move(record)),
          m_endpoints(*state.credentials()) {
        m_record.listener = Listener::credential;
    }

    void run() {
        if (!take_client()) return;
        if (!read_head(parse_origin_head)) return;
        m_record.method = m_head.method;
        m_record.kind = RequestKind::absolute;
        m_record.path = std::string(target_path(m_head.target));
        if (auto escape = path_escape(*m_record.path))
            return refuse(400,
                          verdict(Outcome::deny, "unsafe path",
                                  "the path " + quote_path(*m_record.path) + " holds " + *escape +
                                      ", which could leave the endpoint's prefix or the "
                                      "upstream's base path (send the path without it)"));
        m_endpoint = m_endpoints.route(m_head.target);
        if (!m_endpoint)
            return refuse(404, verdict(Outcome::deny, "no credential endpoint",
                                       "no credential endpoint matches " +
                                           quote_path(*m_record.path) + "; the endpoints are " +
                                           m_endpoints.listing() + " (send /<endpoint>/path)"));
        const Credential& c = m_endpoint->credential();
        m_record.endpoint = c.name;
        m_record.host = c.host;
        m_record.port = c.port;
        if (!m_endpoint->take_request()) return refuse(429, budget_verdict(Outcome::deny));
        m_allowed = verdict(Outcome::allow, "credential " + c.name,
                            "the credential endpoint " + c.name + " forwards to https://" +
                                authority(c.host, c.port) + c.base_path);
        if (!resolve_and_fence(c.host)) return;
        std::string error;
        auto upstream = connect_upstream(c.host, c.port, error);
        if (m_stopped) return finish(verdict(Outcome::deny, "shutting down", error));
        if (!upstream) return refuse(502, verdict(Outcome::deny, "connect failed", error));
        TlsStream tls(m_endpoints.tls(), upstream->get(), m_state.stop_fd());
        if (!handshake(tls)) return;
        if (!send_request(tls)) return;
        relay_response(tls);
    }

private:
    Verdict budget_verdict(Outcome outcome) const {
        const Credential& c = m_endpoint->credential();
        std::string limits;
        if (c.max_requests) limits = "max_requests " + std::to_string(*c.max_requests);
        if (c.max_bytes)
            limits += (limits.empty() ? "" : ", ") + ("max_bytes " + std::to_string(*c.max_bytes));
        return verdict(outcome, "credential budget",
                       "the credential endpoint " + c.name + " has used its budget (" + limits +
                           "); raise it in the policy to send more");
    }

    bool handshake(TlsStream& tls) {
        const Credential& c = m_endpoint->credential();
        const std::string where = authority(c.host, c.port);
        const Handshake h = tls.handshake(
            c.host, Clock::now() + std::chrono::milliseconds(m_state.config().connect_timeout_ms));
        switch (h.kind) {
        case Handshake::Kind::ok:
            return true;
        case Handshake::Kind::certificate:
            refuse(502, verdict(Outcome::deny, "upstream certificate",
                                "the TLS certificate of " + where +
                                    " does not verify against ca_file: " + h.message +
                                    "; the credential is only sent over verified TLS"));
            return false;
        case Handshake::Kind::failed:
        case Handshake::Kind::timeout:
            refuse(502, verdict(Outcome::deny, "upstream tls",
                                "the TLS handshake with " + where + " failed: " + h.message));
            return false;
        case Handshake::Kind::stopped:
            finish(verdict(Outcome::deny, "shutting down",
                           "the proxy stopped during the TLS handshake with " + where));
            return false;
        }
        return false;
    }

    // Writes `data` upstream within the budget; false when the connection is done.
    bool send_up(TlsStream& tls, std::string_view data) {
        if (!m_endpoint->take_bytes(data.size())) {
            refuse(429, budget_verdict(Outcome::cut));
            return false;
        }
        const Io r = tls.write_all(data, Clock::now() + k_upstream_write_timeout);
        if (r == Io::done) {
            m_record.bytes_up += data.size();
            return true;
        }
        if (r == Io::stopped) {
            m_allowed.reason += " (ended when the proxy stopped)";
            finish(m_allowed);
            return false;
        }
        refuse(502,
               verdict(Outcome::cut, "upstream failed",
                       "sending the request to " +
                           authority(m_endpoint->credential().host, m_endpoint->credential().port) +
                           " failed: " + (r == Io::timeout ? "timed out" : tls.error())));
        return false;
    }

    // The head with the secret, then exactly the request body, streamed.
    bool send_request(TlsStream& tls) {
        BodyScanner body(m_head.body, m_head.content_length);
        const std::size_t in_body = body.feed(m_buffer);
        if (body.failed()) {
            refuse(400, verdict(Outcome::deny, "malformed request",
                                "the chunked request body is malformed"));
            return false;
        }
        std::string first = credential_upstream_head(
            m_head, *m_endpoint, upstream_target(m_endpoint->credential(), m_head.target));
        first.append(m_buffer, 0, in_body);
        m_buffer.clear();
        const bool sent = send_up(tls, first);
        wipe(first);
        if (!sent) return false;
        while (!body.done()) {
            const Wait w =
                wait_for(m_client.get(), POLLIN, m_state.stop_fd(), Clock::now() + k_body_idle);
            if (w == Wait::stopped) {
                finish(verdict(Outcome::cut, "shutting down",
                               "the proxy stopped before the request body was complete"));
                return false;
            }
            if (w == Wait::timeout) {
                refuse(408,
                       verdict(Outcome::cut, "body timeout", "the request body stalled for 300 s"));
                return false;
            }
            const Received got = receive(k_read_chunk);
            if (got == Received::again) continue;
            if (got == Received::ended) {
                finish(verdict(Outcome::cut, "client gone",
                               "the client left before the request body was complete"));
                return false;
            }
            const std::size_t n = body.feed(m_buffer);
            if (body.failed()) {
                refuse(400, verdict(Outcome::cut, "malformed request",
                                    "the chunked request body broke its framing"));
                return false;
            }
            if (!send_up(tls, std::string_view(m_buffer).substr(0, n))) return false;
            m_buffer.clear();
        }
        return true;
    }

    enum class Down { ok, done };
    // Writes `data` to the client within the budget; `done` when the connection is finished.
    Down send_down(std::string_view data) {
        if (data.empty()) return Down::ok;
        if (!m_endpoint->take_bytes(data.size())) {
            if (m_record.bytes_down == 0)
                refuse(429, budget_verdict(Outcome::cut));
            else
                finish(budget_verdict(Outcome::cut));
            return Down::done;
        }
        const Io r =
            send_all(m_client.get(), data, m_state.stop_fd(), Clock::now() + k_write_timeout);
        if (r == Io::done) {
            m_record.bytes_down += data.size();
            return Down::ok;
        }
        m_allowed.reason += r == Io::stopped ? " (ended when the proxy stopped)"
                                             : " (the client left before the end of the response)";
        finish(m_allowed);
        return Down::done;
    }

    void relay_response(TlsStream& tls) {
        const std::string where =
            authority(m_endpoint->credential().host, m_endpoint->credential().port);
        std::string in;
        const auto deadline = Clock::now() + k_response_timeout;
        ResponseHead head;
        while (true) {
            if (auto end = find_head_end(in)) {
                auto parsed =
                    parse_response_head(std::string_view(in).substr(0, *end), m_head.method);
                in.erase(0, *end);
                if (auto* error = std::get_if<ResponseError>(&parsed))
                    return refuse(502,
                                  verdict(Outcome::cut, "bad upstream response", error->message));
                head = std::move(std::get<ResponseHead>(parsed));
                if (head.status == 101)
                    return refuse(502, verdict(Outcome::cut, "bad upstream response",
                                               "the upstream switched protocols, which the "
                                               "credential endpoint does not relay"));
                if (head.status >= 200) break;
                if (send_down(head.forwarded) == Down::done) return; // interim 1xx
                continue;
            }
            if (in.size() > k_max_response_head)
                return refuse(502, verdict(Outcome::cut, "bad upstream response",
                                           "the upstream's response head is larger than 64 KiB"));
            const TlsRead r = tls.read_some(in, k_read_chunk, deadline);
            if (r == TlsRead::data) continue;
            if (r == TlsRead::stopped)
                return finish(verdict(Outcome::cut, "shutting down",
                                      "the proxy stopped before " + where + " answered"));
            if (r == TlsRead::timeout)
                return refuse(504, verdict(Outcome::cut, "upstream timeout",
                                           where + " did not answer within 300 s"));
            return refuse(502, verdict(Outcome::cut, "upstream failed",
                                       where + " closed the connection before answering" +
                                           (tls.error().empty() ? "" : " (" + tls.error() + ")")));
        }
        m_record.status = head.status;
        if (send_down(head.forwarded) == Down::done) return;

        const bool until_close = head.body == ResponseBody::until_close;
        BodyScanner body(head.body == ResponseBody::chunked  ? BodyFraming::chunked
                         : head.body == ResponseBody::length ? BodyFraming::length
                                                             : BodyFraming::none,
                         head.content_length);
        // Each piece goes to the client as soon as it arrives: streamed answers stay streamed.
        while (true) {
            const std::size_t n = until_close ? in.size() : body.feed(in);
            if (!until_close && body.failed())
                return finish(verdict(Outcome::cut, "bad upstream response",
                                      "the upstream's chunked response body broke its framing"));
            if (send_down(std::string_view(in).substr(0, n)) == Down::done) return;
            in.clear();
            if (!until_close && body.done()) break;
            const TlsRead r = tls.read_some(in, k_read_chunk, Clock::now() + k_body_idle);
            if (r == TlsRead::data) continue;
            if (r == TlsRead::stopped) {
                m_allowed.reason += " (ended when the proxy stopped)";
                return finish(m_allowed);
            }
            if (until_close && r != TlsRead::timeout) break;
            m_allowed.reason += r == TlsRead::timeout
                                    ? " (the response body stalled for 300 s)"
                                    : " (the upstream closed before the end of the body)";
            return finish(m_allowed);
        }
        // The line is out before the client sees the end.
        finish(m_allowed);
        ::shutdown(m_client.get(), SHUT_WR);
    }

    const CredentialEndpoints& m_endpoints;
    CredentialEndpoint* m_endpoint = nullptr;
    Verdict m_allowed;
};

} // namespace

void handle_credential_connection(ProxyState& state, Fd client, DecisionRecord record) {
    CredentialConnection(state, std::move(client), std::move(record)).run();
}

} // namespace airlock::egress
