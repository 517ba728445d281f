#include "cli/main.hpp"

#include "docker/client.hpp"
#include "sandbox/classify.hpp"
#include "sandbox/resources.hpp"

#include <cxxopts.hpp>

#include <cstdio>

namespace airlock::cli {

int clean_command(int argc, char** argv) {
    cxxopts::Options o("airlock clean",
                       "Remove containers, volumes and networks labelled io.airlock.run.");
    o.add_options()("run", "only the objects of this run id", cxxopts::value<std::string>(),
                    "ID")("h,help", "show this help");
    cxxopts::ParseResult res;
    try {
        res = o.parse(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "airlock clean: %s\n", e.what());
        return sandbox::exit_code::usage;
    }
    if (res.count("help")) {
        std::fputs(o.help().c_str(), stdout);
        return 0;
    }
    auto endpoint = docker::parse_endpoint(docker::endpoint_env_from_process());
    if (!endpoint) {
        std::fprintf(stderr, "airlock: %s\n", endpoint.error().message.c_str());
        return sandbox::exit_code::usage;
    }
    docker::Client client(*endpoint);
    if (auto v = client.negotiate(); !v) {
        std::fprintf(stderr, "airlock: %s\n", v.error().message.c_str());
        return sandbox::exit_code::engine;
    }
    std::string run_id = res.count("run") ? res["run"].as<std::string>() : std::string();
    auto rep = sandbox::clean(client, run_id);
    if (!rep) {
        std::fprintf(stderr, "airlock: %s\n", rep.error().message.c_str());
        return sandbox::exit_code::engine;
    }
    std::printf("removed %zu containers, %zu volumes, %zu networks\n", rep->containers,
                rep->volumes, rep->networks);
    for (const auto& e : rep->errors)
        std::fprintf(stderr, "airlock: %s\n", e.c_str());
    return rep->errors.empty() ? 0 : sandbox::exit_code::engine;
}

} // namespace airlock::cli
