#include "util/read_limited.hpp"

#include <algorithm>
#include <fstream>

namespace airlock::util {

ReadStatus read_limited(const std::filesystem::path& path, std::size_t limit, std::string& out) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return ReadStatus::unreadable;
    std::ifstream in(path, std::ios::binary);
    if (!in) return ReadStatus::unreadable;
    // Memory follows the file, not the limit: reports may be allowed hundreds of MiB and are
    // usually a few KiB. One byte past the limit tells "too large".
    out.clear();
    char buf[65536];
    while (out.size() <= limit) {
        const std::size_t want = std::min(sizeof buf, limit + 1 - out.size());
        in.read(buf, static_cast<std::streamsize>(want));
        if (in.bad()) return ReadStatus::unreadable;
        const auto got = static_cast<std::size_t>(in.gcount());
        out.append(buf, got);
        if (got < want) break;
    }
    return out.size() > limit ? ReadStatus::too_large : ReadStatus::ok;
}

} // namespace airlock::util
