// Parsing of human sizes ("512m", "2GiB"), durations ("90s", "1h30m") and CPU counts ("1.5").
#pragma once

#include "util/result.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace airlock::util {

// Bytes from "123", "64k", "512m", "2g", "1GiB", "1.5g" (binary multiples). `field` names the
// flag or key in the error message.
Result<std::uint64_t> parse_size(std::string_view text, std::string_view field);
// Milliseconds from "500ms", "30s", "10m", "1h30m", "2h", or a bare number of seconds.
Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view field);
// Nano-CPUs from "1", "0.5", "2.25".
Result<std::int64_t> parse_cpus(std::string_view text, std::string_view field);
// Positive integer, at most `max`.
Result<std::int64_t> parse_count(std::string_view text, std::string_view field, std::int64_t max);

std::string format_size(std::uint64_t bytes);
std::string format_duration(std::chrono::milliseconds ms);

} // namespace airlock::util
