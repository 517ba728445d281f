#include "audit/redact.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace airlock::audit {

namespace {

constexpr std::string_view k_base64_std =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view k_base64_url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Shifts are stored in a byte.
constexpr std::size_t k_max_window = 256;

// Base64 of `lead` zero bytes followed by value, zero-filled to whole 3-byte groups. Which of
// its characters mean anything is for the caller to pick.
std::string encode_groups(std::string_view value, std::size_t lead, std::string_view alphabet) {
    std::string bytes(lead, '\0');
    bytes.append(value);
    bytes.append((3 - bytes.size() % 3) % 3, '\0');
    std::string out;
    out.reserve(bytes.size() / 3 * 4);
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        const auto b0 = static_cast<unsigned char>(bytes[i]);
        const auto b1 = static_cast<unsigned char>(bytes[i + 1]);
        const auto b2 = static_cast<unsigned char>(bytes[i + 2]);
        const unsigned group = (b0 << 16) | (b1 << 8) | b2;
        for (int shift = 18; shift >= 0; shift -= 6)
            out.push_back(alphabet[(group >> shift) & 0x3f]);
    }
    return out;
}

void add_base64_forms(std::string_view value, std::string_view alphabet,
                      std::vector<std::string>& forms) {
    const std::size_t bits = value.size() * 8;

    // The value encoded alone, as `base64` or a URL-safe encoder without padding would print it.
    const std::string alone = encode_groups(value, 0, alphabet);
    std::string unpadded = alone.substr(0, (bits + 5) / 6);
    std::string padded = unpadded + std::string((4 - unpadded.size() % 4) % 4, '=');
    forms.push_back(std::move(unpadded));
    forms.push_back(std::move(padded));

    // Inside a longer stream the secret may start at any byte offset mod 3; a character whose six
    // bits straddle a neighbouring byte is unknown, so only the characters wholly inside the
    // secret's bits [8 * lead, 8 * lead + bits) are a fixed pattern.
    for (std::size_t lead = 0; lead < 3; ++lead) {
        const std::string encoded = encode_groups(value, lead, alphabet);
        const std::size_t first = (8 * lead + 5) / 6;
        const std::size_t end = (8 * lead + bits) / 6;
        if (end > first) forms.push_back(encoded.substr(first, end - first));
    }
}

enum class HexCase { upper, lower };
enum class Space { percent, plus };

bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

// RFC 3986 percent-encoding of every byte outside the unreserved set; Space::plus is the
// application/x-www-form-urlencoded variant.
std::string percent_encode(std::string_view value, HexCase hex_case, Space space) {
    const char* digits = hex_case == HexCase::upper ? "0123456789ABCDEF" : "0123456789abcdef";
    std::string out;
    out.reserve(value.size() * 3);
    for (const char ch : value) {
        const auto c = static_cast<unsigned char>(ch);
        if (is_unreserved(c)) {
            out.push_back(ch);
        } else if (c == ' ' && space == Space::plus) {
            out.push_back('+');
        } else {
            out.push_back('%');
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 0xf]);
        }
    }
    return out;
}

enum class Ascii { keep_utf8, escape };

// The inside of a JSON string literal as nlohmann::json::dump writes it. Invalid UTF-8 becomes
// U+FFFD, as with the replacing error handler; Ascii::escape is ensure_ascii (also Python's
// default).
std::string json_escape(std::string_view value, Ascii ascii) {
    const std::string dumped =
        nlohmann::json(std::string(value))
            .dump(-1, ' ', ascii == Ascii::escape, nlohmann::json::error_handler_t::replace);
    return dumped.substr(1, dumped.size() - 2);
}

bool longest_first(const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
}

void sort_unique(std::vector<std::string>& forms) {
    std::sort(forms.begin(), forms.end(), longest_first);
    forms.erase(std::unique(forms.begin(), forms.end()), forms.end());
}

std::uint16_t pair_key(const char* p) {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(p[0]) << 8) |
                                      static_cast<unsigned char>(p[1]));
}

// The redaction loop shared by the whole-buffer and streaming paths: writes text[from, ...) with
// matches replaced, deciding every match that starts before limit, and returns where it stopped.
template <typename Out>
std::size_t redact_into(const Redactor& redactor, std::string_view text, std::size_t from,
                        std::size_t limit, Out&& out) {
    std::size_t pos = from;
    while (pos < limit) {
        const auto match = redactor.find(text, pos, limit);
        if (!match) break;
        if (match->pos > pos) out(text.substr(pos, match->pos - pos));
        out(k_redacted);
        pos = match->pos + match->len;
    }
    if (pos < limit) {
        out(text.substr(pos, limit - pos));
        pos = limit;
    }
    return pos;
}

} // namespace

std::vector<std::string> secret_forms(std::string_view value) {
    if (value.empty()) return {};

    std::vector<std::string> derived;
    add_base64_forms(value, k_base64_std, derived);
    add_base64_forms(value, k_base64_url, derived);
    for (const auto hex_case : {HexCase::upper, HexCase::lower})
        for (const auto space : {Space::percent, Space::plus})
            derived.push_back(percent_encode(value, hex_case, space));
    derived.push_back(json_escape(value, Ascii::keep_utf8));
    derived.push_back(json_escape(value, Ascii::escape));

    std::vector<std::string> forms{std::string(value)};
    for (auto& form : derived)
        if (form.size() >= k_min_derived_form) forms.push_back(std::move(form));
    sort_unique(forms);
    return forms;
}

Redactor::Redactor(const std::vector<std::string>& secrets) {
    for (const auto& secret : secrets)
        for (auto& form : secret_forms(secret))
            m_patterns.push_back(std::move(form));
    sort_unique(m_patterns);
    if (m_patterns.empty()) return;
    m_max_pattern = m_patterns.front().size();

    m_window = std::min(m_patterns.back().size(), k_max_window);
    if (m_window >= 2) {
        m_shift.assign(65536, static_cast<std::uint8_t>(m_window - 1));
        for (const std::string& pattern : m_patterns)
            for (std::size_t j = 0; j + 2 <= m_window; ++j) {
                auto& shift = m_shift[pair_key(pattern.data() + j)];
                shift = std::min(shift, static_cast<std::uint8_t>(m_window - 2 - j));
            }
    }

    m_pair_bits.assign(65536 / 64, 0);
    for (std::size_t i = 0; i < m_patterns.size(); ++i) {
        const std::string& pattern = m_patterns[i];
        if (pattern.size() == 1) {
            m_single[static_cast<unsigned char>(pattern[0])] = true;
            m_has_single = true;
            continue;
        }
        const std::uint16_t key = pair_key(pattern.data());
        m_pair_bits[key >> 6] |= std::uint64_t{1} << (key & 63);
        m_entries.push_back({key, static_cast<std::uint32_t>(i)});
    }
    // Patterns are longest first, so a lower index within one prefix is a longer pattern.
    std::sort(m_entries.begin(), m_entries.end(), [](const Entry& a, const Entry& b) {
        return a.prefix != b.prefix ? a.prefix < b.prefix : a.index < b.index;
    });
}

std::optional<Match> Redactor::match_at(std::string_view text, std::size_t pos) const {
    const std::size_t rest = text.size() - pos;
    if (rest >= 2) {
        const std::uint16_t key = pair_key(text.data() + pos);
        auto it = std::lower_bound(m_entries.begin(), m_entries.end(), key,
                                   [](const Entry& e, std::uint16_t k) { return e.prefix < k; });
        for (; it != m_entries.end() && it->prefix == key; ++it) {
            const std::string& pattern = m_patterns[it->index];
            if (pattern.size() <= rest &&
                std::memcmp(text.data() + pos, pattern.data(), pattern.size()) == 0)
                return Match{pos, pattern.size()};
        }
    }
    if (m_has_single && m_single[static_cast<unsigned char>(text[pos])]) return Match{pos, 1};
    return std::nullopt;
}

std::optional<Match> Redactor::find(std::string_view text, std::size_t from,
                                    std::size_t limit) const {
    if (m_patterns.empty()) return std::nullopt;
    limit = std::min(limit, text.size());
    if (from >= limit) return std::nullopt;

    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const std::uint64_t* bits = m_pair_bits.data();
    auto prefix_bit = [bits](const unsigned char* at) {
        const unsigned key = (unsigned{at[0]} << 8) | at[1];
        return ((bits[key >> 6] >> (key & 63)) & 1) != 0;
    };

    if (m_window >= 2) {
        // Every pattern is at least m_window long, so none starts where a window does not fit.
        const std::uint8_t* shifts = m_shift.data();
        for (std::size_t pos = from; pos < limit && pos + m_window <= text.size();) {
            const std::uint8_t shift = shifts[pair_key(text.data() + pos + m_window - 2)];
            if (shift != 0) {
                pos += shift;
                continue;
            }
            if (prefix_bit(p + pos))
                if (auto match = match_at(text, pos)) return match;
            ++pos;
        }
        return std::nullopt;
    }

    // A one-byte pattern: every position is a candidate.
    for (std::size_t pos = from; pos < limit; ++pos) {
        const bool candidate = m_single[p[pos]] || (pos + 1 < text.size() && prefix_bit(p + pos));
        if (candidate)
            if (auto match = match_at(text, pos)) return match;
    }
    return std::nullopt;
}

std::string Redactor::redact(std::string_view text) const {
    if (empty()) return std::string(text);
    std::string out;
    out.reserve(text.size());
    redact_into(*this, text, 0, text.size(), [&out](std::string_view piece) { out.append(piece); });
    return out;
}

RedactStream::RedactStream(const Redactor& redactor, Sink sink)
    : m_redactor(redactor), m_sink(std::move(sink)) {}

std::size_t RedactStream::emit(std::string_view text, std::size_t from, std::size_t limit) {
    return redact_into(m_redactor, text, from, limit, [this](std::string_view piece) {
        if (!piece.empty()) m_sink(piece);
    });
}

std::size_t RedactStream::open_limit(std::string_view text) const {
    // A start is decided once max_pattern() bytes from it are in hand.
    const std::size_t window = m_redactor.max_pattern();
    return text.size() + 1 >= window ? text.size() + 1 - window : 0;
}

void RedactStream::write(std::string_view chunk) {
    if (m_redactor.empty()) {
        if (!chunk.empty()) m_sink(chunk);
        return;
    }
    if (chunk.empty()) return;

    if (m_tail.empty()) {
        const std::size_t stop = emit(chunk, 0, open_limit(chunk));
        m_tail.assign(chunk.substr(stop));
        return;
    }

    const std::size_t window = m_redactor.max_pattern();
    if (chunk.size() < window) {
        // Small pieces: the tail and chunk together are under two windows.
        m_tail.append(chunk);
        const std::size_t stop = emit(m_tail, 0, open_limit(m_tail));
        m_tail.erase(0, stop);
        return;
    }

    // Large pieces: only starts inside the tail need the two joined, and they need no more than
    // window - 1 bytes of the chunk; the rest of the chunk is scanned where it lies, uncopied.
    const std::size_t tail_size = m_tail.size();
    m_joined.assign(m_tail);
    m_joined.append(chunk.substr(0, window - 1));
    m_tail.clear();
    const std::size_t from = emit(m_joined, 0, tail_size) - tail_size;
    const std::size_t stop = emit(chunk, from, open_limit(chunk));
    m_tail.assign(chunk.substr(stop));
}

void RedactStream::finish() {
    if (m_tail.empty()) return;
    emit(m_tail, 0, m_tail.size());
    m_tail.clear();
}

} // namespace airlock::audit
