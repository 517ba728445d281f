// The container the agent runs in, as an engine create body: a pure function of the options.
#pragma once

#include "config/run_options.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace airlock::sandbox {

inline constexpr const char* k_label_run = "io.airlock.run";
inline constexpr const char* k_label_role = "io.airlock.role";
inline constexpr const char* k_workspace_path = "/workspace";

struct ContainerPlan {
    std::string run_id;
    std::string image_id;            // sha256:... so the run uses exactly what was resolved
    std::string workspace_volume;    // volume mode
    std::string workspace_host_path; // bind modes: absolute path
};

// The POST /containers/create body with the hardening of DESIGN.md applied.
nlohmann::json build_create_body(const config::RunOptions& opts, const ContainerPlan& plan);

// A hardening setting the engine did not apply, found by comparing inspect with the plan.
struct Mismatch {
    std::string field;
    std::string expected;
    std::string actual;
};
std::vector<Mismatch> verify_container(const nlohmann::json& inspect,
                                       const config::RunOptions& opts);

} // namespace airlock::sandbox
