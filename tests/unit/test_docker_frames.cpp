// FrameDemuxer: the engine's 8-byte-header stream framing, fed in arbitrary pieces.
#include "docker/frames.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

using airlock::docker::FrameDemuxer;
using airlock::docker::StreamId;

namespace {

std::string frame(std::uint8_t stream, std::string_view payload) {
    const auto n = static_cast<std::uint32_t>(payload.size());
    std::string out;
    out.push_back(static_cast<char>(stream));
    out.append(3, '\0');
    out.push_back(static_cast<char>((n >> 24) & 0xff));
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    out.push_back(static_cast<char>((n >> 8) & 0xff));
    out.push_back(static_cast<char>(n & 0xff));
    out.append(payload);
    return out;
}

// What the callback saw: the bytes of each stream, and the pieces in arrival order with
// adjacent pieces of the same stream joined (so chunking does not change the record).
struct Collected {
    std::string out, err;
    std::vector<std::pair<StreamId, std::string>> runs;
    std::size_t calls = 0;

    void add(StreamId s, std::string_view data) {
        ++calls;
        (s == StreamId::stderr_ ? err : out).append(data);
        if (!runs.empty() && runs.back().first == s)
            runs.back().second.append(data);
        else
            runs.emplace_back(s, std::string(data));
    }
};

FrameDemuxer collector(Collected& c) {
    return FrameDemuxer([&c](StreamId s, std::string_view d) {
        c.add(s, d);
        return true;
    });
}

// A stream with stdout and stderr interleaved, a zero-length frame and a system_error frame.
std::string sample_stream() {
    return frame(1, "hello ") + frame(2, "oops\n") + frame(1, "world\n") + frame(1, "") +
           frame(2, "second error line\n") + frame(1, std::string(300, 'x')) + frame(3, "sys") +
           frame(1, "end");
}

const std::vector<std::pair<StreamId, std::string>> k_sample_runs = {
    {StreamId::stdout_, "hello "},
    {StreamId::stderr_, "oops\n"},
    {StreamId::stdout_, "world\n"},
    {StreamId::stderr_, "second error line\n"},
    {StreamId::stdout_, std::string(300, 'x')},
    {StreamId::system_error, "sys"},
    {StreamId::stdout_, "end"},
};

} // namespace

TEST_CASE("a single stdout frame is passed on whole", "[docker][frames]") {
    Collected c;
    auto d = collector(c);
    REQUIRE(d.feed(frame(1, "hello\n")));
    CHECK(c.out == "hello\n");
    CHECK(c.err.empty());
    CHECK(c.calls == 1);
    CHECK(d.frames() == 1);
    CHECK(d.at_boundary());
    CHECK(d.error().empty());
}

TEST_CASE("a single stderr frame goes to stderr", "[docker][frames]") {
    Collected c;
    auto d = collector(c);
    REQUIRE(d.feed(frame(2, "bad thing\n")));
    CHECK(c.err == "bad thing\n");
    CHECK(c.out.empty());
    REQUIRE(c.runs.size() == 1);
    CHECK(c.runs[0].first == StreamId::stderr_);
}

TEST_CASE("stdout and stderr frames interleaved keep their order and streams", "[docker][frames]") {
    Collected c;
    auto d = collector(c);
    REQUIRE(d.feed(sample_stream()));
    CHECK(c.runs == k_sample_runs);
    CHECK(c.err == "oops\nsecond error line\n");
    CHECK(d.frames() == 8);
    CHECK(d.at_boundary());
}

TEST_CASE("every split point of a multi-frame stream gives the same output", "[docker][frames]") {
    const std::string s = sample_stream();
    for (std::size_t cut = 1; cut < s.size(); ++cut) {
        Collected c;
        auto d = collector(c);
        REQUIRE(d.feed(std::string_view(s).substr(0, cut)));
        REQUIRE(d.feed(std::string_view(s).substr(cut)));
        INFO("split at " << cut);
        CHECK(c.runs == k_sample_runs);
        CHECK(d.frames() == 8);
        CHECK(d.at_boundary());
    }
}

TEST_CASE("a multi-frame stream fed byte by byte gives the same output", "[docker][frames]") {
    const std::string s = sample_stream();
    Collected c;
    auto d = collector(c);
    for (char ch : s)
        REQUIRE(d.feed(std::string_view(&ch, 1)));
    CHECK(c.runs == k_sample_runs);
    CHECK(d.frames() == 8);
    CHECK(d.at_boundary());
}

TEST_CASE("random chunkings of a multi-frame stream give the same output", "[docker][frames]") {
    const std::string s = sample_stream();
    std::mt19937 rng(20240601); // fixed seed: failures reproduce
    for (int round = 0; round < 500; ++round) {
        std::uniform_int_distribution<std::size_t> len(0, 1 + static_cast<std::size_t>(round % 40));
        Collected c;
        auto d = collector(c);
        std::string_view rest = s;
        std::vector<std::size_t> chunks;
        while (!rest.empty()) {
            std::size_t n = std::min(len(rng), rest.size());
            chunks.push_back(n);
            REQUIRE(d.feed(rest.substr(0, n))); // empty pieces are allowed too
            rest.remove_prefix(n);
        }
        INFO("round " << round << ", " << chunks.size() << " chunks");
        CHECK(c.runs == k_sample_runs);
        CHECK(d.frames() == 8);
        CHECK(d.at_boundary());
    }
}

TEST_CASE("zero-length frames are counted but produce no output", "[docker][frames]") {
    Collected c;
    auto d = collector(c);
    REQUIRE(d.feed(frame(1, "") + frame(2, "") + frame(1, "")));
    CHECK(c.calls == 0);
    CHECK(d.frames() == 3);
    CHECK(d.at_boundary());

    REQUIRE(d.feed(frame(1, "a") + frame(2, "") + frame(1, "b")));
    CHECK(c.out == "ab");
    CHECK(c.err.empty());
    CHECK(d.frames() == 6);
}

TEST_CASE("an empty feed is a no-op", "[docker][frames]") {
    Collected c;
    auto d = collector(c);
    CHECK(d.feed(""));
    CHECK(d.at_boundary());
    CHECK(d.frames() == 0);
    CHECK(c.calls == 0);
}

TEST_CASE("a header with stream byte 7 is corrupt", "[docker][frames]") {
    Collected c;
    auto d = collector(c);
    std::string bad = frame(7, "xyz");
    CHECK_FALSE(d.feed(bad));
    CHECK_THAT(d.error(), Catch::Contains("corrupt"));
    CHECK_THAT(d.error(), Catch::Contains("stream byte 7"));
    CHECK(c.calls == 0);
    // Once corrupt, always corrupt: a later valid frame is not trusted.
    CHECK_FALSE(d.feed(frame(1, "ok")));
    CHECK(c.calls == 0);
}

TEST_CASE("a header with non-zero padding is corrupt", "[docker][frames]") {
    for (std::size_t pad = 1; pad <= 3; ++pad) {
        Collected c;
        auto d = collector(c);
        std::string bad = frame(1, "xyz");
        bad[pad] = '\x01';
        INFO("padding byte " << pad);
        CHECK_FALSE(d.feed(bad));
        CHECK_THAT(d.error(), Catch::Contains("corrupt"));
        CHECK(c.calls == 0);
    }
}

TEST_CASE("TTY output (no framing) is reported as corrupt, with the hint", "[docker][frames]") {
    Collected c;
    auto d = collector(c);
    CHECK_FALSE(d.feed("hello world, this is raw TTY text\n"));
    CHECK_THAT(d.error(), Catch::Contains("corrupt") && Catch::Contains("TTY"));
}

TEST_CASE("a corrupt header after valid frames keeps the earlier output", "[docker][frames]") {
    Collected c;
    auto d = collector(c);
    std::string s = frame(1, "good") + frame(9, "bad");
    CHECK_FALSE(d.feed(s));
    CHECK(c.out == "good");
    CHECK(d.frames() == 1);
    CHECK_THAT(d.error(), Catch::Contains("corrupt"));
}

TEST_CASE("a corrupt header split across feeds is still detected", "[docker][frames]") {
    Collected c;
    auto d = collector(c);
    std::string bad = frame(5, "abc");
    CHECK(d.feed(std::string_view(bad).substr(0, 4)));
    CHECK_FALSE(d.at_boundary());
    CHECK_FALSE(d.feed(std::string_view(bad).substr(4)));
    CHECK_THAT(d.error(), Catch::Contains("corrupt"));
}

TEST_CASE("a callback returning false stops the demuxer", "[docker][frames]") {
    std::vector<std::string> seen;
    FrameDemuxer d([&seen](StreamId, std::string_view data) {
        seen.emplace_back(data);
        return seen.size() < 2;
    });
    std::string s = frame(1, "one") + frame(2, "two") + frame(1, "three");
    CHECK_FALSE(d.feed(s));
    REQUIRE(seen.size() == 2);
    CHECK(seen[0] == "one");
    CHECK(seen[1] == "two");
    CHECK(d.error().empty()); // stopping is not corruption
}

TEST_CASE("at_boundary is true only between frames", "[docker][frames]") {
    Collected c;
    auto d = collector(c);
    CHECK(d.at_boundary());
    std::string f = frame(1, "abcdef");
    REQUIRE(d.feed(std::string_view(f).substr(0, 3))); // inside the header
    CHECK_FALSE(d.at_boundary());
    REQUIRE(d.feed(std::string_view(f).substr(3, 5))); // header complete, payload pending
    CHECK_FALSE(d.at_boundary());
    REQUIRE(d.feed(std::string_view(f).substr(8, 2))); // part of the payload
    CHECK_FALSE(d.at_boundary());
    CHECK(c.out == "ab");
    REQUIRE(d.feed(std::string_view(f).substr(10)));
    CHECK(d.at_boundary());
    CHECK(c.out == "abcdef");
}

TEST_CASE("a 1 MiB frame is passed on in pieces as it arrives", "[docker][frames]") {
    const std::size_t size = 1u << 20;
    std::string payload(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        payload[i] = static_cast<char>('a' + i % 26);
    const std::string s = frame(1, payload);

    std::string got;
    std::size_t largest_piece = 0;
    std::size_t calls = 0;
    FrameDemuxer d([&](StreamId stream, std::string_view data) {
        CHECK(stream == StreamId::stdout_);
        got.append(data);
        largest_piece = std::max(largest_piece, data.size());
        ++calls;
        return true;
    });

    const std::size_t chunk = 4096;
    std::string_view rest = s;
    bool saw_partial = false;
    while (!rest.empty()) {
        std::size_t n = std::min(chunk, rest.size());
        REQUIRE(d.feed(rest.substr(0, n)));
        rest.remove_prefix(n);
        // Output arrives before the whole frame has been fed: nothing is held back.
        if (!rest.empty() && !got.empty()) saw_partial = true;
        if (!rest.empty()) CHECK(got.size() == s.size() - rest.size() - 8);
    }
    CHECK(saw_partial);
    CHECK(got == payload);
    CHECK(largest_piece <= chunk);
    CHECK(calls > 200);
    CHECK(d.frames() == 1);
    CHECK(d.at_boundary());
}
