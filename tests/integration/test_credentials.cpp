// Credential endpoints against the real engine: the HTTPS test server (allowed.test on the test's
// own network, certificate from the test CA handed to airlock with --ca-bundle) stands in for a
// model API and echoes the headers it got. The key must arrive there, and nowhere else: not in the
// agent container's environment, files, /proc or process list, not in docker inspect of any
// container, not in what airlock writes.
#include "net_fixture.hpp"

#include "audit/events.hpp"
#include "util/sha256.hpp"

#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

using namespace airlock;
using namespace airlock::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* k_key_variable = "AIRLOCK_TEST_CREDENTIAL";

std::string random_hex(std::size_t n) {
    std::random_device rd;
    std::string s;
    while (s.size() < n) {
        char buf[9];
        std::snprintf(buf, sizeof buf, "%08x", rd());
        s += buf;
    }
    return s.substr(0, n);
}

std::string base64(const std::string& s) {
    std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(s.data()),
                                  static_cast<int>(s.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::string shell_quoted(const std::string& s) {
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// The files under `dirs` that hold `needle` (grep -r -F -l; devices, FIFOs and sockets skipped,
// unreadable files ignored), or a line saying grep failed. The needle goes on grep's command
// line, never into a file.
std::vector<std::string> files_holding(const std::string& needle,
                                       const std::vector<fs::path>& dirs) {
    std::string cmd = "grep -r -a -l -F -D skip -e " + shell_quoted(needle) + " --";
    for (const auto& d : dirs)
        cmd += " " + shell_quoted(d.string());
    std::FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
    if (!p) return {"popen failed"};
    std::vector<std::string> out;
    std::string listing;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
        listing.append(buf, n);
    const int status = ::pclose(p);
    // 0: found, 1: none, 2: some files could not be read.
    if (!WIFEXITED(status) || WEXITSTATUS(status) > 2) out.push_back("grep failed");
    std::istringstream in(listing);
    for (std::string l; std::getline(in, l);)
        out.push_back(l);
    return out;
}

// The engine's data root when the engine is local (a unix socket, and its root is on this
// host's disk); empty otherwise.
fs::path local_engine_root() {
    if (client().endpoint().kind != docker::Endpoint::Kind::unix_socket) return {};
    auto info = client().info();
    if (!info) return {};
    const fs::path root = info->value("DockerRootDir", std::string());
    return !root.empty() && fs::is_directory(root / "containers") ? root : fs::path();
}

// A policy with two endpoints on the test server: `echo` (a request budget) and `big` (a byte
// budget), both keyed by AIRLOCK_TEST_CREDENTIAL.
fs::path write_policy(const TempDir& dir) {
    const fs::path p = dir.path() / "credentials-policy.json";
    write_file(p, R"({
  "name": "credentials-test",
  "credentials": {
    "echo": {
      "secret": "AIRLOCK_TEST_CREDENTIAL",
      "upstream": "https://allowed.test",
      "header": "Authorization: Bearer {secret}",
      "env": {"ECHO_BASE_URL": "{endpoint}", "ECHO_API_KEY": "airlock-placeholder"},
      "max_requests": 4
    },
    "big": {
      "secret": "AIRLOCK_TEST_CREDENTIAL",
      "upstream": "https://allowed.test",
      "header": "x-api-key: {secret}",
      "env": {"BIG_BASE_URL": "{endpoint}"},
      "max_bytes": "20k"
    }
  }
})");
    return p;
}

struct CredRun {
    std::shared_ptr<TempDir> ws = std::make_shared<TempDir>(), out = std::make_shared<TempDir>(),
                             pol_dir = std::make_shared<TempDir>(); // live as long as the run
    NetRun run;
    std::string key;
    std::vector<std::string> inspects; // docker inspect of the run's containers, while it ran
    // With a local engine, the files of the run's containers' directories in its data root
    // (configs, logs) that held the key while it ran, and those that held its base64 form (in
    // the task's environment when the test passes it); nullopt when not searched.
    std::optional<std::vector<std::string>> live_disk, live_disk_base64;
};

// Runs `script` with the endpoints named in `credentials`, the key in airlock's environment, and
// the test CA as the bundle unless `ca` says otherwise.
CredRun run_with_credentials(const std::string& key, const std::vector<std::string>& credentials,
                             const std::string& script, std::vector<std::string> extra = {},
                             fs::path ca = {}, bool inspect = false) {
    auto& net = TestNet::get();
    CredRun r;
    const TempDir& ws = *r.ws;
    const TempDir& out = *r.out;
    const TempDir& pol_dir = *r.pol_dir;
    r.key = key;
    std::vector<std::string> args = {"--policy",     write_policy(pol_dir).string(),
                                     "--allow-cidr", net.subnet,
                                     "--ca-bundle",  (ca.empty() ? net.ca_pem : ca).string()};
    for (const auto& c : credentials)
        args.insert(args.end(), {"--credential", c});
    args.insert(args.end(), extra.begin(), extra.end());
    ProcOptions opts;
    opts.env = {std::string(k_key_variable) + "=" + r.key};
    if (inspect)
        opts.while_running = [&r](int) {
            // The run's containers, inspected once both exist (the task sleeps meanwhile).
            std::vector<fs::path> dirs;
            const fs::path root = local_engine_root();
            for (int i = 0; i < 300 && r.inspects.size() < 2; ++i) {
                r.inspects.clear();
                dirs.clear();
                auto cs = client().containers_by_label("io.airlock.run", "");
                if (cs && cs->size() >= 2)
                    for (const auto& c : *cs)
                        if (auto ins = client().container_inspect(c.value("Id", "")); ins) {
                            r.inspects.push_back(ins->dump());
                            dirs.push_back(root / "containers" / c.value("Id", ""));
                        }
                if (r.inspects.size() < 2)
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
            // Other runs on the engine may come and go; this run's two are there while it runs.
            std::erase_if(dirs, [](const fs::path& d) { return !fs::is_directory(d); });
            if (!root.empty() && dirs.size() >= 2) {
                r.live_disk = files_holding(r.key, dirs);
                r.live_disk_base64 = files_holding(base64(r.key), dirs);
            }
        };
    r.run = run_script(ws, out, allowlist_args(args), script, opts);
    // Nothing airlock wrote holds the key (it would be redacted, but it should not be there).
    if (fs::exists(r.run.dir))
        for (const auto& e : fs::recursive_directory_iterator(r.run.dir))
            if (e.is_regular_file()) {
                INFO(e.path());
                CHECK(read_file(e.path()).find(r.key) == std::string::npos);
            }
    return r;
}

std::string value_after(const std::string& text, const std::string& prefix) {
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        if (l.rfind(prefix, 0) == 0) return l.substr(prefix.size());
    return "<no line " + prefix + ">";
}

// The decision lines of the run's events that came through the credential socket; with
// `endpoint`, only those routed to it (a refused path names no endpoint: null).
std::vector<json> endpoint_events(const fs::path& dir, const std::optional<std::string>& endpoint) {
    std::vector<json> out;
    std::istringstream in(read_file(dir / "events.jsonl"));
    for (std::string l; std::getline(in, l);) {
        json e = json::parse(l);
        if (e.value("type", "") != "network.decision" || !e.contains("endpoint")) continue;
        if (!endpoint || (e["endpoint"].is_string() && e["endpoint"] == *endpoint))
            out.push_back(e);
    }
    return out;
}

std::string new_key() {
    return "sk-airlock-test-" + random_hex(32);
}

// Each decision line through the credential socket carries an integer duration, and one that
// went upstream counts at least its head in bytes_up.
void check_decision_fields(const std::vector<json>& decisions) {
    for (const auto& d : decisions) {
        INFO(d.dump());
        CHECK(d["duration_ms"].is_number_integer());
        CHECK(d["duration_ms"].get<long>() >= 0);
        if (d["decision"] == "allow") CHECK(d["bytes_up"].get<long>() > 0);
    }
}

} // namespace

TEST_CASE("credentials: the sidecar adds the key, the agent container never holds it",
          "[integration][credentials]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    const std::string key = new_key();
    const std::string token = random_hex(12);
    const std::string mark = "proc-mark-" + random_hex(16);
    // The needle to look for comes in base64 (which airlock does not check for) and is decoded
    // into /tmp only. The search covers the environment, every file under /proc/self, every
    // process's command line and environment, and the file system but /proc, /sys and /dev.
    // /proc/self is walked as /proc/$$, the shell's own: each reader's /proc/self would be its
    // own, and find's task/<tid> would be gone for head. PROC_MARK is in the shell's environ and
    // in task/$$/environ, so finding it twice proves the nested files were read.
    const std::string script =
        "printf '%s' \"$NEEDLE_B64\" | openssl base64 -d -A > /tmp/needle\n"
        "cp /tmp/needle /tmp/needle-control\n"
        "echo \"control=$(grep -c -F -f /tmp/needle /tmp/needle-control)\"\n"
        // The echo comes back with the key in it: it stays in a shell variable, never a file.
        "h=$(curl -sS --max-time 10 -H \"Authorization: Bearer $ECHO_API_KEY\" "
        "\"$ECHO_BASE_URL/headers?t=" +
        token +
        "\"); echo \"curl=$?\"\n"
        "echo \"auth_sha=$(printf '%s\\n' \"$h\" | grep -i '^authorization:' | tr -d '\\r' | "
        "sha256sum | cut -c1-64)\"\n"
        "echo \"placeholder=$(printf '%s\\n' \"$h\" | grep -c airlock-placeholder)\"\n"
        "unset h\n"
        "echo \"upload=$(head -c 1000 /dev/zero | tr '\\0' y | curl -sS --max-time 10 "
        "--data-binary @- \"$ECHO_BASE_URL/upload\")\"\n"
        "echo \"base=$ECHO_BASE_URL\"\n"
        "echo \"env=$(env | grep -c -F -f /tmp/needle)\"\n"
        "find /proc/$$/ -type f 2>/dev/null > /tmp/self.list\n"
        "n=0; while read -r f; do head -c 1000000 \"$f\" 2>/dev/null && n=$((n+1)); "
        "done < /tmp/self.list > /tmp/self.dump\n"
        "echo \"self_files=$n\"\n"
        "echo \"self_mark=$(grep -o -a -F \"$PROC_MARK\" /tmp/self.dump | wc -l)\"\n"
        "echo \"self=$(grep -c -a -F -f /tmp/needle /tmp/self.dump)\"\n"
        "for p in /proc/[0-9]*; do cat \"$p/cmdline\" \"$p/environ\"; done 2>/dev/null > "
        "/tmp/ps.dump\n"
        "echo \"ps=$(grep -c -a -F -f /tmp/needle /tmp/ps.dump)\"\n"
        "echo \"files=$(grep -r -l -a -F -f /tmp/needle --exclude='needle*' --exclude-dir=proc "
        "--exclude-dir=sys --exclude-dir=dev / 2>/dev/null | wc -l)\"\n"
        "sleep 1\n";
    auto r = run_with_credentials(
        key, {"echo"}, script, {"--env", "NEEDLE_B64=" + base64(key), "--env", "PROC_MARK=" + mark},
        {}, true);
    INFO(r.run.proc.err);
    INFO(r.run.out);
    REQUIRE(r.run.proc.exit_code == 0);
    const std::string& out = r.run.out;
    CHECK(value_after(out, "control=") == "1"); // the search works
    CHECK(value_after(out, "curl=") == "0");
    // The upstream got exactly the header the policy describes, with the key...
    CHECK(value_after(out, "auth_sha=") == util::sha256_hex("Authorization: Bearer " + key + "\n"));
    // ...and not the placeholder the task sent.
    CHECK(value_after(out, "placeholder=") == "0");
    CHECK(value_after(out, "base=") == "http://127.0.0.1:3129/echo");
    CHECK(value_after(out, "upload=") == "received 1000");
    // The walk of /proc/self read the nested files (task/*, net/*, fdinfo/*, attr/*...), not
    // only the top level (about 50 files, one PROC_MARK).
    CHECK(std::stoi(value_after(out, "self_files=")) > 100);
    CHECK(value_after(out, "self_mark=") == "2");
    for (const char* where : {"env=", "self=", "ps=", "files="}) {
        INFO(where);
        CHECK(value_after(out, where) == "0");
    }
    // docker inspect of every container of the run (agent and sidecar), taken while it ran.
    REQUIRE(r.inspects.size() == 2);
    for (const auto& ins : r.inspects)
        CHECK(ins.find(key) == std::string::npos);
    // The server saw the request once; the decision is in the events and the report.
    CHECK(TestNet::server_output(net.allowed).find("/headers?t=" + token) != std::string::npos);
    auto decisions = endpoint_events(r.run.dir, "echo");
    REQUIRE(decisions.size() == 2);
    CHECK(decisions[0]["decision"] == "allow");
    CHECK(decisions[0]["status"] == 200);
    CHECK(decisions[0]["method"] == "GET");
    CHECK(decisions[0]["path"] == "/echo/headers");
    CHECK(decisions[0]["host"] == "allowed.test");
    CHECK(decisions[0]["bytes_down"].get<long>() > 0);
    CHECK(decisions[1]["method"] == "POST");
    CHECK(decisions[1]["path"] == "/echo/upload");
    CHECK(decisions[1]["status"] == 200);
    CHECK(decisions[1]["bytes_up"].get<long>() > 1000); // the head and the 1000-byte body
    check_decision_fields(decisions);
    const json& creds = r.run.report["network"]["credentials"];
    REQUIRE(creds.size() == 1);
    CHECK(creds[0]["name"] == "echo");
    CHECK(creds[0]["upstream"] == "https://allowed.test");
    CHECK(creds[0]["header"] == "Authorization");
    CHECK(creds[0]["secret"] == "AIRLOCK_TEST_CREDENTIAL");
    REQUIRE(audit::verify_event_chain(r.run.dir / "events.jsonl"));
    require_nothing_left(r.run.proc);

    // The engine host's disk: no file of the run's containers (configs, logs) held the key while
    // they existed, and afterwards no file in the engine's data root, /run/docker or /tmp does.
    const fs::path root = local_engine_root();
    if (root.empty()) {
        WARN("the engine at " << client().endpoint().display()
                              << " is not local; its disk is not checked for the key");
        return;
    }
    REQUIRE(r.live_disk);
    CHECK(*r.live_disk == std::vector<std::string>{});
    // The control: the agent container's configuration holds its environment (the base64 form).
    REQUIRE(r.live_disk_base64);
    REQUIRE(r.live_disk_base64->size() == 1);
    CHECK_THAT(r.live_disk_base64->front(), Catch::EndsWith("/config.v2.json"));
    // The control: the test server's log, on that disk, holds the token the task sent.
    const fs::path server_dir = root / "containers" / net.allowed.id;
    CHECK(files_holding(token, {server_dir}) ==
          std::vector<std::string>{(server_dir / (net.allowed.id + "-json.log")).string()});
    CHECK(files_holding(key, {root, "/run/docker", "/tmp"}) == std::vector<std::string>{});
}

TEST_CASE("credentials: another path prefix or host is refused, a stream arrives in pieces",
          "[integration][credentials]") {
    REQUIRE_ENGINE();
    const std::string script =
        "curl -s -o /dev/null -w 'other=%{http_code}\\n' http://127.0.0.1:3129/nothing/headers\n"
        "curl -s -o /dev/null -w 'absolute=%{http_code}\\n' --proxy http://127.0.0.1:3129 "
        "http://denied.test/headers\n"
        "curl -sN --max-time 20 \"$ECHO_BASE_URL/stream/5\" | while read -r line; do "
        "echo \"piece $(date +%s%3N) $line\"; done\n";
    auto r = run_with_credentials(new_key(), {"echo"}, script);
    INFO(r.run.proc.err);
    INFO(r.run.out);
    REQUIRE(r.run.proc.exit_code == 0);
    CHECK(value_after(r.run.out, "other=") == "404");
    CHECK(value_after(r.run.out, "absolute=") == "400");
    // Five chunks, 200 ms apart at the server: they must arrive spread out, not all at the end.
    std::vector<long long> times;
    std::istringstream in(r.run.out);
    for (std::string l; std::getline(in, l);)
        if (l.rfind("piece ", 0) == 0) times.push_back(std::stoll(l.substr(6, l.find(' ', 6) - 6)));
    REQUIRE(times.size() == 5);
    CHECK(times.back() - times.front() >= 600);
    auto decisions = endpoint_events(r.run.dir, std::nullopt);
    REQUIRE(decisions.size() == 3);
    int refused = 0;
    for (const auto& d : decisions)
        refused += d["decision"] == "deny" ? 1 : 0;
    CHECK(refused == 2);
    CHECK(endpoint_events(r.run.dir, "echo").size() == 1); // the stream
    check_decision_fields(decisions);
    require_nothing_left(r.run.proc);
}

TEST_CASE("credentials: the request and byte budgets cut when exceeded",
          "[integration][credentials]") {
    REQUIRE_ENGINE();
    const std::string script =
        "for i in 1 2 3 4 5; do curl -s -o /dev/null -w 'req=%{http_code}\\n' "
        "\"$ECHO_BASE_URL/hello\"; done\n"
        "curl -s -o /dev/null -w 'small=%{http_code}\\n' \"$BIG_BASE_URL/bytes/1000\"\n"
        "curl -s --max-time 20 -o /tmp/big \"$BIG_BASE_URL/bytes/1000000\"; echo \"big=$?\"\n"
        "echo \"big_size=$(wc -c < /tmp/big)\"\n";
    auto r = run_with_credentials(new_key(), {"echo", "big"}, script);
    INFO(r.run.proc.err);
    INFO(r.run.out);
    REQUIRE(r.run.proc.exit_code == 0);
    std::vector<std::string> statuses;
    std::istringstream in(r.run.out);
    for (std::string l; std::getline(in, l);)
        if (l.rfind("req=", 0) == 0) statuses.push_back(l.substr(4));
    CHECK(statuses == std::vector<std::string>{"200", "200", "200", "200", "429"});
    CHECK(value_after(r.run.out, "small=") == "200");
    CHECK(value_after(r.run.out, "big=") != "0");
    CHECK(std::stol(value_after(r.run.out, "big_size=")) < 1000000);
    auto big = endpoint_events(r.run.dir, "big");
    REQUIRE(big.size() == 2);
    CHECK(big[1]["decision"] == "cut");
    CHECK(big[1]["rule"] == "credential budget");
    auto echo = endpoint_events(r.run.dir, "echo");
    REQUIRE(echo.size() == 5);
    CHECK(echo[4]["decision"] == "deny");
    CHECK(echo[4]["rule"] == "credential budget");
    check_decision_fields(big);
    check_decision_fields(echo);
    require_nothing_left(r.run.proc);
}

TEST_CASE("credentials: an upstream whose certificate does not verify is refused, never "
          "downgraded",
          "[integration][credentials]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    const std::string token = random_hex(12);
    const std::string script = "curl -s -D /tmp/h -o /dev/null -w 'status=%{http_code}\\n' "
                               "\"$ECHO_BASE_URL/headers?t=" +
                               token +
                               "\"\n"
                               "grep -i '^x-airlock-deny-reason:' /tmp/h | tr -d '\\r'\n";
    auto r = run_with_credentials(new_key(), {"echo"}, script, {}, net.other_ca_pem);
    INFO(r.run.proc.err);
    INFO(r.run.out);
    REQUIRE(r.run.proc.exit_code == 0);
    CHECK(value_after(r.run.out, "status=") == "502");
    CHECK_THAT(r.run.out, Catch::Contains("certificate"));
    CHECK(TestNet::server_output(net.allowed).find("/headers?t=" + token) == std::string::npos);
    auto d = endpoint_events(r.run.dir, "echo");
    REQUIRE(d.size() == 1);
    CHECK(d[0]["decision"] == "deny");
    CHECK(d[0]["rule"] == "upstream certificate");
    check_decision_fields(d);
    require_nothing_left(r.run.proc);
}

TEST_CASE("credentials: bad requests are refused before anything starts",
          "[integration][credentials]") {
    REQUIRE_ENGINE();
    auto& net = TestNet::get();
    TempDir ws, out, pol_dir;
    const std::string policy = write_policy(pol_dir).string();
    auto run = [&](const std::vector<std::string>& extra, const std::vector<std::string>& env) {
        ProcOptions opts;
        opts.env = env;
        return run_airlock(run_args(ws.path(), out.path() / "run", allowlist_args(extra), {"true"}),
                           opts);
    };
    const std::string key_env = std::string(k_key_variable) + "=" + new_key();

    auto unset = run({"--policy", policy, "--credential", "echo"}, {});
    CHECK(unset.exit_code == 2);
    CHECK_THAT(unset.err, Catch::Contains("credential echo needs AIRLOCK_TEST_CREDENTIAL, which is "
                                          "not set in airlock's environment"));
    auto unknown = run({"--policy", policy, "--credential", "gemini"}, {key_env});
    CHECK(unknown.exit_code == 126);
    CHECK_THAT(unknown.err,
               Catch::Contains("the policy defines no credential endpoint \"gemini\""));
    auto bad_ca =
        run({"--policy", policy, "--credential", "echo", "--ca-bundle", policy}, {key_env});
    CHECK(bad_ca.exit_code == 2);
    CHECK_THAT(bad_ca.err, Catch::Contains("holds no PEM certificate"));

    const fs::path plain = pol_dir.path() / "plain.json";
    write_file(plain, R"({"credentials": {"x": {"secret": "AIRLOCK_TEST_CREDENTIAL",
        "upstream": "http://allowed.test", "header": "x-api-key: {secret}"}}})");
    auto http = run({"--policy", plain.string(), "--credential", "x"}, {key_env});
    CHECK(http.exit_code == 2);
    CHECK_THAT(http.err,
               Catch::Contains("/credentials/x/upstream: \"http://allowed.test\" is plain "
                               "HTTP; a credential only travels over TLS"));
    (void)net;
    CHECK(airlock_leftovers().empty());
}
