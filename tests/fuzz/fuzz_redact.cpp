// libFuzzer target: secret redaction of a task's output, which the task controls entirely.
// RedactStream over any chunking must equal Redactor::redact of the whole stream, and no form of
// a secret may survive redaction. The input is text so seeds stay readable:
//
//   line 1      the chunking: each byte is one write() of (byte % 64) bytes, cycled to the end;
//               '.' calls finish() there instead (a new stream starts); empty: one write()
//   lines 2..   secrets, one per line (escapes \n, \\, \xHH), up to a line "--"; at most 8
//   the rest    the output, where byte 0x01 and a byte K insert pattern K (mod their number) of
//               the redactor, and 0x02, K, N its first N bytes: encoded secrets and near misses
//               then need no luck to appear
#include "audit/redact.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace airlock::audit;

namespace {

constexpr std::size_t k_max_secrets = 8;
constexpr std::size_t k_max_secret = 64;

void check(bool ok) {
    if (!ok) std::abort();
}

// Reads up to the next '\n' (dropped); the rest of the input when there is none.
std::string_view take_line(std::string_view& in) {
    const auto nl = in.find('\n');
    const std::string_view line = in.substr(0, nl);
    in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
    return line;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == 'n') {
            out.push_back('\n');
            ++i;
        } else if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '\\') {
            out.push_back('\\');
            ++i;
        } else if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x' &&
                   hex_digit(s[i + 2]) >= 0 && hex_digit(s[i + 3]) >= 0) {
            out.push_back(static_cast<char>(hex_digit(s[i + 2]) * 16 + hex_digit(s[i + 3])));
            i += 3;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::string expand(std::string_view body, const Redactor& redactor) {
    const auto& patterns = redactor.patterns();
    std::string out;
    for (std::size_t i = 0; i < body.size(); ++i) {
        const char c = body[i];
        if (c == '\x01' && i + 1 < body.size() && !patterns.empty()) {
            out += patterns[static_cast<unsigned char>(body[i + 1]) % patterns.size()];
            i += 1;
        } else if (c == '\x02' && i + 2 < body.size() && !patterns.empty()) {
            const std::string& p =
                patterns[static_cast<unsigned char>(body[i + 1]) % patterns.size()];
            out += p.substr(0, static_cast<unsigned char>(body[i + 2]) % (p.size() + 1));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

void check_forms(const std::string& secret) {
    const auto forms = secret_forms(secret);
    check(std::find(forms.begin(), forms.end(), secret) != forms.end());
    for (std::size_t i = 0; i < forms.size(); ++i) {
        check(forms[i] == secret || forms[i].size() >= k_min_derived_form);
        if (i > 0) check(forms[i - 1].size() > forms[i].size() || forms[i - 1] < forms[i]);
    }
}

// Redacted output holds no pattern. One with a '*' may be rebuilt around a "***" by design.
void check_clean(const Redactor& redactor, const std::string& redacted) {
    for (const auto& p : redactor.patterns())
        if (p.find('*') == std::string::npos) check(redacted.find(p) == std::string::npos);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    const std::string_view plan = take_line(in);
    std::vector<std::string> secrets;
    while (!in.empty()) {
        const std::string_view line = take_line(in);
        if (line == "--") break;
        if (secrets.size() < k_max_secrets)
            secrets.push_back(unescape(line).substr(0, k_max_secret));
    }
    for (const auto& s : secrets)
        if (!s.empty()) check_forms(s);

    const Redactor redactor(secrets);
    check(redactor.empty() == redactor.patterns().empty());
    const std::string text = expand(in, redactor);

    std::string streamed, expected;
    RedactStream stream(redactor, [&streamed](std::string_view piece) {
        check(!piece.empty());
        streamed.append(piece);
    });
    const std::size_t may_hold = redactor.empty() ? 0 : redactor.max_pattern() - 1;
    auto end_stream = [&](std::size_t from, std::size_t to) {
        stream.finish();
        check(stream.held() == 0);
        const std::string part = redactor.redact(std::string_view(text).substr(from, to - from));
        check_clean(redactor, part);
        expected += part;
        check(streamed == expected);
    };

    std::size_t pos = 0, start = 0;
    if (plan.empty()) {
        stream.write(text);
        check(stream.held() <= may_hold);
        pos = text.size();
    }
    // Stop cycling when a whole round of the plan wrote nothing (all zeros and dots).
    for (std::size_t round_start = 0; !plan.empty() && pos < text.size(); round_start = pos) {
        for (const char c : plan) {
            if (c == '.') {
                end_stream(start, pos);
                start = pos;
                continue;
            }
            const std::size_t n =
                std::min<std::size_t>(static_cast<unsigned char>(c) % 64, text.size() - pos);
            stream.write(std::string_view(text).substr(pos, n));
            check(stream.held() <= may_hold);
            pos += n;
        }
        if (pos == round_start) {
            stream.write(std::string_view(text).substr(pos));
            pos = text.size();
        }
    }
    end_stream(start, text.size());
    return 0;
}
