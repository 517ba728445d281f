// What every connection on a listening socket does the same way, whichever socket it came in
// on: take the client (airlock-init's handoff or the unix connection itself), read one request
// head, resolve and fence the upstream, connect, and record or refuse with one decision line.
#pragma once

#include "egress/connection.hpp"
#include "egress/decide.hpp"
#include "egress/net.hpp"
#include "egress/request.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace airlock::egress {

inline constexpr auto k_write_timeout = std::chrono::seconds(10);
inline constexpr std::size_t k_read_chunk = 16 * 1024;

class ClientSession {
protected:
    ClientSession(ProxyState& state, Fd client, DecisionRecord record)
        : m_state(state), m_client(std::move(client)), m_record(std::move(record)),
          m_start(Clock::now()) {}

    static Verdict verdict(Outcome outcome, std::string rule, std::string reason) {
        return {outcome, std::move(rule), std::move(reason)};
    }

    Clock::time_point head_deadline() const {
        return m_start + std::chrono::milliseconds(m_state.config().head_timeout_ms);
    }
    Verdict head_timeout_verdict() const;

    // The first byte, within the head's deadline: airlock-init's handoff swaps the client's TCP
    // socket in for the unix connection; any other byte begins the request. False when the
    // connection is done.
    bool take_client();

    using HeadParser = ParsedHead (*)(std::string_view);
    // The whole head within head_timeout_ms of the accept, into m_head; false when the
    // connection is done (refused, or no request).
    bool read_head(HeadParser parse);

    enum class Received { data, again, ended };
    // Appends up to `room` bytes from the client to m_buffer; `ended` on EOF or an error.
    Received receive(std::size_t room);

    void refuse_head(const HeadError& error);

    // Resolves `host` and keeps in m_addresses what the fence lets through; false when refused.
    bool resolve_and_fence(const std::string& host);
    // The first checked address that accepts; otherwise nullopt, and `error` names each
    // failure (or the stop that came first: m_stopped).
    std::optional<Fd> connect_upstream(const std::string& host, std::uint16_t port,
                                       std::string& error);

    // Writes the decision line.
    void finish(Verdict v);
    // Records the refusal, then answers it: the line is out before the client can react.
    void refuse(int status, const Verdict& v);

    ProxyState& m_state;
    Fd m_client;
    DecisionRecord m_record;
    Clock::time_point m_start;
    std::string m_buffer; // bytes read past what has been handled
    RequestHead m_head;
    std::vector<IpAddress> m_addresses; // resolved and through the fence
    bool m_stopped = false;             // the stop came while connecting upstream
};

} // namespace airlock::egress
