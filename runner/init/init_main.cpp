// airlock-init: PID 1 of the agent container. Opens the loopback listeners for the egress proxy,
// starts the task, forwards signals to it, reaps every orphan, and exits with the task's status.
// Usage: airlock-init [--relay|--handoff PORT=UNIX_SOCKET_PATH]... -- COMMAND [ARGS...]
// --relay copies each connection's bytes to the unix socket; --handoff passes the accepted
// socket itself over it (SCM_RIGHTS, docs/egress.md), so the bytes skip init.
#include "init/relay.hpp"

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

// Exit codes of the shell convention: init itself failed, the command cannot run, not found.
constexpr int k_exit_init_failed = 125;
constexpr int k_exit_cannot_run = 126;
constexpr int k_exit_not_found = 127;

constexpr const char* k_usage =
    "usage: airlock-init [--relay|--handoff PORT=UNIX_SOCKET_PATH]... -- COMMAND [ARGS...]";

// Passed on to the task; SIGCHLD is ours.
constexpr int k_forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

using airlock::init::Forwarding;

struct RelaySpec {
    std::uint16_t port = 0;
    std::string socket_path;
    Forwarding forwarding = Forwarding::relay;
};

const char* option_of(Forwarding forwarding) {
    return forwarding == Forwarding::handoff ? "--handoff" : "--relay";
}

struct Options {
    std::vector<RelaySpec> relays;
    std::vector<char*> command; // null-terminated, for execvp
};

[[noreturn]] void fail(const std::string& message) {
    std::fprintf(stderr, "airlock-init: %s\n", message.c_str());
    std::exit(k_exit_init_failed);
}

RelaySpec parse_relay(Forwarding forwarding, std::string_view value) {
    const std::string option = option_of(forwarding);
    const auto bad = [&](const std::string& why) {
        fail(option + " \"" + std::string(value) + "\": " + why +
             " (use PORT=UNIX_SOCKET_PATH, e.g. " + option + " 3128=/run/airlock/egress.sock)");
    };
    const auto eq = value.find('=');
    if (eq == std::string_view::npos) bad("no '='");
    const std::string_view port = value.substr(0, eq);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos)
        bad("\"" + std::string(port) + "\" is not a port");
    const unsigned long number = std::stoul(std::string(port));
    if (number < 1 || number > 65535) bad("port " + std::string(port) + " is not in 1-65535");
    if (eq + 1 == value.size()) bad("no socket path");
    return {static_cast<std::uint16_t>(number), std::string(value.substr(eq + 1)), forwarding};
}

Options parse_args(int argc, char** argv) {
    Options opts;
    int i = 1;
    for (; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--") {
            ++i;
            break;
        }
        if (arg == "--help" || arg == "-h") {
            std::printf("%s\n", k_usage);
            std::exit(0);
        }
        RelaySpec relay;
        if (arg == "--relay" || arg == "--handoff") {
            const Forwarding forwarding =
                arg == "--relay" ? Forwarding::relay : Forwarding::handoff;
            if (i + 1 == argc) fail(std::string(arg) + " needs a value; " + k_usage);
            relay = parse_relay(forwarding, argv[++i]);
        } else if (arg.starts_with("--relay=")) {
            relay = parse_relay(Forwarding::relay, arg.substr(8));
        } else if (arg.starts_with("--handoff=")) {
            relay = parse_relay(Forwarding::handoff, arg.substr(10));
        } else if (arg.starts_with("-")) {
            fail("unknown option \"" + std::string(arg) + "\"; " + k_usage);
        } else {
            break; // the command, without "--"
        }
        for (const auto& other : opts.relays)
            if (other.port == relay.port)
                fail(std::string(option_of(relay.forwarding)) + " " + std::to_string(relay.port) +
                     " is given twice (one per port)");
        opts.relays.push_back(std::move(relay));
    }
    if (i == argc) fail(std::string("no command to run; ") + k_usage);
    opts.command.assign(argv + i, argv + argc);
    opts.command.push_back(nullptr);
    return opts;
}

// The forwarded signals and SIGCHLD arrive on the returned fd instead of interrupting us.
int take_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : k_forwarded)
        sigaddset(&set, sig);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0)
        fail(std::string("sigprocmask: ") + std::strerror(errno));
    const int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) fail(std::string("signalfd: ") + std::strerror(errno));
    // The relay sends with MSG_NOSIGNAL; this covers a closed stderr.
    std::signal(SIGPIPE, SIG_IGN);
    // Outside a container (tests), orphans of the task are still ours to reap.
    if (getpid() != 1) prctl(PR_SET_CHILD_SUBREAPER, 1);
    return fd;
}

void open_relays(airlock::init::Relay& relay, const std::vector<RelaySpec>& specs) {
    for (const auto& spec : specs) {
        auto port = relay.add(spec.port, spec.socket_path, spec.forwarding);
        if (!port) fail(port.error().message);
    }
}

// In the child: the task gets its own process group (and the terminal, if any, as tini does, so
// a terminal's ^C reaches it once), default signal handling, and the command.
[[noreturn]] void exec_command(const std::vector<char*>& command) {
    sigset_t ttou;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    sigprocmask(SIG_BLOCK, &ttou, nullptr);
    setpgid(0, 0);
    if (isatty(STDIN_FILENO)) tcsetpgrp(STDIN_FILENO, getpgrp());
    for (int sig = 1; sig < NSIG; ++sig)
        std::signal(sig, SIG_DFL); // fails harmlessly for SIGKILL, SIGSTOP and libc's own
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvp(command[0], command.data());
    const int err = errno;
    if (err == ENOENT) {
        std::fprintf(stderr, "airlock-init: %s: command not found\n", command[0]);
        _exit(k_exit_not_found);
    }
    std::fprintf(stderr, "airlock-init: %s: %s\n", command[0], std::strerror(err));
    _exit(k_exit_cannot_run);
}

pid_t start_command(const std::vector<char*>& command) {
    const pid_t pid = fork();
    if (pid < 0)
        fail(std::string("cannot start ") + command[0] + ": fork: " + std::strerror(errno));
    if (pid == 0) exec_command(command);
    return pid;
}

int exit_code_of(int status) {
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

// Relays or hands off connections and handles signals until the task exits; its exit code.
int serve(airlock::init::Relay& relay, int signal_fd, pid_t task) {
    relay.watch(signal_fd);
    for (;;) {
        if (!relay.run_once(-1)) continue;
        signalfd_siginfo infos[16];
        const ssize_t n = read(signal_fd, infos, sizeof infos);
        if (n <= 0) continue;
        for (std::size_t i = 0; i < static_cast<std::size_t>(n) / sizeof infos[0]; ++i) {
            const int sig = static_cast<int>(infos[i].ssi_signo);
            if (sig != SIGCHLD) {
                kill(task, sig);
                continue;
            }
            // SIGCHLDs merge: reap until none is left, orphans included.
            int status = 0;
            pid_t pid;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                if (pid == task) return exit_code_of(status);
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    const Options opts = parse_args(argc, argv);
    const int signal_fd = take_signals();
    try {
        airlock::init::Relay relay;
        open_relays(relay, opts.relays);
        const pid_t task = start_command(opts.command);
        return serve(relay, signal_fd, task);
    } catch (const std::exception& e) {
        fail(e.what());
    }
}
