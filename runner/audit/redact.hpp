// Secret redaction: airlock never writes a secret value, or an encoding a task may print it in,
// to disk, logs, the report or artifacts. Redactor holds the patterns; RedactStream applies them
// to one output stream written in arbitrary pieces, with bounded memory.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::audit {

// What every occurrence of a secret form is replaced with.
inline constexpr std::string_view k_redacted = "***";

// Derived forms shorter than this are dropped: they would redact ordinary text.
inline constexpr std::size_t k_min_derived_form = 8;

// Every byte string that stands for the secret in output, deduplicated, longest first (ties in
// byte order): the value; its base64 (standard and URL-safe alphabets) at the three byte
// alignments inside a larger encoded stream, keeping only the characters fixed by the secret's
// bytes alone, plus the whole encoding of the value alone, padded and unpadded; its
// percent-encodings (upper- and lower-case hex, and with space as '+'); its JSON string escape.
// Derived forms shorter than k_min_derived_form are dropped. An empty value has no forms.
std::vector<std::string> secret_forms(std::string_view value);

// Where a pattern matched: text[pos, pos + len).
struct Match {
    std::size_t pos;
    std::size_t len;
};

// The forms of a set of secrets, and whole-buffer redaction with them.
class Redactor {
public:
    Redactor() = default;
    // Empty values are ignored.
    explicit Redactor(const std::vector<std::string>& secrets);

    bool empty() const { return m_patterns.empty(); }
    // Length of the longest pattern; 0 when empty.
    std::size_t max_pattern() const { return m_max_pattern; }
    // All patterns, longest first.
    const std::vector<std::string>& patterns() const { return m_patterns; }

    // Every match replaced by k_redacted; overlapping matches: leftmost, then longest.
    std::string redact(std::string_view text) const;

    // The leftmost match starting in [from, limit), longest at that start. A pattern matches only
    // if it lies wholly inside text, so a caller that does not yet have all of the input must
    // keep limit + max_pattern() - 1 <= text.size() for the answer to be final.
    std::optional<Match> find(std::string_view text, std::size_t from, std::size_t limit) const;

private:
    // Patterns of two bytes or more, grouped by their first two bytes.
    struct Entry {
        std::uint16_t prefix;
        std::uint32_t index;
    };

    std::optional<Match> match_at(std::string_view text, std::size_t pos) const;

    std::vector<std::string> m_patterns;
    std::size_t m_max_pattern = 0;
    // The scan window (Wu-Manber): the shortest pattern length, capped so shifts fit a byte.
    std::size_t m_window = 0;
    // By the two bytes ending a window: how far the window may move before a pattern could start
    // at its first byte. Only used when m_window >= 2.
    std::vector<std::uint8_t> m_shift;
    // Bit per two-byte prefix of a pattern: rejects most shift-0 windows with one load.
    std::vector<std::uint64_t> m_pair_bits;
    std::vector<Entry> m_entries; // sorted by prefix, then longest first
    // One-byte patterns (a one-byte secret value), by byte.
    std::array<bool, 256> m_single{};
    bool m_has_single = false;
};

// Redacts one output stream (stdout and stderr each need their own) written in any pieces.
// Output equals Redactor::redact of the whole stream. At most max_pattern() - 1 bytes are held
// back; everything else reaches the sink during the write() that brought it.
class RedactStream {
public:
    using Sink = std::function<void(std::string_view)>;

    // The redactor must outlive the stream. The sink never receives an empty piece.
    RedactStream(const Redactor& redactor, Sink sink);

    void write(std::string_view chunk);
    // Flushes the held tail; the end of the stream. A later write() starts a new stream.
    void finish();
    // Bytes written but not yet passed to the sink.
    std::size_t held() const { return m_tail.size(); }

private:
    // Sends text[from, ...) to the sink, redacted, deciding every match that starts before limit;
    // returns where it stopped (at or past limit, never past text.size()).
    std::size_t emit(std::string_view text, std::size_t from, std::size_t limit);
    // The start limit for text when more input may follow.
    std::size_t open_limit(std::string_view text) const;

    const Redactor& m_redactor;
    Sink m_sink;
    std::string m_tail;   // undecided bytes from earlier writes
    std::string m_joined; // the tail plus the head of the next chunk, reused across writes
};

} // namespace airlock::audit
