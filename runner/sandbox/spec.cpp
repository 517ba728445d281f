#include "sandbox/spec.hpp"

namespace airlock::sandbox {

using nlohmann::json;

json build_create_body(const config::RunOptions& o, const ContainerPlan& plan) {
    json env = json::array();
    bool home_set = false;
    for (const auto& [name, value] : o.env) {
        env.push_back(name + "=" + value);
        if (name == "HOME") home_set = true;
    }
    // The root filesystem is read-only; give tools a writable home on the tmpfs.
    if (!home_set) env.push_back("HOME=/tmp");

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
        {"NetworkMode", "none"},
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

    return json{
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
        {"NetworkDisabled", true},
        {"Labels", {{k_label_run, plan.run_id}, {k_label_role, "agent"}}},
        {"HostConfig", host},
    };
}

std::vector<Mismatch> verify_container(const json& inspect, const config::RunOptions& o) {
    std::vector<Mismatch> out;
    const json empty = json::object();
    const json& hc = inspect.contains("HostConfig") ? inspect["HostConfig"] : empty;
    const json& cfg = inspect.contains("Config") ? inspect["Config"] : empty;
    auto check = [&](const std::string& field, const json& actual, const json& expected) {
        if (actual != expected) out.push_back({field, expected.dump(), actual.dump()});
    };
    auto get = [](const json& j, const char* k) { return j.contains(k) ? j[k] : json(); };
    const auto mem = static_cast<std::int64_t>(o.memory);
    check("User", get(cfg, "User"), o.user);
    check("HostConfig.Privileged", get(hc, "Privileged"), false);
    check("HostConfig.ReadonlyRootfs", get(hc, "ReadonlyRootfs"), true);
    check("HostConfig.CapDrop", get(hc, "CapDrop"), json::array({"ALL"}));
    check("HostConfig.Memory", get(hc, "Memory"), mem);
    check("HostConfig.MemorySwap", get(hc, "MemorySwap"), mem);
    check("HostConfig.NanoCpus", get(hc, "NanoCpus"), o.nano_cpus);
    check("HostConfig.PidsLimit", get(hc, "PidsLimit"), o.pids);
    check("HostConfig.NetworkMode", get(hc, "NetworkMode"), "none");
    check("HostConfig.Runtime", get(hc, "Runtime"), o.runtime);
    json cap_add = get(hc, "CapAdd");
    if (!cap_add.is_null() && !(cap_add.is_array() && cap_add.empty()))
        out.push_back({"HostConfig.CapAdd", "[]", cap_add.dump()});
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
    bool nnp = false;
    if (hc.contains("SecurityOpt") && hc["SecurityOpt"].is_array())
        for (const auto& s : hc["SecurityOpt"])
            if (s == "no-new-privileges:true" || s == "no-new-privileges") nnp = true;
    if (!nnp)
        out.push_back(
            {"HostConfig.SecurityOpt", "no-new-privileges:true", get(hc, "SecurityOpt").dump()});
    for (const char* ns : {"PidMode", "IpcMode", "UTSMode", "UsernsMode"}) {
        auto v = get(hc, ns);
        if (v.is_string() && v.get<std::string>().rfind("host", 0) == 0)
            out.push_back({std::string("HostConfig.") + ns, "not host", v.dump()});
    }
    if (inspect.contains("Mounts") && inspect["Mounts"].is_array()) {
        for (const auto& m : inspect["Mounts"]) {
            std::string dest = m.value("Destination", "");
            if (dest != "/workspace") {
                out.push_back(
                    {"Mounts", "only /workspace", dest + " from " + m.value("Source", "")});
                continue;
            }
            const bool want_rw = o.workspace_mode != config::WorkspaceMode::bind_ro;
            const bool rw = m.contains("RW") && m["RW"].is_boolean() ? m["RW"].get<bool>() : true;
            if (rw != want_rw)
                out.push_back(
                    {"Mounts./workspace.RW", want_rw ? "true" : "false", rw ? "true" : "false"});
        }
    }
    return out;
}

} // namespace airlock::sandbox
