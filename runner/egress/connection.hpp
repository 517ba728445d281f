// One client connection: read the head, decide, refuse or connect and relay, record.
#pragma once

#include "egress/budget.hpp"
#include "egress/config.hpp"
#include "egress/lines.hpp"
#include "egress/proxy.hpp"
#include "util/fd.hpp"

#include <memory>
#include <mutex>
#include <vector>

namespace airlock::egress {

using util::Fd;

class CredentialEndpoints;

// What every connection of one serve() shares.
class ProxyState {
public:
    ProxyState(const Config& config, LineSink sink, Fd stop_read,
               std::shared_ptr<CredentialEndpoints> credentials = nullptr);

    const Config& config() const { return m_config; }
    const std::vector<policy::Cidr>& allow_cidrs() const { return m_cidrs; }
    UploadBudget& budget() { return m_budget; }
    int stop_fd() const { return m_stop_read.get(); }
    // The credential endpoints; null when the proxy serves none.
    const std::shared_ptr<CredentialEndpoints>& credentials() const { return m_credentials; }
    void emit(const nlohmann::json& line);

private:
    const Config m_config;
    std::vector<policy::Cidr> m_cidrs;
    UploadBudget m_budget;
    LineSink m_sink;
    std::mutex m_sink_mutex;
    Fd m_stop_read;
    std::shared_ptr<CredentialEndpoints> m_credentials;
};

// Runs on the connection's own thread until the connection ends and its line is written.
// `client` is the accepted unix connection: its first byte tells a handoff from airlock-init
// (the client's TCP socket, which then replaces it) from a request sent on it directly.
void handle_connection(ProxyState& state, Fd client, DecisionRecord record);

// Answers 503 and records it, for a connection over max_connections (or without a thread); to
// the handed-over socket when a handoff has already arrived. Never waits.
void refuse_busy(ProxyState& state, Fd client, DecisionRecord record, std::string reason);

} // namespace airlock::egress
