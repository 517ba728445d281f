#include "audit/redact_file.hpp"

#include "util/fd.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace airlock::audit {

namespace {

constexpr std::size_t k_chunk = 1 << 20;

util::Error io_error(const std::filesystem::path& p, const char* what) {
    return util::make_error(util::ErrorKind::io,
                            p.string() + ": cannot " + what + " (" + std::strerror(errno) + ")");
}

using util::Fd;

// Whether any secret form occurs in the file, reading it once in chunks.
util::Result<bool> contains_secret(int fd, const std::filesystem::path& p, const Redactor& r) {
    std::string buf;
    std::string chunk(k_chunk, '\0');
    const std::size_t keep = r.max_pattern() > 0 ? r.max_pattern() - 1 : 0;
    while (true) {
        ssize_t n = ::read(fd, chunk.data(), chunk.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return io_error(p, "read");
        const bool end = n == 0;
        buf.append(chunk.data(), static_cast<std::size_t>(n));
        const std::size_t limit = end ? buf.size() : (buf.size() > keep ? buf.size() - keep : 0);
        if (limit > 0 && r.find(buf, 0, limit)) return true;
        if (end) return false;
        buf.erase(0, limit);
    }
}

} // namespace

util::Result<bool> redact_file(const std::filesystem::path& file, const Redactor& redactor) {
    if (redactor.empty()) return false;
    Fd in(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (in.get() < 0) return io_error(file, "open");
    auto found = contains_secret(in.get(), file, redactor);
    if (!found || !*found) return found;
    if (::lseek(in.get(), 0, SEEK_SET) < 0) return io_error(file, "seek");
    struct stat st {};
    if (::fstat(in.get(), &st) != 0) return io_error(file, "stat");
    std::filesystem::path tmp = file;
    tmp += ".airlock-redact";
    Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  st.st_mode & 0777));
    if (out.get() < 0) return io_error(tmp, "create");
    bool write_failed = false;
    RedactStream stream(redactor, [&](std::string_view piece) {
        if (!write_failed && !util::write_all(out.get(), piece)) write_failed = true;
    });
    std::string chunk(k_chunk, '\0');
    while (!write_failed) {
        ssize_t n = ::read(in.get(), chunk.data(), chunk.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ::unlink(tmp.c_str());
            return io_error(file, "read");
        }
        if (n == 0) break;
        stream.write(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
    }
    stream.finish();
    if (write_failed) {
        auto e = io_error(tmp, "write");
        ::unlink(tmp.c_str());
        return e;
    }
    if (::rename(tmp.c_str(), file.c_str()) != 0) {
        auto e = io_error(file, "replace");
        ::unlink(tmp.c_str());
        return e;
    }
    return true;
}

util::Result<std::vector<std::string>> redact_tree(const std::filesystem::path& dir,
                                                   const Redactor& redactor) {
    std::vector<std::string> hits;
    if (redactor.empty()) return hits;
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) return hits;
    std::filesystem::recursive_directory_iterator it(dir, ec), end;
    if (ec)
        return util::make_error(util::ErrorKind::io,
                                dir.string() + ": cannot list (" + ec.message() + ")");
    for (; it != end; it.increment(ec)) {
        if (ec)
            return util::make_error(util::ErrorKind::io,
                                    dir.string() + ": cannot list (" + ec.message() + ")");
        if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
        auto r = redact_file(it->path(), redactor);
        if (!r) return r.error();
        if (*r) hits.push_back(std::filesystem::relative(it->path(), dir).string());
    }
    return hits;
}

} // namespace airlock::audit
