// The egress sidecar as airlock plans it: its config, its create body, how its inspect is
// verified, the agent container in proxied modes, and the report's summary of decisions.
#include "sandbox/egress.hpp"
#include "sandbox/spec.hpp"

#include <catch2/catch.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <map>
#include <memory>
#include <tuple>

using namespace airlock;
using namespace airlock::sandbox;
using nlohmann::json;

namespace {

config::NetworkOptions allowlist() {
    config::NetworkOptions n;
    n.mode = "allowlist";
    n.allow = {"allowed.test:80", "*.allowed.test"};
    n.deny = {"denied.test"};
    n.methods = {"GET", "HEAD"};
    n.allow_cidrs = {"172.30.0.0/16"};
    n.upload_budget = 4096;
    n.egress_network = "airlock-test-net";
    return n;
}

// What an engine's inspect shows for a container created from `body`, as far as we check.
json inspect_of(const json& body) {
    json ins = {
        {"Config", {{"User", body["User"]}, {"Entrypoint", body.value("Entrypoint", json())}}},
        {"HostConfig", body["HostConfig"]},
        {"Mounts", json::array()}};
    for (const auto& m : body["HostConfig"]["Mounts"])
        ins["Mounts"].push_back({{"Type", m["Type"]},
                                 {"Name", m["Source"]},
                                 {"Source", "/var/lib/docker/volumes/x/_data"},
                                 {"Destination", m["Target"]},
                                 {"RW", !m["ReadOnly"].get<bool>()}});
    return ins;
}

} // namespace

TEST_CASE("the proxy's config carries the rules and the socket", "[egress]") {
    json c = egress_config(allowlist());
    CHECK(c["mode"] == "allowlist");
    CHECK(c["allow"] == json::array({"allowed.test:80", "*.allowed.test"}));
    CHECK(c["deny"] == json::array({"denied.test"}));
    CHECK(c["methods"] == json::array({"GET", "HEAD"}));
    CHECK(c["allow_cidrs"] == json::array({"172.30.0.0/16"}));
    CHECK(c["upload_budget"] == 4096);
    CHECK(c["listen"] == "/run/airlock/sock/egress.sock");
    CHECK(c.size() == 7); // nothing else: airlock-init comes with the image
    auto none = allowlist();
    none.upload_budget.reset();
    CHECK(egress_config(none)["upload_budget"].is_null());
}

TEST_CASE("the sidecar is non-root, without capabilities, read-only, on the egress network",
          "[egress]") {
    json b = egress_create_body("r1", "airlock/egress:abc", "airlock-r1-egress", allowlist());
    CHECK(b["User"] == "65534:65534");
    CHECK(b["Labels"]["io.airlock.run"] == "r1");
    CHECK(b["Labels"]["io.airlock.role"] == "egress");
    const json& h = b["HostConfig"];
    CHECK(h["NetworkMode"] == "airlock-test-net");
    CHECK(h["ReadonlyRootfs"] == true);
    CHECK(h["CapDrop"] == json::array({"ALL"}));
    CHECK(h["Privileged"] == false);
    CHECK(h["LogConfig"]["Type"] == "none");
    REQUIRE(h["Mounts"].size() == 1);
    CHECK(h["Mounts"][0]["Target"] == "/run/airlock");
    CHECK(json::parse(b["Cmd"][1].get<std::string>())["mode"] == "allowlist");
    CHECK(verify_egress(inspect_of(b), "airlock-r1-egress", allowlist()).empty());
}

TEST_CASE("verify_egress names what the engine did not apply", "[egress]") {
    json b = egress_create_body("r1", "img", "vol", allowlist());
    json ins = inspect_of(b);
    ins["HostConfig"]["ReadonlyRootfs"] = false;
    ins["HostConfig"]["CapAdd"] = json::array({"NET_ADMIN"});
    ins["Mounts"].push_back({{"Type", "bind"},
                             {"Source", "/var/run/docker.sock"},
                             {"Destination", "/var/run/docker.sock"}});
    auto m = verify_egress(ins, "vol", allowlist());
    std::vector<std::string> fields;
    for (const auto& x : m)
        fields.push_back(x.field);
    CHECK(std::count(fields.begin(), fields.end(), "HostConfig.ReadonlyRootfs") == 1);
    CHECK(std::count(fields.begin(), fields.end(), "HostConfig.CapAdd") == 1);
    CHECK(std::count(fields.begin(), fields.end(), "Mounts") == 1);
}

TEST_CASE("in proxied modes the agent keeps no network and runs airlock-init", "[egress]") {
    config::RunOptions o;
    o.command = {"curl", "http://allowed.test/"};
    o.network = allowlist();
    ContainerPlan plan{"r1", "sha256:abc", "ws", "/w", "", "airlock-r1-egress", {"/entry"}};
    json b = build_create_body(o, plan);
    CHECK(b["HostConfig"]["NetworkMode"] == "none");
    CHECK(b["NetworkDisabled"] == true);
    CHECK(b["Entrypoint"] == json::array({"/run/airlock/airlock-init", "--handoff",
                                          "3128=/run/airlock/sock/egress.sock", "--", "/entry"}));
    std::vector<std::string> env = b["Env"];
    CHECK(std::count(env.begin(), env.end(), "HTTPS_PROXY=http://127.0.0.1:3128") == 1);
    CHECK(std::count(env.begin(), env.end(), "http_proxy=http://127.0.0.1:3128") == 1);
    CHECK(std::count(env.begin(), env.end(), "NO_PROXY=localhost,127.0.0.1,::1") == 1);
    bool ro = false;
    for (const auto& m : b["HostConfig"]["Mounts"])
        if (m["Target"] == "/run/airlock") ro = m["ReadOnly"] == true;
    CHECK(ro);

    // verify accepts exactly that, and catches a writable or foreign /run/airlock.
    json ins = inspect_of(b);
    ins["Config"]["User"] = o.user;
    ins["Image"] = "sha256:abc";
    ins["HostConfig"]["Runtime"] = o.runtime;
    ins["Mounts"][0]["Type"] = "volume";
    ins["Mounts"][0]["Name"] = "ws";
    auto ok = verify_container(ins, o, plan, {});
    for (const auto& m : ok)
        INFO(m.field << ": " << m.actual);
    CHECK(ok.empty());
    for (auto& m : ins["Mounts"])
        if (m["Destination"] == "/run/airlock") m["RW"] = true;
    auto bad = verify_container(ins, o, plan, {});
    REQUIRE(bad.size() == 1);
    CHECK(bad[0].field == "Mounts./run/airlock");
}

TEST_CASE("none keeps the plain body, open puts the task on the egress network", "[egress]") {
    config::RunOptions o;
    o.command = {"true"};
    ContainerPlan plan{"r1", "sha256:abc", "ws", "/w", "", "", {}};
    json b = build_create_body(o, plan);
    CHECK_FALSE(b.contains("Entrypoint"));
    CHECK(b["HostConfig"]["NetworkMode"] == "none");
    o.network.mode = "open";
    o.network.egress_network = "n1";
    json open = build_create_body(o, plan);
    CHECK(open["HostConfig"]["NetworkMode"] == "n1");
    CHECK(open["NetworkDisabled"] == false);
}

TEST_CASE("the sidecar's image holds airlock-init and a socket directory the proxy owns",
          "[egress]") {
    const std::string tar = egress_image_tar();
    CHECK(tar == egress_image_tar()); // reproducible: its hash names the image
    std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
    archive_read_support_format_tar(a.get());
    REQUIRE(archive_read_open_memory(a.get(), tar.data(), tar.size()) == ARCHIVE_OK);
    archive_entry* e = nullptr;
    std::map<std::string, std::tuple<unsigned, unsigned, long, std::int64_t>> seen;
    while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
        std::string name = archive_entry_pathname(e);
        if (!name.empty() && name.back() == '/') name.pop_back();
        seen[name] = {archive_entry_filetype(e), archive_entry_perm(e),
                      static_cast<long>(archive_entry_uid(e)), archive_entry_size(e)};
    }
    REQUIRE(seen.size() == 5);
    for (const char* program : {"airlock-egress", "run/airlock/airlock-init"}) {
        INFO(program);
        CHECK(std::get<0>(seen[program]) == AE_IFREG);
        CHECK(std::get<1>(seen[program]) == 0555);
        CHECK(std::get<2>(seen[program]) == 0);
        CHECK(std::get<3>(seen[program]) > 10000);
    }
    CHECK(std::get<0>(seen["run/airlock/sock"]) == AE_IFDIR);
    CHECK(std::get<2>(seen["run/airlock/sock"]) == 65534);
    CHECK(std::get<2>(seen["run/airlock"]) == 0);
}

TEST_CASE("the network summary counts allowed hosts and keeps every refusal", "[egress]") {
    std::vector<json> d = {
        {{"decision", "allow"},
         {"host", "a.test"},
         {"port", 80},
         {"bytes_up", 10},
         {"bytes_down", 100}},
        {{"decision", "allow"},
         {"host", "a.test"},
         {"port", 80},
         {"bytes_up", 5},
         {"bytes_down", 50}},
        {{"decision", "deny"}, {"host", "b.test"}, {"port", 443}, {"rule", "no allow rule"}},
        {{"decision", "cut"}, {"host", "a.test"}, {"port", 443}, {"rule", "sni mismatch"}},
    };
    json s = network_summary(d);
    CHECK(s["decisions"] == 4);
    CHECK(s["allowed"] == 2);
    CHECK(s["denied"] == 1);
    CHECK(s["cut"] == 1);
    REQUIRE(s["hosts"].size() == 1);
    CHECK(s["hosts"][0]["requests"] == 2);
    CHECK(s["hosts"][0]["bytes_up"] == 15);
    CHECK(s["hosts"][0]["bytes_down"] == 150);
    CHECK(s["refusals"].size() == 2);
    CHECK(s["endpoints"] == json::object());

    // Credential endpoints: counted per endpoint; a refused path names none (null).
    std::vector<json> c = {{{"endpoint", "openai"},
                            {"decision", "allow"},
                            {"status", 200},
                            {"host", "api.openai.com"},
                            {"port", 443},
                            {"bytes_up", 100},
                            {"bytes_down", 2000}},
                           {{"endpoint", "openai"},
                            {"decision", "deny"},
                            {"status", 429},
                            {"host", "api.openai.com"},
                            {"port", 443},
                            {"bytes_up", 0},
                            {"bytes_down", 0}},
                           {{"endpoint", nullptr},
                            {"decision", "deny"},
                            {"status", 404},
                            {"host", nullptr},
                            {"port", nullptr},
                            {"bytes_up", 0},
                            {"bytes_down", 0}}};
    json e = network_summary(c);
    CHECK(e["endpoints"] == json{{"openai",
                                  {{"requests", 2},
                                   {"bytes_up", 100},
                                   {"bytes_down", 2000},
                                   {"statuses", {{"200", 1}, {"429", 1}}}}}});
    CHECK(e["refusals"].size() == 2);
}

namespace {
config::Credential openai_credential() {
    config::Credential c;
    c.name = "openai";
    c.secret = "OPENAI_API_KEY";
    c.value = "sk-unit-test-value-0123";
    c.upstream = "https://api.openai.com/v1";
    c.host = "api.openai.com";
    c.base_path = "/v1";
    c.header = "Authorization";
    c.value_template = "Bearer {secret}";
    c.env = {{"OPENAI_BASE_URL", "http://127.0.0.1:3129/openai"}};
    c.max_requests = 10;
    return c;
}
} // namespace

TEST_CASE("credential endpoints reach the proxy's config without their values", "[egress]") {
    const std::vector<config::Credential> creds = {openai_credential()};
    json c = egress_config(allowlist(), creds);
    CHECK(c["credential_listen"] == "/run/airlock/sock/credentials.sock");
    CHECK(c["ca_file"] == "/etc/airlock/ca.pem");
    REQUIRE(c["credentials"].size() == 1);
    CHECK(c["credentials"][0] == json{{"name", "openai"},
                                      {"host", "api.openai.com"},
                                      {"port", 443},
                                      {"base_path", "/v1"},
                                      {"header", "Authorization"},
                                      {"template", "Bearer {secret}"},
                                      {"max_requests", 10},
                                      {"max_bytes", nullptr}});
    CHECK_FALSE(egress_config(allowlist()).contains("credentials"));

    // The value goes only into the stdin line; the create body holds none of it.
    json b = egress_create_body("r1", "img", "vol", allowlist(), creds);
    CHECK(b.dump().find("sk-unit-test") == std::string::npos);
    CHECK(b["OpenStdin"] == true);
    CHECK(b["StdinOnce"] == true);
    CHECK(egress_create_body("r1", "img", "vol", allowlist())["OpenStdin"] == false);
    const std::string line = credentials_stdin_line(creds);
    CHECK(line == "{\"secrets\":{\"openai\":\"sk-unit-test-value-0123\"}}\n");
}

TEST_CASE("with credentials the agent's init also relays 3129", "[egress]") {
    config::RunOptions o;
    o.command = {"true"};
    o.network = allowlist();
    ContainerPlan plan{"r1", "sha256:abc",        "ws", "/w",
                       "",   "airlock-r1-egress", {},   CredentialEndpoint::yes};
    json b = build_create_body(o, plan);
    CHECK(b["Entrypoint"] == json::array({"/run/airlock/airlock-init", "--handoff",
                                          "3128=/run/airlock/sock/egress.sock", "--handoff",
                                          "3129=/run/airlock/sock/credentials.sock", "--"}));
}

TEST_CASE("the CA bundle goes into the sidecar's image, and must hold certificates", "[egress]") {
    const std::string pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const std::string tar = egress_image_tar(pem);
    CHECK(tar != egress_image_tar());
    CHECK(tar.find(pem) != std::string::npos);
    CHECK(tar.find("etc/airlock/ca.pem") != std::string::npos);

    auto missing = read_ca_bundle("/nonexistent/ca.pem", "--ca-bundle");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().message ==
          "--ca-bundle /nonexistent/ca.pem: cannot be read; credential upstreams are verified "
          "against it (install ca-certificates, or pass --ca-bundle FILE)");
    auto not_pem = read_ca_bundle("/etc/hostname", "default");
    REQUIRE_FALSE(not_pem.ok());
    CHECK(not_pem.error().message.find("the CA bundle /etc/hostname: holds no PEM certificate") ==
          0);
}
