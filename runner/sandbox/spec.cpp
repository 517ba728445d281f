#include "sandbox/spec.hpp"

#include <filesystem>
#include <set>

namespace airlock::sandbox {

using nlohmann::json;

std::vector<std::string> init_entrypoint(const std::vector<std::string>& image_entrypoint,
                                         CredentialEndpoint credential_endpoint) {
    std::vector<std::string> argv = {k_init_path, "--handoff",
                                     std::to_string(k_proxy_port) + "=" + k_egress_socket};
    if (credential_endpoint == CredentialEndpoint::yes)
        argv.insert(argv.end(),
                    {"--handoff", std::to_string(k_credential_port) + "=" + k_credential_socket});
    argv.emplace_back("--");
    argv.insert(argv.end(), image_entrypoint.begin(), image_entrypoint.end());
    return argv;
}

json build_create_body(const config::RunOptions& o, const ContainerPlan& plan) {
    json env = json::array();
    std::set<std::string> names;
    for (const auto& [name, value] : o.env) {
        env.push_back(name + "=" + value);
        names.insert(name);
    }
    // The root filesystem is read-only; give tools a writable home on the tmpfs.
    if (!names.count("HOME")) env.push_back("HOME=/tmp");
    const bool proxied = !plan.egress_volume.empty();
    if (proxied) {
        const std::string proxy = "http://127.0.0.1:" + std::to_string(k_proxy_port);
        for (const char* name :
             {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"})
            if (!names.count(name)) env.push_back(std::string(name) + "=" + proxy);
        for (const char* name : {"NO_PROXY", "no_proxy"})
            if (!names.count(name)) env.push_back(std::string(name) + "=localhost,127.0.0.1,::1");
    }

    json mounts = json::array();
    if (o.workspace_mode == config::WorkspaceMode::volume) {
        mounts.push_back({{"Type", "volume"},
                          {"Source", plan.workspace_volume},
                          {"Target", k_workspace_path},
                          {"ReadOnly", false}});
    } else {
        mounts.push_back({{"Type", "bind"},
                          {"Source", plan.workspace_host_path},
                          {"Target", k_workspace_path},
                          {"ReadOnly", o.workspace_mode == config::WorkspaceMode::bind_ro},
                          {"BindOptions", {{"Propagation", "rprivate"}}}});
    }
    if (!plan.secrets_volume.empty())
        mounts.push_back({{"Type", "volume"},
                          {"Source", plan.secrets_volume},
                          {"Target", k_secrets_mount},
                          {"ReadOnly", true}});
    if (proxied)
        mounts.push_back({{"Type", "volume"},
                          {"Source", plan.egress_volume},
                          {"Target", k_egress_mount},
                          {"ReadOnly", true}});
    const bool open = o.network.mode == "open";

    const auto mem = static_cast<std::int64_t>(o.memory);
    json host = {
        {"Memory", mem},
        {"MemorySwap", mem}, // otherwise the engine allows twice Memory with swap
        {"NanoCpus", o.nano_cpus},
        {"PidsLimit", o.pids},
        {"ReadonlyRootfs", true},
        {"CapDrop", json::array({"ALL"})},
        {"CapAdd", json::array()},
        {"SecurityOpt", json::array({"no-new-privileges:true"})},
        {"Privileged", false},
        {"NetworkMode", open ? o.network.egress_network : "none"},
        {"IpcMode", "private"},
        {"PidMode", ""},
        {"UTSMode", ""},
        {"UsernsMode", ""},
        {"Tmpfs",
         {{"/tmp", "rw,nosuid,nodev,exec,size=" + std::to_string(o.tmpfs_size) + ",mode=1777"}}},
        {"Ulimits", json::array({{{"Name", "nofile"}, {"Soft", o.nofile}, {"Hard", o.nofile}},
                                 {{"Name", "nproc"}, {"Soft", o.nproc}, {"Hard", o.nproc}}})},
        {"Mounts", mounts},
        {"AutoRemove", false}, // we need the exit state and the workspace afterwards
        {"RestartPolicy", {{"Name", "no"}}},
        // airlock keeps the output (attached before start); the engine host stores none of it.
        {"LogConfig", {{"Type", "none"}, {"Config", json::object()}}},
        {"Runtime", o.runtime},
    };

    json body{
        {"Image", plan.image_id},
        {"Cmd", o.command},
        {"User", o.user},
        {"WorkingDir", k_workspace_path},
        {"Env", env},
        {"Hostname", "airlock"},
        {"Tty", false},
        {"OpenStdin", false},
        {"AttachStdin", false},
        {"AttachStdout", false},
        {"AttachStderr", false},
        {"NetworkDisabled", !open},
        {"Labels", {{k_label_run, plan.run_id}, {k_label_role, "agent"}}},
        {"HostConfig", host},
    };
    if (proxied)
        body["Entrypoint"] = init_entrypoint(plan.image_entrypoint, plan.credential_endpoint);
    return body;
}

namespace {

// Where engines put their API socket; "*" is any one path component (a uid).
const std::vector<std::vector<std::string>>& engine_socket_paths() {
    static const std::vector<std::vector<std::string>> paths = {
        {"run", "docker.sock"},
        {"var", "run", "docker.sock"},
        {"run", "podman", "podman.sock"},
        {"var", "run", "podman", "podman.sock"},
        {"run", "containerd", "containerd.sock"},
        {"var", "run", "containerd", "containerd.sock"},
        {"run", "user", "*", "docker.sock"},
        {"run", "user", "*", "podman", "podman.sock"},
        {"var", "run", "user", "*", "docker.sock"},
        {"var", "run", "user", "*", "podman", "podman.sock"},
    };
    return paths;
}

bool named_like_engine_socket(const std::filesystem::path& p) {
    const auto name = p.filename().string();
    return name == "docker.sock" || name == "podman.sock" || name == "containerd.sock";
}

std::vector<std::string> components(const std::string& path) {
    std::vector<std::string> out;
    for (const auto& c : std::filesystem::path(path).lexically_normal())
        if (c != "/" && !c.empty()) out.push_back(c.string());
    return out;
}

} // namespace

bool mounts_engine_socket(const json& mount) {
    const std::string source = mount.value("Source", "");
    const std::string dest = mount.value("Destination", "");
    if (named_like_engine_socket(std::filesystem::path(dest).lexically_normal()) ||
        named_like_engine_socket(std::filesystem::path(source).lexically_normal()))
        return true;
    if (mount.value("Type", "") != "bind" || source.empty()) return false;
    // A directory on the way to a socket ("/", "/run", "/run/user/1000") holds it too.
    const auto have = components(source);
    for (const auto& sock : engine_socket_paths()) {
        if (have.size() >= sock.size()) continue;
        bool prefix = true;
        for (std::size_t i = 0; i < have.size() && prefix; ++i)
            prefix = sock[i] == "*" || sock[i] == have[i];
        if (prefix) return true;
    }
    return false;
}

std::vector<std::string> security_opt_values(const json& security_opt, std::string_view key) {
    std::vector<std::string> out;
    if (!security_opt.is_array()) return out;
    for (const auto& item : security_opt) {
        if (!item.is_string()) continue;
        const std::string s = item.get<std::string>();
        const auto sep = s.find_first_of("=:");
        if (s.substr(0, sep) != key) continue;
        out.push_back(sep == std::string::npos ? std::string() : s.substr(sep + 1));
    }
    return out;
}

std::vector<Mismatch> verify_hardening(const json& inspect, const std::string& user) {
    std::vector<Mismatch> out;
    const json empty = json::object();
    const json& hc = inspect.contains("HostConfig") ? inspect["HostConfig"] : empty;
    const json& cfg = inspect.contains("Config") ? inspect["Config"] : empty;
    auto check = [&](const std::string& field, const json& actual, const json& expected) {
        if (actual != expected) out.push_back({field, expected.dump(), actual.dump()});
    };
    auto get = [](const json& j, const char* k) { return j.contains(k) ? j[k] : json(); };
    check("User", get(cfg, "User"), user);
    check("HostConfig.Privileged", get(hc, "Privileged"), false);
    check("HostConfig.ReadonlyRootfs", get(hc, "ReadonlyRootfs"), true);
    check("HostConfig.CapDrop", get(hc, "CapDrop"), json::array({"ALL"}));
    json cap_add = get(hc, "CapAdd");
    if (!cap_add.is_null() && !(cap_add.is_array() && cap_add.empty()))
        out.push_back({"HostConfig.CapAdd", "[]", cap_add.dump()});
    json devices = get(hc, "Devices");
    if (!devices.is_null() && !(devices.is_array() && devices.empty()))
        out.push_back({"HostConfig.Devices", "[]", devices.dump()});
    const json security_opt = get(hc, "SecurityOpt");
    bool nnp = false;
    for (const auto& v : security_opt_values(security_opt, "no-new-privileges"))
        if (v.empty() || v == "true") nnp = true;
    if (!nnp)
        out.push_back({"HostConfig.SecurityOpt", "no-new-privileges:true", security_opt.dump()});
    for (const auto& v : security_opt_values(security_opt, "seccomp"))
        if (v == "unconfined")
            out.push_back({"HostConfig.SecurityOpt.seccomp", "the engine's default profile",
                           "seccomp=unconfined"});
    for (const auto& v : security_opt_values(security_opt, "apparmor"))
        if (v == "unconfined")
            out.push_back({"HostConfig.SecurityOpt.apparmor", "the engine's default profile",
                           "apparmor=unconfined"});
    // Empty where the host has no AppArmor; "unconfined" only when something opted out.
    if (get(inspect, "AppArmorProfile") == "unconfined")
        out.push_back({"AppArmorProfile", "docker-default (or none without AppArmor on the host)",
                       "unconfined"});
    for (const char* ns : {"PidMode", "IpcMode", "UTSMode", "UsernsMode"}) {
        auto v = get(hc, ns);
        if (v.is_string() && v.get<std::string>().rfind("host", 0) == 0)
            out.push_back({std::string("HostConfig.") + ns, "not host", v.dump()});
    }
    return out;
}

std::vector<Mismatch> verify_container(const json& inspect, const config::RunOptions& o,
                                       const ContainerPlan& plan,
                                       const std::vector<std::string>& create_warnings) {
    std::vector<Mismatch> out = verify_hardening(inspect, o.user);
    const json empty = json::object();
    const json& hc = inspect.contains("HostConfig") ? inspect["HostConfig"] : empty;
    const json& cfg = inspect.contains("Config") ? inspect["Config"] : empty;
    auto check = [&](const std::string& field, const json& actual, const json& expected) {
        if (actual != expected) out.push_back({field, expected.dump(), actual.dump()});
    };
    auto get = [](const json& j, const char* k) { return j.contains(k) ? j[k] : json(); };
    const auto mem = static_cast<std::int64_t>(o.memory);
    if (!plan.image_id.empty()) check("Image", get(inspect, "Image"), plan.image_id);
    check("HostConfig.Memory", get(hc, "Memory"), mem);
    check("HostConfig.MemorySwap", get(hc, "MemorySwap"), mem);
    check("HostConfig.NanoCpus", get(hc, "NanoCpus"), o.nano_cpus);
    check("HostConfig.PidsLimit", get(hc, "PidsLimit"), o.pids);
    check("HostConfig.NetworkMode", get(hc, "NetworkMode"),
          o.network.mode == "open" ? o.network.egress_network : "none");
    if (!plan.egress_volume.empty())
        check("Config.Entrypoint", get(cfg, "Entrypoint"),
              init_entrypoint(plan.image_entrypoint, plan.credential_endpoint));
    check("HostConfig.Runtime", get(hc, "Runtime"), o.runtime);
    json ulimits = get(hc, "Ulimits");
    for (const auto& [name, value] :
         {std::pair<const char*, std::int64_t>{"nofile", o.nofile}, {"nproc", o.nproc}}) {
        bool found = false;
        if (ulimits.is_array())
            for (const auto& u : ulimits)
                if (u.value("Name", "") == name && u.value("Soft", std::int64_t{-1}) == value &&
                    u.value("Hard", std::int64_t{-1}) == value)
                    found = true;
        if (!found)
            out.push_back(
                {std::string("HostConfig.Ulimits.") + name, std::to_string(value), ulimits.dump()});
    }
    json tmpfs = get(hc, "Tmpfs");
    if (!tmpfs.is_object() || !tmpfs.contains("/tmp") ||
        tmpfs["/tmp"].get<std::string>().find("size=" + std::to_string(o.tmpfs_size)) ==
            std::string::npos)
        out.push_back(
            {"HostConfig.Tmpfs./tmp", "size=" + std::to_string(o.tmpfs_size), tmpfs.dump()});
    const bool volume_mode = o.workspace_mode == config::WorkspaceMode::volume;
    const std::string want_workspace =
        volume_mode ? "volume " + plan.workspace_volume : "bind " + plan.workspace_host_path;
    bool workspace_seen = false;
    const json mounts = get(inspect, "Mounts");
    if (mounts.is_array()) {
        for (const auto& m : mounts) {
            const std::string dest = m.value("Destination", "");
            const std::string type = m.value("Type", "");
            const std::string source = m.value("Source", "");
            if (mounts_engine_socket(m)) {
                out.push_back(
                    {"Mounts", "no container engine socket", type + " " + source + " at " + dest});
                continue;
            }
            if (dest == k_secrets_mount && !plan.secrets_volume.empty()) {
                const bool rw = !m.contains("RW") || !m["RW"].is_boolean() || m["RW"].get<bool>();
                if (type != "volume" || m.value("Name", "") != plan.secrets_volume || rw)
                    out.push_back({"Mounts./run/secrets", "read-only volume " + plan.secrets_volume,
                                   type + " " + m.value("Name", source) + (rw ? " rw" : " ro")});
                continue;
            }
            if (dest == k_egress_mount && !plan.egress_volume.empty()) {
                const bool rw = !m.contains("RW") || !m["RW"].is_boolean() || m["RW"].get<bool>();
                if (type != "volume" || m.value("Name", "") != plan.egress_volume || rw)
                    out.push_back({"Mounts./run/airlock", "read-only volume " + plan.egress_volume,
                                   type + " " + m.value("Name", source) + (rw ? " rw" : " ro")});
                continue;
            }
            if (dest != k_workspace_path) {
                out.push_back({"Mounts", "only /workspace", dest + " from " + source});
                continue;
            }
            workspace_seen = true;
            // A volume's Source is its directory on the engine host; its Name is what we made.
            const std::string what = type == "volume" ? m.value("Name", "") : source;
            if (volume_mode ? (type != "volume" || what != plan.workspace_volume)
                            : (type != "bind" || source != plan.workspace_host_path))
                out.push_back({"Mounts./workspace", want_workspace, type + " " + what});
            const bool want_rw = o.workspace_mode != config::WorkspaceMode::bind_ro;
            const bool rw = m.contains("RW") && m["RW"].is_boolean() ? m["RW"].get<bool>() : true;
            if (rw != want_rw)
                out.push_back(
                    {"Mounts./workspace.RW", want_rw ? "true" : "false", rw ? "true" : "false"});
        }
    }
    if (!workspace_seen) out.push_back({"Mounts./workspace", want_workspace, "no mount"});
    // The engine says it dropped or changed something it was asked for (e.g. a limit the kernel
    // lacks): the container is not the one planned. Last, so a named field is reported first.
    for (const auto& w : create_warnings)
        out.push_back({"Warnings", "none", w});
    const json rules = get(hc, "DeviceCgroupRules");
    if (rules.is_array() && !rules.empty())
        out.push_back({"HostConfig.DeviceCgroupRules", "[]", rules.dump()});
    return out;
}

util::Result<void> refuse_on_mismatch(const std::vector<Mismatch>& mismatches) {
    if (mismatches.empty()) return {};
    const auto& m = mismatches.front();
    if (m.field == "Warnings")
        return util::make_error(util::ErrorKind::refused,
                                "the engine warned at create: " + m.actual +
                                    "; refusing to start the task");
    return util::make_error(util::ErrorKind::refused,
                            "the engine did not apply " + m.field + " (wanted " + m.expected +
                                ", got " + m.actual + "); refusing to start the task");
}

util::Result<std::string> pick_runtime(const std::vector<std::string>& wanted,
                                       const nlohmann::json& engine_runtimes) {
    for (const auto& r : wanted)
        if (engine_runtimes.is_object() && engine_runtimes.contains(r)) return r;
    std::string list;
    for (const auto& r : wanted)
        list += (list.empty() ? "" : ", ") + r;
    return util::make_error(util::ErrorKind::refused,
                            "the engine has none of the allowed runtimes (" + list +
                                "); install gVisor (apt-get install runsc) and register it in "
                                "/etc/docker/daemon.json \"runtimes\", or use a policy that allows "
                                "runc; `airlock doctor` lists what the engine has");
}

} // namespace airlock::sandbox
