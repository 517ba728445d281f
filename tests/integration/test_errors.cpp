// Bad input against the real engine: one clear line, the right exit code, nothing left behind.
#include "harness.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

using namespace airlock::test;
namespace fs = std::filesystem;

TEST_CASE("a missing image is a clear error with exit 125", "[integration][errors]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    auto p = run_airlock({"run", "--pull", "never", "--image", "airlock/missing-for-test:none",
                          "--workspace", ws.path().string(), "--out", (out.path() / "r").string(),
                          "--", "true"});
    CHECK(p.exit_code == 125);
    CHECK(p.err.find("image airlock/missing-for-test:none: not on the engine") !=
          std::string::npos);
    require_nothing_left(p);
}

TEST_CASE("a command not in the image exits 127", "[integration][errors]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    auto p = run_airlock({"run", "--pull", "never", "--workspace", ws.path().string(), "--out",
                          (out.path() / "r").string(), "--", "no-such-command-here"});
    INFO(p.err);
    CHECK(p.exit_code == 127);
    CHECK(p.err.find("command_not_found") != std::string::npos);
    require_nothing_left(p);
}

TEST_CASE("an unreachable engine is exit 125 with the fix", "[integration][errors]") {
    TempDir ws, out;
    ProcOptions po;
    po.env = {"DOCKER_HOST=unix:///nonexistent/airlock-test.sock"};
    auto p = run_airlock({"run", "--workspace", ws.path().string(), "--out",
                          (out.path() / "r").string(), "--", "true"},
                         po);
    CHECK(p.exit_code == 125);
    CHECK(p.err.find("cannot reach the Docker engine at unix:///nonexistent/airlock-test.sock") !=
          std::string::npos);
    CHECK(p.err.find("set DOCKER_HOST") != std::string::npos);
}

TEST_CASE("bad flag values exit 2 before anything starts", "[integration][errors]") {
    REQUIRE_ENGINE();
    TempDir ws;
    auto p =
        run_airlock({"run", "--memory", "12zz", "--workspace", ws.path().string(), "--", "true"});
    CHECK(p.exit_code == 2);
    CHECK(p.err == "airlock: --memory: \"12zz\" is not a size (use a number with an optional unit: "
                   "512m, 2g, 1GiB)\n");
    p = run_airlock({"run", "--user", "0", "--", "true"});
    CHECK(p.exit_code == 126);
    p = run_airlock({"run", "--bogus-flag", "--", "true"});
    CHECK(p.exit_code == 2);
    p = run_airlock({"run", "--workspace", ws.path().string()});
    CHECK(p.exit_code == 2);
    CHECK(p.err.find("no command given") != std::string::npos);
    require_nothing_left(p);
}

TEST_CASE("a workspace that does not exist exits 2", "[integration][errors]") {
    REQUIRE_ENGINE();
    TempDir out;
    auto p = run_airlock({"run", "--workspace", "/nonexistent/airlock-ws", "--out",
                          (out.path() / "r").string(), "--", "true"});
    CHECK(p.exit_code == 2);
    CHECK(p.err.find("workspace: /nonexistent/airlock-ws: does not exist") != std::string::npos);
    require_nothing_left(p);
}

TEST_CASE("a workspace file the runner cannot read exits 2 and starts nothing",
          "[integration][errors]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    write_file(ws.path() / "ok.txt", "fine\n");
    write_file(ws.path() / "secret.txt", "no\n");
    ::chmod((ws.path() / "secret.txt").c_str(), 0);
    // Root reads every file, so airlock runs as nobody here; the workspace scan comes before
    // anything touches the engine, so it fails first.
    ::chmod(ws.path().c_str(), 0755);
    ::chmod(out.path().c_str(), 0777);
    ProcOptions nobody;
    nobody.run_as_uid = 65534;
    auto p = run_airlock({"run", "--workspace", ws.path().string(), "--out",
                          (out.path() / "r").string(), "--", "true"},
                         nobody);
    INFO(p.err);
    CHECK(p.exit_code == 2);
    CHECK(p.err.find("secret.txt: cannot read") != std::string::npos);
    require_nothing_left(p);
}

TEST_CASE("airlock clean removes what a killed runner left", "[integration][teardown]") {
    REQUIRE_ENGINE();
    auto& c = client();
    REQUIRE(c.volume_create("airlock-test-orphan", {{"io.airlock.run", "test-orphan"}}).ok());
    REQUIRE_FALSE(airlock_leftovers().empty());
    auto p = run_airlock({"clean"});
    INFO(p.err);
    CHECK(p.exit_code == 0);
    CHECK(p.out.find("removed ") != std::string::npos);
    auto vs = c.volumes_by_label("io.airlock.run", "test-orphan");
    REQUIRE(vs);
    CHECK(vs->empty());
    require_nothing_left(p);
}
