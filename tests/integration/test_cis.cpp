// CIS Docker Benchmark section 5 in the report, compared with what the engine says of the live
// container: the report records what was applied, not what was asked for.
#include "harness.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <set>
#include <thread>

using namespace airlock::test;
using nlohmann::json;

namespace {

// The value at a dotted inspect path ("HostConfig.SecurityOpt"), null when absent: the same
// reading the report's `effective` keys stand for.
json at(const json& inspect, const std::string& path) {
    const json* j = &inspect;
    std::size_t start = 0;
    while (start <= path.size()) {
        const auto dot = path.find('.', start);
        const std::string key =
            path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (!j->is_object() || !j->contains(key)) return nullptr;
        j = &(*j)[key];
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return *j;
}

std::string unique_token() {
    std::random_device rd;
    return "cis-" + std::to_string(rd()) + "-" + std::to_string(rd());
}

} // namespace

TEST_CASE("the report's CIS checks match docker inspect of the live container",
          "[integration][cis]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    write_file(ws.path() / "f.txt", "x\n");
    // $0 of the shell: lets this test tell its container from those of runs sharing the engine.
    const std::string token = unique_token();
    json live;
    std::string live_run_id;
    ProcOptions po;
    po.while_running = [&](int) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (live.is_null() && std::chrono::steady_clock::now() < deadline) {
            auto cs = client().containers_by_label("io.airlock.role", "agent");
            if (cs)
                for (const auto& c : *cs) {
                    if (c.value("Command", "").find(token) == std::string::npos) continue;
                    auto ins = client().container_inspect(c.value("Id", ""));
                    if (!ins || !(*ins)["State"].value("Running", false)) continue;
                    live = *ins;
                    live_run_id = c["Labels"].value("io.airlock.run", "");
                }
            if (live.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    };
    auto p =
        run_airlock({"run", "--quiet", "--pull", "never", "--workspace", ws.path().string(),
                     "--out", (out.path() / "run").string(), "--", "sh", "-c", "sleep 3", token},
                    po);
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    REQUIRE(live.is_object());
    require_nothing_left(p);

    const json rep = read_report(out.path() / "run");
    CHECK(rep["run_id"] == live_run_id);
    CHECK(rep["container"]["id"] == live["Id"]);
    CHECK(rep["enforcement"]["verified"] == true);

    const json& cis = rep["cis"];
    CHECK(cis["benchmark"] == "CIS Docker Benchmark");
    CHECK(cis["version"] == "1.6.0");
    CHECK(cis["section"] == "5");
    REQUIRE(cis["checks"].is_array());
    CHECK(cis["checks"].size() == 32);

    std::set<std::string> ids;
    for (const auto& c : cis["checks"]) {
        const std::string id = c["id"];
        INFO("CIS " << id << " " << c["status"] << ": " << c["reason"]);
        CHECK(ids.insert(id).second);
        CHECK(c["status"] != "fail");
        CHECK_FALSE(c["reason"].get<std::string>().empty());
        for (const auto& [path, value] : c["effective"].items()) {
            INFO("effective " << path);
            CHECK(value == at(live, path));
        }
    }
    for (const char* id : {"5.4", "5.5", "5.10", "5.22", "5.26", "5.29", "5.31", "5.32"}) {
        INFO(id);
        CHECK(ids.count(id) == 1);
    }

    auto status_of = [&](const std::string& id) {
        for (const auto& c : cis["checks"])
            if (c["id"] == id) return c["status"].get<std::string>();
        return std::string("missing");
    };
    CHECK(status_of("5.5") == "pass");  // not privileged
    CHECK(status_of("5.22") == "pass"); // default seccomp
    CHECK(status_of("5.26") == "pass"); // no-new-privileges
    CHECK(status_of("5.32") == "pass"); // no engine socket
    CHECK(status_of("5.7") == "not_applicable");
    // The hardening the checks read is really there.
    CHECK(live["HostConfig"]["Privileged"] == false);
    CHECK(live["HostConfig"]["NetworkMode"] == "none");
    CHECK(live["HostConfig"]["ReadonlyRootfs"] == true);
}
