#include "tls_fixture.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <time.h>
#include <unistd.h>

namespace airlock::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

bool on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
    std::string dir;
    while (std::getline(ss, dir, ':'))
        if (!dir.empty() && ::access((fs::path(dir) / name).c_str(), X_OK) == 0) return true;
    return false;
}

std::vector<char*> c_argv(std::vector<std::string>& argv) {
    std::vector<char*> out;
    for (auto& a : argv)
        out.push_back(a.data());
    out.push_back(nullptr);
    return out;
}

// Runs a tool to completion (stdout+stderr to log); REQUIREs exit 0.
void run_tool(std::vector<std::string> argv, const fs::path& cwd, const fs::path& log) {
    auto cargv = c_argv(argv);
    pid_t pid = ::fork();
    if (pid == 0) {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        int in = ::open("/dev/null", O_RDONLY);
        if (fd < 0 || in < 0 || ::chdir(cwd.c_str()) != 0) _exit(126);
        ::dup2(in, 0);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::execvp(cargv[0], cargv.data());
        _exit(127);
    }
    REQUIRE(pid > 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    std::string cmd;
    for (const auto& a : argv)
        cmd += (cmd.empty() ? "" : " ") + a;
    INFO("command: " << cmd << "\noutput:\n" << read_file(log));
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
}

// A port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0).
int free_loopback_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
              ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
    ::close(fd);
    REQUIRE(ok);
    return ntohs(a.sin_port);
}

bool accepts_connections(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

// Extensions for the throw-away PKI; EC P-256 keys keep generation fast.
const char* const k_openssl_cnf = R"([req]
distinguished_name = dn
prompt = no
[dn]
CN = airlock-test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
)";

const std::vector<std::string> k_ec_key = {"-newkey", "ec", "-pkeyopt",
                                           "ec_paramgen_curve:prime256v1", "-nodes"};

void make_ca(const fs::path& pki, const std::string& name, const std::string& cn) {
    std::vector<std::string> a = {"openssl", "req", "-x509", "-config", "openssl.cnf"};
    a.insert(a.end(), k_ec_key.begin(), k_ec_key.end());
    a.insert(a.end(), {"-keyout", name + "-key.pem", "-out", name + ".pem", "-days", "2", "-subj",
                       "/CN=" + cn, "-extensions", "ca"});
    run_tool(a, pki, pki / "openssl.log");
}

void make_leaf(const fs::path& pki, const std::string& name, const std::string& cn,
               const std::string& ca, const std::string& section, int serial) {
    std::vector<std::string> a = {"openssl", "req", "-new", "-config", "openssl.cnf"};
    a.insert(a.end(), k_ec_key.begin(), k_ec_key.end());
    a.insert(a.end(), {"-keyout", name + "-key.pem", "-out", name + ".csr", "-subj", "/CN=" + cn});
    run_tool(a, pki, pki / "openssl.log");
    run_tool({"openssl", "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey",
              ca + "-key.pem", "-set_serial", std::to_string(serial), "-days", "2", "-extfile",
              "openssl.cnf", "-extensions", section, "-out", name + ".pem"},
             pki, pki / "openssl.log");
}

void cert_dir(const fs::path& dir, const fs::path& ca, const fs::path& cert, const fs::path& key) {
    fs::create_directories(dir);
    fs::copy_file(ca, dir / "ca.pem");
    fs::copy_file(cert, dir / "cert.pem");
    fs::copy_file(key, dir / "key.pem");
    fs::permissions(dir / "key.pem", fs::perms::owner_read | fs::perms::owner_write);
}

} // namespace

bool tls_tools_available() {
    std::string missing;
    for (const char* tool : {"socat", "openssl"})
        if (!on_path(tool)) missing += std::string(missing.empty() ? "" : ", ") + tool;
    if (missing.empty()) return true;
    std::string msg = "the TLS tests need socat and openssl; missing: " + missing +
                      " (apt-get install -y socat openssl, or ci/setup.sh deps)";
    const char* ci = std::getenv("CI");
    if (ci && std::string(ci) == "true") FAIL(msg << "; CI=true: the TLS tests must run");
    WARN(msg << "; skipping this test (CI=true makes it fail)");
    return false;
}

std::string local_engine_socket() {
    const auto& ep = client().endpoint();
    if (ep.kind == docker::Endpoint::Kind::unix_socket) return ep.socket_path;
    WARN("the test engine is " << ep.display()
                               << ", not a local unix socket socat could front; skipping this "
                                  "TLS test (unset DOCKER_HOST to run it)");
    return {};
}

namespace {

void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
    ::nanosleep(&ts, nullptr);
}

// The keeper, after stopping: SIGTERM the rest of the group (it ignores SIGTERM itself), reap
// every process that exits (it is their subreaper, so socat's forks too: no zombies left for
// init), SIGKILL the group if that takes more than 2 s.
[[noreturn]] void keeper_finish(int code) {
    ::kill(0, SIGTERM);
    for (int i = 0; i < 200; ++i) {
        pid_t r;
        while ((r = ::waitpid(-1, nullptr, WNOHANG)) > 0) {
        }
        if (r < 0 && errno == ECHILD) _exit(code);
        nap_ms(10);
    }
    ::kill(0, SIGKILL); // the whole group, this keeper included
    _exit(137);
}

// The keeper, in the forked child: leads the new process group, starts the process, then waits
// for it to exit (and exits with it) or for the lifeline to close (the test process is gone:
// wait out the grace, then stop the group). Only async-signal-safe calls from here on.
[[noreturn]] void keeper_main(std::vector<char*>& argv, const char* log, int lifeline,
                              int orphan_grace_seconds) {
    ::setpgid(0, 0);
    // Catch's fatal-signal handlers came along with fork: a signal here would run them and
    // report a failure from this copy of the test process.
    for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGSEGV, SIGABRT, SIGILL, SIGFPE, SIGBUS})
        ::signal(sig, SIG_DFL);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t child = ::fork();
    if (child < 0) _exit(126);
    if (child == 0) {
        ::close(lifeline);
        int fd = ::open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || in < 0) _exit(126);
        ::dup2(in, 0);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::execvp(argv[0], argv.data());
        _exit(127);
    }
    // stop() sends SIGTERM to the group: the process dies of it, the keeper sees that and
    // finishes (a SIGTERM before this line just kills the keeper; stop() copes).
    ::signal(SIGTERM, SIG_IGN);
    for (;;) {
        int status = 0;
        if (::waitpid(child, &status, WNOHANG) == child)
            keeper_finish(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        struct pollfd p = {lifeline, POLLIN, 0};
        if (::poll(&p, 1, 100) > 0) {
            char c;
            if (::read(lifeline, &c, 1) <= 0) break; // EOF: the test process is gone
        }
    }
    for (int i = 0; i < orphan_grace_seconds * 10; ++i) {
        if (::waitpid(child, nullptr, WNOHANG) == child) break;
        nap_ms(100);
    }
    keeper_finish(137);
}

} // namespace

void ProcessGroup::start(const std::vector<std::string>& argv, const fs::path& log,
                         int orphan_grace_seconds) {
    REQUIRE(m_keeper < 0);
    std::vector<std::string> copy = argv;
    auto cargv = c_argv(copy);
    std::string log_path = log.string();
    int pipefd[2];
    REQUIRE(::pipe2(pipefd, O_CLOEXEC) == 0);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(pipefd[1]);
        keeper_main(cargv, log_path.c_str(), pipefd[0], orphan_grace_seconds);
    }
    ::close(pipefd[0]);
    if (pid < 0) ::close(pipefd[1]);
    REQUIRE(pid > 0);
    ::setpgid(pid, pid); // both sides, so the group exists before either goes on
    m_keeper = pid;
    m_lifeline = pipefd[1];
    m_reaped = false;
}

bool ProcessGroup::running() {
    if (m_keeper < 0 || m_reaped) return false;
    int status = 0;
    pid_t r = ::waitpid(m_keeper, &status, WNOHANG);
    if (r == m_keeper || (r < 0 && errno == ECHILD)) m_reaped = true;
    return !m_reaped;
}

void ProcessGroup::stop() {
    if (m_keeper < 0) return;
    ::kill(-m_keeper, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + 3s;
    while (running() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    // The keeper reaps the group and exits; should it not within 3 s, SIGKILL everything.
    ::kill(-m_keeper, SIGKILL);
    if (!m_reaped) {
        int status = 0;
        ::waitpid(m_keeper, &status, 0);
        m_reaped = true;
    }
    ::close(m_lifeline);
    m_lifeline = -1;
    m_keeper = -1;
}

TlsProxy::TlsProxy(const std::string& engine_socket) {
    const fs::path pki = m_dir.path() / "pki";
    fs::create_directories(pki);
    write_file(pki / "openssl.cnf", k_openssl_cnf);
    make_ca(pki, "ca", "airlock-test-ca");
    make_leaf(pki, "server", "127.0.0.1", "ca", "server", 2);
    make_leaf(pki, "client", "airlock-test-client", "ca", "client", 3);
    make_ca(pki, "other-ca", "airlock-test-unrelated-ca");
    make_leaf(pki, "rogue", "airlock-test-client", "other-ca", "client", 4);
    cert_dir(good_certs(), pki / "ca.pem", pki / "client.pem", pki / "client-key.pem");
    cert_dir(wrong_ca_certs(), pki / "other-ca.pem", pki / "client.pem", pki / "client-key.pem");
    cert_dir(rogue_client_certs(), pki / "ca.pem", pki / "rogue.pem", pki / "rogue-key.pem");

    // Pick a free port, start socat on it; should another process take the port in between
    // (socat exits: address in use), try again with a new one.
    const fs::path log_file = m_dir.path() / "socat.log";
    for (int attempt = 0; attempt < 5; ++attempt) {
        std::error_code ec;
        fs::remove(log_file, ec);
        m_port = free_loopback_port();
        std::string listen =
            "OPENSSL-LISTEN:" + std::to_string(m_port) +
            ",bind=127.0.0.1,reuseaddr,fork,cert=" + (pki / "server.pem").string() +
            ",key=" + (pki / "server-key.pem").string() + ",cafile=" + (pki / "ca.pem").string() +
            ",verify=1";
        m_socat.start({"socat", "-d", "-d", listen, "UNIX-CONNECT:" + engine_socket}, log_file);
        auto deadline = std::chrono::steady_clock::now() + 10s;
        bool ready = false;
        while (!ready && m_socat.running() && std::chrono::steady_clock::now() < deadline) {
            ready = accepts_connections(m_port);
            if (!ready) std::this_thread::sleep_for(25ms);
        }
        if (ready && m_socat.running()) return;
        bool exited = !m_socat.running();
        m_socat.stop();
        INFO("socat log:\n" << log());
        REQUIRE(exited); // still running but not accepting after 10 s
        if (log().find("Address already in use") == std::string::npos)
            FAIL("socat exited before accepting connections on 127.0.0.1:" << m_port);
    }
    FAIL("socat found no free port on 127.0.0.1 in 5 attempts");
}

std::vector<std::string> TlsProxy::env(const fs::path& cert_dir) const {
    return {"DOCKER_HOST=" + docker_host(), "DOCKER_TLS_VERIFY=1",
            "DOCKER_CERT_PATH=" + cert_dir.string()};
}

std::string TlsProxy::log() const {
    return read_file(m_dir.path() / "socat.log");
}

} // namespace airlock::test
