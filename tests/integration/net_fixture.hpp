// The network tests' own world: a docker network with HTTP(S) test servers on it (aliases
// allowed.test, denied.test; metadata.test on a link-local network), a test CA whose certificate
// they serve, and helpers to run a script under airlock with the proxy on that network. Nothing
// here sends traffic to any address but the containers it starts.
#pragma once

#include "harness.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace airlock::test {

inline constexpr const char* k_test_label = "io.airlock.test";

std::string slurp(const std::filesystem::path& p);

// One test server: its container, its address on the network.
struct Server {
    std::string id, name, ip;
};

// Made once per test process and removed at exit. Everything carries io.airlock.test, so a
// crashed earlier run's leftovers go first.
class TestNet {
public:
    static TestNet& get();
    TestNet(const TestNet&) = delete;
    TestNet& operator=(const TestNet&) = delete;
    ~TestNet();

    std::string name, subnet;
    std::string ll_name, ll_subnet; // a link-local network (169.254.77.0/24) of our own
    std::filesystem::path ca_pem;
    std::filesystem::path other_ca_pem; // signed none of the servers' certificates
    Server allowed, denied, metadata;

    // Connections a server has accepted so far.
    static int connections(const Server& s);
    // What a server printed on stdout so far (one JSON line per connection and request).
    static std::string server_output(const Server& s);

private:
    TempDir m_pki;
    std::string m_image;
    std::vector<std::string> m_networks;

    TestNet();
    void make_pki();
    std::string make_network(const std::string& net, const std::string& want_subnet);
    Server start_server(const std::string& server, const std::string& net,
                        const std::vector<std::string>& aliases);
    void remove_all();
};

struct NetRun {
    Proc proc;
    nlohmann::json report;
    std::string out; // the task's stdout
    std::filesystem::path dir;
};

// Runs `script` under `sh -c` in allowlist mode (unless extra says otherwise), with the test CA
// in the workspace as /workspace/ca.pem.
NetRun run_script(const TempDir& ws, const TempDir& out, const std::vector<std::string>& extra,
                  const std::string& script, const ProcOptions& opts = {});

// --policy permissive --network allowlist --egress-network <the test network>, then `more`.
std::vector<std::string> allowlist_args(const std::vector<std::string>& more);

// The refusals in a report's network summary with this rule prefix.
std::vector<nlohmann::json> refusals(const nlohmann::json& report, const std::string& rule_prefix);

bool has_line(const std::string& text, const std::string& line);

} // namespace airlock::test
