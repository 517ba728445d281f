// The container the agent runs in, as an engine create body: a pure function of the options.
#pragma once

#include "config/run_options.hpp"
#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace airlock::sandbox {

inline constexpr const char* k_label_run = "io.airlock.run";
inline constexpr const char* k_label_role = "io.airlock.role";
inline constexpr const char* k_workspace_path = "/workspace";
inline constexpr const char* k_secrets_mount = "/run/secrets";
// Proxied network modes: the sidecar's volume, read-only in the agent container; airlock-init
// (PID 1) relays 127.0.0.1:3128 to the proxy's socket there.
inline constexpr const char* k_egress_mount = "/run/airlock";
inline constexpr const char* k_init_path = "/run/airlock/airlock-init";
inline constexpr const char* k_egress_socket = "/run/airlock/sock/egress.sock";
inline constexpr int k_proxy_port = 3128;
// Credential endpoints (docs/credentials.md): 127.0.0.1:3129 relayed to the proxy's second socket.
inline constexpr const char* k_credential_socket = "/run/airlock/sock/credentials.sock";
inline constexpr int k_credential_port = 3129;

enum class CredentialEndpoint { no, yes };

struct ContainerPlan {
    std::string run_id;
    std::string image_id;            // sha256:... so the run uses exactly what was resolved
    std::string workspace_volume;    // volume mode
    std::string workspace_host_path; // bind modes: absolute path
    std::string secrets_volume;      // file secrets: tmpfs volume, read-only at /run/secrets
    std::string egress_volume;       // proxied network: the sidecar's volume, at /run/airlock
    std::vector<std::string> image_entrypoint; // kept after airlock-init when it is PID 1
    CredentialEndpoint credential_endpoint = CredentialEndpoint::no; // airlock-init relays 3129
};

// The command line of the agent container in proxied modes: airlock-init, its relay, then the
// image's own entrypoint and the command.
std::vector<std::string> init_entrypoint(const std::vector<std::string>& image_entrypoint,
                                         CredentialEndpoint credential_endpoint);

// The POST /containers/create body with the hardening of DESIGN.md applied.
nlohmann::json build_create_body(const config::RunOptions& opts, const ContainerPlan& plan);

// A hardening setting the engine did not apply, found by comparing inspect with the plan.
struct Mismatch {
    std::string field;
    std::string expected;
    std::string actual;
};
// What every container airlock starts must have, whatever its role: `user`, not privileged,
// read-only root filesystem, all capabilities dropped and none added, no devices,
// no-new-privileges, no seccomp or AppArmor opt-out, no host namespace.
std::vector<Mismatch> verify_hardening(const nlohmann::json& inspect, const std::string& user);
// Every setting the plan asked for, no seccomp/AppArmor opt-out, no engine socket, no device,
// no mount but the plan's workspace, and no create warning (each says something was not applied).
std::vector<Mismatch> verify_container(const nlohmann::json& inspect,
                                       const config::RunOptions& opts, const ContainerPlan& plan,
                                       const std::vector<std::string>& create_warnings);

// The refusal that stops a run whose container differs from the plan: the first mismatch, named
// (an engine warning at create counts as one). Success when there is none.
util::Result<void> refuse_on_mismatch(const std::vector<Mismatch>& mismatches);

// The first of `wanted` (the policy's runtimes, in order of preference) that the engine lists in
// /info's `Runtimes`, or a refusal that says how to install and register gVisor.
util::Result<std::string> pick_runtime(const std::vector<std::string>& wanted,
                                       const nlohmann::json& engine_runtimes);

// Whether an inspect `Mounts` entry hands a container engine's API socket (and so the host) to
// the container: its Source is the socket or a directory holding one, or its Destination is
// named like one.
bool mounts_engine_socket(const nlohmann::json& mount);

// The values given for `key` in HostConfig.SecurityOpt, in order: "key=value" or the legacy
// "key:value"; a bare "key" gives "".
std::vector<std::string> security_opt_values(const nlohmann::json& security_opt,
                                             std::string_view key);

} // namespace airlock::sandbox
