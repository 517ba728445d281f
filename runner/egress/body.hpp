// Where a plain-HTTP request body ends, so the proxy forwards exactly one request: bytes the
// client sends after it never reach the upstream as a second, unchecked request.
#pragma once

#include "egress/request.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace airlock::egress {

class BodyScanner {
public:
    BodyScanner(BodyFraming framing, std::uint64_t content_length);

    // How many bytes at the start of `bytes` belong to the body: all of them while it goes on.
    // After the end of the body (done()) or broken chunked framing (failed()), 0.
    std::size_t feed(std::string_view bytes);
    bool done() const { return m_state == State::done; }
    bool failed() const { return m_state == State::failed; }

private:
    enum class State {
        length, // counting down m_remaining
        size,   // chunk-size hex digits
        ext,    // chunk extension, up to CR
        size_lf,
        data,
        data_cr,
        data_lf,
        trailer_start, // a trailer field or the final CRLF
        trailer,
        trailer_lf,
        final_lf,
        done,
        failed,
    };
    bool step(char c);

    State m_state = State::failed;
    std::uint64_t m_remaining = 0;
    std::size_t m_digits = 0;
    std::size_t m_line = 0; // bytes of the current extension or trailer line
};

} // namespace airlock::egress
