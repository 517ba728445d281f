// Copies bytes both ways between the client and the upstream until both directions are closed,
// passing half-closes along: EOF from one side becomes shutdown(SHUT_WR) on the other, and the
// other direction keeps flowing until it ends too.
#pragma once

#include "egress/body.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace airlock::egress {

struct RelayOptions {
    std::string first_up; // sent upstream before anything else (request head, ClientHello)
    // Asked before client bytes are forwarded; false cuts both sides (upload budget).
    std::function<bool(std::size_t)> take_upload;
    // Plain HTTP: where the request body ends. Client bytes after it are not forwarded.
    BodyScanner* body = nullptr;
};

enum class RelayEnd {
    closed,   // both directions finished
    budget,   // take_upload refused
    bad_body, // the chunked request body broke its framing
    stopped,  // the proxy is stopping
    reset,    // a side failed or went away (reset, broken pipe, hang-up)
};

struct RelayResult {
    RelayEnd end = RelayEnd::closed;
    std::uint64_t up = 0;   // bytes written to the upstream
    std::uint64_t down = 0; // bytes written to the client
};

// Both descriptors non-blocking. Counts only what was written, so a cut leaves `up` within budget.
RelayResult relay(int client, int upstream, int stop_fd, RelayOptions& options);

} // namespace airlock::egress
