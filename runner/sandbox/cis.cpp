#include "sandbox/cis.hpp"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <string_view>

namespace airlock::sandbox {

using nlohmann::json;

namespace {

// The value at a dotted inspect path ("HostConfig.SecurityOpt"); null when any part is absent.
json at(const json& inspect, std::string_view path) {
    const json* j = &inspect;
    while (!path.empty()) {
        const auto dot = path.find('.');
        const std::string key(path.substr(0, dot));
        if (!j->is_object() || !j->contains(key)) return nullptr;
        j = &(*j)[key];
        path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
    }
    return *j;
}

CisCheck reading(const json& inspect, const char* id, const char* title,
                 std::initializer_list<const char*> paths) {
    CisCheck c{id, title, "", "", json::object()};
    for (const char* p : paths)
        c.effective[p] = at(inspect, p);
    return c;
}

// Takes `c` by reference so that a reason built from c.effective is complete before the move.
CisCheck decided(CisCheck& c, bool pass, std::string reason) {
    c.status = pass ? k_cis_pass : k_cis_fail;
    c.reason = std::move(reason);
    return std::move(c);
}

CisCheck not_applicable(const char* id, const char* title, std::string reason) {
    return CisCheck{id, title, k_cis_not_applicable, std::move(reason), json::object()};
}

bool empty_list(const json& v) {
    return v.is_null() || (v.is_array() && v.empty());
}
std::int64_t number(const json& v) {
    return v.is_number() ? v.get<std::int64_t>() : 0;
}
std::string text(const json& v) {
    return v.is_string() ? v.get<std::string>() : std::string();
}

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
    return s;
}

bool has_value(const std::vector<std::string>& values, std::string_view v) {
    return std::find(values.begin(), values.end(), v) != values.end();
}

// "host" is the only mode CIS names here; "container:<id>" shares another container's instead.
CisCheck not_host(const json& inspect, const char* id, const char* title, const char* path,
                  const char* what) {
    auto c = reading(inspect, id, title, {path});
    const std::string mode = text(c.effective[path]);
    if (mode == "host")
        return decided(c, false,
                       std::string(path) + " is \"host\": the " + what +
                           " is shared with the engine host");
    return decided(c, true, std::string(path) + " is \"" + mode + "\", not \"host\"");
}

bool sensitive_host_dir(const std::string& source) {
    if (source == "/") return true;
    for (const char* dir : {"/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr"}) {
        const std::string d = dir;
        if (source == d || source.rfind(d + "/", 0) == 0) return true;
    }
    return false;
}

// One published port binding; an empty host IP is every interface, an empty port any port.
struct Published {
    std::string container_port, host_ip, host_port;
};
std::vector<Published> published(const json& port_bindings) {
    std::vector<Published> out;
    if (!port_bindings.is_object()) return out;
    for (const auto& [port, binds] : port_bindings.items()) {
        if (!binds.is_array() || binds.empty()) out.push_back({port, "", ""});
        if (binds.is_array())
            for (const auto& b : binds)
                out.push_back({port, b.value("HostIp", ""), b.value("HostPort", "")});
    }
    return out;
}

std::string describe(const Published& p) {
    return p.container_port + " -> " + (p.host_ip.empty() ? "*" : p.host_ip) + ":" +
           (p.host_port.empty() ? "any" : p.host_port);
}

std::vector<CisCheck> port_checks(const json& inspect) {
    std::vector<CisCheck> out;
    const std::initializer_list<const char*> paths = {"HostConfig.PortBindings",
                                                      "HostConfig.PublishAllPorts"};
    auto c8 =
        reading(inspect, "5.8", "Ensure privileged ports are not mapped within containers", paths);
    auto c9 =
        reading(inspect, "5.9", "Ensure that only needed ports are open on the container", paths);
    auto c14 = reading(
        inspect, "5.14",
        "Ensure that incoming container traffic is bound to a specific host interface", paths);
    const auto ports = published(c8.effective["HostConfig.PortBindings"]);
    const bool publish_all = c8.effective["HostConfig.PublishAllPorts"] == true;
    if (ports.empty() && !publish_all) {
        const std::string none = "no port is published";
        out.push_back(decided(c8, true, none));
        out.push_back(decided(c9, true, none + ": the task needs none"));
        out.push_back(decided(c14, true, none + ", so no host interface takes traffic"));
        return out;
    }
    std::string privileged, wildcard, all;
    for (const auto& p : ports) {
        all += (all.empty() ? "" : ", ") + describe(p);
        const long host_port = p.host_port.empty() ? 0 : std::atol(p.host_port.c_str());
        if (host_port > 0 && host_port < 1024)
            privileged += (privileged.empty() ? "" : ", ") + describe(p);
        if (p.host_ip.empty() || p.host_ip == "0.0.0.0" || p.host_ip == "::")
            wildcard += (wildcard.empty() ? "" : ", ") + describe(p);
    }
    if (publish_all) {
        all += std::string(all.empty() ? "" : ", ") + "every exposed port (PublishAllPorts)";
        wildcard += std::string(wildcard.empty() ? "" : ", ") + "PublishAllPorts";
    }
    out.push_back(decided(c8, privileged.empty(),
                          privileged.empty() ? "no host port below 1024 is published"
                                             : "host ports below 1024 published: " + privileged));
    out.push_back(decided(c9, false, "ports published: " + all + "; an airlock task needs none"));
    out.push_back(decided(c14, wildcard.empty(),
                          wildcard.empty() ? "every published port names a host IP"
                                           : "bound to every host interface: " + wildcard));
    return out;
}

CisCheck apparmor_check(const json& inspect) {
    auto c = reading(inspect, "5.2", "Ensure that, if applicable, an AppArmor Profile is enabled",
                     {"HostConfig.SecurityOpt", "HostConfig.Privileged"});
    const auto profiles = security_opt_values(c.effective["HostConfig.SecurityOpt"], "apparmor");
    if (c.effective["HostConfig.Privileged"] == true)
        return decided(c, false, "privileged: the engine runs it unconfined");
    if (has_value(profiles, "unconfined"))
        return decided(c, false, "apparmor=unconfined opts out of AppArmor");
    if (!profiles.empty()) return decided(c, true, "AppArmor profile " + profiles.back());
    // Inspect shows AppArmorProfile only after start; before it, the opt-out is what decides.
    return decided(c, true,
                   "no opt-out: the engine applies docker-default at start wherever the host has "
                   "AppArmor");
}

CisCheck selinux_check(const json& inspect) {
    auto c = reading(inspect, "5.3", "Ensure that, if applicable, SELinux security options are set",
                     {"HostConfig.SecurityOpt", "ProcessLabel", "MountLabel"});
    const auto labels = security_opt_values(c.effective["HostConfig.SecurityOpt"], "label");
    if (has_value(labels, "disable"))
        return decided(c, false, "label=disable turns SELinux labelling off");
    const std::string process_label = text(c.effective["ProcessLabel"]);
    if (!process_label.empty()) return decided(c, true, "SELinux process label " + process_label);
    return CisCheck{c.id, c.title, k_cis_not_applicable,
                    "no SELinux label: the engine runs without SELinux support", c.effective};
}

CisCheck capabilities_check(const json& inspect) {
    auto c = reading(inspect, "5.4",
                     "Ensure that Linux kernel capabilities are restricted within containers",
                     {"HostConfig.CapAdd", "HostConfig.CapDrop"});
    const json& add = c.effective["HostConfig.CapAdd"];
    if (!empty_list(add)) return decided(c, false, "capabilities added: " + add.dump());
    bool drop_all = false;
    if (c.effective["HostConfig.CapDrop"].is_array())
        for (const auto& cap : c.effective["HostConfig.CapDrop"])
            if (cap.is_string() && (upper(cap.get<std::string>()) == "ALL" ||
                                    upper(cap.get<std::string>()) == "CAP_ALL"))
                drop_all = true;
    if (!drop_all)
        return decided(c, false, "CapDrop lacks ALL: the engine's default capability set applies");
    return decided(c, true, "every capability dropped (CapDrop ALL), none added");
}

std::vector<CisCheck> mount_checks(const json& inspect, const ContainerPlan& plan) {
    auto c6 = reading(inspect, "5.6",
                      "Ensure sensitive host system directories are not mounted on containers",
                      {"Mounts"});
    auto c20 =
        reading(inspect, "5.20", "Ensure mount propagation mode is not set to shared", {"Mounts"});
    auto c32 =
        reading(inspect, "5.32",
                "Ensure that the Docker socket is not mounted inside any containers", {"Mounts"});
    std::string sensitive, shared, sockets, binds;
    const json& mounts = c6.effective["Mounts"];
    if (mounts.is_array())
        for (const auto& m : mounts) {
            const std::string source = m.value("Source", "");
            const std::string where = source + " at " + m.value("Destination", "");
            if (m.value("Type", "") == "bind") {
                binds += (binds.empty() ? "" : ", ") + source;
                if (sensitive_host_dir(source))
                    sensitive += (sensitive.empty() ? "" : ", ") + where;
            }
            const std::string propagation = m.value("Propagation", "");
            if (propagation == "shared" || propagation == "rshared")
                shared += (shared.empty() ? "" : ", ") + where + " (" + propagation + ")";
            if (mounts_engine_socket(m)) sockets += (sockets.empty() ? "" : ", ") + where;
        }
    std::string bind_note =
        binds.empty() ? "no host path is bound (workspace volume " + plan.workspace_volume + ")"
                      : "host paths bound: " + binds;
    std::vector<CisCheck> out;
    out.push_back(decided(c6, sensitive.empty(),
                          sensitive.empty() ? bind_note : "sensitive host paths: " + sensitive));
    out.push_back(decided(c20, shared.empty(),
                          shared.empty() ? "no mount has shared propagation"
                                         : "shared propagation: " + shared));
    out.push_back(decided(c32, sockets.empty(),
                          sockets.empty() ? "no container engine socket is mounted"
                                          : "engine socket mounted: " + sockets));
    return out;
}

CisCheck restart_check(const json& inspect) {
    auto c = reading(inspect, "5.15",
                     "Ensure that the 'on-failure' container restart policy is set to '5'",
                     {"HostConfig.RestartPolicy"});
    const json& policy = c.effective["HostConfig.RestartPolicy"];
    const std::string name = policy.is_object() ? policy.value("Name", "") : "";
    const std::int64_t retries =
        policy.is_object() ? policy.value("MaximumRetryCount", std::int64_t{0}) : 0;
    if (name.empty() || name == "no") return decided(c, true, "never restarted: a task runs once");
    if (name == "on-failure" && retries > 0 && retries <= 5)
        return decided(c, true, "on-failure, at most " + std::to_string(retries));
    return decided(c, false,
                   "restart policy " + name +
                       (name == "on-failure" ? " with " + std::to_string(retries) + " retries"
                                             : std::string()) +
                       ": more than 5 restarts possible");
}

CisCheck seccomp_check(const json& inspect) {
    auto c = reading(inspect, "5.22", "Ensure the default seccomp profile is not Disabled",
                     {"HostConfig.SecurityOpt", "HostConfig.Privileged"});
    const auto profiles = security_opt_values(c.effective["HostConfig.SecurityOpt"], "seccomp");
    if (c.effective["HostConfig.Privileged"] == true)
        return decided(c, false, "privileged: the engine applies no seccomp filter");
    if (has_value(profiles, "unconfined"))
        return decided(c, false, "seccomp=unconfined disables the filter");
    if (!profiles.empty()) return decided(c, true, "a custom seccomp profile applies");
    return decided(c, true, "the engine's default seccomp profile applies");
}

CisCheck ulimit_check(const json& inspect, const config::RunOptions& opts) {
    auto c = reading(inspect, "5.19",
                     "Ensure that the default ulimit is overwritten at runtime if needed",
                     {"HostConfig.Ulimits"});
    const json& ulimits = c.effective["HostConfig.Ulimits"];
    std::string set;
    if (ulimits.is_array())
        for (const auto& u : ulimits)
            set += (set.empty() ? "" : ", ") + u.value("Name", "?") + " " +
                   std::to_string(u.value("Soft", std::int64_t{-1})) + "/" +
                   std::to_string(u.value("Hard", std::int64_t{-1}));
    if (set.empty())
        return decided(c, false,
                       "no ulimit set: the daemon's default applies where the plan needs nofile " +
                           std::to_string(opts.nofile) + " and nproc " +
                           std::to_string(opts.nproc));
    return decided(c, true, "overridden at create: " + set);
}

} // namespace

std::vector<CisCheck> evaluate_cis(const json& inspect, const config::RunOptions& opts,
                                   const ContainerPlan& plan) {
    std::vector<CisCheck> out;
    auto add = [&](CisCheck c) { out.push_back(std::move(c)); };

    add(not_applicable("5.1", "Ensure swarm mode is not Enabled, if not needed",
                       "an engine-wide setting (docker info: Swarm), not part of a container"));
    add(apparmor_check(inspect));
    add(selinux_check(inspect));
    add(capabilities_check(inspect));
    {
        auto c = reading(inspect, "5.5", "Ensure that privileged containers are not used",
                         {"HostConfig.Privileged"});
        const bool privileged = c.effective["HostConfig.Privileged"] == true;
        add(decided(c, !privileged,
                    privileged ? "privileged: every capability and host device"
                               : "not privileged"));
    }
    auto mounts = mount_checks(inspect, plan); // 5.6, 5.20, 5.32
    add(std::move(mounts[0]));
    add(not_applicable("5.7", "Ensure sshd is not run within containers",
                       "decided by the processes inside a running container (docker exec ps), not "
                       "by its configuration; airlock never execs into the task"));
    auto ports = port_checks(inspect); // 5.8, 5.9, 5.14
    add(std::move(ports[0]));
    add(std::move(ports[1]));
    add(not_host(inspect, "5.10", "Ensure that the host's network namespace is not shared",
                 "HostConfig.NetworkMode", "network namespace"));
    {
        auto c = reading(inspect, "5.11", "Ensure that the memory usage for containers is limited",
                         {"HostConfig.Memory"});
        const auto mem = number(c.effective["HostConfig.Memory"]);
        add(decided(c, mem > 0,
                    mem > 0 ? "memory limited to " + std::to_string(mem) + " bytes"
                            : "no memory limit (HostConfig.Memory 0)"));
    }
    {
        // A hard limit (NanoCpus or a CFS quota) bounds the CPU more than relative shares do.
        auto c =
            reading(inspect, "5.12", "Ensure that CPU priority is set appropriately on containers",
                    {"HostConfig.CpuShares", "HostConfig.NanoCpus", "HostConfig.CpuQuota"});
        const auto shares = number(c.effective["HostConfig.CpuShares"]);
        const auto nano = number(c.effective["HostConfig.NanoCpus"]);
        const auto quota = number(c.effective["HostConfig.CpuQuota"]);
        std::string how;
        if (nano > 0)
            how = "limited to " + std::to_string(nano) + " NanoCpus";
        else if (quota > 0)
            how = "limited by a CFS quota of " + std::to_string(quota) + " us";
        if (shares > 0)
            how += (how.empty() ? "" : "; ") + std::string("CpuShares ") + std::to_string(shares);
        add(decided(c, !how.empty(),
                    how.empty() ? "no CPU shares, NanoCpus or quota: it may take every CPU" : how));
    }
    {
        auto c = reading(inspect, "5.13",
                         "Ensure that the container's root filesystem is mounted as read only",
                         {"HostConfig.ReadonlyRootfs"});
        const bool ro = c.effective["HostConfig.ReadonlyRootfs"] == true;
        add(decided(c, ro, ro ? "root filesystem read-only" : "root filesystem writable"));
    }
    add(std::move(ports[2]));
    add(restart_check(inspect));
    add(not_host(inspect, "5.16", "Ensure that the host's process namespace is not shared",
                 "HostConfig.PidMode", "process namespace"));
    add(not_host(inspect, "5.17", "Ensure that the host's IPC namespace is not shared",
                 "HostConfig.IpcMode", "IPC namespace"));
    {
        auto c = reading(inspect, "5.18",
                         "Ensure that host devices are not directly exposed to containers",
                         {"HostConfig.Devices"});
        const json& devices = c.effective["HostConfig.Devices"];
        const bool none = empty_list(devices);
        add(decided(c, none,
                    none ? "no host device exposed" : "host devices exposed: " + devices.dump()));
    }
    add(ulimit_check(inspect, opts));
    add(std::move(mounts[1]));
    add(not_host(inspect, "5.21", "Ensure that the host's UTS namespace is not shared",
                 "HostConfig.UTSMode", "UTS namespace"));
    add(seccomp_check(inspect));
    const char* exec_reason = "about docker exec commands run against the container, which are not "
                              "in its configuration; airlock never execs into the task";
    add(not_applicable("5.23",
                       "Ensure that docker exec commands are not used with the privileged option",
                       exec_reason));
    add(not_applicable("5.24",
                       "Ensure that docker exec commands are not used with the user=root option",
                       exec_reason));
    {
        auto c = reading(inspect, "5.25", "Ensure that cgroup usage is confirmed",
                         {"HostConfig.CgroupParent"});
        const std::string parent = text(c.effective["HostConfig.CgroupParent"]);
        add(decided(c, parent.empty(),
                    parent.empty() ? "the engine's default cgroup parent"
                                   : "cgroup parent " + parent + ": airlock asks for none"));
    }
    {
        auto c = reading(inspect, "5.26",
                         "Ensure that the container is restricted from acquiring additional "
                         "privileges",
                         {"HostConfig.SecurityOpt"});
        bool nnp = false;
        for (const auto& v :
             security_opt_values(c.effective["HostConfig.SecurityOpt"], "no-new-privileges"))
            nnp = nnp || v.empty() || v == "true";
        add(decided(c, nnp,
                    nnp ? "no-new-privileges set" : "no-new-privileges missing from SecurityOpt"));
    }
    add(not_applicable("5.27", "Ensure that container health is checked at runtime",
                       "a disposable task runs once; airlock watches its exit, timeout and OOM "
                       "instead of probing a long-running service"));
    {
        auto c = reading(inspect, "5.28",
                         "Ensure that Docker commands always make use of the latest version of "
                         "their image",
                         {"Image"});
        c.status = k_cis_not_applicable;
        c.reason = "whether a newer image exists upstream is not in the container's "
                   "configuration; it runs " +
                   (plan.image_id.empty() ? text(c.effective["Image"]) : plan.image_id) +
                   ", resolved from the reference at preflight";
        add(std::move(c));
    }
    {
        auto c = reading(inspect, "5.29", "Ensure that the PIDs cgroup limit is used",
                         {"HostConfig.PidsLimit"});
        const auto pids = number(c.effective["HostConfig.PidsLimit"]);
        add(decided(c, pids > 0,
                    pids > 0 ? "at most " + std::to_string(pids) + " processes"
                             : "no PIDs limit (HostConfig.PidsLimit " +
                                   c.effective["HostConfig.PidsLimit"].dump() + ")"));
    }
    {
        auto c = reading(inspect, "5.30",
                         "Ensure that Docker's default bridge \"docker0\" is not "
                         "used",
                         {"HostConfig.NetworkMode"});
        const std::string mode = text(c.effective["HostConfig.NetworkMode"]);
        const bool bridge = mode.empty() || mode == "default" || mode == "bridge";
        add(decided(c, !bridge,
                    bridge           ? "network mode \"" + mode + "\" is the default bridge docker0"
                    : mode == "none" ? "network mode none: no interface but lo"
                                     : "network mode " + mode));
    }
    add(not_host(inspect, "5.31", "Ensure that the host's user namespaces are not shared",
                 "HostConfig.UsernsMode", "user namespace"));
    add(std::move(mounts[2]));
    return out;
}

json to_json(const std::vector<CisCheck>& checks) {
    json list = json::array();
    for (const auto& c : checks)
        list.push_back({{"id", c.id},
                        {"title", c.title},
                        {"status", c.status},
                        {"reason", c.reason},
                        {"effective", c.effective}});
    return json{{"benchmark", k_cis_benchmark},
                {"version", k_cis_version},
                {"section", k_cis_section},
                {"checks", list}};
}

} // namespace airlock::sandbox
