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

// A pipe (both ends close-on-exec, 1 MiB of buffer where the kernel allows) whose ends close
// when it is destroyed or when asked; streams a tar between a producer thread and the engine.
struct Pipe {
    int rd = -1, wr = -1;
    Pipe();
    ~Pipe();
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
    void close_rd();
    void close_wr();
    bool ok() const { return rd >= 0 && wr >= 0; }
};

// Writes all of `data`, retrying on EINTR and short writes and waiting when the descriptor is
// non-blocking. False (errno set) on any other failure.
bool write_all(int fd, std::string_view data);

} // namespace airlock::util
