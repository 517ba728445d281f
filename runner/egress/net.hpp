// The few socket operations the proxy needs, each bounded by a deadline and a stop descriptor
// (readable once the proxy is told to stop), so no thread outlives a shutdown by much.
#pragma once

#include "egress/address.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::egress {

using util::Fd;

using Clock = std::chrono::steady_clock;

#if defined(__SANITIZE_ADDRESS__)
#define AIRLOCK_EGRESS_BIG_STACKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AIRLOCK_EGRESS_BIG_STACKS 1
#endif
#endif
#ifdef AIRLOCK_EGRESS_BIG_STACKS
inline constexpr std::size_t k_connection_stack = 2 * 1024 * 1024; // ASan's frames are larger
inline constexpr std::size_t k_resolver_stack = 4 * 1024 * 1024;
#else
inline constexpr std::size_t k_connection_stack = 256 * 1024;
inline constexpr std::size_t k_resolver_stack = 512 * 1024; // glibc's resolver uses 64 KiB frames
#endif

enum class Wait { ready, timeout, stopped };
// Waits for `events` on `fd`, for `stop_fd` to be readable, or for the deadline.
Wait wait_for(int fd, short events, int stop_fd, std::optional<Clock::time_point> deadline);

enum class Io { done, timeout, stopped, failed };
// Sends all of `data` on a non-blocking socket (never raising SIGPIPE).
Io send_all(int fd, std::string_view data, int stop_fd, Clock::time_point deadline);

// Runs `fn` on a detached thread with `stack_size` bytes of stack; false when none could start.
bool spawn_detached(std::function<void()> fn, std::size_t stack_size);

struct Resolution {
    std::vector<IpAddress> addresses; // in getaddrinfo's order, without repeats
    std::string error;                // set when resolution failed
};
// getaddrinfo(host) on a helper thread, so that a stop does not wait for a slow DNS server;
// nullopt when the stop came first.
std::optional<Resolution> resolve(const std::string& host, int stop_fd);

// A non-blocking TCP connection to address:port. Errors: cancelled (stopped), timeout, or
// unreachable with the system's message.
util::Result<Fd> connect_to(const IpAddress& address, std::uint16_t port, int stop_fd,
                            Clock::time_point deadline);

// The first byte of a connection on the unix socket. airlock-init's handoff (docs/egress.md) is
// one byte 0x00 carrying the client's TCP socket as SCM_RIGHTS; any other first byte starts a
// request sent on the unix socket itself.
struct Handoff {
    enum class Kind {
        none,      // EOF or an error before any byte
        stopped,   // the proxy is stopping
        timeout,   // no byte by the deadline
        byte,      // `byte` begins the request; descriptors that came with it are closed
        socket,    // `socket` is the client: a connected TCP socket, made non-blocking
        malformed, // 0x00 without exactly one TCP socket; everything received is closed
    };
    Kind kind = Kind::none;
    char byte = 0;
    Fd socket;
    std::string problem; // malformed: what came instead, one sentence
};
// Reads the first byte from `fd` (trying once before waiting, so a past deadline still takes a
// byte already there). Never keeps a descriptor the peer sent unless it is the handed-off client.
Handoff receive_handoff(int fd, int stop_fd, Clock::time_point deadline);

// A listening unix socket at `path`, mode 0666, replacing a stale socket left there.
util::Result<Fd> listen_unix(const std::string& path);

} // namespace airlock::egress
