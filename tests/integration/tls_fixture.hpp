// A mutual-TLS front for the local engine, all on loopback: a throw-away PKI made with the
// openssl CLI, and socat terminating TLS on 127.0.0.1 (client certificates required) and
// forwarding to the engine's unix socket. The engine itself is not touched.
//
// socat 1.7.4 limitation: it sets no TLS session id context, so with verify=1 OpenSSL refuses a
// client that resumes a session ("SSL_accept(): ... session id context uninitialized"). curl
// resumes on a pooled handle's second connection, which airlock opens only after a transfer was
// cut short (interrupt); normal runs use one connection per handle. dockerd (Go) resumes fine.
#pragma once

#include "harness.hpp"

#include <filesystem>
#include <string>
#include <sys/types.h>
#include <vector>

namespace airlock::test {

// socat and openssl on PATH? With CI=true a missing tool fails the test; elsewhere the caller
// skips (returns false) with a warning.
bool tls_tools_available();

// The unix socket of the engine the harness uses, or empty (with a warning) when the harness
// engine is not a local unix socket, which socat could not front.
std::string local_engine_socket();

// A child process in its own process group, under a keeper process that leads the group.
// The destructor kills the whole group (keeper, process and everything it forked), whatever
// state it is in. Should this test process die without unwinding (Ctrl-C, SIGKILL), the keeper
// sees its lifeline pipe close and kills the group after `orphan_grace_seconds`, leaving the
// airlock child that was mid-run (and got the same Ctrl-C) time to clean up through it.
class ProcessGroup {
public:
    ProcessGroup() = default;
    ProcessGroup(const ProcessGroup&) = delete;
    ProcessGroup& operator=(const ProcessGroup&) = delete;
    ~ProcessGroup() { stop(); }
    // Starts argv[0] (looked up on PATH) with stdin from /dev/null and stdout+stderr to log.
    void start(const std::vector<std::string>& argv, const std::filesystem::path& log,
               int orphan_grace_seconds = 30);
    // Still running? False once the process has exited (the keeper then exits too).
    bool running();
    void stop();

private:
    pid_t m_keeper = -1; // also the process group id
    int m_lifeline = -1; // write end; the keeper reads EOF when it closes
    bool m_reaped = false;
};

class TlsProxy {
public:
    // Makes the PKI and starts socat; REQUIREs (throws) on failure, socat is then stopped.
    explicit TlsProxy(const std::string& engine_socket);
    int port() const { return m_port; }
    // DOCKER_CERT_PATH directories (ca.pem, cert.pem, key.pem):
    // good: the right CA, a client certificate the server trusts.
    std::filesystem::path good_certs() const { return m_dir.path() / "good"; }
    // wrong_ca: an unrelated CA (the server's certificate does not verify), good client cert.
    std::filesystem::path wrong_ca_certs() const { return m_dir.path() / "wrong-ca"; }
    // rogue_client: the right CA, but a client certificate from the unrelated CA.
    std::filesystem::path rogue_client_certs() const { return m_dir.path() / "rogue-client"; }
    // DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH for run_airlock.
    std::vector<std::string> env(const std::filesystem::path& cert_dir) const;
    std::string docker_host() const { return "tcp://127.0.0.1:" + std::to_string(m_port); }
    // What socat logged so far (-d -d: one line per accepted connection, TLS errors).
    std::string log() const;

private:
    TempDir m_dir;
    int m_port = 0;
    ProcessGroup m_socat;
};

} // namespace airlock::test

// Skips the rest of a test when socat/openssl are missing or the engine is not a local socket;
// missing tools fail the test with CI=true.
#define REQUIRE_TLS_PROXY_TOOLS(socket_var)                                                        \
    if (!airlock::test::tls_tools_available()) return;                                             \
    const std::string socket_var = airlock::test::local_engine_socket();                           \
    if (socket_var.empty()) return
