#include "egress/body.hpp"

#include "util/http_text.hpp"

#include <algorithm>

namespace airlock::egress {

using util::is_ctl;

namespace {
constexpr std::size_t k_max_line = 8 * 1024; // a chunk extension or trailer field

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

} // namespace

BodyScanner::BodyScanner(BodyFraming framing, std::uint64_t content_length) {
    switch (framing) {
    case BodyFraming::none:
        m_state = State::done;
        break;
    case BodyFraming::length:
        m_state = content_length == 0 ? State::done : State::length;
        m_remaining = content_length;
        break;
    case BodyFraming::chunked:
        m_state = State::size;
        break;
    }
}

std::size_t BodyScanner::feed(std::string_view bytes) {
    std::size_t used = 0;
    while (used < bytes.size() && m_state != State::done && m_state != State::failed) {
        if (m_state == State::length || m_state == State::data) {
            const auto n =
                static_cast<std::size_t>(std::min<std::uint64_t>(m_remaining, bytes.size() - used));
            used += n;
            m_remaining -= n;
            if (m_remaining == 0) m_state = m_state == State::length ? State::done : State::data_cr;
            continue;
        }
        if (!step(bytes[used])) {
            m_state = State::failed;
            return 0;
        }
        ++used;
    }
    return m_state == State::failed ? 0 : used;
}

// Strict CRLF framing: whatever the scanner lets through, any compliant upstream reads the same
// way, so the two never disagree on where the body ends.
bool BodyScanner::step(char c) {
    switch (m_state) {
    case State::size: {
        const int v = hex_value(c);
        if (v >= 0) {
            if (++m_digits > 15) return false;
            m_remaining = m_remaining * 16 + static_cast<std::uint64_t>(v);
            return true;
        }
        if (m_digits == 0) return false;
        if (c == ';') {
            m_state = State::ext;
            m_line = 0;
            return true;
        }
        if (c == '\r') {
            m_state = State::size_lf;
            return true;
        }
        return false;
    }
    case State::ext:
        if (c == '\r') {
            m_state = State::size_lf;
            return true;
        }
        return !is_ctl(c) && ++m_line <= k_max_line;
    case State::size_lf:
        if (c != '\n') return false;
        m_digits = 0;
        m_state = m_remaining == 0 ? State::trailer_start : State::data;
        return true;
    case State::data_cr:
        m_state = State::data_lf;
        return c == '\r';
    case State::data_lf:
        m_state = State::size;
        return c == '\n';
    case State::trailer_start:
        if (c == '\r') {
            m_state = State::final_lf;
            return true;
        }
        m_line = 0;
        m_state = State::trailer;
        return !is_ctl(c) && c != ' ';
    case State::trailer:
        if (c == '\r') {
            m_state = State::trailer_lf;
            return true;
        }
        return !is_ctl(c) && ++m_line <= k_max_line;
    case State::trailer_lf:
        m_state = State::trailer_start;
        return c == '\n';
    case State::final_lf:
        m_state = State::done;
        return c == '\n';
    default:
        return false;
    }
}

} // namespace airlock::egress
