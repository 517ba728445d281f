// Reading a file a person named, without trusting its size: /dev/zero or a huge file must end
// in an error, not in memory exhaustion.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

namespace airlock::util {

enum class ReadStatus { ok, unreadable, too_large };

// Reads at most `limit` bytes; too_large when there is more.
ReadStatus read_limited(const std::filesystem::path& path, std::size_t limit, std::string& out);

} // namespace airlock::util
