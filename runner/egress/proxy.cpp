#include "egress/proxy.hpp"

#include "egress/connection.hpp"
#include "egress/credentials.hpp"
#include "egress/net.hpp"

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace airlock::egress {

namespace {

// Open connections; serve() returns once the count is back to zero.
struct Tracker {
    std::mutex mutex;
    std::condition_variable idle;
    int active = 0;
};

bool transient_accept_error(int err) {
    return err == EINTR || err == EAGAIN || err == EWOULDBLOCK || err == ECONNABORTED ||
           err == EPROTO || err == EPERM;
}

// Out of descriptors or memory: wait a little (or for the stop) instead of spinning.
bool resource_accept_error(int err) {
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

// The listening socket with a client waiting (the two take turns), or -1 once the stop came.
int wait_for_listener(int listen_fd, int credential_fd, int stop_fd, bool& credential_first) {
    while (true) {
        pollfd fds[3] = {{stop_fd, POLLIN, 0}, {listen_fd, POLLIN, 0}, {credential_fd, POLLIN, 0}};
        const int n = ::poll(fds, credential_fd >= 0 ? 3 : 2, -1);
        if (n < 0 && errno != EINTR) return listen_fd; // let accept report it
        if (fds[0].revents) return -1;
        const bool proxy = fds[1].revents != 0;
        const bool cred = credential_fd >= 0 && fds[2].revents != 0;
        if (proxy && cred) {
            credential_first = !credential_first;
            return credential_first ? credential_fd : listen_fd;
        }
        if (proxy) return listen_fd;
        if (cred) return credential_fd;
    }
}

} // namespace

int serve(const Config& config, int listen_fd, LineSink on_line, std::stop_token stop) {
    return serve(config, listen_fd, -1, nullptr, std::move(on_line), std::move(stop));
}

int serve(const Config& config, int listen_fd, int credential_fd,
          std::shared_ptr<CredentialEndpoints> credentials, LineSink on_line,
          std::stop_token stop) {
    if (!credentials) credential_fd = -1;
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        on_line(error_line(std::string("pipe: ") + std::strerror(errno)));
        return 1;
    }
    Fd stop_write(pipe_fds[1]);
    auto state = std::make_shared<ProxyState>(config, std::move(on_line), Fd(pipe_fds[0]),
                                              std::move(credentials));
    auto tracker = std::make_shared<Tracker>();
    // The read end stays readable once written: every poll in every connection sees the stop.
    std::stop_callback on_stop(stop, [fd = stop_write.get()] {
        const char byte = 1;
        [[maybe_unused]] ssize_t ignored = ::write(fd, &byte, 1);
    });
    for (int fd : {listen_fd, credential_fd}) {
        const int flags = fd >= 0 ? ::fcntl(fd, F_GETFL) : -1;
        if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    }

    int status = 0;
    int retries = 0; // accept failures in a row for want of descriptors or memory
    bool turn = false;
    while (true) {
        const int ready = wait_for_listener(listen_fd, credential_fd, state->stop_fd(), turn);
        if (ready < 0) break;
        DecisionRecord record;
        record.time = std::chrono::system_clock::now();
        if (ready == credential_fd) record.listener = Listener::credential;
        Fd client(::accept4(ready, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!client.valid()) {
            const int err = errno;
            if (transient_accept_error(err)) continue;
            if (resource_accept_error(err)) {
                if (retries++ == 0)
                    std::fprintf(stderr, "airlock-egress: accept: %s; retrying every 100 ms\n",
                                 std::strerror(err));
                wait_for(-1, 0, state->stop_fd(), Clock::now() + std::chrono::milliseconds(100));
                continue;
            }
            state->emit(error_line(std::string("accept on the ") +
                                   (ready == credential_fd ? "credential " : "") +
                                   "listening socket failed: " + std::strerror(err)));
            status = 1;
            break;
        }
        if (retries > 0) {
            std::fprintf(stderr, "airlock-egress: accept works again after %d retries\n", retries);
            retries = 0;
        }

        {
            std::lock_guard lock(tracker->mutex);
            if (tracker->active >= config.max_connections) {
                refuse_busy(*state, std::move(client), record,
                            std::to_string(tracker->active) +
                                " connections are open, the most max_connections allows; "
                                "retry when some have finished");
                continue;
            }
            ++tracker->active;
        }
        // The thread owns what it needs through the shared pointers, and counts itself out
        // only after its line is written.
        auto client_fd = std::make_shared<Fd>(std::move(client));
        const bool started = spawn_detached(
            [state, tracker, client_fd, record] {
                try {
                    if (record.listener == Listener::credential)
                        handle_credential_connection(*state, std::move(*client_fd), record);
                    else
                        handle_connection(*state, std::move(*client_fd), record);
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "airlock-egress: connection failed: %s\n", e.what());
                }
                std::lock_guard lock(tracker->mutex);
                --tracker->active;
                tracker->idle.notify_all();
            },
            k_connection_stack);
        if (!started) {
            {
                std::lock_guard lock(tracker->mutex);
                --tracker->active;
            }
            refuse_busy(*state, std::move(*client_fd), record,
                        "the proxy could not start a thread for the connection; retry later");
        }
    }

    // Wake every connection (they poll the stop descriptor) and wait for their lines.
    const char byte = 1;
    [[maybe_unused]] ssize_t ignored = ::write(stop_write.get(), &byte, 1);
    std::unique_lock lock(tracker->mutex);
    tracker->idle.wait(lock, [&] { return tracker->active == 0; });
    return status;
}

} // namespace airlock::egress
