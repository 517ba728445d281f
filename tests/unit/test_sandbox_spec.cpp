// The container create body (every hardening field) and the check of what the engine applied.
#include "sandbox/spec.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <string>

using airlock::config::RunOptions;
using airlock::config::WorkspaceMode;
using airlock::sandbox::build_create_body;
using airlock::sandbox::ContainerPlan;
using airlock::sandbox::Mismatch;
using airlock::sandbox::pick_runtime;
using airlock::sandbox::refuse_on_mismatch;
using airlock::sandbox::verify_container;
using nlohmann::json;

namespace {

RunOptions default_options() {
    RunOptions o;
    o.command = {"python3", "-c", "print('hi')"};
    return o;
}

ContainerPlan plan() {
    ContainerPlan p;
    p.run_id = "r-20240601-abcdef";
    p.image_id = "sha256:0123456789abcdef";
    p.workspace_volume = "airlock-ws-r-20240601-abcdef";
    p.workspace_host_path = "/home/dev/project";
    return p;
}

bool has_env(const json& body, const std::string& entry) {
    const auto& env = body["Env"];
    return std::find(env.begin(), env.end(), json(entry)) != env.end();
}

std::size_t count_env_named(const json& body, const std::string& name) {
    std::size_t n = 0;
    for (const auto& e : body["Env"])
        if (e.get<std::string>().rfind(name + "=", 0) == 0) ++n;
    return n;
}

// What GET /containers/{id}/json says for a container created from `body`, as text parsed
// back (so numbers come back as the engine's unsigned integers).
json inspect_from(const json& body) {
    json mounts = json::array();
    for (const auto& m : body["HostConfig"]["Mounts"]) {
        json im = {{"Type", m["Type"]},
                   {"Destination", m["Target"]},
                   {"RW", !m["ReadOnly"].get<bool>()},
                   {"Mode", ""},
                   {"Propagation", m["Type"] == "bind" ? "rprivate" : ""}};
        if (m["Type"] == "volume") {
            im["Name"] = m["Source"];
            im["Source"] = "/var/lib/docker/volumes/" + m["Source"].get<std::string>() + "/_data";
            im["Driver"] = "local";
        } else {
            im["Source"] = m["Source"];
        }
        mounts.push_back(im);
    }
    json inspect = {
        {"Id", "4f1c0ffee"},
        {"Image", body["Image"]},
        {"Config",
         {{"User", body["User"]},
          {"Env", body["Env"]},
          {"Cmd", body["Cmd"]},
          {"Labels", body["Labels"]},
          {"WorkingDir", body["WorkingDir"]}}},
        {"HostConfig", body["HostConfig"]},
        {"Mounts", mounts},
        {"State", {{"Status", "created"}}},
    };
    return json::parse(inspect.dump());
}

bool names_field(const std::vector<Mismatch>& ms, const std::string& field) {
    return std::any_of(ms.begin(), ms.end(), [&](const Mismatch& m) { return m.field == field; });
}

std::string describe(const std::vector<Mismatch>& ms) {
    std::string out;
    for (const auto& m : ms)
        out += m.field + ": expected " + m.expected + ", got " + m.actual + "\n";
    return out;
}

} // namespace

TEST_CASE("the create body runs the resolved image and command as a non-root user",
          "[sandbox][spec]") {
    const auto o = default_options();
    const json b = build_create_body(o, plan());
    CHECK(b["Image"] == "sha256:0123456789abcdef");
    CHECK(b["Cmd"] == json::array({"python3", "-c", "print('hi')"}));
    CHECK(b["User"] == "1000:1000");
    CHECK(b["User"].get<std::string>().rfind("0", 0) != 0);
    CHECK(b["WorkingDir"] == "/workspace");
    CHECK(b["Tty"] == false); // the log framing needs a non-TTY container
    CHECK(b["OpenStdin"] == false);
    CHECK(b["AttachStdin"] == false);
    CHECK(b["NetworkDisabled"] == true);
}

TEST_CASE("the create body drops every privilege", "[sandbox][spec]") {
    const json hc = build_create_body(default_options(), plan())["HostConfig"];
    CHECK(hc["CapDrop"] == json::array({"ALL"}));
    CHECK(hc["CapAdd"] == json::array());
    CHECK(hc["SecurityOpt"] == json::array({"no-new-privileges:true"}));
    CHECK(hc["Privileged"] == false);
    CHECK(hc["ReadonlyRootfs"] == true);
    CHECK(hc["NetworkMode"] == "none");
    CHECK(hc["IpcMode"] == "private");
    for (const char* ns : {"PidMode", "UTSMode", "UsernsMode"}) {
        INFO(ns);
        CHECK(hc[ns] == "");
    }
    CHECK(hc["AutoRemove"] == false);
    CHECK(hc["RestartPolicy"]["Name"] == "no");
    CHECK(hc["Runtime"] == "runc");
    CHECK_FALSE(hc.contains("Binds"));
    CHECK_FALSE(hc.contains("Devices"));
}

TEST_CASE("the create body limits memory without swap, CPUs and processes", "[sandbox][spec]") {
    const auto o = default_options();
    const json hc = build_create_body(o, plan())["HostConfig"];
    CHECK(hc["Memory"] == 2147483648LL);
    CHECK(hc["MemorySwap"] == hc["Memory"]);
    CHECK(hc["NanoCpus"] == 1'000'000'000LL);
    CHECK(hc["PidsLimit"] == 256);

    RunOptions custom = default_options();
    custom.memory = 512ull << 20;
    custom.nano_cpus = 2'500'000'000;
    custom.pids = 64;
    custom.runtime = "runsc";
    const json hc2 = build_create_body(custom, plan())["HostConfig"];
    CHECK(hc2["Memory"] == 536870912LL);
    CHECK(hc2["MemorySwap"] == 536870912LL);
    CHECK(hc2["NanoCpus"] == 2'500'000'000LL);
    CHECK(hc2["PidsLimit"] == 64);
    CHECK(hc2["Runtime"] == "runsc");
}

TEST_CASE("the create body has a sized, nosuid tmpfs on /tmp", "[sandbox][spec]") {
    RunOptions o = default_options();
    const json hc = build_create_body(o, plan())["HostConfig"];
    REQUIRE(hc["Tmpfs"].is_object());
    CHECK(hc["Tmpfs"].size() == 1);
    REQUIRE(hc["Tmpfs"].contains("/tmp"));
    const std::string opts = hc["Tmpfs"]["/tmp"];
    CHECK_THAT(opts, Catch::Contains("size=268435456"));
    CHECK_THAT(opts, Catch::Contains("nosuid"));
    CHECK_THAT(opts, Catch::Contains("nodev"));
    CHECK_THAT(opts, Catch::Contains("mode=1777"));

    o.tmpfs_size = 64ull << 20;
    const json hc2 = build_create_body(o, plan())["HostConfig"];
    CHECK_THAT(hc2["Tmpfs"]["/tmp"].get<std::string>(), Catch::Contains("size=67108864"));
}

TEST_CASE("the create body sets nofile and nproc ulimits", "[sandbox][spec]") {
    RunOptions o = default_options();
    o.nofile = 2048;
    o.nproc = 512;
    const json ulimits = build_create_body(o, plan())["HostConfig"]["Ulimits"];
    REQUIRE(ulimits.is_array());
    REQUIRE(ulimits.size() == 2);
    CHECK(ulimits[0] == json{{"Name", "nofile"}, {"Soft", 2048}, {"Hard", 2048}});
    CHECK(ulimits[1] == json{{"Name", "nproc"}, {"Soft", 512}, {"Hard", 512}});

    const json defaults = build_create_body(default_options(), plan())["HostConfig"]["Ulimits"];
    CHECK(defaults[0]["Soft"] == 4096);
    CHECK(defaults[1]["Soft"] == 1024);
}

TEST_CASE("in volume mode the only mount is the workspace volume", "[sandbox][spec]") {
    const json mounts = build_create_body(default_options(), plan())["HostConfig"]["Mounts"];
    REQUIRE(mounts.size() == 1);
    CHECK(mounts[0]["Type"] == "volume");
    CHECK(mounts[0]["Source"] == "airlock-ws-r-20240601-abcdef");
    CHECK(mounts[0]["Target"] == "/workspace");
    CHECK(mounts[0]["ReadOnly"] == false);
}

TEST_CASE("bind-ro mounts the host path read-only, bind-rw read-write", "[sandbox][spec]") {
    RunOptions o = default_options();
    o.workspace_mode = WorkspaceMode::bind_ro;
    const json ro = build_create_body(o, plan())["HostConfig"]["Mounts"];
    REQUIRE(ro.size() == 1);
    CHECK(ro[0]["Type"] == "bind");
    CHECK(ro[0]["Source"] == "/home/dev/project");
    CHECK(ro[0]["Target"] == "/workspace");
    CHECK(ro[0]["ReadOnly"] == true);
    CHECK(ro[0]["BindOptions"]["Propagation"] == "rprivate");

    o.workspace_mode = WorkspaceMode::bind_rw;
    const json rw = build_create_body(o, plan())["HostConfig"]["Mounts"];
    REQUIRE(rw.size() == 1);
    CHECK(rw[0]["Type"] == "bind");
    CHECK(rw[0]["ReadOnly"] == false);
}

TEST_CASE("the container is labelled with the run id", "[sandbox][spec]") {
    const json b = build_create_body(default_options(), plan());
    CHECK(b["Labels"]["io.airlock.run"] == "r-20240601-abcdef");
    CHECK(b["Labels"]["io.airlock.role"] == "agent");
}

TEST_CASE("the environment gets HOME=/tmp unless HOME is given", "[sandbox][spec]") {
    RunOptions o = default_options();
    o.env = {{"API_KEY", "s3cret"}, {"EMPTY", ""}};
    const json b = build_create_body(o, plan());
    CHECK(has_env(b, "API_KEY=s3cret"));
    CHECK(has_env(b, "EMPTY="));
    CHECK(has_env(b, "HOME=/tmp"));
    CHECK(b["Env"].size() == 3);

    o.env.emplace_back("HOME", "/workspace/home");
    const json with_home = build_create_body(o, plan());
    CHECK(has_env(with_home, "HOME=/workspace/home"));
    CHECK(count_env_named(with_home, "HOME") == 1);

    const json bare = build_create_body(default_options(), plan());
    CHECK(bare["Env"] == json::array({"HOME=/tmp"}));
}

TEST_CASE("verify_container finds nothing wrong with what was asked for", "[sandbox][spec]") {
    for (auto mode : {WorkspaceMode::volume, WorkspaceMode::bind_ro, WorkspaceMode::bind_rw}) {
        RunOptions o = default_options();
        o.workspace_mode = mode;
        const json inspect = inspect_from(build_create_body(o, plan()));
        auto ms = verify_container(inspect, o, plan(), {});
        INFO(to_string(mode) << "\n" << describe(ms));
        CHECK(ms.empty());
    }
}

TEST_CASE("verify_container accepts the bare no-new-privileges form", "[sandbox][spec]") {
    const auto o = default_options();
    json inspect = inspect_from(build_create_body(o, plan()));
    inspect["HostConfig"]["SecurityOpt"] = json::array({"label=disable", "no-new-privileges"});
    auto ms = verify_container(inspect, o, plan(), {});
    INFO(describe(ms));
    CHECK(ms.empty());
}

TEST_CASE("verify_container names each hardening field the engine did not apply",
          "[sandbox][spec]") {
    const auto o = default_options();
    const json good = inspect_from(build_create_body(o, plan()));

    struct Tamper {
        const char* field;
        std::function<void(json&)> apply;
    };
    const std::vector<Tamper> tampers = {
        {"HostConfig.Memory", [](json& j) { j["HostConfig"]["Memory"] = 4294967296LL; }},
        {"HostConfig.MemorySwap", [](json& j) { j["HostConfig"]["MemorySwap"] = -1; }},
        {"HostConfig.CapDrop", [](json& j) { j["HostConfig"]["CapDrop"] = json::array(); }},
        {"HostConfig.CapDrop", [](json& j) { j["HostConfig"]["CapDrop"] = nullptr; }},
        {"HostConfig.Privileged", [](json& j) { j["HostConfig"]["Privileged"] = true; }},
        {"HostConfig.ReadonlyRootfs", [](json& j) { j["HostConfig"]["ReadonlyRootfs"] = false; }},
        {"HostConfig.NanoCpus", [](json& j) { j["HostConfig"]["NanoCpus"] = 0; }},
        {"HostConfig.PidsLimit", [](json& j) { j["HostConfig"]["PidsLimit"] = nullptr; }},
        {"HostConfig.NetworkMode", [](json& j) { j["HostConfig"]["NetworkMode"] = "host"; }},
        {"HostConfig.NetworkMode", [](json& j) { j["HostConfig"]["NetworkMode"] = "bridge"; }},
        {"HostConfig.SecurityOpt",
         [](json& j) { j["HostConfig"]["SecurityOpt"] = json::array({"label=disable"}); }},
        {"HostConfig.SecurityOpt", [](json& j) { j["HostConfig"].erase("SecurityOpt"); }},
        {"HostConfig.PidMode", [](json& j) { j["HostConfig"]["PidMode"] = "host"; }},
        {"HostConfig.IpcMode", [](json& j) { j["HostConfig"]["IpcMode"] = "host"; }},
        {"HostConfig.UTSMode", [](json& j) { j["HostConfig"]["UTSMode"] = "host"; }},
        {"HostConfig.UsernsMode", [](json& j) { j["HostConfig"]["UsernsMode"] = "host"; }},
        {"User", [](json& j) { j["Config"]["User"] = "0:0"; }},
        {"User", [](json& j) { j["Config"]["User"] = ""; }},
        {"Mounts",
         [](json& j) {
             j["Mounts"].push_back({{"Type", "bind"},
                                    {"Source", "/var/run/docker.sock"},
                                    {"Destination", "/var/run/docker.sock"},
                                    {"RW", true}});
         }},
        {"Mounts",
         [](json& j) {
             j["Mounts"].push_back(
                 {{"Type", "bind"}, {"Source", "/"}, {"Destination", "/host"}, {"RW", false}});
         }},
    };
    for (const auto& t : tampers) {
        json inspect = good;
        t.apply(inspect);
        auto ms = verify_container(inspect, o, plan(), {});
        INFO("tampered " << t.field << "\n" << describe(ms));
        CHECK(names_field(ms, t.field));
        CHECK(ms.size() == 1);
    }
}

TEST_CASE("a mismatch says what was expected and what was found", "[sandbox][spec]") {
    const auto o = default_options();
    json inspect = inspect_from(build_create_body(o, plan()));
    inspect["HostConfig"]["Memory"] = 4294967296LL;
    auto ms = verify_container(inspect, o, plan(), {});
    REQUIRE(ms.size() == 1);
    CHECK(ms[0].field == "HostConfig.Memory");
    CHECK(ms[0].expected == "2147483648");
    CHECK(ms[0].actual == "4294967296");

    json sock = inspect_from(build_create_body(o, plan()));
    sock["Mounts"].push_back({{"Type", "bind"},
                              {"Source", "/var/run/docker.sock"},
                              {"Destination", "/var/run/docker.sock"}});
    auto ms2 = verify_container(sock, o, plan(), {});
    REQUIRE(ms2.size() == 1);
    CHECK(ms2[0].field == "Mounts");
    CHECK_THAT(ms2[0].actual, Catch::Contains("/var/run/docker.sock"));
}

TEST_CASE("verify_container reports an inspect answer without HostConfig", "[sandbox][spec]") {
    const auto o = default_options();
    auto ms = verify_container(json::object(), o, plan(), {});
    for (const char* field :
         {"User", "HostConfig.Privileged", "HostConfig.ReadonlyRootfs", "HostConfig.CapDrop",
          "HostConfig.Memory", "HostConfig.MemorySwap", "HostConfig.NanoCpus",
          "HostConfig.PidsLimit", "HostConfig.NetworkMode", "HostConfig.SecurityOpt"}) {
        INFO(field);
        CHECK(names_field(ms, field));
    }
}

TEST_CASE("verify_container checks against the options, not defaults", "[sandbox][spec]") {
    RunOptions o = default_options();
    o.memory = 512ull << 20;
    o.user = "1234:1234";
    const json inspect = inspect_from(build_create_body(o, plan()));
    CHECK(verify_container(inspect, o, plan(), {}).empty());

    const auto ms = verify_container(inspect, default_options(), plan(), {});
    CHECK(names_field(ms, "HostConfig.Memory"));
    CHECK(names_field(ms, "HostConfig.MemorySwap"));
    CHECK(names_field(ms, "User"));
}

// Regression (runner/sandbox/spec.cpp, verify_container): HostConfig.CapAdd is never compared,
// though the plan sets it to []. With CapDrop ["ALL"] the engine grants exactly CapAdd, so a
// container that came up with CapAdd ["SYS_ADMIN"] passes verification.
TEST_CASE("verify_container notices added capabilities", "[sandbox][spec]") {
    const auto o = default_options();
    json inspect = inspect_from(build_create_body(o, plan()));
    inspect["HostConfig"]["CapAdd"] = json::array({"SYS_ADMIN"});
    auto ms = verify_container(inspect, o, plan(), {});
    INFO(describe(ms));
    CHECK(names_field(ms, "HostConfig.CapAdd"));
}

// Regression (runner/sandbox/spec.cpp, verify_container): only the mount destination is checked, so
// in bind-ro mode a /workspace mount that the engine made writable (RW true) passes verification.
TEST_CASE("verify_container notices a writable workspace in bind-ro mode", "[sandbox][spec]") {
    RunOptions o = default_options();
    o.workspace_mode = WorkspaceMode::bind_ro;
    json inspect = inspect_from(build_create_body(o, plan()));
    REQUIRE(inspect["Mounts"][0]["RW"] == false);
    inspect["Mounts"][0]["RW"] = true;
    auto ms = verify_container(inspect, o, plan(), {});
    INFO(describe(ms));
    CHECK(names_field(ms, "Mounts./workspace.RW"));
}

TEST_CASE("verify_container refuses seccomp and AppArmor opt-outs", "[sandbox][spec]") {
    const auto o = default_options();
    const json good = inspect_from(build_create_body(o, plan()));
    const std::vector<std::pair<std::string, std::string>> opt_outs = {
        {"seccomp=unconfined", "HostConfig.SecurityOpt.seccomp"},
        {"seccomp:unconfined", "HostConfig.SecurityOpt.seccomp"},
        {"apparmor=unconfined", "HostConfig.SecurityOpt.apparmor"},
        {"apparmor:unconfined", "HostConfig.SecurityOpt.apparmor"},
    };
    for (const auto& [opt, field] : opt_outs) {
        json inspect = good;
        inspect["HostConfig"]["SecurityOpt"].push_back(opt);
        auto ms = verify_container(inspect, o, plan(), {});
        INFO(opt << "\n" << describe(ms));
        REQUIRE(ms.size() == 1);
        CHECK(ms[0].field == field);
        CHECK_THAT(ms[0].actual, Catch::Contains("unconfined"));
    }

    json unconfined = good;
    unconfined["AppArmorProfile"] = "unconfined";
    auto ms = verify_container(unconfined, o, plan(), {});
    INFO(describe(ms));
    REQUIRE(ms.size() == 1);
    CHECK(ms[0].field == "AppArmorProfile");

    // A profile of one's own is no opt-out.
    json custom = good;
    custom["HostConfig"]["SecurityOpt"].push_back("seccomp={\"defaultAction\":\"SCMP_ACT_ERRNO\"}");
    custom["AppArmorProfile"] = "docker-default";
    CHECK(verify_container(custom, o, plan(), {}).empty());
}

TEST_CASE("verify_container refuses any mount of a container engine socket", "[sandbox][spec]") {
    const auto o = default_options();
    const json good = inspect_from(build_create_body(o, plan()));
    const std::vector<std::pair<std::string, std::string>> mounts = {
        {"/var/run/docker.sock", "/var/run/docker.sock"},
        {"/run/docker.sock", "/tmp/engine"},
        {"/run/podman/podman.sock", "/run/podman/podman.sock"},
        {"/run/user/1000/podman/podman.sock", "/tmp/p.sock"},
        {"/home/dev/.docker/run/docker.sock", "/sock"},
        {"/run/containerd/containerd.sock", "/c.sock"},
        {"/run", "/host-run"},       // holds docker.sock
        {"/var/run/", "/host-run"},  // the same, spelled otherwise
        {"/run/user/1000", "/home"}, // a rootless engine's socket
        {"/", "/host"},
    };
    for (const auto& [source, dest] : mounts) {
        json inspect = good;
        inspect["Mounts"].push_back(
            {{"Type", "bind"}, {"Source", source}, {"Destination", dest}, {"RW", true}});
        auto ms = verify_container(inspect, o, plan(), {});
        INFO(source << " at " << dest << "\n" << describe(ms));
        REQUIRE(ms.size() == 1);
        CHECK(ms[0].field == "Mounts");
        CHECK(ms[0].expected == "no container engine socket");
        CHECK_THAT(ms[0].actual, Catch::Contains(source));
    }
}

TEST_CASE("mounts_engine_socket tells engine sockets from ordinary paths", "[sandbox][spec]") {
    using airlock::sandbox::mounts_engine_socket;
    auto bind = [](const std::string& source, const std::string& dest = "/workspace") {
        return json{{"Type", "bind"}, {"Source", source}, {"Destination", dest}};
    };
    for (const char* p :
         {"/", "/run", "/var", "/var/run", "/run/docker.sock", "/run/podman", "/run/user",
          "/run/user/1000/", "/run/user/0/podman", "/srv/podman.sock"}) {
        INFO(p);
        CHECK(mounts_engine_socket(bind(p)));
    }
    for (const char* p : {"/home/dev/project", "/tmp/airlock-test-x", "/run/user/1000/project",
                          "/var/lib/airlock", "/runner/work", "/srv/docker.socket"}) {
        INFO(p);
        CHECK_FALSE(mounts_engine_socket(bind(p)));
    }
    CHECK(mounts_engine_socket(bind("/tmp/proxy", "/var/run/docker.sock")));
    // A volume's Source is its data directory on the engine host, never a socket.
    CHECK_FALSE(mounts_engine_socket({{"Type", "volume"},
                                      {"Name", "airlock-x-workspace"},
                                      {"Source", "/var/lib/docker/volumes/x/_data"},
                                      {"Destination", "/workspace"}}));
}

TEST_CASE("verify_container accepts only the declared workspace mount", "[sandbox][spec]") {
    struct Case {
        const char* what;
        WorkspaceMode mode;
        std::function<void(json&)> apply;
        const char* field;
    };
    const std::vector<Case> cases = {
        {"another volume", WorkspaceMode::volume,
         [](json& j) { j["Mounts"][0]["Name"] = "someone-elses-volume"; }, "Mounts./workspace"},
        {"a bind instead of the volume", WorkspaceMode::volume,
         [](json& j) {
             j["Mounts"][0] = {{"Type", "bind"},
                               {"Source", "/home/dev/project"},
                               {"Destination", "/workspace"},
                               {"RW", true}};
         },
         "Mounts./workspace"},
        {"another host path", WorkspaceMode::bind_ro,
         [](json& j) { j["Mounts"][0]["Source"] = "/home/dev"; }, "Mounts./workspace"},
        {"a volume instead of the bind", WorkspaceMode::bind_rw,
         [](json& j) {
             j["Mounts"][0] = {{"Type", "volume"},
                               {"Name", "x"},
                               {"Source", "/var/lib/docker/volumes/x/_data"},
                               {"Destination", "/workspace"},
                               {"RW", true}};
         },
         "Mounts./workspace"},
        {"no workspace at all", WorkspaceMode::volume, [](json& j) { j["Mounts"] = json::array(); },
         "Mounts./workspace"},
        {"an extra bind", WorkspaceMode::bind_rw,
         [](json& j) {
             j["Mounts"].push_back({{"Type", "bind"},
                                    {"Source", "/home/dev/.ssh"},
                                    {"Destination", "/data"},
                                    {"RW", false}});
         },
         "Mounts"},
    };
    for (const auto& c : cases) {
        RunOptions o = default_options();
        o.workspace_mode = c.mode;
        json inspect = inspect_from(build_create_body(o, plan()));
        c.apply(inspect);
        auto ms = verify_container(inspect, o, plan(), {});
        INFO(c.what << "\n" << describe(ms));
        REQUIRE(ms.size() == 1);
        CHECK(ms[0].field == c.field);
    }

    RunOptions ro = default_options();
    ro.workspace_mode = WorkspaceMode::bind_ro;
    json moved = inspect_from(build_create_body(ro, plan()));
    moved["Mounts"][0]["Source"] = "/home/dev";
    const auto ms = verify_container(moved, ro, plan(), {});
    REQUIRE(ms.size() == 1);
    CHECK(ms[0].expected == "bind /home/dev/project");
    CHECK(ms[0].actual == "bind /home/dev");
}

TEST_CASE("verify_container refuses host devices", "[sandbox][spec]") {
    const auto o = default_options();
    json inspect = inspect_from(build_create_body(o, plan()));
    inspect["HostConfig"]["Devices"] = json::array({{{"PathOnHost", "/dev/kvm"},
                                                     {"PathInContainer", "/dev/kvm"},
                                                     {"CgroupPermissions", "rwm"}}});
    auto ms = verify_container(inspect, o, plan(), {});
    INFO(describe(ms));
    REQUIRE(ms.size() == 1);
    CHECK(ms[0].field == "HostConfig.Devices");
    CHECK_THAT(ms[0].actual, Catch::Contains("/dev/kvm"));

    inspect["HostConfig"]["Devices"] = json::array();
    CHECK(verify_container(inspect, o, plan(), {}).empty());
    inspect["HostConfig"]["Devices"] = nullptr;
    CHECK(verify_container(inspect, o, plan(), {}).empty());
}

TEST_CASE("every engine create warning is a mismatch", "[sandbox][spec]") {
    const auto o = default_options();
    const json inspect = inspect_from(build_create_body(o, plan()));
    const std::vector<std::string> warnings = {
        "Your kernel does not support swap limit capabilities or the cgroup is not mounted. "
        "Memory limited without swap.",
        "Your kernel does not support pids limit capabilities or the cgroup is not mounted. PIDs "
        "limit discarded."};
    auto ms = verify_container(inspect, o, plan(), warnings);
    INFO(describe(ms));
    REQUIRE(ms.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK(ms[i].field == "Warnings");
        CHECK(ms[i].expected == "none");
        CHECK(ms[i].actual == warnings[i]);
    }

    // A field the engine did not apply is named before the warning that explains it.
    json no_swap = inspect;
    no_swap["HostConfig"]["MemorySwap"] = -1;
    auto both = verify_container(no_swap, o, plan(), {warnings[0]});
    REQUIRE(both.size() == 2);
    CHECK(both[0].field == "HostConfig.MemorySwap");
    CHECK(both[1].field == "Warnings");
}

TEST_CASE("a mismatch or a create warning refuses the start, naming it", "[sandbox][spec]") {
    CHECK(refuse_on_mismatch({}).ok());

    auto missed = refuse_on_mismatch(
        {{"HostConfig.PidsLimit", "256", "0"}, {"Warnings", "none", "PIDs limit discarded."}});
    REQUIRE_FALSE(missed.ok());
    CHECK(missed.error().kind == airlock::util::ErrorKind::refused);
    CHECK(missed.error().message == "the engine did not apply HostConfig.PidsLimit (wanted 256, "
                                    "got 0); refusing to start the task");

    auto warned = refuse_on_mismatch({{"Warnings", "none", "PIDs limit discarded."}});
    REQUIRE_FALSE(warned.ok());
    CHECK(warned.error().kind == airlock::util::ErrorKind::refused);
    CHECK(warned.error().message ==
          "the engine warned at create: PIDs limit discarded.; refusing to start the task");
}

TEST_CASE("runtimes: the first allowed one the engine has, or the fix", "[sandbox][spec]") {
    const json both = {{"runc", {{"path", "runc"}}}, {"runsc", {{"path", "/usr/bin/runsc"}}}};
    const json runc_only = {{"runc", {{"path", "runc"}}}};
    CHECK(*pick_runtime({"runsc", "runc"}, both) == "runsc");
    CHECK(*pick_runtime({"runsc", "runc"}, runc_only) == "runc");
    CHECK(*pick_runtime({"runc"}, both) == "runc");

    for (const json& engine : {runc_only, json::object(), json()}) {
        auto none = pick_runtime({"runsc"}, engine);
        REQUIRE_FALSE(none.ok());
        CHECK(none.error().kind == airlock::util::ErrorKind::refused);
        CHECK(none.error().message.find("the engine has none of the allowed runtimes (runsc); "
                                        "install gVisor (apt-get install runsc)") == 0);
    }
}

TEST_CASE("verify_container checks the image and device cgroup rules", "[sandbox][spec]") {
    const auto o = default_options();
    json inspect = inspect_from(build_create_body(o, plan()));
    inspect["Image"] = "sha256:ffff";
    auto ms = verify_container(inspect, o, plan(), {});
    REQUIRE(ms.size() == 1);
    CHECK(ms[0].field == "Image");
    inspect["Image"] = plan().image_id;
    inspect["HostConfig"]["DeviceCgroupRules"] = json::array({"c 1:3 rwm"});
    ms = verify_container(inspect, o, plan(), {});
    REQUIRE(ms.size() == 1);
    CHECK(ms[0].field == "HostConfig.DeviceCgroupRules");
}

TEST_CASE("file secrets: a read-only tmpfs volume at /run/secrets, and nothing else",
          "[sandbox][spec]") {
    const auto o = default_options();
    ContainerPlan p = plan();
    p.secrets_volume = "airlock-run-secrets";
    const json body = build_create_body(o, p);
    const json& mounts = body["HostConfig"]["Mounts"];
    REQUIRE(mounts.size() == 2);
    CHECK(mounts[1]["Target"] == "/run/secrets");
    CHECK(mounts[1]["ReadOnly"] == true);
    json inspect = inspect_from(body);
    CHECK(verify_container(inspect, o, p, {}).empty());
    // The same mount without a planned secrets volume is a stray mount.
    auto stray = verify_container(inspect, o, plan(), {});
    REQUIRE(stray.size() == 1);
    CHECK(stray[0].field == "Mounts");
    // Writable is refused.
    for (auto& m : inspect["Mounts"])
        if (m["Destination"] == "/run/secrets") m["RW"] = true;
    auto rw = verify_container(inspect, o, p, {});
    REQUIRE(rw.size() == 1);
    CHECK(rw[0].field == "Mounts./run/secrets");
}
