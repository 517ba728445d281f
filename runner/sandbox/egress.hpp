// The egress sidecar of the proxied network modes (allowlist, audit): airlock-egress in its own
// container on the egress network, non-root, no capabilities, read-only root filesystem, with a
// tmpfs volume it shares with the agent container (read-only there). The proxy listens on a unix
// socket in that volume and puts airlock-init next to it; airlock-init, PID 1 of the agent
// container, relays 127.0.0.1:3128 to the socket. The agent container itself has no interface
// but lo. The proxy writes one JSON line per decision on its stdout, which airlock attaches to.
#pragma once

#include "config/run_options.hpp"
#include "docker/client.hpp"
#include "sandbox/resources.hpp"
#include "sandbox/spec.hpp"
#include "util/cancel.hpp"

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace airlock::sandbox {

inline constexpr const char* k_egress_user = "65534:65534";

inline constexpr const char* k_egress_ca_file = "/etc/airlock/ca.pem";

// The proxy's --config: the rules, the sockets, and the credential endpoints (never their values).
nlohmann::json egress_config(const config::NetworkOptions& net,
                             const std::vector<config::Credential>& credentials = {});

// The line the proxy reads on its standard input at start: {"secrets":{"<name>":"<value>"}}.
// It holds secret values: wipe it once sent.
std::string credentials_stdin_line(const std::vector<config::Credential>& credentials);

// The CA bundle for credential upstreams, read on airlock's host: PEM certificates, at most 8 MiB.
// `origin` says where the path came from, for the message.
util::Result<std::string> read_ca_bundle(const std::filesystem::path& path,
                                         const std::string& origin);

// The sidecar's image, from scratch: /airlock-egress, /run/airlock with airlock-init and the
// directory (owned by the proxy's uid) where the proxy creates its sockets, and the CA bundle at
// /etc/airlock/ca.pem when credential endpoints need one. The engine copies /run/airlock into the
// run's empty volume when the sidecar is created.
std::string egress_image_tar(const std::string& ca_bundle = {});

// The sidecar's create body. With credentials, stdin is open for the secrets line.
nlohmann::json egress_create_body(const std::string& run_id, const std::string& image,
                                  const std::string& volume, const config::NetworkOptions& net,
                                  const std::vector<config::Credential>& credentials = {});

// Hardening the engine did not apply to the sidecar (empty when all is as planned).
std::vector<Mismatch> verify_egress(const nlohmann::json& inspect, const std::string& volume,
                                    const config::NetworkOptions& net);

// The report's summary of decision lines: allowed hosts with counts and bytes, every refusal.
nlohmann::json network_summary(const std::vector<nlohmann::json>& decisions);

class EgressSidecar {
public:
    using OnDecision = std::function<void(const nlohmann::json&)>;
    EgressSidecar(docker::Client& client, Resources& resources, std::string run_id,
                  config::NetworkOptions net, std::vector<config::Credential> credentials,
                  std::string ca_bundle, OnDecision on_decision);
    ~EgressSidecar();
    EgressSidecar(const EgressSidecar&) = delete;
    EgressSidecar& operator=(const EgressSidecar&) = delete;

    // The volume; then, in the background, the image, the container (verified) and its start,
    // so the agent container is created, filled and started meanwhile. ready() waits for the
    // proxy's ready line.
    util::Result<void> start();
    // Waits until the sidecar exists and is verified (its volume is filled then): the agent
    // container may start after that.
    util::Result<void> created();
    util::Result<void> ready();
    // Asks the proxy to stop and waits for its last lines. Safe to call more than once.
    void stop();

    const std::string& volume() const { return m_volume; }
    nlohmann::json report() const; // image, container, network, verification, summary
    std::vector<nlohmann::json> decisions() const;

private:
    void on_output(docker::StreamId stream, std::string_view data);
    void line(const std::string& text, bool is_stdout);
    util::Result<void> create_and_verify();
    util::Result<void> attach_and_start();

    docker::Client& m_client;
    Resources& m_resources;
    std::string m_run_id;
    config::NetworkOptions m_net;
    std::vector<config::Credential> m_credentials; // values go to the proxy's stdin, nowhere else
    std::string m_ca_bundle;
    OnDecision m_on_decision;
    std::string m_volume, m_image, m_container;
    nlohmann::json m_verification;

    mutable std::mutex m_mu;
    std::condition_variable m_cv;
    bool m_ready = false, m_ended = false, m_proxy_stopped = false;
    std::optional<bool> m_attached;
    std::string m_out_buf, m_err_buf;
    std::vector<nlohmann::json> m_decisions;
    std::vector<std::string> m_errors; // the proxy's error lines and stderr, last few
    util::CancelToken m_stop_attach;
    std::thread m_attach, m_starter;
    std::optional<util::Result<void>> m_start_result, m_created_result;
    bool m_stopped = false;
};

} // namespace airlock::sandbox
