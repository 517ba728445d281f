// events.jsonl: appended line by line, hash-chained, redacted.
#include "audit/events.hpp"
#include "util/sha256.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace airlock;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir() {
    auto d = fs::temp_directory_path() /
             ("airlock-events-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
    fs::create_directories(d);
    return d;
}
std::vector<std::string> lines_of(const fs::path& p) {
    std::ifstream in(p);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);)
        out.push_back(l);
    return out;
}
} // namespace

TEST_CASE("events chain and verify, an edit or a removal is found", "[audit][events]") {
    auto dir = temp_dir();
    audit::Redactor redactor({"s3cr3t-value"});
    {
        audit::EventLog log;
        REQUIRE(log.open(dir / "events.jsonl", &redactor).ok());
        log.append("run.start", {{"run_id", "r1"}});
        log.append("network.decision", {{"host", "a.test"}, {"note", "s3cr3t-value"}});
        log.append("run.end", {{"exit_code", 0}});
        CHECK(log.count() == 3);
        CHECK(log.last_digest().size() == 64);
        // The file exists already: a second log never overwrites it.
        audit::EventLog again;
        CHECK_FALSE(again.open(dir / "events.jsonl", &redactor).ok());
    }
    auto lines = lines_of(dir / "events.jsonl");
    REQUIRE(lines.size() == 3);
    // The first line's prev is the empty string; each later one the previous line's SHA-256.
    CHECK(json::parse(lines[0])["prev"] == "");
    CHECK(json::parse(lines[1])["prev"] == util::sha256_hex(lines[0]));
    CHECK(lines[1].find("s3cr3t-value") == std::string::npos);
    CHECK(lines[1].find("***") != std::string::npos);
    auto n = audit::verify_event_chain(dir / "events.jsonl");
    REQUIRE(n.ok());
    CHECK(*n == 3);

    auto write = [&](const std::vector<std::string>& ls) {
        std::ofstream out(dir / "edited.jsonl", std::ios::trunc);
        for (const auto& l : ls)
            out << l << "\n";
    };
    auto edited = lines;
    edited[1].replace(edited[1].find("a.test"), 6, "b.test");
    write(edited);
    auto e = audit::verify_event_chain(dir / "edited.jsonl");
    REQUIRE_FALSE(e.ok());
    CHECK_THAT(e.error().message, Catch::Contains("line 3"));
    CHECK(e.error().kind == util::ErrorKind::refused); // edited, not malformed
    write({lines[0], lines[2]});
    auto r = audit::verify_event_chain(dir / "edited.jsonl");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("line 2"));
    CHECK(r.error().kind == util::ErrorKind::refused);
    write({lines[0], "{\"seq\": 2, "});
    auto m = audit::verify_event_chain(dir / "edited.jsonl");
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().message == (dir / "edited.jsonl").string() + ": line 2: not a JSON object");
    CHECK(m.error().kind == util::ErrorKind::invalid_input); // malformed: the gate exits 2
    fs::remove_all(dir);
}

TEST_CASE("events from several threads keep one chain", "[audit][events]") {
    auto dir = temp_dir();
    {
        audit::EventLog log;
        REQUIRE(log.open(dir / "events.jsonl", nullptr).ok());
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&log, t] {
                for (int i = 0; i < 200; ++i)
                    log.append("network.decision", {{"thread", t}, {"i", i}});
            });
        for (auto& t : threads)
            t.join();
    }
    auto n = audit::verify_event_chain(dir / "events.jsonl");
    REQUIRE(n.ok());
    CHECK(*n == 800);
    fs::remove_all(dir);
}
