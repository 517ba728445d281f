#include "docker/frames.hpp"

namespace airlock::docker {

bool FrameDemuxer::feed(std::string_view data) {
    if (!m_error.empty()) return false;
    while (!data.empty()) {
        if (m_remaining == 0) {
            std::size_t need = sizeof(m_header) - m_header_len;
            std::size_t take = data.size() < need ? data.size() : need;
            for (std::size_t i = 0; i < take; ++i)
                m_header[m_header_len + i] = static_cast<unsigned char>(data[i]);
            m_header_len += take;
            data.remove_prefix(take);
            if (m_header_len < sizeof(m_header)) return true;
            m_header_len = 0;
            if (m_header[0] > 3 || m_header[1] != 0 || m_header[2] != 0 || m_header[3] != 0) {
                m_error = "corrupt log frame header (stream byte " + std::to_string(m_header[0]) +
                          "); is the container running with a TTY?";
                return false;
            }
            m_stream = static_cast<StreamId>(m_header[0]);
            m_remaining = (std::uint32_t{m_header[4]} << 24) | (std::uint32_t{m_header[5]} << 16) |
                          (std::uint32_t{m_header[6]} << 8) | std::uint32_t{m_header[7]};
            ++m_frames;
            continue;
        }
        std::size_t take = data.size() < m_remaining ? data.size() : m_remaining;
        m_remaining -= static_cast<std::uint32_t>(take);
        if (!m_cb(m_stream, data.substr(0, take))) return false;
        data.remove_prefix(take);
    }
    return true;
}

} // namespace airlock::docker
