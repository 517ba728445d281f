// libFuzzer target: any bytes as a task file, then merged with flags, validated and enforced the
// way `airlock run --task` does it. Must never crash or throw, and no message may carry the value
// of an environment variable or secret.
#include "config/run_options.hpp"
#include "policy/enforce.hpp"
#include "policy/policy.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace airlock;

namespace {

// Every value airlock's environment hands out carries this marker.
constexpr std::string_view k_marker = "s3cr3t";

// Variables named MISSING* are unset; every other one has a value long enough for a secret.
std::optional<std::string> lookup(const std::string& name) {
    if (name.rfind("MISSING", 0) == 0) return std::nullopt;
    return std::string(k_marker) + "-" + name + "-value";
}

// What `--memory 1g --env FROM_FLAG=1 --secret FLAG_TOKEN -- true` adds on the command line.
config::RunRequest flags() {
    config::RunRequest r;
    r.values["memory"] = "1g";
    r.origin["memory"] = "--memory";
    r.env = {"FROM_FLAG=1"};
    r.env_origins = {"--env"};
    r.env_origin = "--env";
    r.secrets = {"FLAG_TOKEN"};
    r.secret_origins = {"--secret"};
    return r;
}

const std::vector<policy::Policy>& policies() {
    static const std::vector<policy::Policy> all = [] {
        std::vector<policy::Policy> out{policy::builtin()};
        for (const auto& name : policy::preset_names()) {
            auto p = policy::load({name});
            if (!p) std::abort();
            out.push_back(std::move(*p));
        }
        return out;
    }();
    return all;
}

void check(bool ok) {
    if (!ok) std::abort();
}

void resolve_and_enforce(const config::RunRequest& req, bool marker_in_input) {
    auto opts = config::resolve(req, lookup);
    if (!opts) {
        check(marker_in_input || opts.error().message.find(k_marker) == std::string::npos);
        return;
    }
    check(!opts->command.empty());
    for (const auto& s : opts->secrets)
        check(s.value.size() >= 8);
    for (const auto& p : policies()) {
        config::RunOptions o = *opts;
        auto decision = policy::enforce(p, req, o, policy::NoApprovals());
        if (!decision)
            check(marker_in_input || decision.error().message.find(k_marker) == std::string::npos);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto req = config::parse_task_json(text, "fuzz.json", "/fuzz/base");
    if (!req) return 0;
    // NAME=@FILE would read the machine's files (or block on a FIFO); point them nowhere instead.
    for (auto& s : req->secrets) {
        const auto at = s.find("=@");
        if (at != std::string::npos) s = s.substr(0, at) + "=@/nonexistent/airlock-fuzz";
    }
    const bool marker_in_input = text.find(k_marker) != std::string_view::npos;
    resolve_and_enforce(*req, marker_in_input);
    resolve_and_enforce(config::merge(*req, flags()), marker_in_input);
    resolve_and_enforce(config::merge(flags(), *req), marker_in_input);
    return 0;
}
