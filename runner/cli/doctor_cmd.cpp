#include "cli/main.hpp"

#include "docker/client.hpp"
#include "sandbox/classify.hpp"

#include <cstdio>
#include <string>

namespace airlock::cli {

namespace {
struct Doctor {
    int problems = 0;
    void ok(const std::string& what) { std::printf("ok    %s\n", what.c_str()); }
    void bad(const std::string& what, const std::string& fix) {
        ++problems;
        std::printf("FAIL  %s\n      fix: %s\n", what.c_str(), fix.c_str());
    }
    void note(const std::string& what) { std::printf("note  %s\n", what.c_str()); }
};
} // namespace

int doctor_command(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::puts("usage: airlock doctor\n\nChecks the engine, its API version, runtimes, "
                      "cgroups, storage and the local images; prints a fix for each problem.");
            return 0;
        }
        std::fprintf(stderr, "airlock doctor: unexpected argument \"%s\"\n", a.c_str());
        return sandbox::exit_code::usage;
    }
    Doctor d;
    auto endpoint = docker::parse_endpoint(docker::endpoint_env_from_process());
    if (!endpoint) {
        d.bad(endpoint.error().message, "correct DOCKER_HOST or unset it");
        return 1;
    }
    docker::Client client(*endpoint);
    auto v = client.negotiate();
    if (!v) {
        d.bad("engine at " + endpoint->display() + ": " + v.error().message,
              "start it (`ci/setup.sh engine` starts Debian's dockerd), or set DOCKER_HOST");
        return 1;
    }
    d.ok("engine at " + endpoint->display() + ": " + (v->podman ? "Podman " : "Docker ") +
         v->version + ", API " + v->api_version + " (using " + v->negotiated + ")");
    if (endpoint->kind == docker::Endpoint::Kind::tcp && !endpoint->tls)
        d.bad("the engine is reached over TCP without TLS",
              "set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the client certificates");
    auto info = client.info();
    if (!info) {
        d.bad("engine info: " + info.error().message, "check the engine's log");
        return 1;
    }
    const auto& j = *info;
    std::string cg = j.value("CgroupVersion", "");
    d.ok("cgroups v" + (cg.empty() ? std::string("?") : cg) + ", driver " +
         j.value("CgroupDriver", "?"));
    d.ok("storage driver " + j.value("Driver", "?"));
    std::string runtimes;
    bool runsc = false;
    if (j.contains("Runtimes") && j["Runtimes"].is_object())
        for (auto it = j["Runtimes"].begin(); it != j["Runtimes"].end(); ++it) {
            runtimes += (runtimes.empty() ? "" : ", ") + it.key();
            if (it.key() == "runsc") runsc = true;
        }
    d.ok("runtimes: " + runtimes);
    if (!runsc)
        d.note("runsc (gVisor) is not configured; `--runtime runsc` will fail (apt-get install "
               "runsc, then add it to /etc/docker/daemon.json runtimes)");
    if (!j.value("MemoryLimit", true))
        d.bad("the engine cannot enforce memory limits", "enable the memory cgroup controller");
    if (!j.value("SwapLimit", true))
        d.note("no swap limit support (swapaccount=0); with no swap on the host the memory "
               "limit still holds");
    if (!j.value("PidsLimit", true))
        d.bad("the engine cannot enforce pids limits", "enable the pids cgroup controller");
    for (const char* img : {"airlock/agent-base:latest", "airlock/debian:bookworm"}) {
        auto r = client.image_inspect(img);
        if (r)
            d.ok(std::string("image ") + img + " present");
        else
            d.bad(std::string("image ") + img + ": " + r.error().message,
                  "build it with `ci/setup.sh images`");
    }
    auto left = client.containers_by_label("io.airlock.run", "");
    if (left && !left->empty())
        d.bad(std::to_string(left->size()) + " airlock containers are left on the engine",
              "`airlock clean` removes them");
    std::printf("%d problem%s\n", d.problems, d.problems == 1 ? "" : "s");
    return d.problems == 0 ? 0 : 1;
}

} // namespace airlock::cli
