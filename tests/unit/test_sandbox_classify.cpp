// How a run ended and which exit code airlock returns for it.
#include "sandbox/classify.hpp"

#include <catch2/catch.hpp>

using namespace airlock::sandbox;

namespace {

ExitFacts exited(long status) {
    ExitFacts f;
    f.started = true;
    f.status_code = status;
    return f;
}

ExitFacts start_failed(std::string error) {
    ExitFacts f;
    f.started = false;
    f.start_error = std::move(error);
    return f;
}

} // namespace

TEST_CASE("exit 0 is success", "[sandbox][classify]") {
    auto c = classify(exited(0));
    CHECK(c.outcome == Outcome::success);
    CHECK(c.exit_code == 0);
    CHECK(c.exit_code == exit_code::ok);
    CHECK(c.description == "exited 0");
}

TEST_CASE("a non-zero exit is failed with the same code", "[sandbox][classify]") {
    auto c = classify(exited(3));
    CHECK(c.outcome == Outcome::failed);
    CHECK(c.exit_code == 3);
    CHECK(c.description == "exited 3");

    auto one = classify(exited(1));
    CHECK(one.outcome == Outcome::failed);
    CHECK(one.exit_code == 1);

    auto high = classify(exited(128));
    CHECK(high.outcome == Outcome::failed);
    CHECK(high.exit_code == 128);

    auto beyond_signals = classify(exited(255));
    CHECK(beyond_signals.outcome == Outcome::failed);
    CHECK(beyond_signals.exit_code == 255);
}

TEST_CASE("a status that wraps to 0 is never reported as success", "[sandbox][classify]") {
    auto c = classify(exited(256));
    CHECK(c.outcome == Outcome::failed);
    CHECK(c.exit_code == 1);
    CHECK(c.description == "exited 256");

    auto other = classify(exited(258));
    CHECK(other.outcome == Outcome::failed);
    CHECK(other.exit_code == 2);
}

TEST_CASE("137 with OOMKilled is oom", "[sandbox][classify]") {
    ExitFacts f = exited(137);
    f.oom_killed = true;
    auto c = classify(f);
    CHECK(c.outcome == Outcome::oom);
    CHECK(c.exit_code == 137);
    CHECK(c.exit_code == exit_code::killed);
    CHECK_THAT(c.description, Catch::Contains("out-of-memory"));
}

TEST_CASE("137 without OOMKilled is a signal, not oom", "[sandbox][classify]") {
    auto c = classify(exited(137));
    CHECK(c.outcome == Outcome::signalled);
    CHECK(c.exit_code == 137);
    CHECK(c.description == "killed by signal 9");
}

TEST_CASE("143 is signalled by SIGTERM", "[sandbox][classify]") {
    auto c = classify(exited(143));
    CHECK(c.outcome == Outcome::signalled);
    CHECK(c.exit_code == 143);
    CHECK(c.description == "killed by signal 15");

    auto segv = classify(exited(139));
    CHECK(segv.outcome == Outcome::signalled);
    CHECK(segv.exit_code == 139);
    CHECK(segv.description == "killed by signal 11");

    auto last_rt = classify(exited(128 + 64));
    CHECK(last_rt.outcome == Outcome::signalled);
    CHECK(classify(exited(128 + 65)).outcome == Outcome::failed);
}

TEST_CASE("our timeout is 124, whatever the status", "[sandbox][classify]") {
    ExitFacts f = exited(137);
    f.timed_out = true;
    auto c = classify(f);
    CHECK(c.outcome == Outcome::timeout);
    CHECK(c.exit_code == 124);
    CHECK(c.exit_code == exit_code::timeout);

    // The wall-clock limit explains the kill better than the OOM flag set while stopping.
    f.oom_killed = true;
    CHECK(classify(f).outcome == Outcome::timeout);
}

TEST_CASE("an interrupt is 130 and wins over everything", "[sandbox][classify]") {
    ExitFacts f = exited(143);
    f.interrupted = true;
    f.timed_out = true;
    f.oom_killed = true;
    auto c = classify(f);
    CHECK(c.outcome == Outcome::interrupted);
    CHECK(c.exit_code == 130);
    CHECK(c.exit_code == exit_code::interrupted);

    ExitFacts before_start = start_failed("whatever");
    before_start.interrupted = true;
    CHECK(classify(before_start).outcome == Outcome::interrupted);
    CHECK(classify(before_start).exit_code == 130);
}

TEST_CASE("a missing command is 127", "[sandbox][classify]") {
    auto c = classify(start_failed(
        "failed to create task for container: failed to create shim task: OCI runtime create "
        "failed: runc create failed: unable to start container process: exec: \"nosuch\": "
        "executable file not found in $PATH: unknown"));
    CHECK(c.outcome == Outcome::command_not_found);
    CHECK(c.exit_code == 127);
    CHECK(c.exit_code == exit_code::not_found);

    auto abs = classify(start_failed("OCI runtime create failed: exec: \"/opt/nosuch\": stat "
                                     "/opt/nosuch: no such file or directory: unknown"));
    CHECK(abs.outcome == Outcome::command_not_found);
    CHECK(abs.exit_code == 127);
}

TEST_CASE("a command that cannot be executed is 126", "[sandbox][classify]") {
    auto c = classify(start_failed("OCI runtime create failed: exec: \"/workspace/run.sh\": "
                                   "permission denied: unknown"));
    CHECK(c.outcome == Outcome::not_executable);
    CHECK(c.exit_code == 126);
    CHECK(c.exit_code == exit_code::refused);
}

TEST_CASE("any other start failure is an engine error, 125", "[sandbox][classify]") {
    for (const char* err : {"", "driver failed programming external connectivity",
                            "OCI runtime create failed: cgroup: unable to apply limits"}) {
        INFO(err);
        auto c = classify(start_failed(err));
        CHECK(c.outcome == Outcome::engine_error);
        CHECK(c.exit_code == 125);
        CHECK(c.exit_code == exit_code::engine);
    }
}

TEST_CASE("a started task with no status is an engine error", "[sandbox][classify]") {
    ExitFacts lost;
    lost.started = true; // status_code stays -1
    auto c = classify(lost);
    CHECK(c.outcome == Outcome::engine_error);
    CHECK(c.exit_code == 125);

    ExitFacts failed = exited(0);
    failed.engine_failed = true;
    CHECK(classify(failed).outcome == Outcome::engine_error);
    CHECK(classify(failed).exit_code == 125);
}

TEST_CASE("every outcome has a name", "[sandbox][classify]") {
    CHECK(std::string(to_string(Outcome::success)) == "success");
    CHECK(std::string(to_string(Outcome::failed)) == "failed");
    CHECK(std::string(to_string(Outcome::signalled)) == "signalled");
    CHECK(std::string(to_string(Outcome::timeout)) == "timeout");
    CHECK(std::string(to_string(Outcome::oom)) == "oom");
    CHECK(std::string(to_string(Outcome::command_not_found)) == "command_not_found");
    CHECK(std::string(to_string(Outcome::not_executable)) == "not_executable");
    CHECK(std::string(to_string(Outcome::interrupted)) == "interrupted");
    CHECK(std::string(to_string(Outcome::engine_error)) == "engine_error");
}

// Regression (runner/sandbox/classify.cpp): any start error containing "no such file or directory" is
// taken for a missing command, so a failed workspace mount (runc's real message below) is
// reported as "the command is not in the image" with 127 instead of an engine error (125).
TEST_CASE("a failed mount at start is not a missing command", "[sandbox][classify]") {
    auto c = classify(start_failed(
        "failed to create task for container: failed to create shim task: OCI runtime create "
        "failed: runc create failed: unable to start container process: error during container "
        "init: error mounting \"/home/dev/ws\" to rootfs at \"/workspace\": mount "
        "/home/dev/ws:/workspace (via /proc/self/fd/6), flags: 0x5000: no such file or "
        "directory: unknown"));
    CHECK(c.outcome == Outcome::engine_error);
    CHECK(c.exit_code == 125);
}
