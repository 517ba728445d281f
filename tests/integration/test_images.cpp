// `airlock images build` against the real engine: agent-base through POST /build, a failing
// Dockerfile, an unknown name, and the Codex and Claude Code images running their agents'
// `--version` under airlock.
#include "net_fixture.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <regex>

using namespace airlock::test;
namespace fs = std::filesystem;
namespace docker = airlock::docker;

namespace {

std::string random_suffix() {
    std::random_device rd;
    std::uniform_int_distribution<unsigned> d(0, 0xffffff);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%06x", d(rd));
    return buf;
}

std::string images_dir() {
    return std::string(AIRLOCK_SOURCE_DIR) + "/images";
}

// One request outside docker::Client, which has no call to remove images or list every
// container (airlock never needs either).
docker::Response engine_request(const std::string& method, const std::string& path) {
    auto& c = client();
    docker::Transport t(c.endpoint());
    docker::Request r;
    r.method = method;
    r.target = "/v" + c.engine().negotiated + path;
    auto resp = t.perform(r);
    REQUIRE(resp);
    return *resp;
}

// Removes the tag (and the untagged layers only it used) however the test ends.
class TagGuard {
public:
    explicit TagGuard(std::string ref) : m_ref(std::move(ref)) {}
    ~TagGuard() {
        try {
            auto& c = client();
            docker::Transport t(c.endpoint());
            docker::Request r;
            r.method = "DELETE";
            r.target = "/v" + c.engine().negotiated + "/images/" + docker::url_encode(m_ref);
            (void)t.perform(r);
        } catch (...) {
        }
    }
    TagGuard(const TagGuard&) = delete;
    TagGuard& operator=(const TagGuard&) = delete;

private:
    std::string m_ref;
};

bool image_exists(const std::string& ref) {
    return client().image_inspect(ref).ok();
}

// The certificates this host adds to Debian's (update-ca-certificates' local directory): a
// TLS-inspecting proxy's CA, where there is one, for the builds that download from npm.
std::vector<std::string> local_ca_args() {
    std::vector<std::string> args;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/usr/local/share/ca-certificates", ec))
        if (e.path().extension() == ".crt") {
            args.push_back("--ca-file");
            args.push_back(e.path().string());
        }
    return args;
}

std::size_t count_exit3_containers() {
    auto resp = engine_request("GET", "/containers/json?all=1");
    REQUIRE(resp.status == 200);
    std::size_t n = 0;
    for (const auto& c : nlohmann::json::parse(resp.body))
        if (c.value("Command", "").find("exit 3") != std::string::npos) ++n;
    return n;
}

// Builds images/NAME on the local agent-base as TAG (its RUN steps on the host network, with
// the local CA), and checks the result runs as 1000:1000 and carries its io.airlock.image label.
nlohmann::json build_agent_image(const std::string& name, const std::string& tag) {
    if (!image_exists("airlock/agent-base:latest"))
        FAIL("airlock/agent-base:latest is missing; build it first: ci/setup.sh images");
    std::vector<std::string> args = {
        "images", "build", name,        "--base", "airlock/agent-base:latest",
        "--tag",  tag,     "--network", "host",   "--quiet"};
    for (auto& a : local_ca_args())
        args.push_back(a);
    auto p = run_airlock(args);
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    WARN(name << " image build took " << p.seconds << " s");
    auto img = client().image_inspect(tag);
    REQUIRE(img);
    CHECK((*img)["Config"]["User"] == "1000:1000");
    CHECK((*img)["Config"]["Labels"]["io.airlock.image"] == name);
    return *img;
}

// Runs CMD in IMAGE under the standard policy; returns its stdout. Leaves nothing behind.
std::string run_standard(const std::string& image, const std::vector<std::string>& cmd) {
    TempDir ws, out;
    auto run = run_airlock(
        run_args(ws.path(), out.path() / "run", {"--policy", "standard", "--image", image}, cmd));
    INFO(run.err);
    REQUIRE(run.exit_code == 0);
    require_nothing_left(run);
    return read_file(out.path() / "run/logs/stdout.log");
}

} // namespace

TEST_CASE("images build: agent-base through the API runs as uid 1000", "[integration][images]") {
    REQUIRE_ENGINE();
    const std::string tag = "airlock/agent-base:it-" + random_suffix();
    TagGuard guard(tag);
    auto p = run_airlock({"images", "build", "agent-base", "--base", "airlock/debian:bookworm",
                          "--tag", tag, "--network", "host"});
    INFO(p.err);
    INFO(p.out.substr(p.out.size() > 4000 ? p.out.size() - 4000 : 0));
    REQUIRE(p.exit_code == 0);
    WARN("agent-base build took " << p.seconds << " s");
    // The builder's own lines came through as they streamed, and airlock's summary on stderr.
    CHECK(p.out.find("Step 1/") != std::string::npos);
    CHECK(p.out.find("Successfully tagged " + tag) != std::string::npos);
    CHECK(p.err.find("airlock: building " + tag + " from " + images_dir() + "/agent-base") !=
          std::string::npos);
    CHECK(p.err.find("BASE=airlock/debian:bookworm; network host)") != std::string::npos);
    CHECK(p.err.find("airlock: built " + tag + " (") != std::string::npos);

    auto img = client().image_inspect(tag);
    REQUIRE(img);
    CHECK((*img)["Config"]["User"] == "1000:1000");
    CHECK((*img)["Config"]["Labels"]["io.airlock.image"] == "agent-base");

    TempDir ws, out;
    auto run = run_airlock(run_args(ws.path(), out.path() / "run", {"--image", tag}, {"id", "-u"}));
    INFO(run.err);
    REQUIRE(run.exit_code == 0);
    CHECK(read_file(out.path() / "run/logs/stdout.log") == "1000\n");
    require_nothing_left(run);
}

TEST_CASE("images build: a failing step exits 125 with the engine's message",
          "[integration][images]") {
    REQUIRE_ENGINE();
    TempDir ctx;
    write_file(ctx.path() / "broken/Dockerfile",
               "ARG BASE=airlock/debian:bookworm\nFROM ${BASE}\nRUN exit 3\n");
    const std::string tag = "airlock/it-broken:" + random_suffix();
    TagGuard guard(tag);
    const std::size_t before = count_exit3_containers();
    auto p = run_airlock({"images", "build", "broken", "--context-dir", ctx.path().string(),
                          "--tag", tag, "--network", "none"});
    INFO(p.out);
    INFO(p.err);
    CHECK(p.exit_code == 125);
    CHECK(p.err.find("airlock: images build broken: build " + tag +
                     ": The command '/bin/sh -c exit 3' returned a non-zero code: 3") !=
          std::string::npos);
    CHECK(p.out.find("Step 3/3 : RUN exit 3") != std::string::npos);
    CHECK_FALSE(image_exists(tag));
    // forcerm: the failed step's container is gone too.
    CHECK(count_exit3_containers() == before);
}

TEST_CASE("images build: usage errors exit 2 before anything is built", "[integration][images]") {
    auto p = run_airlock({"images", "build", "codx"});
    CHECK(p.exit_code == 2);
    CHECK(p.err == "airlock images build: no image \"codx\" in " + images_dir() +
                       " (known: agent-base, claude-code, codex); did you mean \"codex\"? (try: "
                       "airlock images build --help)\n");

    p = run_airlock({"images", "build"});
    CHECK(p.exit_code == 2);
    CHECK(p.err.find("name the images to build, or give --all") != std::string::npos);

    TempDir empty;
    ProcOptions po;
    po.env = {"AIRLOCK_IMAGES_DIR=" + (empty.path() / "nope").string()};
    p = run_airlock({"images", "build", "--all"}, po);
    CHECK(p.exit_code == 2);
    CHECK(p.err.find("no images directory at " + (empty.path() / "nope").string() +
                     " (from AIRLOCK_IMAGES_DIR)") != std::string::npos);

    p = run_airlock({"images", "build", "codex", "--network", "bridgeish"});
    CHECK(p.exit_code == 2);
    CHECK(p.err.find("--network bridgeish: give host, none or bridge") != std::string::npos);

    p = run_airlock({"images", "build", "codex", "--ca-file", images_dir() + "/codex/Dockerfile"});
    CHECK(p.exit_code == 2);
    CHECK(p.err.find("no PEM certificate in it") != std::string::npos);

    p = run_airlock({"images", "frobnicate"});
    CHECK(p.exit_code == 2);
}

TEST_CASE("images build codex: `codex --version` runs inside airlock under the standard policy",
          "[integration][images][codex]") {
    REQUIRE_ENGINE();
    const std::string tag = "airlock/codex:it-" + random_suffix();
    TagGuard guard(tag);
    build_agent_image("codex", tag);

    const std::string version = run_standard(tag, {"codex", "--version"});
    INFO(version);
    CHECK(std::regex_search(version, std::regex(R"(^codex-cli \d+\.\d+\.\d+)")));

    // Codex's own sandbox and prompts are off: the image holds images/codex/config.toml as
    // /etc/codex/config.toml, Codex's system-wide layer.
    const std::string toml = run_standard(tag, {"cat", "/etc/codex/config.toml"});
    CHECK(toml == read_file(images_dir() + "/codex/config.toml"));
    CHECK(has_line(toml, R"(sandbox_mode = "danger-full-access")"));
    CHECK(has_line(toml, R"(approval_policy = "never")"));
}

TEST_CASE("images build claude-code: `claude --version` runs inside airlock under the standard "
          "policy",
          "[integration][images][claude-code]") {
    REQUIRE_ENGINE();
    const std::string tag = "airlock/claude-code:it-" + random_suffix();
    TagGuard guard(tag);
    const auto img = build_agent_image("claude-code", tag);

    const std::string version = run_standard(tag, {"claude", "--version"});
    INFO(version);
    // The version the Dockerfile pinned (and labelled) is the one that runs.
    const auto pinned =
        img["Config"]["Labels"]["io.airlock.claude-code.version"].get<std::string>();
    CHECK(std::regex_match(pinned, std::regex(R"(\d+\.\d+\.\d+)")));
    CHECK(version == pinned + " (Claude Code)\n");

    // Node was only for the install step; the permission prompts are off (managed settings).
    CHECK(run_standard(tag, {"sh", "-c",
                             "command -v node || echo no-node; "
                             "cat /etc/claude-code/managed-settings.json"}) ==
          "no-node\n" + read_file(images_dir() + "/claude-code/managed-settings.json"));
}
