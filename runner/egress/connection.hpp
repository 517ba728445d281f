// One client connection: read the head, decide, refuse or connect and relay, record.
#pragma once

#include "egress/budget.hpp"
#include "egress/config.hpp"
#include "egress/lines.hpp"
#include "egress/proxy.hpp"
#include "util/fd.hpp"

#include <mutex>
#include <vector>

namespace airlock::egress {

using util::Fd;

// What every connection of one serve() shares.
class ProxyState {
public:
    ProxyState(const Config& config, LineSink sink, Fd stop_read);

    const Config& config() const { return m_config; }
    const std::vector<policy::Cidr>& allow_cidrs() const { return m_cidrs; }
    UploadBudget& budget() { return m_budget; }
    int stop_fd() const { return m_stop_read.get(); }
    void emit(const nlohmann::json& line);

private:
    const Config m_config;
    std::vector<policy::Cidr> m_cidrs;
    UploadBudget m_budget;
    LineSink m_sink;
    std::mutex m_sink_mutex;
    Fd m_stop_read;
};

// Runs on the connection's own thread until the connection ends and its line is written.
// `client` is the accepted unix connection: its first byte tells a handoff from airlock-init
// (the client's TCP socket, which then replaces it) from a request sent on it directly.
void handle_connection(ProxyState& state, Fd client, DecisionRecord record);

// Answers 503 and records it, for a connection over max_connections (or without a thread); to
// the handed-over socket when a handoff has already arrived. Never waits.
void refuse_busy(ProxyState& state, Fd client, DecisionRecord record, std::string reason);

} // namespace airlock::egress
