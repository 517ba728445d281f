#include "util/read_limited.hpp"

#include <fstream>

namespace airlock::util {

ReadStatus read_limited(const std::filesystem::path& path, std::size_t limit, std::string& out) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return ReadStatus::unreadable;
    std::ifstream in(path, std::ios::binary);
    if (!in) return ReadStatus::unreadable;
    out.assign(limit + 1, '\0');
    in.read(out.data(), static_cast<std::streamsize>(out.size()));
    if (in.bad()) return ReadStatus::unreadable;
    out.resize(static_cast<std::size_t>(in.gcount()));
    return out.size() > limit ? ReadStatus::too_large : ReadStatus::ok;
}

} // namespace airlock::util
