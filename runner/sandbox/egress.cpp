#include "sandbox/egress.hpp"

#include "init/sidecar_binaries.hpp"
#include "sandbox/scratch_image.hpp"
#include "util/read_limited.hpp"

#include <chrono>
#include <ctime>
#include <map>
#include <memory>
#include <tuple>

namespace airlock::sandbox {

using nlohmann::json;
using util::ErrorKind;
using util::make_error;
using util::Result;

namespace {
constexpr std::int64_t k_sidecar_memory = 256ll << 20;
constexpr std::int64_t k_sidecar_pids = 2048; // a thread per connection (512 at most), lookups
constexpr std::int64_t k_sidecar_nofile = 4096;
constexpr std::size_t k_line_max = 1 << 16;
constexpr auto k_ready_timeout = std::chrono::seconds(15);
constexpr auto k_stop_timeout = std::chrono::seconds(5);

void wipe(std::string& s) {
    volatile char* p = s.data();
    for (std::size_t i = 0; i < s.size(); ++i)
        p[i] = 0;
    s.clear();
}
} // namespace

json egress_config(const config::NetworkOptions& net,
                   const std::vector<config::Credential>& credentials) {
    json budget = net.upload_budget ? json(*net.upload_budget) : json();
    json config = {{"mode", net.mode},
                   {"allow", net.allow},
                   {"deny", net.deny},
                   {"methods", net.methods},
                   {"allow_cidrs", net.allow_cidrs},
                   {"upload_budget", budget},
                   {"listen", k_egress_socket}};
    if (credentials.empty()) return config;
    json list = json::array();
    for (const auto& c : credentials)
        list.push_back({{"name", c.name},
                        {"host", c.host},
                        {"port", c.port},
                        {"base_path", c.base_path},
                        {"header", c.header},
                        {"template", c.value_template},
                        {"max_requests", c.max_requests ? json(*c.max_requests) : json()},
                        {"max_bytes", c.max_bytes ? json(*c.max_bytes) : json()}});
    config["credentials"] = list;
    config["credential_listen"] = k_credential_socket;
    config["ca_file"] = k_egress_ca_file;
    return config;
}

std::string credentials_stdin_line(const std::vector<config::Credential>& credentials) {
    json secrets = json::object();
    for (const auto& c : credentials)
        secrets[c.name] = c.value;
    return json{{"secrets", secrets}}.dump() + "\n";
}

Result<std::string> read_ca_bundle(const std::filesystem::path& path, const std::string& origin) {
    std::string text;
    const std::string where =
        (origin == "default" ? std::string("the CA bundle") : origin) + " " + path.string();
    switch (util::read_limited(path, 8u << 20, text)) {
    case util::ReadStatus::unreadable:
        return make_error(ErrorKind::invalid_input,
                          where + ": cannot be read; credential upstreams are verified against it "
                                  "(install ca-certificates, or pass --ca-bundle FILE)");
    case util::ReadStatus::too_large:
        return make_error(ErrorKind::invalid_input, where + ": larger than 8 MiB");
    case util::ReadStatus::ok:
        break;
    }
    if (text.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
        return make_error(ErrorKind::invalid_input,
                          where + ": holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
    return text;
}

json egress_create_body(const std::string& run_id, const std::string& image,
                        const std::string& volume, const config::NetworkOptions& net,
                        const std::vector<config::Credential>& credentials) {
    // The secrets line arrives on stdin (attached before start); StdinOnce closes it when airlock
    // detaches. Nothing secret is in the body: docker inspect shows what it shows.
    const bool stdin_open = !credentials.empty();
    json host = {
        {"NetworkMode", net.egress_network},
        {"ReadonlyRootfs", true},
        {"CapDrop", json::array({"ALL"})},
        {"CapAdd", json::array()},
        {"SecurityOpt", json::array({"no-new-privileges:true"})},
        {"Privileged", false},
        {"Memory", k_sidecar_memory},
        {"MemorySwap", k_sidecar_memory},
        {"NanoCpus", 1'000'000'000},
        {"PidsLimit", k_sidecar_pids},
        {"IpcMode", "private"},
        {"Ulimits",
         json::array(
             {{{"Name", "nofile"}, {"Soft", k_sidecar_nofile}, {"Hard", k_sidecar_nofile}}})},
        {"Mounts", json::array({{{"Type", "volume"},
                                 {"Source", volume},
                                 {"Target", k_egress_mount},
                                 {"ReadOnly", false}}})},
        {"AutoRemove", false},
        {"RestartPolicy", {{"Name", "no"}}},
        {"LogConfig", {{"Type", "none"}, {"Config", json::object()}}},
    };
    return {{"Image", image},
            {"Entrypoint", json::array({"/airlock-egress"})},
            {"Cmd", json::array({"--config", egress_config(net, credentials).dump()})},
            {"User", k_egress_user},
            {"WorkingDir", "/"},
            {"Env", json::array()},
            {"Hostname", "airlock-egress"},
            {"Tty", false},
            {"OpenStdin", stdin_open},
            {"StdinOnce", stdin_open},
            {"AttachStdin", stdin_open},
            {"AttachStdout", true},
            {"AttachStderr", true},
            {"Labels", {{k_label_run, run_id}, {k_label_role, "egress"}}},
            {"HostConfig", host}};
}

std::vector<Mismatch> verify_egress(const json& inspect, const std::string& volume,
                                    const config::NetworkOptions& net) {
    std::vector<Mismatch> out = verify_hardening(inspect, k_egress_user);
    const json empty = json::object();
    const json& hc = inspect.contains("HostConfig") ? inspect["HostConfig"] : empty;
    auto get = [](const json& j, const char* k) { return j.contains(k) ? j[k] : json(); };
    auto check = [&](const std::string& field, const json& actual, const json& expected) {
        if (actual != expected) out.push_back({field, expected.dump(), actual.dump()});
    };
    check("HostConfig.Memory", get(hc, "Memory"), k_sidecar_memory);
    check("HostConfig.PidsLimit", get(hc, "PidsLimit"), k_sidecar_pids);
    check("HostConfig.NetworkMode", get(hc, "NetworkMode"), net.egress_network);
    const json mounts = get(inspect, "Mounts");
    bool seen = false;
    if (mounts.is_array())
        for (const auto& m : mounts) {
            const std::string dest = m.value("Destination", "");
            if (dest == k_egress_mount && m.value("Type", "") == "volume" &&
                m.value("Name", "") == volume && !mounts_engine_socket(m)) {
                seen = true;
                continue;
            }
            out.push_back({"Mounts", std::string("only the volume at ") + k_egress_mount,
                           m.value("Type", "") + " " + m.value("Source", "") + " at " + dest});
        }
    if (!seen) out.push_back({"Mounts", std::string("volume at ") + k_egress_mount, "no mount"});
    return out;
}

std::string egress_image_tar(const std::string& ca_bundle) {
    // A fixed mtime: the same binaries (and bundle) give the same tar, hence the same image tag.
    std::vector<TarEntry> entries = {
        {"airlock-egress", init::egress_binary(), false, 0555, 0, 0},
        {"run/", {}, true, 0755, 0, 0},
        {"run/airlock/", {}, true, 0755, 0, 0},
        {"run/airlock/airlock-init", init::init_binary(), false, 0555, 0, 0},
        {"run/airlock/sock/", {}, true, 0755, 65534, 65534}};
    if (!ca_bundle.empty()) {
        entries.push_back({"etc/", {}, true, 0755, 0, 0});
        entries.push_back({"etc/airlock/", {}, true, 0755, 0, 0});
        entries.push_back({"etc/airlock/ca.pem", ca_bundle, false, 0444, 0, 0});
    }
    return tar_of_entries(entries, 0);
}

json network_summary(const std::vector<json>& decisions) {
    // (host, port) -> requests, bytes up, bytes down, for what was let through.
    std::map<std::pair<std::string, std::int64_t>,
             std::tuple<std::int64_t, std::int64_t, std::int64_t>>
        allowed;
    json refused = json::array();
    // Credential endpoints: requests, bytes and statuses per endpoint, whatever the decision.
    json endpoints = json::object();
    std::int64_t n_allow = 0, n_deny = 0, n_cut = 0;
    auto num = [](const json& j, const char* k) {
        return j.contains(k) && j[k].is_number_integer() ? j[k].get<std::int64_t>()
                                                         : std::int64_t{0};
    };
    for (const auto& d : decisions) {
        const std::string decision = d.contains("decision") && d["decision"].is_string()
                                         ? d["decision"].get<std::string>()
                                         : std::string();
        if (d.contains("endpoint") && d["endpoint"].is_string()) {
            json& e = endpoints[d["endpoint"].get<std::string>()];
            if (e.is_null())
                e = {{"requests", 0},
                     {"bytes_up", 0},
                     {"bytes_down", 0},
                     {"statuses", json::object()}};
            e["requests"] = e["requests"].get<std::int64_t>() + 1;
            e["bytes_up"] = e["bytes_up"].get<std::int64_t>() + num(d, "bytes_up");
            e["bytes_down"] = e["bytes_down"].get<std::int64_t>() + num(d, "bytes_down");
            const std::string status = d.contains("status") && d["status"].is_number_integer()
                                           ? d["status"].dump()
                                           : decision;
            json& count = e["statuses"][status];
            count = count.is_null() ? 1 : count.get<std::int64_t>() + 1;
        }
        if (decision == "allow") {
            ++n_allow;
            const std::string host = d.contains("host") && d["host"].is_string()
                                         ? d["host"].get<std::string>()
                                         : std::string();
            auto& [count, up, down] = allowed[{host, num(d, "port")}];
            ++count;
            up += num(d, "bytes_up");
            down += num(d, "bytes_down");
        } else {
            decision == "cut" ? ++n_cut : ++n_deny;
            refused.push_back(d);
        }
    }
    json hosts = json::array();
    for (const auto& [key, value] : allowed)
        hosts.push_back({{"host", key.first},
                         {"port", key.second},
                         {"requests", std::get<0>(value)},
                         {"bytes_up", std::get<1>(value)},
                         {"bytes_down", std::get<2>(value)}});
    return {{"decisions", static_cast<std::int64_t>(decisions.size())},
            {"allowed", n_allow},
            {"denied", n_deny},
            {"cut", n_cut},
            {"hosts", hosts},
            {"endpoints", endpoints},
            {"refusals", refused}};
}

EgressSidecar::EgressSidecar(docker::Client& client, Resources& resources, std::string run_id,
                             config::NetworkOptions net,
                             std::vector<config::Credential> credentials, std::string ca_bundle,
                             OnDecision on_decision)
    : m_client(client), m_resources(resources), m_run_id(std::move(run_id)), m_net(std::move(net)),
      m_credentials(std::move(credentials)), m_ca_bundle(std::move(ca_bundle)),
      m_on_decision(std::move(on_decision)) {}

EgressSidecar::~EgressSidecar() {
    if (m_starter.joinable()) m_starter.join();
    m_stop_attach.cancel();
    if (m_attach.joinable()) m_attach.join();
}

Result<void> EgressSidecar::start() {
    if (m_net.egress_network != "bridge") {
        auto found = m_client.network_inspect(m_net.egress_network);
        if (!found && found.error().kind == ErrorKind::not_found)
            return make_error(ErrorKind::invalid_input,
                              "egress network \"" + m_net.egress_network +
                                  "\" does not exist on the engine (create it with `docker "
                                  "network create " +
                                  m_net.egress_network +
                                  "`, or change network.egress_network / --egress-network)");
        if (!found) return found.error();
    }
    // The volume holds airlock-init and the proxy's socket, nothing secret. The engine fills the
    // empty volume from the image's /run/airlock when the sidecar is created (ownership
    // included), before either container starts, so both can start at once: airlock-init waits
    // for the socket to appear.
    m_volume = "airlock-" + m_run_id + "-egress";
    if (auto r =
            m_client.volume_create(m_volume, {{k_label_run, m_run_id}, {k_label_role, "egress"}});
        !r)
        return r;
    m_resources.add_volume(m_volume);

    m_starter = std::thread([this] {
        auto created = create_and_verify();
        {
            std::lock_guard<std::mutex> lock(m_mu);
            m_created_result = created;
            m_cv.notify_all();
        }
        auto r = created ? attach_and_start() : created;
        std::lock_guard<std::mutex> lock(m_mu);
        m_start_result = std::move(r);
    });
    return {};
}

Result<void> EgressSidecar::create_and_verify() {
    auto image = ensure_image_from_tar(m_client, "airlock/egress", egress_image_tar(m_ca_bundle));
    if (!image) return image.error();
    m_image = *image;
    auto created = m_client.container_create(
        "airlock-" + m_run_id + "-egress",
        egress_create_body(m_run_id, m_image, m_volume, m_net, m_credentials));
    if (!created) return created.error();
    m_container = created->id;
    m_resources.add_container(m_container);
    auto ins = m_client.container_inspect(m_container);
    if (!ins) return ins.error();
    auto mismatches = verify_egress(*ins, m_volume, m_net);
    for (const auto& w : created->warnings)
        mismatches.push_back({"Warnings", "none", w});
    json list = json::array();
    for (const auto& m : mismatches)
        list.push_back({{"field", m.field}, {"expected", m.expected}, {"actual", m.actual}});
    {
        std::lock_guard<std::mutex> lock(m_mu);
        m_verification = {{"verified", mismatches.empty()}, {"mismatches", list}};
    }
    if (!mismatches.empty())
        return make_error(ErrorKind::refused,
                          "the engine did not apply " + mismatches.front().field +
                              " to the egress proxy (wanted " + mismatches.front().expected +
                              ", got " + mismatches.front().actual + ")");
    return {};
}

Result<void> EgressSidecar::created() {
    std::unique_lock<std::mutex> lock(m_mu);
    m_cv.wait(lock, [&] { return m_created_result.has_value(); });
    return *m_created_result;
}

Result<void> EgressSidecar::ready() {
    if (m_starter.joinable()) m_starter.join();
    std::lock_guard<std::mutex> lock(m_mu);
    if (!m_start_result)
        return make_error(ErrorKind::server_error, "the egress proxy was not started");
    return *m_start_result;
}

Result<void> EgressSidecar::attach_and_start() {
    m_attach = std::thread([this] {
        // The secrets line lives only as long as the attach: the proxy reads it at start.
        std::string secrets =
            m_credentials.empty() ? std::string() : credentials_stdin_line(m_credentials);
        auto r = m_client.container_attach(
            m_container,
            [this](docker::StreamId s, std::string_view d) {
                on_output(s, d);
                return true;
            },
            [this](bool ok) {
                std::lock_guard<std::mutex> lock(m_mu);
                m_attached = ok;
                m_cv.notify_all();
            },
            &m_stop_attach, secrets);
        wipe(secrets);
        std::lock_guard<std::mutex> lock(m_mu);
        if (!r) m_errors.push_back("attach: " + r.error().message);
        if (!m_attached) m_attached = false;
        m_ended = true;
        m_cv.notify_all();
    });
    {
        std::unique_lock<std::mutex> lock(m_mu);
        m_cv.wait(lock, [&] { return m_attached.has_value(); });
        if (!*m_attached)
            return make_error(ErrorKind::server_error,
                              "could not attach to the egress proxy" +
                                  (m_errors.empty() ? std::string() : ": " + m_errors.back()));
    }
    if (auto r = m_client.container_start(m_container); !r) return r;
    std::unique_lock<std::mutex> lock(m_mu);
    m_cv.wait_for(lock, k_ready_timeout, [&] { return m_ready || m_ended; });
    if (m_ready) return {};
    std::string why =
        m_errors.empty() ? std::string("no word from it within 15 s") : m_errors.back();
    return make_error(ErrorKind::server_error, "the egress proxy did not start: " + why);
}

void EgressSidecar::on_output(docker::StreamId stream, std::string_view data) {
    const bool out = stream == docker::StreamId::stdout_;
    std::string& buf = out ? m_out_buf : m_err_buf;
    buf.append(data);
    std::size_t start = 0;
    for (;;) {
        auto nl = buf.find('\n', start);
        if (nl == std::string::npos) break;
        line(buf.substr(start, nl - start), out);
        start = nl + 1;
    }
    buf.erase(0, start);
    if (buf.size() > k_line_max) buf.clear(); // a runaway line is dropped, never buffered
}

void EgressSidecar::line(const std::string& text, bool is_stdout) {
    if (text.empty()) return;
    if (!is_stdout) {
        std::lock_guard<std::mutex> lock(m_mu);
        if (m_errors.size() < 20) m_errors.push_back(text);
        return;
    }
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        std::lock_guard<std::mutex> lock(m_mu);
        if (m_errors.size() < 20) m_errors.push_back("unreadable line from the proxy: " + text);
        return;
    }
    const std::string type = j.value("type", "");
    if (type == "decision") {
        j.erase("type");
        {
            std::lock_guard<std::mutex> lock(m_mu);
            m_decisions.push_back(j);
        }
        // An exception must not end the attach thread (and the process) over one odd line.
        try {
            if (m_on_decision) m_on_decision(j);
        } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lock(m_mu);
            if (m_errors.size() < 20) m_errors.push_back(std::string("decision line: ") + e.what());
        }
        return;
    }
    std::lock_guard<std::mutex> lock(m_mu);
    if (type == "ready") {
        m_ready = true;
        m_cv.notify_all();
    } else if (type == "stopped") {
        m_proxy_stopped = true;
        m_cv.notify_all();
    } else if (type == "error" && m_errors.size() < 20) {
        m_errors.push_back(j.value("message", text));
    }
}

void EgressSidecar::stop() {
    if (m_stopped) return;
    m_stopped = true;
    if (m_starter.joinable()) m_starter.join();
    if (m_container.empty()) return;
    (void)m_client.container_kill(m_container, "TERM");
    {
        // The proxy closes its connections, writes their lines, then says "stopped".
        std::unique_lock<std::mutex> lock(m_mu);
        m_cv.wait_for(lock, k_stop_timeout, [&] { return m_ended || m_proxy_stopped; });
    }
    // Gone now rather than at teardown (this runs while the workspace is read back), which also
    // ends the attach stream. Teardown still has it, should this fail.
    (void)m_client.container_remove(m_container, docker::Force::yes);
    m_stop_attach.cancel();
    if (m_attach.joinable()) m_attach.join();
}

json EgressSidecar::report() const {
    std::lock_guard<std::mutex> lock(m_mu);
    json errors = m_errors;
    return {
        {"image", m_image},      {"container", m_container},      {"network", m_net.egress_network},
        {"user", k_egress_user}, {"enforcement", m_verification}, {"messages", errors}};
}

std::vector<json> EgressSidecar::decisions() const {
    std::lock_guard<std::mutex> lock(m_mu);
    return m_decisions;
}

} // namespace airlock::sandbox
