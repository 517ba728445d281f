// OutputSink: the task's stdout/stderr into log files, capped, never overwriting.
#include "sandbox/output.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

using airlock::docker::StreamId;
using airlock::sandbox::Echo;
using airlock::sandbox::OutputSink;
using airlock::sandbox::write_all;
namespace fs = std::filesystem;
using airlock::test::TempDir;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace

TEST_CASE("stdout and stderr go to separate log files", "[sandbox][output]") {
    TempDir dir;
    {
        OutputSink sink(1 << 20, Echo::no);
        REQUIRE(sink.open(dir.path()).ok());
        CHECK(sink.write(StreamId::stdout_, "hello "));
        CHECK(sink.write(StreamId::stderr_, "warning: x\n"));
        CHECK(sink.write(StreamId::stdout_, "world\n"));
        CHECK(sink.bytes_seen(StreamId::stdout_) == 12);
        CHECK(sink.bytes_seen(StreamId::stderr_) == 11);
        CHECK(sink.bytes_written() == 23);
        CHECK(sink.bytes_dropped() == 0);
        CHECK_FALSE(sink.truncated());
        CHECK(sink.write_error().empty());
        sink.close();
    }
    CHECK(slurp(dir.path() / "stdout.log") == "hello world\n");
    CHECK(slurp(dir.path() / "stderr.log") == "warning: x\n");
}

TEST_CASE("the log files are created empty and not world-writable", "[sandbox][output]") {
    TempDir dir;
    OutputSink sink(100, Echo::no);
    REQUIRE(sink.open(dir.path()).ok());
    for (const char* name : {"stdout.log", "stderr.log"}) {
        INFO(name);
        const fs::path p = dir.path() / name;
        REQUIRE(fs::is_regular_file(p));
        CHECK(fs::file_size(p) == 0);
        auto perms = fs::status(p).permissions();
        CHECK((perms & fs::perms::others_write) == fs::perms::none);
        CHECK((perms & fs::perms::group_write) == fs::perms::none);
    }
}

TEST_CASE("output past the cap is counted, dropped and noted", "[sandbox][output]") {
    TempDir dir;
    {
        OutputSink sink(10, Echo::no);
        REQUIRE(sink.open(dir.path()).ok());
        CHECK(sink.write(StreamId::stdout_, "0123456789abcdefghijklmno")); // 25 bytes
        CHECK(sink.bytes_seen(StreamId::stdout_) == 25);
        CHECK(sink.bytes_written() == 10);
        CHECK(sink.bytes_dropped() == 15);
        CHECK(sink.truncated());
        CHECK(sink.cap() == 10);
    }
    CHECK(slurp(dir.path() / "stdout.log") == "0123456789");
    const std::string err = slurp(dir.path() / "stderr.log");
    CHECK_THAT(err, Catch::Contains("[airlock: output cap of 10 B reached"));
    CHECK_THAT(err, Catch::Contains("counted but not kept"));
}

TEST_CASE("the cap is shared by both streams and noted once", "[sandbox][output]") {
    TempDir dir;
    {
        OutputSink sink(10, Echo::no);
        REQUIRE(sink.open(dir.path()).ok());
        CHECK(sink.write(StreamId::stdout_, "abcdef"));
        CHECK(sink.write(StreamId::stderr_, "ERRORS"));
        CHECK(sink.write(StreamId::stdout_, "more"));
        CHECK(sink.write(StreamId::stderr_, "more errors"));
        CHECK(sink.bytes_written() == 10);
        CHECK(sink.bytes_dropped() == 2 + 4 + 11);
        CHECK(sink.bytes_seen(StreamId::stdout_) == 10);
        CHECK(sink.bytes_seen(StreamId::stderr_) == 17);
    }
    CHECK(slurp(dir.path() / "stdout.log") == "abcdef");
    const std::string err = slurp(dir.path() / "stderr.log");
    CHECK(err.rfind("ERRO\n[airlock: output cap", 0) == 0);
    std::size_t notes = 0;
    for (std::size_t pos = 0; (pos = err.find("[airlock:", pos)) != std::string::npos; ++pos)
        ++notes;
    CHECK(notes == 1);
}

TEST_CASE("output exactly at the cap is not truncated", "[sandbox][output]") {
    TempDir dir;
    OutputSink sink(10, Echo::no);
    REQUIRE(sink.open(dir.path()).ok());
    CHECK(sink.write(StreamId::stdout_, "0123456789"));
    CHECK_FALSE(sink.truncated());
    CHECK(sink.bytes_dropped() == 0);
    CHECK(sink.write(StreamId::stdout_, ""));
    CHECK_FALSE(sink.truncated());
    CHECK(sink.write(StreamId::stdout_, "x"));
    CHECK(sink.truncated());
    CHECK(sink.bytes_dropped() == 1);
}

TEST_CASE("opening into a directory that already has the logs fails", "[sandbox][output]") {
    TempDir dir;
    {
        OutputSink first(100, Echo::no);
        REQUIRE(first.open(dir.path()).ok());
        CHECK(first.write(StreamId::stdout_, "first run\n"));
    }
    OutputSink second(100, Echo::no);
    auto r = second.open(dir.path());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == airlock::util::ErrorKind::io);
    CHECK_THAT(r.error().message, Catch::Contains("stdout.log") &&
                                      Catch::Contains("cannot create") &&
                                      Catch::Contains("File exists"));
    // The first run's log is untouched.
    CHECK(slurp(dir.path() / "stdout.log") == "first run\n");
}

TEST_CASE("an existing stderr.log alone also makes open fail", "[sandbox][output]") {
    TempDir dir;
    std::ofstream(dir.path() / "stderr.log") << "old";
    OutputSink sink(100, Echo::no);
    auto r = sink.open(dir.path());
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("stderr.log"));
    CHECK(slurp(dir.path() / "stderr.log") == "old");
}

TEST_CASE("a symlink planted as a log file is not followed", "[sandbox][output]") {
    TempDir dir;
    const fs::path target = dir.path() / "victim";
    std::ofstream(target) << "precious";
    fs::create_symlink(target, dir.path() / "stdout.log");
    OutputSink sink(100, Echo::no);
    REQUIRE_FALSE(sink.open(dir.path()).ok());
    CHECK(slurp(target) == "precious");
}

TEST_CASE("opening into a missing directory fails with the path", "[sandbox][output]") {
    TempDir dir;
    OutputSink sink(100, Echo::no);
    auto r = sink.open(dir.path() / "no" / "such");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == airlock::util::ErrorKind::io);
    CHECK_THAT(r.error().message, Catch::Contains("no/such/stdout.log"));
}

TEST_CASE("write_all writes everything to a pipe", "[sandbox][output]") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const std::string data(3000, 'z');
    CHECK(write_all(fds[1], data));
    ::close(fds[1]);
    std::string got;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
        got.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    CHECK(got == data);

    CHECK_FALSE(write_all(-1, "x"));
}

TEST_CASE("secrets split across log frames are redacted before the cap and the files",
          "[sandbox][output][redact]") {
    TempDir dir;
    const std::string secret = "ghp_9fQ2xLm7Tz4Rw8Kb1Vn6";
    airlock::audit::Redactor redactor({secret});
    OutputSink sink(1 << 20, Echo::no);
    sink.set_redactor(redactor);
    REQUIRE(sink.open(dir.path()).ok());
    // Frames as the engine sends them: the secret cut at every point across two frames on
    // stdout, interleaved with stderr frames that carry the rest of another copy.
    for (std::size_t cut = 0; cut <= secret.size(); ++cut) {
        REQUIRE(sink.write(StreamId::stdout_, "a" + secret.substr(0, cut)));
        REQUIRE(sink.write(StreamId::stderr_, secret.substr(0, cut)));
        REQUIRE(sink.write(StreamId::stdout_, secret.substr(cut) + "\n"));
        REQUIRE(sink.write(StreamId::stderr_, secret.substr(cut) + "\n"));
    }
    sink.close();
    std::string expected_out, expected_err;
    for (std::size_t cut = 0; cut <= secret.size(); ++cut) {
        expected_out += "a***\n";
        expected_err += "***\n";
    }
    CHECK(slurp(dir.path() / "stdout.log") == expected_out);
    CHECK(slurp(dir.path() / "stderr.log") == expected_err);
    CHECK(sink.bytes_seen(StreamId::stdout_) == (secret.size() + 2) * (secret.size() + 1));
}

TEST_CASE("a secret held back at the end of the output is flushed redacted on close",
          "[sandbox][output][redact]") {
    TempDir dir;
    airlock::audit::Redactor redactor({"s3cr3t-value-123"});
    OutputSink sink(1 << 20, Echo::no);
    sink.set_redactor(redactor);
    REQUIRE(sink.open(dir.path()).ok());
    REQUIRE(sink.write(StreamId::stdout_, "tail s3cr3t-val"));
    sink.close();
    CHECK(slurp(dir.path() / "stdout.log") == "tail s3cr3t-val");
}
