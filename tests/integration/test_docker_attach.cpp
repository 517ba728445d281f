// Attach with stdin against the real engine: a value handed to a process on its standard input
// reaches it, and leaves no trace in what the engine shows about the container.
#include "harness.hpp"
#include "tls_fixture.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>

using namespace airlock;
using namespace airlock::test;
using nlohmann::json;

namespace {

constexpr const char* k_test_label = "io.airlock.test";
constexpr const char* k_label_value = "attach";
constexpr const char* k_image = "airlock/agent-base:latest";

void remove_test_containers() {
    auto& c = client();
    if (auto cs = c.containers_by_label(k_test_label, k_label_value); cs)
        for (const auto& x : *cs)
            (void)c.container_remove(x.value("Id", ""), docker::Force::yes);
}

// Removes this test's containers on entry (a crashed earlier run's) and on exit.
struct Cleanup {
    Cleanup() { remove_test_containers(); }
    ~Cleanup() { remove_test_containers(); }
    Cleanup(const Cleanup&) = delete;
    Cleanup& operator=(const Cleanup&) = delete;
};

// What a container running `read line; echo "got:$line"` printed when attached through
// `attach_client` with stdin "hello\n", and its exit code; checks the engine kept no trace.
void hello_through(docker::Client& attach_client) {
    auto& c = client();
    INFO("the local image " << k_image << " is needed: run ci/setup.sh images");
    REQUIRE(c.image_inspect(k_image));
    Cleanup cleanup;

    const json body = {
        {"Image", k_image},
        {"Cmd", json::array({"sh", "-c", "read line; echo \"got:$line\""})},
        {"OpenStdin", true},
        {"StdinOnce", true},
        {"AttachStdin", true},
        {"AttachStdout", true},
        {"AttachStderr", true},
        {"Tty", false},
        {"Labels", {{k_test_label, k_label_value}}},
        {"HostConfig", {{"NetworkMode", "none"}, {"Memory", 64 << 20}}},
    };
    auto created = c.container_create("", body);
    INFO((created ? std::string() : created.error().message));
    REQUIRE(created);
    const std::string id = created->id;

    std::promise<bool> ready;
    auto ready_future = ready.get_future();
    std::mutex mu;
    std::string out, err;
    util::CancelToken cancel;
    std::optional<util::Result<void>> attached;
    std::thread attacher([&] {
        attached.emplace(attach_client.container_attach(
            id,
            [&](docker::StreamId s, std::string_view d) {
                std::lock_guard<std::mutex> lock(mu);
                (s == docker::StreamId::stderr_ ? err : out).append(d);
                return true;
            },
            [&](bool ok) { ready.set_value(ok); }, &cancel, "hello\n"));
    });
    const bool became_ready =
        ready_future.wait_for(std::chrono::seconds(30)) == std::future_status::ready &&
        ready_future.get();
    if (became_ready) {
        auto started = c.container_start(id);
        INFO((started ? std::string() : started.error().message));
        CHECK(started);
    }
    auto waited = c.container_wait(id, util::Clock::now() + std::chrono::seconds(60));
    // The stream ends when the container stops; give it a little, then stop waiting.
    std::thread watchdog([&, done = std::chrono::steady_clock::now() + std::chrono::seconds(10)] {
        while (std::chrono::steady_clock::now() < done && !cancel.cancelled())
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        cancel.cancel();
    });
    attacher.join();
    cancel.cancel();
    watchdog.join();

    REQUIRE(became_ready);
    REQUIRE(attached.has_value());
    INFO((*attached ? std::string() : attached->error().message));
    CHECK(attached->ok());
    REQUIRE(waited);
    CHECK(waited->status_code == 0);
    INFO("stdout: " << out << "\nstderr: " << err);
    CHECK(out == "got:hello\n");
    CHECK(err.empty());

    auto inspected = c.container_inspect(id);
    REQUIRE(inspected);
    CHECK((*inspected)["Config"]["OpenStdin"] == true);
    CHECK(inspected->dump().find("hello") == std::string::npos);
}

} // namespace

TEST_CASE("attach with stdin hands a line to the process and the engine keeps no trace of it",
          "[integration][docker][attach]") {
    REQUIRE_ENGINE();
    hello_through(client());
}

TEST_CASE("attach with stdin works over TCP with mutual TLS", "[integration][docker][attach]") {
    REQUIRE_ENGINE();
    REQUIRE_TLS_PROXY_TOOLS(engine_socket);
    TlsProxy proxy(engine_socket);
    docker::EndpointEnv env;
    env.docker_host = proxy.docker_host();
    env.tls_verify = "1";
    env.cert_path = proxy.good_certs().string();
    auto ep = docker::parse_endpoint(env);
    REQUIRE(ep);
    REQUIRE(ep->tls);
    docker::Client tls_client(*ep);
    INFO("socat log:\n" << proxy.log());
    REQUIRE(tls_client.negotiate());
    hello_through(tls_client);
}

TEST_CASE("attach with stdin to a missing container is not_found and sends nothing",
          "[integration][docker][attach]") {
    REQUIRE_ENGINE();
    std::vector<bool> ready;
    auto r = client().container_attach(
        "airlock-no-such-container-for-attach",
        [](docker::StreamId, std::string_view) { return true; },
        [&](bool ok) { ready.push_back(ok); }, nullptr, "hello\n");
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == util::ErrorKind::not_found);
    CHECK(r.error().message.find("attach to container airlock-no-such-container-for-attach: engine "
                                 "said 404: No such container: "
                                 "airlock-no-such-container-for-attach") == 0);
    CHECK(r.error().message.find("hello") == std::string::npos);
    CHECK(ready == std::vector<bool>{false});
}
