// The lines airlock-egress writes on stdout, one JSON object each: ready, decision, error.
#pragma once

#include "egress/decide.hpp"
#include "egress/request.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace airlock::egress {

enum class Listener { proxy, credential };

// What a decision line says about one request.
struct DecisionRecord {
    Listener listener = Listener::proxy;
    std::chrono::system_clock::time_point time; // when the connection was accepted
    std::optional<std::string> method;          // unknown for a malformed request
    std::optional<std::string> host;
    std::optional<std::uint16_t> port;
    std::optional<RequestKind> kind;
    std::optional<std::string> path;    // plain HTTP: the path, without the query
    std::optional<std::string> sni;     // CONNECT: the ClientHello's server name
    std::optional<std::string> address; // the address connected to
    Verdict verdict;
    std::uint64_t bytes_up = 0; // payload bytes client -> upstream (head and body, or tunnel)
    std::uint64_t bytes_down = 0;
    std::int64_t duration_ms = 0;
    // Credential endpoint only (left out of the proxy's lines): the endpoint the path named, and
    // the upstream's status or the refusal's.
    std::optional<std::string> endpoint;
    std::optional<int> status;
};

// "2026-11-27T05:48:31.123Z"
std::string rfc3339(std::chrono::system_clock::time_point time);

nlohmann::json ready_line();
nlohmann::json error_line(std::string_view message);
// `path` only for plain HTTP and `sni` (possibly null) only for CONNECT; both left out when
// the request could not be parsed. Credential endpoint lines always have `path`, `endpoint` and
// `status` (each possibly null).
nlohmann::json decision_line(const DecisionRecord& record);

// One line of text: bytes that are not UTF-8 (a path can hold any) become U+FFFD.
std::string render_line(const nlohmann::json& line);

} // namespace airlock::egress
