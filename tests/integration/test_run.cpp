// `airlock run` against the real engine: hardening, limits, exits, workspace and teardown.
#include "harness.hpp"

#include "audit/events.hpp"
#include "util/sha256.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <thread>

using namespace airlock::test;
namespace fs = std::filesystem;

namespace {

// The event types in OUT/events.jsonl, in order.
std::vector<std::string> event_types(const fs::path& run) {
    std::vector<std::string> types;
    std::ifstream in(run / "events.jsonl");
    for (std::string line; std::getline(in, line);)
        types.push_back(nlohmann::json::parse(line).value("type", ""));
    return types;
}

bool has_event(const fs::path& run, const std::string& type) {
    auto types = event_types(run);
    return std::find(types.begin(), types.end(), type) != types.end();
}

} // namespace

TEST_CASE("stdout and stderr stay apart, live and in the logs", "[integration][run]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    ProcOptions po;
    auto args =
        run_args(ws.path(), out.path() / "run", {}, {"sh", "-c", "echo to-out; echo to-err >&2"});
    args.erase(args.begin() + 1); // not --quiet: the terminal gets the output too
    auto p = run_airlock(args, po);
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    CHECK(read_file(out.path() / "run/logs/stdout.log") == "to-out\n");
    CHECK(read_file(out.path() / "run/logs/stderr.log") == "to-err\n");
    CHECK(p.out == "to-out\n");
    CHECK(p.err.find("to-err\n") != std::string::npos);
    auto rep = read_report(out.path() / "run");
    CHECK(rep["result"]["outcome"] == "success");
    CHECK(rep["output"]["stdout_bytes"] == 7);
    CHECK(rep["output"]["stderr_bytes"] == 7);
    require_nothing_left(p);
}

TEST_CASE("the task's exit code passes through", "[integration][run]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    auto p = run_airlock(run_args(ws.path(), out.path() / "run", {}, {"sh", "-c", "exit 42"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 42);
    auto rep = read_report(out.path() / "run");
    CHECK(rep["result"]["outcome"] == "failed");
    CHECK(rep["result"]["status_code"] == 42);
    CHECK(rep["result"]["exit_code"] == 42);
    require_nothing_left(p);
}

TEST_CASE("a memory hog is OOM-killed and reported as such", "[integration][limits]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    // tail keeps the whole "line" of zeros in memory.
    auto p = run_airlock(run_args(ws.path(), out.path() / "run", {"--memory", "32m"},
                                  {"sh", "-c", "head -c 300m /dev/zero | tail"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 137);
    auto rep = read_report(out.path() / "run");
    CHECK(rep["result"]["outcome"] == "oom");
    CHECK(rep["result"]["oom_killed"] == true);
    CHECK(has_event(out.path() / "run", "oom"));
    CHECK(p.err.find("out-of-memory") != std::string::npos);
    require_nothing_left(p);
}

TEST_CASE("a fork bomb is held by the pids limit", "[integration][limits]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    // 100 background sleepers under a limit of 32 processes: the shell cannot fork them all.
    auto p = run_airlock(
        run_args(ws.path(), out.path() / "run", {"--pids", "32", "--timeout", "60s"},
                 {"sh", "-c", "for i in $(seq 1 100); do sleep 30 & done; echo spawned-all"}));
    INFO(p.err);
    CHECK(p.exit_code != 0);
    CHECK(p.exit_code != 124);
    CHECK(read_file(out.path() / "run/logs/stdout.log").find("spawned-all") == std::string::npos);
    CHECK(read_file(out.path() / "run/logs/stderr.log").find("Cannot fork") != std::string::npos);
    auto rep = read_report(out.path() / "run");
    CHECK(rep["limits"]["pids"] == 32);
    require_nothing_left(p);
}

TEST_CASE("the same task under the default pids limit does fork them all",
          "[integration][limits]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    auto p = run_airlock(
        run_args(ws.path(), out.path() / "run", {},
                 {"sh", "-c",
                  "for i in $(seq 1 100); do sleep 30 & done; echo spawned-all; kill $(jobs -p)"}));
    INFO(p.err);
    CHECK(read_file(out.path() / "run/logs/stdout.log") == "spawned-all\n");
    require_nothing_left(p);
}

TEST_CASE("a task past --timeout is stopped and exits 124", "[integration][limits]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    auto p = run_airlock(run_args(ws.path(), out.path() / "run",
                                  {"--timeout", "2s", "--grace", "1s"}, {"sleep", "60"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 124);
    CHECK(p.seconds < 20);
    auto rep = read_report(out.path() / "run");
    CHECK(rep["result"]["outcome"] == "timeout");
    CHECK(rep["result"]["timed_out"] == true);
    CHECK(has_event(out.path() / "run", "timeout"));
    require_nothing_left(p);
}

TEST_CASE("resource peaks are sampled while the task runs", "[integration][limits]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    // About 48 MB held in a shell variable, three extra processes and a second of busy CPU,
    // for four seconds: several samples of the engine's stats stream.
    auto p = run_airlock(
        run_args(ws.path(), out.path() / "run", {"--memory", "512m"},
                 {"sh", "-c",
                  "x=$(head -c 48000000 /dev/zero | tr '\\0' a); "
                  "sleep 4 & sleep 4 & sleep 4 & "
                  "end=$(($(date +%s) + 1)); while [ $(date +%s) -le $end ]; do :; done; "
                  "wait; echo ${#x}"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    CHECK(read_file(out.path() / "run/logs/stdout.log") == "48000000\n");
    auto res = read_report(out.path() / "run")["resources"];
    INFO(res.dump());
    CHECK(res["samples"].get<std::uint64_t>() >= 2);
    CHECK(res["memory_peak_bytes"].get<std::uint64_t>() >= 48000000);
    CHECK(res["memory_peak_bytes"].get<std::uint64_t>() <= 512ULL * 1024 * 1024);
    CHECK(res["pids_peak"].get<std::uint64_t>() >= 4);
    CHECK(res["cpu_ns"].get<std::uint64_t>() >= 500000000ULL);
    CHECK(has_event(out.path() / "run", "resource.sample"));
    require_nothing_left(p);
}

TEST_CASE("a runner killed with SIGKILL leaves a verifiable event trail",
          "[integration][teardown]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    const fs::path run = out.path() / "run";
    ProcOptions po;
    bool started = false;
    po.while_running = [&](int pid) {
        for (int i = 0; i < 300 && !started; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            if (fs::exists(run / "events.jsonl")) started = has_event(run, "container.started");
        }
        ::kill(pid, SIGKILL);
    };
    auto p = run_airlock(run_args(ws.path(), run, {}, {"sleep", "120"}), po);
    REQUIRE(started);
    CHECK(p.exit_code == 128 + SIGKILL);
    CHECK_FALSE(fs::exists(run / "report.json"));
    // Every line written before the kill is whole and chained.
    auto chain = airlock::audit::verify_event_chain(run / "events.jsonl");
    REQUIRE(chain);
    auto types = event_types(run);
    CHECK(*chain == types.size());
    CHECK(types.front() == "run.start");
    CHECK(types.back() != "run.end");
    // The killed runner's container and volumes are left for `airlock clean --run ID`.
    std::ifstream in(run / "events.jsonl");
    std::string first;
    std::getline(in, first);
    const std::string run_id = nlohmann::json::parse(first).value("run_id", "");
    REQUIRE_FALSE(run_id.empty());
    auto cs = client().containers_by_label("io.airlock.run", run_id);
    REQUIRE(cs);
    CHECK(cs->size() == 1);
    auto cleaned = run_airlock({"clean", "--run", run_id});
    INFO(cleaned.err);
    CHECK(cleaned.exit_code == 0);
    require_nothing_left(cleaned);
}

TEST_CASE("the root filesystem is read-only and the user is not root", "[integration][hardening]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    auto p = run_airlock(run_args(ws.path(), out.path() / "run", {},
                                  {"sh", "-c",
                                   "id -u; touch /etc/airlock-probe || echo ro; "
                                   "touch /tmp/ok && echo tmp-writable; "
                                   "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    auto log = read_file(out.path() / "run/logs/stdout.log");
    CHECK(log.rfind("1000\n", 0) == 0);
    CHECK(log.find("ro\n") != std::string::npos);
    CHECK(log.find("tmp-writable") != std::string::npos);
    CHECK(log.find("CapEff:\t0000000000000000") != std::string::npos);
    CHECK(log.find("NoNewPrivs:\t1") != std::string::npos);
    CHECK(read_file(out.path() / "run/logs/stderr.log").find("Read-only file system") !=
          std::string::npos);
    require_nothing_left(p);
}

TEST_CASE("the container has no network interface but lo", "[integration][hardening]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    auto p =
        run_airlock(run_args(ws.path(), out.path() / "run", {},
                             {"sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    CHECK(read_file(out.path() / "run/logs/stdout.log") == "lo\n");
    require_nothing_left(p);
}

TEST_CASE("volume mode: changes come back out, the checkout is untouched",
          "[integration][workspace]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    write_file(ws.path() / "keep.txt", "same\n");
    write_file(ws.path() / "edit.txt", "before\n");
    write_file(ws.path() / "gone.txt", "delete me\n");
    write_file(ws.path() / "src/deep/file.c", "int main(void) { return 0; }\n");
    auto snapshot = [&] {
        std::map<std::string, std::string> m;
        for (auto& e : fs::recursive_directory_iterator(ws.path()))
            m[e.path().string()] =
                e.is_regular_file() ? airlock::util::sha256_hex(read_file(e.path())) : "dir";
        return m;
    };
    auto before = snapshot();
    auto p = run_airlock(run_args(ws.path(), out.path() / "run", {},
                                  {"sh", "-c",
                                   "echo after > edit.txt; rm gone.txt; "
                                   "mkdir -p new/dir && echo fresh > new/dir/added.txt; "
                                   "cat keep.txt src/deep/file.c >/dev/null"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    CHECK(snapshot() == before);
    auto run = out.path() / "run";
    CHECK(read_file(run / "changes/files/edit.txt") == "after\n");
    CHECK(read_file(run / "changes/files/new/dir/added.txt") == "fresh\n");
    CHECK_FALSE(fs::exists(run / "changes/files/keep.txt"));
    auto man = nlohmann::json::parse(read_file(run / "changes/manifest.json"));
    auto paths = [&](const char* kind) {
        std::vector<std::string> v;
        for (auto& e : man[kind])
            v.push_back(e["path"]);
        return v;
    };
    CHECK(paths("modified") == std::vector<std::string>{"edit.txt"});
    CHECK(paths("deleted") == std::vector<std::string>{"gone.txt"});
    auto added = paths("added");
    CHECK(std::find(added.begin(), added.end(), "new/dir/added.txt") != added.end());
    for (auto& e : man["modified"])
        CHECK(e["sha256"] == airlock::util::sha256_hex("after\n"));
    auto rep = read_report(run);
    CHECK(rep["changes"]["modified"] == 1);
    CHECK(rep["changes"]["deleted"] == 1);
    require_nothing_left(p);
}

TEST_CASE("SIGINT mid-run leaves no container, volume or network", "[integration][teardown]") {
    REQUIRE_ENGINE();
    int signals = GENERATE(1, 2);
    TempDir ws, out;
    write_file(ws.path() / "f.txt", "x\n");
    ProcOptions po;
    bool saw_container = false;
    po.while_running = [&](int pid) {
        for (int i = 0; i < 200 && !saw_container; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            auto cs = client().containers_by_label("io.airlock.run", "");
            if (cs)
                for (auto& c : *cs)
                    if (c.value("State", "") == "running") saw_container = true;
        }
        for (int s = 0; s < signals; ++s) {
            ::kill(pid, SIGINT);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    };
    auto p = run_airlock(run_args(ws.path(), out.path() / "run", {}, {"sleep", "120"}), po);
    INFO(p.err);
    REQUIRE(saw_container);
    CHECK(p.exit_code == 130);
    CHECK(p.seconds < 60);
    require_nothing_left(p);
    auto rep = read_report(out.path() / "run");
    CHECK(rep["result"]["outcome"] == "interrupted");
}

TEST_CASE("1 GiB of output passes with bounded memory", "[integration][output]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    ProcOptions po;
    po.discard_stdout = true;
    auto args =
        run_args(ws.path(), out.path() / "run",
                 {"--policy", "permissive", "--output-cap", "2g", "--timeout", "10m"},
                 {"sh", "-c",
                  "yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"
                  " | head -c 1073741824"});
    args.erase(args.begin() + 1); // echo to the (discarded) terminal as a user would see it
    auto p = run_airlock(args, po);
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    auto rep = read_report(out.path() / "run");
    CHECK(rep["output"]["stdout_bytes"] == 1073741824);
    CHECK(rep["output"]["truncated"] == false);
    CHECK(fs::file_size(out.path() / "run/logs/stdout.log") == 1073741824);
    INFO("peak RSS " << p.max_rss_kb << " KiB");
    CHECK(p.max_rss_kb < 64 * 1024);
    fs::remove(out.path() / "run/logs/stdout.log");
    require_nothing_left(p);
}

TEST_CASE("output past the cap is cut and the cut recorded", "[integration][output]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    auto p = run_airlock(run_args(ws.path(), out.path() / "run", {"--output-cap", "1k"},
                                  {"sh", "-c", "head -c 5000 /dev/zero | tr '\\0' a"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    auto rep = read_report(out.path() / "run");
    CHECK(rep["output"]["truncated"] == true);
    CHECK(rep["output"]["dropped_bytes"] == 5000 - 1024);
    CHECK(fs::file_size(out.path() / "run/logs/stdout.log") == 1024);
    require_nothing_left(p);
}
