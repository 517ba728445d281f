#include "util/fd.hpp"

#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace airlock::util {

Fd::~Fd() {
    if (m_fd >= 0) ::close(m_fd);
}

Fd& Fd::operator=(Fd&& other) noexcept {
    if (this != &other) {
        if (m_fd >= 0) ::close(m_fd);
        m_fd = other.release();
    }
    return *this;
}

Pipe::Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) {
        rd = fds[0];
        wr = fds[1];
        ::fcntl(wr, F_SETPIPE_SZ, 1 << 20); // a hint: the default 64 KiB if refused
    }
}

Pipe::~Pipe() {
    close_rd();
    close_wr();
}

void Pipe::close_rd() {
    if (rd >= 0) ::close(rd);
    rd = -1;
}

void Pipe::close_wr() {
    if (wr >= 0) ::close(wr);
    wr = -1;
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                pollfd pfd{fd, POLLOUT, 0};
                ::poll(&pfd, 1, -1);
                continue;
            }
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

} // namespace airlock::util
