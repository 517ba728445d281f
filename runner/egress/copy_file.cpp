#include "egress/copy_file.hpp"

#include "egress/fd.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace airlock::egress {

namespace {
util::Error io_error(const std::string& what) {
    return util::make_error(util::ErrorKind::io, what + ": " + std::strerror(errno));
}
} // namespace

util::Result<void> copy_file_atomically(const std::string& from, const std::string& to) {
    Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in.valid()) return io_error("copy_init: " + from);
    const std::string temp = to + ".tmp-" + std::to_string(::getpid());
    ::unlink(temp.c_str());
    Fd out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!out.valid()) return io_error("copy_init: " + temp);
    char buf[64 * 1024];
    while (true) {
        const ssize_t n = ::read(in.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const auto error = io_error("copy_init: reading " + from);
            ::unlink(temp.c_str());
            return error;
        }
        if (n == 0) break;
        for (ssize_t done = 0; done < n;) {
            const ssize_t w = ::write(out.get(), buf + done, static_cast<std::size_t>(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                const auto error = io_error("copy_init: writing " + temp);
                ::unlink(temp.c_str());
                return error;
            }
            done += w;
        }
    }
    if (::fchmod(out.get(), 0755) != 0 || ::close(out.release()) != 0) {
        const auto error = io_error("copy_init: " + temp);
        ::unlink(temp.c_str());
        return error;
    }
    if (::rename(temp.c_str(), to.c_str()) != 0) {
        const auto error = io_error("copy_init: renaming " + temp + " to " + to);
        ::unlink(temp.c_str());
        return error;
    }
    return {};
}

} // namespace airlock::egress
