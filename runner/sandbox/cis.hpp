// CIS Docker Benchmark section 5 ("Container Runtime Configuration") for one container, decided
// from its inspect answer alone: a pure function, so the report shows what the engine applied.
#pragma once

#include "config/run_options.hpp"
#include "sandbox/spec.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace airlock::sandbox {

inline constexpr const char* k_cis_benchmark = "CIS Docker Benchmark";
// Its section 5 numbering (5.1 swarm mode ... 5.32 Docker socket) differs from v1.2-1.5.
inline constexpr const char* k_cis_version = "1.6.0";
inline constexpr const char* k_cis_section = "5";

inline constexpr const char* k_cis_pass = "pass";
inline constexpr const char* k_cis_fail = "fail";
inline constexpr const char* k_cis_not_applicable = "not_applicable";

struct CisCheck {
    std::string id;     // "5.22"
    std::string title;  // the benchmark's recommendation, as worded in k_cis_version
    std::string status; // k_cis_pass, k_cis_fail or k_cis_not_applicable
    std::string reason; // one line; always set
    // Inspect paths ("HostConfig.SecurityOpt") to the exact values looked at, so they can be
    // compared with `docker inspect`; {} when the check needs nothing from inspect.
    nlohmann::json effective;
};

// Every section-5 recommendation, in benchmark order: decided from `inspect` where one
// container's configuration decides it, otherwise not_applicable with the reason.
std::vector<CisCheck> evaluate_cis(const nlohmann::json& inspect, const config::RunOptions& opts,
                                   const ContainerPlan& plan);

// {"benchmark", "version", "section", "checks": [{id, title, status, reason, effective}]}
nlohmann::json to_json(const std::vector<CisCheck>& checks);

} // namespace airlock::sandbox
