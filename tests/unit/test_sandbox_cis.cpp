// CIS Docker Benchmark section 5 checks decided from hand-written inspect answers.
#include "sandbox/cis.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <set>
#include <string>

using airlock::config::RunOptions;
using airlock::sandbox::CisCheck;
using airlock::sandbox::ContainerPlan;
using airlock::sandbox::evaluate_cis;
using nlohmann::json;

namespace {

// What Docker 20.10 answers for an airlock agent container just created (trimmed to the fields
// a check may read, plus a few it must ignore).
const char* const k_hardened = R"({
  "Id": "4f1c0ffee0123456789abcdef0123456789abcdef0123456789abcdef012345",
  "Image": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
  "State": {"Status": "created", "Running": false},
  "AppArmorProfile": "",
  "ProcessLabel": "",
  "MountLabel": "",
  "ExecIDs": null,
  "HostConfig": {
    "Binds": null,
    "NetworkMode": "none",
    "PortBindings": {},
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": false,
    "CapAdd": null,
    "CapDrop": ["ALL"],
    "CgroupnsMode": "host",
    "IpcMode": "private",
    "Cgroup": "",
    "PidMode": "",
    "Privileged": false,
    "PublishAllPorts": false,
    "ReadonlyRootfs": true,
    "SecurityOpt": ["no-new-privileges:true"],
    "Tmpfs": {"/tmp": "rw,nosuid,nodev,exec,size=268435456,mode=1777"},
    "UTSMode": "",
    "UsernsMode": "",
    "Runtime": "runc",
    "CpuShares": 0,
    "Memory": 2147483648,
    "NanoCpus": 1000000000,
    "CgroupParent": "",
    "CpuQuota": 0,
    "Devices": [],
    "DeviceCgroupRules": null,
    "MemorySwap": 2147483648,
    "PidsLimit": 256,
    "Ulimits": [{"Name": "nofile", "Hard": 4096, "Soft": 4096},
                {"Name": "nproc", "Hard": 1024, "Soft": 1024}],
    "Mounts": [{"Type": "volume", "Source": "airlock-r1-workspace", "Target": "/workspace"}]
  },
  "Mounts": [{"Type": "volume", "Name": "airlock-r1-workspace",
              "Source": "/var/lib/docker/volumes/airlock-r1-workspace/_data",
              "Destination": "/workspace", "Driver": "local", "Mode": "z", "RW": true,
              "Propagation": ""}],
  "Config": {"User": "1000:1000", "Image": "sha256:0123456789abcdef"}
})";

json hardened() {
    return json::parse(k_hardened);
}

ContainerPlan plan() {
    ContainerPlan p;
    p.run_id = "r1";
    p.image_id = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    p.workspace_volume = "airlock-r1-workspace";
    return p;
}

std::vector<CisCheck> evaluate(const json& inspect) {
    return evaluate_cis(inspect, RunOptions{}, plan());
}

const CisCheck& find(const std::vector<CisCheck>& checks, const std::string& id) {
    auto it =
        std::find_if(checks.begin(), checks.end(), [&](const CisCheck& c) { return c.id == id; });
    if (it == checks.end()) FAIL("no CIS check " << id);
    return *it;
}

std::string describe(const std::vector<CisCheck>& checks) {
    std::string out;
    for (const auto& c : checks)
        out += c.id + " " + c.status + ": " + c.reason + "\n";
    return out;
}

json bind(const std::string& source, const std::string& dest, const std::string& propagation) {
    return {{"Type", "bind"}, {"Source", source}, {"Destination", dest},
            {"Mode", ""},     {"RW", true},       {"Propagation", propagation}};
}

} // namespace

TEST_CASE("CIS section 5: every recommendation of v1.6.0, once and in order", "[sandbox][cis]") {
    const auto checks = evaluate(hardened());
    REQUIRE(checks.size() == 32);
    for (std::size_t i = 0; i < checks.size(); ++i) {
        INFO(checks[i].id);
        CHECK(checks[i].id == "5." + std::to_string(i + 1));
        CHECK_FALSE(checks[i].title.empty());
        CHECK_FALSE(checks[i].reason.empty());
        CHECK(std::set<std::string>{"pass", "fail", "not_applicable"}.count(checks[i].status) == 1);
        CHECK(checks[i].effective.is_object());
    }
    CHECK(find(checks, "5.5").title == "Ensure that privileged containers are not used");
    CHECK(find(checks, "5.22").title == "Ensure the default seccomp profile is not Disabled");
    CHECK(find(checks, "5.32").title ==
          "Ensure that the Docker socket is not mounted inside any containers");
}

TEST_CASE("CIS section 5: a hardened container fails nothing", "[sandbox][cis]") {
    const auto checks = evaluate(hardened());
    INFO(describe(checks));
    for (const auto& c : checks)
        CHECK(c.status != "fail");
    for (const char* id : {"5.2",  "5.4",  "5.5",  "5.6",  "5.8",  "5.9",  "5.10", "5.11", "5.12",
                           "5.13", "5.14", "5.15", "5.16", "5.17", "5.18", "5.19", "5.20", "5.21",
                           "5.22", "5.25", "5.26", "5.29", "5.30", "5.31", "5.32"}) {
        INFO(id);
        CHECK(find(checks, id).status == "pass");
    }
    // No SELinux on the engine: nothing to set.
    CHECK(find(checks, "5.3").status == "not_applicable");
    CHECK(find(checks, "5.12").reason == "limited to 1000000000 NanoCpus");
    CHECK(find(checks, "5.30").reason == "network mode none: no interface but lo");
}

TEST_CASE("CIS section 5: checks not decided by one container's configuration say why",
          "[sandbox][cis]") {
    const auto checks = evaluate(hardened());
    for (const char* id : {"5.1", "5.7", "5.23", "5.24", "5.27", "5.28"}) {
        INFO(id);
        const auto& c = find(checks, id);
        CHECK(c.status == "not_applicable");
        CHECK(c.reason.size() > 20);
    }
    CHECK_THAT(find(checks, "5.7").reason, Catch::Contains("never execs"));
    CHECK_THAT(find(checks, "5.27").reason, Catch::Contains("runs once"));
    CHECK_THAT(find(checks, "5.28").reason, Catch::Contains(plan().image_id));
}

TEST_CASE("CIS section 5: effective holds the exact inspect values looked at", "[sandbox][cis]") {
    const json inspect = hardened();
    const auto checks = evaluate(inspect);
    CHECK(find(checks, "5.5").effective == json{{"HostConfig.Privileged", false}});
    CHECK(find(checks, "5.22").effective ==
          json{{"HostConfig.SecurityOpt", json::array({"no-new-privileges:true"})},
               {"HostConfig.Privileged", false}});
    CHECK(find(checks, "5.32").effective == json{{"Mounts", inspect["Mounts"]}});
    CHECK(find(checks, "5.15").effective ==
          json{{"HostConfig.RestartPolicy", {{"Name", "no"}, {"MaximumRetryCount", 0}}}});
    CHECK(find(checks, "5.28").effective == json{{"Image", inspect["Image"]}});
    CHECK(find(checks, "5.1").effective == json::object());
    // A field the engine left out is recorded as null, not skipped.
    json without = inspect;
    without["HostConfig"].erase("CgroupParent");
    CHECK(find(evaluate(without), "5.25").effective == json{{"HostConfig.CgroupParent", nullptr}});
}

TEST_CASE("CIS section 5: each weakened setting fails its check", "[sandbox][cis]") {
    struct Tamper {
        const char* id;
        const char* why;
        std::function<void(json&)> apply;
    };
    const std::vector<Tamper> tampers = {
        {"5.2", "apparmor=unconfined",
         [](json& j) { j["HostConfig"]["SecurityOpt"].push_back("apparmor=unconfined"); }},
        {"5.3", "label=disable",
         [](json& j) { j["HostConfig"]["SecurityOpt"].push_back("label=disable"); }},
        {"5.4", "CapAdd", [](json& j) { j["HostConfig"]["CapAdd"] = json::array({"SYS_ADMIN"}); }},
        {"5.4", "CapDrop", [](json& j) { j["HostConfig"]["CapDrop"] = nullptr; }},
        {"5.5", "privileged", [](json& j) { j["HostConfig"]["Privileged"] = true; }},
        {"5.6", "/etc", [](json& j) { j["Mounts"].push_back(bind("/etc", "/host-etc", "")); }},
        {"5.6", "/", [](json& j) { j["Mounts"].push_back(bind("/", "/host", "rprivate")); }},
        {"5.8", "port 80",
         [](json& j) {
             j["HostConfig"]["PortBindings"] = {
                 {"80/tcp", json::array({{{"HostIp", "127.0.0.1"}, {"HostPort", "80"}}})}};
         }},
        {"5.9", "port 8080",
         [](json& j) {
             j["HostConfig"]["PortBindings"] = {
                 {"8080/tcp", json::array({{{"HostIp", "127.0.0.1"}, {"HostPort", "8080"}}})}};
         }},
        {"5.10", "host network", [](json& j) { j["HostConfig"]["NetworkMode"] = "host"; }},
        {"5.11", "no memory limit", [](json& j) { j["HostConfig"]["Memory"] = 0; }},
        {"5.12", "no CPU limit",
         [](json& j) {
             j["HostConfig"]["NanoCpus"] = 0;
             j["HostConfig"]["CpuShares"] = 0;
         }},
        {"5.13", "writable root", [](json& j) { j["HostConfig"]["ReadonlyRootfs"] = false; }},
        {"5.14", "every interface",
         [](json& j) {
             j["HostConfig"]["PortBindings"] = {
                 {"8080/tcp", json::array({{{"HostIp", ""}, {"HostPort", "8080"}}})}};
         }},
        {"5.14", "PublishAllPorts", [](json& j) { j["HostConfig"]["PublishAllPorts"] = true; }},
        {"5.15", "always",
         [](json& j) {
             j["HostConfig"]["RestartPolicy"] = {{"Name", "always"}};
         }},
        {"5.15", "on-failure:10",
         [](json& j) {
             j["HostConfig"]["RestartPolicy"] = {{"Name", "on-failure"}, {"MaximumRetryCount", 10}};
         }},
        {"5.16", "host pid", [](json& j) { j["HostConfig"]["PidMode"] = "host"; }},
        {"5.17", "host ipc", [](json& j) { j["HostConfig"]["IpcMode"] = "host"; }},
        {"5.18", "device",
         [](json& j) {
             j["HostConfig"]["Devices"] = json::array({{{"PathOnHost", "/dev/fuse"},
                                                        {"PathInContainer", "/dev/fuse"},
                                                        {"CgroupPermissions", "rwm"}}});
         }},
        {"5.19", "no ulimits", [](json& j) { j["HostConfig"]["Ulimits"] = nullptr; }},
        {"5.20", "rshared",
         [](json& j) { j["Mounts"].push_back(bind("/home/dev/project", "/src", "rshared")); }},
        {"5.21", "host uts", [](json& j) { j["HostConfig"]["UTSMode"] = "host"; }},
        {"5.22", "seccomp=unconfined",
         [](json& j) { j["HostConfig"]["SecurityOpt"].push_back("seccomp=unconfined"); }},
        {"5.22", "seccomp:unconfined",
         [](json& j) { j["HostConfig"]["SecurityOpt"].push_back("seccomp:unconfined"); }},
        {"5.25", "cgroup parent", [](json& j) { j["HostConfig"]["CgroupParent"] = "/custom"; }},
        {"5.26", "no no-new-privileges",
         [](json& j) { j["HostConfig"]["SecurityOpt"] = json::array(); }},
        {"5.29", "no pids limit", [](json& j) { j["HostConfig"]["PidsLimit"] = nullptr; }},
        {"5.29", "pids -1", [](json& j) { j["HostConfig"]["PidsLimit"] = -1; }},
        {"5.30", "default bridge", [](json& j) { j["HostConfig"]["NetworkMode"] = "default"; }},
        {"5.30", "bridge", [](json& j) { j["HostConfig"]["NetworkMode"] = "bridge"; }},
        {"5.31", "host userns", [](json& j) { j["HostConfig"]["UsernsMode"] = "host"; }},
        {"5.32", "docker.sock",
         [](json& j) {
             j["Mounts"].push_back(bind("/var/run/docker.sock", "/var/run/docker.sock", ""));
         }},
        {"5.32", "/run", [](json& j) { j["Mounts"].push_back(bind("/run", "/host-run", "")); }},
    };
    for (const auto& t : tampers) {
        json inspect = hardened();
        t.apply(inspect);
        const auto checks = evaluate(inspect);
        INFO(t.id << " (" << t.why << ")\n" << describe(checks));
        CHECK(find(checks, t.id).status == "fail");
    }
}

TEST_CASE("CIS section 5: a privileged, host-namespace, socket-mounting container",
          "[sandbox][cis]") {
    json inspect = hardened();
    auto& hc = inspect["HostConfig"];
    hc["Privileged"] = true;
    hc["NetworkMode"] = "host";
    hc["PidMode"] = "host";
    hc["IpcMode"] = "host";
    hc["SecurityOpt"] = json::array({"seccomp=unconfined"});
    hc["CapDrop"] = nullptr;
    hc["ReadonlyRootfs"] = false;
    inspect["AppArmorProfile"] = "unconfined";
    inspect["Mounts"].push_back(bind("/var/run/docker.sock", "/var/run/docker.sock", "rprivate"));
    const auto checks = evaluate(inspect);
    INFO(describe(checks));
    for (const char* id :
         {"5.2", "5.4", "5.5", "5.10", "5.13", "5.16", "5.17", "5.22", "5.26", "5.32"}) {
        INFO(id);
        CHECK(find(checks, id).status == "fail");
    }
    CHECK(find(checks, "5.22").reason == "privileged: the engine applies no seccomp filter");
    CHECK_THAT(find(checks, "5.32").reason, Catch::Contains("/var/run/docker.sock"));
    CHECK(find(checks, "5.30").status == "pass"); // host is no bridge; 5.10 has it
}

TEST_CASE("CIS section 5: acceptable variations pass", "[sandbox][cis]") {
    json inspect = hardened();
    inspect["HostConfig"]["RestartPolicy"] = {{"Name", "on-failure"}, {"MaximumRetryCount", 5}};
    inspect["HostConfig"]["NanoCpus"] = 0;
    inspect["HostConfig"]["CpuShares"] = 512;
    inspect["HostConfig"]["SecurityOpt"] =
        json::array({"no-new-privileges", "apparmor=airlock-agent", "label=type:container_t",
                     "seccomp={\"defaultAction\":\"SCMP_ACT_ERRNO\"}"});
    inspect["ProcessLabel"] = "system_u:system_r:container_t:s0:c1,c2";
    inspect["HostConfig"]["PortBindings"] = {
        {"8080/tcp", json::array({{{"HostIp", "127.0.0.1"}, {"HostPort", "8080"}}})}};
    const auto checks = evaluate(inspect);
    INFO(describe(checks));
    for (const char* id : {"5.2", "5.3", "5.8", "5.12", "5.14", "5.15", "5.22", "5.26"}) {
        INFO(id);
        CHECK(find(checks, id).status == "pass");
    }
    CHECK(find(checks, "5.2").reason == "AppArmor profile airlock-agent");
    CHECK(find(checks, "5.12").reason == "CpuShares 512");
    CHECK(find(checks, "5.9").status == "fail"); // published, though the task needs none
}

TEST_CASE("CIS section 5: to_json names the benchmark and version", "[sandbox][cis]") {
    const json j = airlock::sandbox::to_json(evaluate(hardened()));
    CHECK(j["benchmark"] == "CIS Docker Benchmark");
    CHECK(j["version"] == "1.6.0");
    CHECK(j["section"] == "5");
    REQUIRE(j["checks"].size() == 32);
    const json& first = j["checks"][0];
    CHECK(first["id"] == "5.1");
    CHECK(first["status"] == "not_applicable");
    for (const char* key : {"id", "title", "status", "reason", "effective"}) {
        INFO(key);
        CHECK(first.contains(key));
    }
}
