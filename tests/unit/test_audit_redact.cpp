// Redactor and RedactStream: every form of a secret replaced, however the output is chunked.
// Expected encodings come from coreutils `base64`/`basenc --base64url`, Python's urllib.parse
// and json, not from the code under test.
#include "audit/redact.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <string_view>
#include <vector>

using airlock::audit::Redactor;
using airlock::audit::RedactStream;
using airlock::audit::secret_forms;
using namespace std::string_literals;

namespace {

// Everything a RedactStream sends, and the pieces it came in.
struct Collected {
    std::string text;
    std::vector<std::string> pieces;
};

// Writes text in pieces of the given sizes (the remainder as one last piece), then finishes.
Collected stream_in_pieces(const Redactor& redactor, std::string_view text,
                           const std::vector<std::size_t>& sizes) {
    Collected out;
    RedactStream stream(redactor, [&out](std::string_view piece) {
        out.text.append(piece);
        out.pieces.emplace_back(piece);
    });
    std::size_t pos = 0;
    for (const std::size_t size : sizes) {
        const std::size_t n = std::min(size, text.size() - pos);
        stream.write(text.substr(pos, n));
        pos += n;
    }
    stream.write(text.substr(pos));
    stream.finish();
    return out;
}

std::string stream_bytewise(const Redactor& redactor, std::string_view text) {
    return stream_in_pieces(redactor, text, std::vector<std::size_t>(text.size(), 1)).text;
}

const std::string k_secret = "hunter2-supersecret-value";

} // namespace

TEST_CASE("redact: secret_forms lists every encoding, longest first", "[redact]") {
    // 8 bytes, so the base64 alignment runs are 10 characters; no base64 character differs
    // between the two alphabets, so the URL-safe forms collapse into the standard ones.
    CHECK(secret_forms("pa ss/wd") == std::vector<std::string>{
                                          "cGEgc3Mvd2Q=",
                                          "pa%20ss%2Fwd",
                                          "pa%20ss%2fwd",
                                          "cGEgc3Mvd2Q",
                                          "BhIHNzL3dk",
                                          "cGEgc3Mvd2",
                                          "pa+ss%2Fwd",
                                          "pa+ss%2fwd",
                                          "wYSBzcy93Z",
                                          "pa ss/wd",
                                      });
}

TEST_CASE("redact: secret_forms drops derived forms shorter than 8 bytes", "[redact]") {
    CHECK(secret_forms("").empty());
    CHECK(secret_forms("x") == std::vector<std::string>{"x"});
    // "YWJj", "a%20b", "a+b": all too short, but the value itself always stays.
    CHECK(secret_forms("abc") == std::vector<std::string>{"abc"});
    CHECK(secret_forms("a b") == std::vector<std::string>{"a b"});
    // Exactly 8 is kept ("YWJjZGU="), 7 is not ("YWJjZGU").
    CHECK(secret_forms("abcde") == std::vector<std::string>{"YWJjZGU=", "abcde"});

    const Redactor redactor({"abc"});
    CHECK(redactor.redact("YWJj abc a%62c") == "YWJj *** a%62c");
}

TEST_CASE("redact: the plain value is replaced", "[redact]") {
    const Redactor redactor({k_secret});
    CHECK(redactor.redact("token=" + k_secret + "\n") == "token=***\n");
    CHECK(redactor.redact(k_secret + k_secret) == "******");
    CHECK(redactor.redact(k_secret) == "***");
    CHECK(redactor.redact("hunter2-supersecret-valu") == "hunter2-supersecret-valu");
}

TEST_CASE("redact: base64 of the value alone is replaced, padded or not", "[redact]") {
    const Redactor redactor({k_secret});
    // printf %s "$S" | base64
    CHECK(redactor.redact("aHVudGVyMi1zdXBlcnNlY3JldC12YWx1ZQ==\n") == "***\n");
    // printf %s "$S" | basenc --base64url | tr -d =
    CHECK(redactor.redact("x.aHVudGVyMi1zdXBlcnNlY3JldC12YWx1ZQ.y") == "x.***.y");
}

TEST_CASE("redact: echo \"$S\" | base64 is caught", "[redact]") {
    const Redactor redactor({k_secret});
    // The trailing newline's high nibble is zero, so the unpadded encoding of the value alone
    // matches and only the newline's low bits ("o") and the padding remain.
    CHECK(redactor.redact("aHVudGVyMi1zdXBlcnNlY3JldC12YWx1ZQo=\n") == "***o=\n");
}

TEST_CASE("redact: standard base64 is caught at all three alignments in a longer stream",
          "[redact]") {
    const Redactor redactor({k_secret});
    // printf '%s%s!tail' "$prefix" "$S" | base64 -w0, prefix "", "x", "xy". Characters that mix
    // the secret's bits with a neighbour's stay.
    CHECK(redactor.redact("aHVudGVyMi1zdXBlcnNlY3JldC12YWx1ZSF0YWls") == "***SF0YWls");
    CHECK(redactor.redact("eGh1bnRlcjItc3VwZXJzZWNyZXQtdmFsdWUhdGFpbA==") == "eG***UhdGFpbA==");
    CHECK(redactor.redact("eHlodW50ZXIyLXN1cGVyc2VjcmV0LXZhbHVlIXRhaWw=") == "eHl***IXRhaWw=");
}

TEST_CASE("redact: URL-safe base64 is caught at all three alignments in a longer stream",
          "[redact]") {
    // Bytes 0xfb-0xff put '-' and '_' into the URL-safe encoding at every alignment.
    const std::string secret = "tok\xff\xfe\xfb\xff\xff"s + "en-value";
    const Redactor redactor({secret});
    CHECK(redactor.redact("dG9r__77__9lbi12YWx1ZSF0YWls") == "***SF0YWls");
    CHECK(redactor.redact("eHRva__--___ZW4tdmFsdWUhdGFpbA==") == "eH***UhdGFpbA==");
    CHECK(redactor.redact("eHl0b2v__vv__2VuLXZhbHVlIXRhaWw=") == "eHl***IXRhaWw=");
    // And the standard alphabet for the same secret.
    CHECK(redactor.redact("eHRva//++///ZW4tdmFsdWUhdGFpbA==") == "eH***UhdGFpbA==");
}

TEST_CASE("redact: percent-encoded forms are caught, upper and lower hex, with '+' for space",
          "[redact]") {
    const Redactor redactor({"p@ss w0rd/\xc3\xa9+x"});
    CHECK(redactor.redact("q=p%40ss%20w0rd%2F%C3%A9%2Bx&n=1") == "q=***&n=1");
    CHECK(redactor.redact("q=p%40ss%20w0rd%2f%c3%a9%2bx&n=1") == "q=***&n=1");
    CHECK(redactor.redact("q=p%40ss+w0rd%2F%C3%A9%2Bx&n=1") == "q=***&n=1");
    CHECK(redactor.redact("q=p%40ss+w0rd%2f%c3%a9%2bx&n=1") == "q=***&n=1");
    // Mixed case is no encoder's output and is not a form.
    CHECK(redactor.redact("p%40ss%20w0rd%2f%C3%A9%2Bx") == "p%40ss%20w0rd%2f%C3%A9%2Bx");
}

TEST_CASE("redact: the JSON-escaped form is caught", "[redact]") {
    const Redactor redactor({"ab\"cd\\ef\ngh\tij\x01k \xc3\xa9"});
    // json.dumps(s, ensure_ascii=False), as nlohmann::json::dump writes it
    CHECK(redactor.redact(R"({"token":"ab\"cd\\ef\ngh\tij\u0001k )"
                          "\xc3\xa9"
                          R"("})") == R"({"token":"***"})");
    // json.dumps(s): non-ASCII escaped too
    CHECK(redactor.redact(R"({"token":"ab\"cd\\ef\ngh\tij\u0001k \u00e9"})") ==
          R"({"token":"***"})");
}

TEST_CASE("redact: overlapping matches: leftmost first, then longest", "[redact]") {
    SECTION("leftmost wins, the rest of the later secret stays") {
        const Redactor redactor({"cdefghij", "abcdef"});
        CHECK(redactor.redact("xxabcdefghijyy") == "xx***ghijyy");
    }
    SECTION("at one start, the longest wins") {
        const Redactor redactor({"abcd", "abcdefgh"});
        CHECK(redactor.redact("abcdefgh!abcdX") == "***!***X");
        CHECK(stream_bytewise(redactor, "abcdefgh!abcdX") == "***!***X");
    }
}

TEST_CASE("redact: several secrets are all replaced", "[redact]") {
    const Redactor redactor({k_secret, "ghp_0123456789abcdef", "", "xoxb-98765"});
    CHECK(redactor.redact("a=" + k_secret + " b=ghp_0123456789abcdef c=xoxb-98765 d=x") ==
          "a=*** b=*** c=*** d=x");
    CHECK(redactor.max_pattern() == redactor.patterns().front().size());
    CHECK(redactor.max_pattern() == 36); // padded base64 of k_secret
}

TEST_CASE("redact: text without secrets passes byte for byte", "[redact]") {
    const Redactor redactor({k_secret});
    std::string binary;
    for (int i = 0; i < 4; ++i)
        for (int b = 0; b < 256; ++b)
            binary.push_back(static_cast<char>(b));
    binary += "\0\0hunter2-supersecret-valu\0e"s;
    CHECK(redactor.redact(binary) == binary);
    CHECK(stream_bytewise(redactor, binary) == binary);
    CHECK(stream_in_pieces(redactor, binary, {1000}).text == binary);
}

TEST_CASE("redact: a secret split across two writes is replaced at every split point", "[redact]") {
    const Redactor redactor({k_secret});
    const std::string text = "before " + k_secret + " after";
    for (std::size_t split = 0; split <= text.size(); ++split) {
        INFO("split at " << split);
        CHECK(stream_in_pieces(redactor, text, {split}).text == "before *** after");
    }
    // A chunk longer than the window after a held tail takes the straddling path.
    const std::string long_text = std::string(100, '.') + k_secret + std::string(100, '-');
    const std::string expected = std::string(100, '.') + "***" + std::string(100, '-');
    for (std::size_t split = 0; split <= long_text.size(); ++split) {
        INFO("split at " << split);
        CHECK(stream_in_pieces(redactor, long_text, {split}).text == expected);
    }
}

TEST_CASE("redact: a secret longer than the scan window is replaced in any two pieces",
          "[redact]") {
    std::string key = "-----BEGIN PRIVATE KEY-----\n";
    for (int i = 0; i < 8; ++i)
        key += "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" + std::to_string(i) + "\n";
    key += "-----END PRIVATE KEY-----\n";
    REQUIRE(key.size() > 256);
    const Redactor redactor({key});
    const std::string text = "log: " + key + "done\n";
    CHECK(redactor.redact(text) == "log: ***done\n");
    for (std::size_t split = 0; split <= text.size(); split += 7) {
        INFO("split at " << split);
        CHECK(stream_in_pieces(redactor, text, {split}).text == "log: ***done\n");
    }
    // A prefix of the key longer than the window but short of the whole is not a match.
    const std::string partial = key.substr(0, 300);
    CHECK(redactor.redact(partial) == partial);
}

TEST_CASE("redact: one byte per write still replaces every form", "[redact]") {
    const Redactor redactor({k_secret});
    CHECK(stream_bytewise(redactor, "x " + k_secret + " y") == "x *** y");
    CHECK(stream_bytewise(redactor, "aHVudGVyMi1zdXBlcnNlY3JldC12YWx1ZQo=\n") == "***o=\n");
    CHECK(stream_bytewise(redactor, "eGh1bnRlcjItc3VwZXJzZWNyZXQtdmFsdWUhdGFpbA==") ==
          "eG***UhdGFpbA==");
}

TEST_CASE("redact: a stream holds back at most max_pattern() - 1 bytes", "[redact]") {
    const Redactor redactor({k_secret});
    std::string seen;
    RedactStream stream(redactor, [&seen](std::string_view piece) {
        CHECK_FALSE(piece.empty());
        seen.append(piece);
    });
    const std::string text(1000, 'z');
    stream.write(text);
    CHECK(stream.held() == redactor.max_pattern() - 1);
    CHECK(seen == text.substr(0, 1000 - stream.held()));
    for (int i = 0; i < 100; ++i) {
        stream.write("y");
        CHECK(stream.held() == redactor.max_pattern() - 1);
    }
}

TEST_CASE("redact: finish() flushes the held tail", "[redact]") {
    const Redactor redactor({k_secret});
    std::string seen;
    RedactStream stream(redactor, [&seen](std::string_view piece) { seen.append(piece); });
    stream.write("short");
    CHECK(seen.empty());
    CHECK(stream.held() == 5);
    stream.write(" hunter2-supersecret-val");
    CHECK(seen.empty());
    stream.finish();
    CHECK(seen == "short hunter2-supersecret-val");
    CHECK(stream.held() == 0);

    seen.clear();
    stream.write("tail " + k_secret);
    stream.finish();
    CHECK(seen == "tail ***");
    stream.finish();
    CHECK(seen == "tail ***");
}

TEST_CASE("redact: an empty redactor passes every write straight through", "[redact]") {
    const Redactor redactor({"", ""});
    CHECK(redactor.empty());
    CHECK(redactor.max_pattern() == 0);
    CHECK(redactor.redact("abc\0def"s) == "abc\0def"s);

    const std::string chunk = "some output\n";
    std::vector<const char*> addresses;
    RedactStream stream(
        redactor, [&addresses](std::string_view piece) { addresses.push_back(piece.data()); });
    stream.write(chunk);
    stream.write("");
    stream.finish();
    // Forwarded, not copied: the sink sees the caller's own bytes.
    CHECK(addresses == std::vector<const char*>{chunk.data()});
    CHECK(stream.held() == 0);
}

TEST_CASE("redact: a one-byte secret is still redacted", "[redact]") {
    const Redactor redactor({"#"});
    CHECK(redactor.max_pattern() == 1);
    CHECK(redactor.redact("a#b##") == "a***b******");
    CHECK(stream_bytewise(redactor, "a#b##") == "a***b******");
}

TEST_CASE("redact: random text and chunking: stream equals whole-buffer redact, no form survives",
          "[redact]") {
    std::mt19937 rng(20261127);
    auto pick = [&rng](std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    };
    // No '*' in secrets or filler, so a replacement can never combine into a form.
    auto random_bytes = [&](std::size_t n, std::string_view alphabet) {
        std::string s;
        for (std::size_t i = 0; i < n; ++i) {
            char c =
                alphabet.empty() ? static_cast<char>(pick(256)) : alphabet[pick(alphabet.size())];
            s.push_back(c == '*' ? '+' : c);
        }
        return s;
    };
    const std::string_view printable =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=%-_ \n\"\\";

    for (int round = 0; round < 200; ++round) {
        INFO("round " << round);
        std::vector<std::string> secrets;
        const std::size_t count = 1 + pick(4);
        for (std::size_t i = 0; i < count; ++i)
            secrets.push_back(random_bytes(pick(6) == 0 ? 1 + pick(7) : 8 + pick(40),
                                           pick(4) == 0 ? "" : printable));
        const Redactor redactor(secrets);

        std::vector<std::string> forms;
        for (const auto& secret : secrets)
            for (const auto& form : secret_forms(secret))
                forms.push_back(form);

        std::string text;
        const std::size_t pieces = pick(30);
        for (std::size_t i = 0; i < pieces; ++i) {
            text += random_bytes(pick(200), pick(3) == 0 ? "" : printable);
            text += forms[pick(forms.size())];
        }
        text += random_bytes(pick(50), printable);

        std::vector<std::size_t> sizes;
        for (std::size_t total = 0; total < text.size();) {
            const std::size_t size = pick(3) == 0 ? pick(4) : pick(300);
            sizes.push_back(size);
            total += size;
        }

        const std::string whole = redactor.redact(text);
        CHECK(stream_in_pieces(redactor, text, sizes).text == whole);
        for (const auto& form : forms) {
            INFO("form " << form);
            CHECK(whole.find(form) == std::string::npos);
        }
    }
}
