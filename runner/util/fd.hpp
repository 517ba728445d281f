// File descriptors: an owner that closes, and a write that finishes.
#pragma once

#include <string_view>
#include <utility>

namespace airlock::util {

// Owns a file descriptor; closes it when destroyed.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : m_fd(fd) {}
    ~Fd();
    Fd(Fd&& other) noexcept : m_fd(other.release()) {}
    Fd& operator=(Fd&& other) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;

    int get() const { return m_fd; }
    bool valid() const { return m_fd >= 0; }
    int release() { return std::exchange(m_fd, -1); }
    void reset() { *this = Fd(); } // closes now

private:
    int m_fd = -1;
};

// Writes all of `data`, retrying on EINTR and short writes and waiting when the descriptor is
// non-blocking. False (errno set) on any other failure.
bool write_all(int fd, std::string_view data);

} // namespace airlock::util
