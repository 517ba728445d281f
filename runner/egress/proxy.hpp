// The proxy: accepts clients on a listening socket, one thread each, and writes one decision
// line per request through `on_line`.
#pragma once

#include "egress/config.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <stop_token>

namespace airlock::egress {

// Called under a mutex, so lines never interleave; allowed requests when they end, refusals at
// once (before the client sees the response).
using LineSink = std::function<void(const nlohmann::json&)>;

// Serves until `stop` is requested: then stops accepting, ends every open connection and
// returns once each has written its decision line. 0, or 1 when the listening socket failed
// (reported through `on_line` as an error line). `listen_fd` stays open; the caller owns it.
int serve(const Config& config, int listen_fd, LineSink on_line, std::stop_token stop);

class CredentialEndpoints;

// serve(), and the credential endpoint on `credential_fd` too (docs/egress.md). Both sockets
// share max_connections.
int serve(const Config& config, int listen_fd, int credential_fd,
          std::shared_ptr<CredentialEndpoints> credentials, LineSink on_line, std::stop_token stop);

} // namespace airlock::egress
