#include "net_fixture.hpp"

#include "sandbox/scratch_image.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace airlock::test {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

void sh(const std::string& cmd, const fs::path& dir) {
    const std::string full = "cd '" + dir.string() + "' && " + cmd + " >>pki.log 2>&1";
    INFO(full);
    REQUIRE(std::system(full.c_str()) == 0);
}

} // namespace

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TestNet& TestNet::get() {
    static TestNet net;
    return net;
}

TestNet::~TestNet() {
    remove_all();
}

int TestNet::connections(const Server& s) {
    const std::string text = server_output(s);
    int n = 0;
    for (std::size_t pos = 0; (pos = text.find("\"conn\":", pos)) != std::string::npos; ++pos)
        ++n;
    return n;
}

std::string TestNet::server_output(const Server& s) {
    std::string text;
    (void)client().container_logs(s.id, false, [&](docker::StreamId id, std::string_view d) {
        if (id == docker::StreamId::stdout_) text.append(d);
        return true;
    });
    return text;
}

TestNet::TestNet() {
    remove_all();
    auto& c = client();
    m_image = [&] {
        const std::string bin = slurp(AIRLOCK_TESTSERVER_BINARY);
        REQUIRE(!bin.empty());
        auto ref = sandbox::ensure_scratch_image(c, "airlock-test/testserver",
                                                 {{"airlock-testserver", bin}});
        REQUIRE(ref);
        return *ref;
    }();
    make_pki();
    std::random_device rd;
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "%06x", rd() & 0xffffffu);
    name = std::string("airlock-it-net-") + suffix;
    ll_name = std::string("airlock-it-ll-") + suffix;
    subnet = make_network(name, "");
    ll_subnet = make_network(ll_name, "169.254.77.0/24");
    allowed = start_server("allowed", name, {"allowed.test"});
    denied = start_server("denied", name, {"denied.test"});
    metadata = start_server("metadata", ll_name, {"metadata.test"});
}

void TestNet::make_pki() {
    const fs::path d = m_pki.path();
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    sh("openssl req -x509 " + ec +
           " -keyout ca.key -out ca.pem -days 2 -subj /CN=airlock-test-ca"
           " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
       d);
    sh("openssl req " + ec + " -keyout server.key -out server.csr -subj /CN=allowed.test", d);
    write_file(d / "ext.cnf", "subjectAltName=DNS:allowed.test,DNS:denied.test,"
                              "DNS:metadata.test\nbasicConstraints=CA:FALSE\n"
                              "extendedKeyUsage=serverAuth\n");
    sh("openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
       " -out server.pem -days 2 -extfile ext.cnf",
       d);
    ca_pem = d / "ca.pem";
    // A CA that signed nothing here: a bundle holding only it must fail verification.
    sh("openssl req -x509 " + ec +
           " -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=airlock-other-ca"
           " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
       d);
    other_ca_pem = d / "other-ca.pem";
}

std::string TestNet::make_network(const std::string& net, const std::string& want_subnet) {
    auto& c = client();
    auto id = c.network_create(net, {{k_test_label, "network"}}, false, want_subnet);
    INFO("create network " << net << " " << want_subnet);
    REQUIRE(id);
    m_networks.push_back(net);
    auto ins = c.network_inspect(net);
    REQUIRE(ins);
    return (*ins)["IPAM"]["Config"][0]["Subnet"].get<std::string>();
}

Server TestNet::start_server(const std::string& server, const std::string& net,
                             const std::vector<std::string>& aliases) {
    auto& c = client();
    const fs::path d = m_pki.path();
    json body = {
        {"Image", m_image},
        {"Cmd",
         json::array({"/airlock-testserver", "--name", server, "--http", "80", "--https", "443"})},
        {"Env", json::array({"AIRLOCK_TS_CERT=" + slurp(d / "server.pem"),
                             "AIRLOCK_TS_KEY=" + slurp(d / "server.key")})},
        {"Labels", {{k_test_label, "server"}}},
        {"HostConfig", {{"NetworkMode", net}, {"Memory", 256 << 20}}},
        {"NetworkingConfig", {{"EndpointsConfig", {{net, {{"Aliases", aliases}}}}}}},
    };
    auto created = c.container_create("", body);
    INFO("create test server " << server);
    REQUIRE(created);
    REQUIRE(c.container_start(created->id));
    auto ins = c.container_inspect(created->id);
    REQUIRE(ins);
    Server s{created->id, server,
             (*ins)["NetworkSettings"]["Networks"][net]["IPAddress"].get<std::string>()};
    // Wait until it listens: its first line comes after bind.
    for (int i = 0; i < 100; ++i) {
        std::string text;
        (void)c.container_logs(s.id, false, [&](docker::StreamId, std::string_view x) {
            text.append(x);
            return true;
        });
        if (!text.empty()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return s;
}

void TestNet::remove_all() {
    auto& c = client();
    if (auto cs = c.containers_by_label(k_test_label, ""); cs)
        for (const auto& x : *cs)
            (void)c.container_remove(x.value("Id", ""), docker::Force::yes);
    if (auto ns = c.networks_by_label(k_test_label, ""); ns)
        for (const auto& x : *ns)
            (void)c.network_remove(x.value("Id", ""));
}

NetRun run_script(const TempDir& ws, const TempDir& out, const std::vector<std::string>& extra,
                  const std::string& script, const ProcOptions& opts) {
    auto& net = TestNet::get();
    fs::copy_file(net.ca_pem, ws.path() / "ca.pem", fs::copy_options::overwrite_existing);
    NetRun r;
    r.dir = out.path() / "run";
    r.proc = run_airlock(run_args(ws.path(), r.dir, extra, {"sh", "-c", script}), opts);
    INFO(r.proc.err);
    if (fs::exists(r.dir / "report.json")) r.report = read_report(r.dir);
    if (fs::exists(r.dir / "logs" / "stdout.log")) r.out = read_file(r.dir / "logs" / "stdout.log");
    return r;
}

std::vector<std::string> allowlist_args(const std::vector<std::string>& more) {
    auto& net = TestNet::get();
    std::vector<std::string> a = {"--policy",  "permissive",       "--network",
                                  "allowlist", "--egress-network", net.name};
    a.insert(a.end(), more.begin(), more.end());
    return a;
}

std::vector<json> refusals(const json& report, const std::string& rule_prefix) {
    std::vector<json> out;
    for (const auto& d : report["network"]["summary"]["refusals"])
        if (d.value("rule", "").rfind(rule_prefix, 0) == 0) out.push_back(d);
    return out;
}

bool has_line(const std::string& text, const std::string& line) {
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        if (l == line) return true;
    return false;
}

} // namespace airlock::test
