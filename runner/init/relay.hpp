// The loopback listeners of airlock-init: TCP connections on 127.0.0.1:PORT reach a unix socket
// (the egress proxy's), so a task with only `lo` can reach the proxy at a plain address. Each
// connection is either relayed (bytes copied both ways) or handed off (the accepted socket itself
// passed over the unix socket, docs/egress.md). Single-threaded around one epoll set: the
// container's pids limit counts threads.
#pragma once

#include "util/result.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace airlock::init {

// Bytes a connection holds per direction while the receiving side is slow.
inline constexpr std::size_t k_relay_buffer = 64 * 1024;

// How an accepted connection reaches the unix socket.
enum class Forwarding : std::uint8_t {
    relay,   // init copies the bytes both ways
    handoff, // init sends one byte 0x00 carrying the accepted socket (SCM_RIGHTS), then lets go
};

class Relay {
public:
    // Throws std::system_error when there is no epoll instance to be had (out of descriptors).
    Relay();
    ~Relay();
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    // Binds and listens on 127.0.0.1:port (0: the kernel picks a free port) and relays or hands
    // off what it accepts to the unix socket at socket_path. The bound port, or why it failed.
    util::Result<std::uint16_t> add(std::uint16_t port, std::string socket_path,
                                    Forwarding forwarding = Forwarding::relay);
    // `fd` (owned by the caller) is watched too: run_once returns true while it is readable.
    void watch(int fd);
    // Waits up to timeout_ms (-1: no limit) for traffic and moves what can move. True when a
    // watched fd is readable; the caller drains it (or stops).
    bool run_once(int timeout_ms);
    // Runs until `stop_fd` is readable.
    void run(int stop_fd);
    // Connections being relayed or not yet handed off; safe to read from another thread.
    std::size_t connections() const { return m_count.load(); }

private:
    struct Handle;
    struct Listener;
    struct Conn;
    struct Side;

    void set_events(Side& side, std::uint32_t events);
    void update(Conn& conn);
    void accept_from(Listener& listener);
    void start_connect(Conn& conn);
    void on_event(Side& side, std::uint32_t events);
    // Moves bytes from `from` to `to` until one side would block. False on an error.
    bool pump(Side& from, Side& to);
    // Sends the client's socket over the connected unix socket, then closes both (unless the
    // unix socket is full: then it waits for EPOLLOUT).
    void hand_off(Conn& conn);
    void close(Conn& conn);
    void wake_timers();
    int timer_timeout(int timeout_ms) const;

    int m_epoll = -1;
    std::vector<std::unique_ptr<Listener>> m_listeners;
    std::vector<std::unique_ptr<Conn>> m_conns;
    std::vector<std::unique_ptr<Conn>> m_closed; // freed after the current batch of events
    std::vector<std::unique_ptr<Handle>> m_watched;
    std::unique_ptr<char[]> m_scratch;
    std::size_t m_retrying = 0;   // connections waiting to retry their connect
    bool m_upstream_seen = false; // a connect to a unix socket succeeded once
    std::atomic<std::size_t> m_count{0};
};

} // namespace airlock::init
