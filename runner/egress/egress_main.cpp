// airlock-egress: the allowlist HTTP/CONNECT proxy sidecar (docs/egress.md).
//
//   airlock-egress --config '{"mode":"allowlist","listen":"/run/airlock/egress.sock",...}'
//
// With credential endpoints configured, the first line on stdin carries their secrets.
// stdout carries one JSON object per line (ready, decision, error); stderr diagnostics.
// Exit 0 after SIGTERM/SIGINT, 2 for a bad command line or configuration, 1 for other failures.
#include "egress/config.hpp"
#include "egress/credentials.hpp"
#include "egress/lines.hpp"
#include "egress/net.hpp"
#include "egress/proxy.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace airlock::egress;

// One whole line per write, under a mutex: lines never interleave.
void write_line(const nlohmann::json& line) {
    static std::mutex mutex;
    const std::string text = render_line(line);
    std::lock_guard lock(mutex);
    std::string_view rest = text;
    while (!rest.empty()) {
        const ssize_t n = ::write(STDOUT_FILENO, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; // nobody is reading: nothing better to do
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
}

int fail(int status, const std::string& message) {
    std::fprintf(stderr, "airlock-egress: %s\n", message.c_str());
    write_line(error_line(message));
    return status;
}

std::optional<std::string> config_argument(int argc, char** argv) {
    if (argc == 3 && std::string_view(argv[1]) == "--config") return std::string(argv[2]);
    if (argc == 2 && std::string_view(argv[1]).substr(0, 9) == "--config=")
        return std::string(argv[1] + 9);
    return std::nullopt;
}

// SIGTERM and SIGINT are taken by a thread with sigwait, so no connection thread is
// interrupted; blocked before any thread starts, so every thread inherits the mask.
sigset_t block_stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    return set;
}

// Each connection holds two descriptors and, while resolving, two more: max_connections needs
// more than the usual soft limit of 1024.
void raise_descriptor_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == limit.rlim_max) return;
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
}

void stop_on_signal(sigset_t set, std::stop_source stop) {
    std::thread([set, stop]() mutable {
        int signal = 0;
        while (sigwait(&set, &signal) != 0) {
        }
        stop.request_stop();
    }).detach();
}

constexpr auto k_secrets_timeout = std::chrono::seconds(15);

// The credential endpoints from the secrets line on stdin and the CA file; nullptr when the
// configuration has none. Errors never quote a secret.
airlock::util::Result<std::shared_ptr<CredentialEndpoints>> credential_endpoints(const Config& c) {
    if (c.credentials.empty()) return std::shared_ptr<CredentialEndpoints>();
    auto line = read_secrets_line(STDIN_FILENO, k_secrets_timeout);
    if (!line) return line.error();
    auto secrets = parse_secrets_line(*line, c.credentials);
    wipe(*line);
    if (!secrets) return secrets.error();
    return CredentialEndpoints::make(c, *secrets);
}

} // namespace

int main(int argc, char** argv) {
    const auto text = config_argument(argc, argv);
    if (!text) return fail(2, "usage: airlock-egress --config JSON");
    auto config = parse_config(*text);
    if (!config) return fail(2, "--config: " + config.error().message);

    const sigset_t signals = block_stop_signals();
    raise_descriptor_limit();
    auto credentials = credential_endpoints(*config);
    if (!credentials) return fail(2, credentials.error().message);
    auto listener = listen_unix(config->listen);
    if (!listener) return fail(1, listener.error().message);
    airlock::util::Fd credential_listener;
    if (*credentials) {
        auto fd = listen_unix(config->credential_listen);
        if (!fd) return fail(1, fd.error().message);
        credential_listener = std::move(*fd);
    }

    std::stop_source stop;
    stop_on_signal(signals, stop);
    write_line(ready_line());
    const int status = serve(*config, listener->get(), credential_listener.get(),
                             std::move(*credentials), write_line, stop.get_token());
    ::unlink(config->listen.c_str());
    if (credential_listener.valid()) ::unlink(config->credential_listen.c_str());
    // Every decision line is out: airlock need not wait for the container to stop.
    write_line(nlohmann::json{{"type", "stopped"}, {"status", status}});
    return status;
}
