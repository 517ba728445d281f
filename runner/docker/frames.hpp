// Demultiplexer for the engine's 8-byte-header stream framing (logs and attach without a TTY):
// [stream:1][0:3][size:4 big-endian][payload]. Frames may be split across reads anywhere;
// payload is passed on as it arrives, never buffered whole.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace airlock::docker {

enum class StreamId : std::uint8_t { stdin_ = 0, stdout_ = 1, stderr_ = 2, system_error = 3 };

class FrameDemuxer {
public:
    // Receives each piece of payload with its stream; returns false to stop.
    using Callback = std::function<bool(StreamId, std::string_view)>;

    explicit FrameDemuxer(Callback cb) : m_cb(std::move(cb)) {}

    // Feeds bytes; false when the callback stopped or the framing is corrupt (see error()).
    bool feed(std::string_view data);
    // True when the stream ended on a frame boundary.
    bool at_boundary() const { return m_header_len == 0 && m_remaining == 0; }
    const std::string& error() const { return m_error; }
    std::uint64_t frames() const { return m_frames; }

private:
    Callback m_cb;
    unsigned char m_header[8] = {};
    std::size_t m_header_len = 0;
    std::uint32_t m_remaining = 0;
    StreamId m_stream = StreamId::stdout_;
    std::uint64_t m_frames = 0;
    std::string m_error;
};

} // namespace airlock::docker
