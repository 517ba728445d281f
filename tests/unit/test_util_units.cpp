// Human sizes, durations, CPU and whole counts: parsing, error text, formatting.
#include "util/units.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

using namespace airlock::util;
using std::chrono::milliseconds;

namespace {

constexpr std::uint64_t k_kib = 1024;
constexpr std::uint64_t k_mib = 1024 * k_kib;
constexpr std::uint64_t k_gib = 1024 * k_mib;

} // namespace

TEST_CASE("parse_size accepts numbers with binary units", "[util][units]") {
    struct Case {
        const char* text;
        std::uint64_t bytes;
    };
    const Case cases[] = {
        {"123", 123},
        {"123b", 123},
        {"64k", 64 * k_kib},
        {"64K", 64 * k_kib},
        {"64kb", 64 * k_kib},
        {"512m", 512 * k_mib},
        {"512MiB", 512 * k_mib},
        {"2g", 2 * k_gib},
        {"2G", 2 * k_gib},
        {"1GiB", k_gib},
        {"1gb", k_gib},
        {"1.5g", k_gib + k_gib / 2},
        {"0.5k", 512},
        {"1t", 1024 * k_gib},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        auto r = parse_size(c.text, "--memory");
        REQUIRE(r.ok());
        CHECK(*r == c.bytes);
    }
}

TEST_CASE("parse_size rejects what is not a size", "[util][units]") {
    for (const char* text : {"12zz", "", "-1", "m", "1e3", " 1m", "1m ", "1 m", "1mm", "k1", ".",
                             "1..5m", "0x10", "1,5g"}) {
        INFO('"' << text << '"');
        auto r = parse_size(text, "--memory");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::invalid_input);
        CHECK_THAT(r.error().message, Catch::StartsWith("--memory: \""));
    }
}

TEST_CASE("parse_size error text names the field, the value and the fix", "[util][units]") {
    auto r = parse_size("12zz", "--memory");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message ==
          "--memory: \"12zz\" is not a size (use a number with an optional unit: 512m, 2g, 1GiB)");

    auto file = parse_size("lots", "task.json: /memory");
    REQUIRE_FALSE(file.ok());
    CHECK_THAT(file.error().message,
               Catch::StartsWith("task.json: /memory: \"lots\" is not a size"));
}

TEST_CASE("parse_size rejects zero and absurdly large sizes", "[util][units]") {
    auto zero = parse_size("0", "--memory");
    REQUIRE_FALSE(zero.ok());
    CHECK(zero.error().message == "--memory: \"0\" must be at least 1 byte");

    auto tiny = parse_size("0.1", "--memory");
    REQUIRE_FALSE(tiny.ok());

    auto huge = parse_size("99999999t", "--memory");
    REQUIRE_FALSE(huge.ok());
    CHECK(huge.error().message == "--memory: \"99999999t\" is too large");

    auto many_digits = parse_size(std::string(400, '9'), "--memory");
    REQUIRE_FALSE(many_digits.ok());
    CHECK(many_digits.error().kind == ErrorKind::invalid_input);
}

TEST_CASE("parse_duration accepts ms, s, m, h and bare seconds", "[util][units]") {
    struct Case {
        const char* text;
        milliseconds ms;
    };
    const Case cases[] = {
        {"500ms", milliseconds(500)},
        {"30s", milliseconds(30'000)},
        {"10m", milliseconds(600'000)},
        {"2h", milliseconds(7'200'000)},
        {"1h30m", milliseconds(5'400'000)},
        {"1m30s", milliseconds(90'000)},
        {"1h2m3s4ms", milliseconds(3'723'004)},
        {"1.5s", milliseconds(1'500)},
        {"1.5h", milliseconds(5'400'000)},
        {"90", milliseconds(90'000)},
        {"0.5", milliseconds(500)},
        {"10M", milliseconds(600'000)},
        {"1MS", milliseconds(1)},
        {"7d", milliseconds(604'800'000)},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        auto r = parse_duration(c.text, "--timeout");
        REQUIRE(r.ok());
        CHECK(*r == c.ms);
    }
}

TEST_CASE("parse_duration rejects what is not a duration", "[util][units]") {
    // "1h30" is ambiguous (30 minutes? seconds?): a bare number is only allowed on its own.
    for (const char* text :
         {"10x", "", "1h30", "m", "s", "-5s", "1w", "30 s", " 30s", "30s ", "1e3", "5mss", "h1"}) {
        INFO('"' << text << '"');
        auto r = parse_duration(text, "--timeout");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::invalid_input);
        CHECK_THAT(r.error().message, Catch::StartsWith("--timeout: \""));
    }
}

TEST_CASE("parse_duration error text", "[util][units]") {
    auto r = parse_duration("10x", "--timeout");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message ==
          "--timeout: \"10x\" is not a duration (use 500ms, 30s, 10m, 1h30m, 7d)");

    auto zero = parse_duration("0s", "--grace");
    REQUIRE_FALSE(zero.ok());
    CHECK(zero.error().message == "--grace: \"0s\" must be at least 1ms");

    auto sub_ms = parse_duration("0.4ms", "--grace");
    REQUIRE_FALSE(sub_ms.ok());

    auto long_one = parse_duration("999999999h", "--timeout");
    REQUIRE_FALSE(long_one.ok());
    CHECK(long_one.error().message == "--timeout: \"999999999h\" is too long");
}

TEST_CASE("parse_cpus gives nano-CPUs", "[util][units]") {
    struct Case {
        const char* text;
        std::int64_t nano;
    };
    const Case cases[] = {
        {"1", 1'000'000'000}, {"0.5", 500'000'000},   {"2.25", 2'250'000'000},
        {"0.01", 10'000'000}, {"16", 16'000'000'000}, {"1024", 1'024'000'000'000},
        {".5", 500'000'000},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        auto r = parse_cpus(c.text, "--cpus");
        REQUIRE(r.ok());
        CHECK(*r == c.nano);
    }
}

TEST_CASE("parse_cpus rejects bad counts with the reason", "[util][units]") {
    for (const char* text : {"", "abc", "1.5x", "-1", "1 ", "2c"}) {
        INFO('"' << text << '"');
        auto r = parse_cpus(text, "--cpus");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message ==
              std::string("--cpus: \"") + text + "\" is not a CPU count (use 1, 0.5, 2.25)");
    }
    auto zero = parse_cpus("0", "--cpus");
    REQUIRE_FALSE(zero.ok());
    CHECK(zero.error().message == "--cpus: \"0\" must be at least 0.01");

    auto many = parse_cpus("1025", "--cpus");
    REQUIRE_FALSE(many.ok());
    CHECK(many.error().message == "--cpus: \"1025\" is more than 1024 CPUs");
}

TEST_CASE("parse_count accepts positive whole numbers up to the maximum", "[util][units]") {
    auto r = parse_count("256", "--pids", 1'000'000);
    REQUIRE(r.ok());
    CHECK(*r == 256);

    auto at_max = parse_count("1000000", "--pids", 1'000'000);
    REQUIRE(at_max.ok());
    CHECK(*at_max == 1'000'000);

    auto one = parse_count("1", "--pids", 1);
    REQUIRE(one.ok());
    CHECK(*one == 1);
}

TEST_CASE("parse_count rejects zero, signs, fractions and too-large values", "[util][units]") {
    auto zero = parse_count("0", "--pids", 100);
    REQUIRE_FALSE(zero.ok());
    CHECK(zero.error().message == "--pids: \"0\" must be at least 1");

    auto over = parse_count("101", "--pids", 100);
    REQUIRE_FALSE(over.ok());
    CHECK(over.error().message == "--pids: \"101\" is more than 100");

    // No overflow on a long run of digits: the maximum is checked while reading.
    auto huge = parse_count(std::string(40, '9'), "--pids", 1'000'000);
    REQUIRE_FALSE(huge.ok());
    CHECK_THAT(huge.error().message, Catch::EndsWith("is more than 1000000"));

    for (const char* text : {"", "-1", "+1", "1.5", "12a", " 1", "1e3"}) {
        INFO('"' << text << '"');
        auto r = parse_count(text, "--pids", 100);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::invalid_input);
        CHECK(r.error().message == std::string("--pids: \"") + text + "\" is not a whole number");
    }
}

TEST_CASE("format_size uses binary units with one decimal", "[util][units]") {
    CHECK(format_size(0) == "0 B");
    CHECK(format_size(1) == "1 B");
    CHECK(format_size(1023) == "1023 B");
    CHECK(format_size(1024) == "1.0 KiB");
    CHECK(format_size(1536) == "1.5 KiB");
    CHECK(format_size(64 * k_mib) == "64.0 MiB");
    CHECK(format_size(2 * k_gib) == "2.0 GiB");
    CHECK(format_size(3 * 1024 * k_gib) == "3.0 TiB");
    CHECK(format_size(2048 * 1024 * k_gib) == "2048.0 TiB"); // TiB is the largest unit
}

TEST_CASE("format_duration picks ms, seconds, or minutes and seconds", "[util][units]") {
    CHECK(format_duration(milliseconds(0)) == "0ms");
    CHECK(format_duration(milliseconds(500)) == "500ms");
    CHECK(format_duration(milliseconds(999)) == "999ms");
    CHECK(format_duration(milliseconds(1000)) == "1.0s");
    CHECK(format_duration(milliseconds(1500)) == "1.5s");
    CHECK(format_duration(milliseconds(30'000)) == "30.0s");
    CHECK(format_duration(milliseconds(60'000)) == "1m00s");
    CHECK(format_duration(milliseconds(90'000)) == "1m30s");
    CHECK(format_duration(milliseconds(5'400'000)) == "90m00s");
}

TEST_CASE("parsed sizes and durations format back to what was written", "[util][units]") {
    CHECK(format_size(*parse_size("512m", "--memory")) == "512.0 MiB");
    CHECK(format_size(*parse_size("2g", "--memory")) == "2.0 GiB");
    CHECK(format_duration(*parse_duration("1m30s", "--timeout")) == "1m30s");
    CHECK(format_duration(*parse_duration("500ms", "--timeout")) == "500ms");
}
