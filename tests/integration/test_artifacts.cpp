// Artifacts copied out of a real container: globs and paths, hashes in the report and events,
// links never followed, caps, and patterns that match nothing.
#include "harness.hpp"

#include "util/sha256.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <sstream>

using namespace airlock;
using namespace airlock::test;
using nlohmann::json;
namespace fs = std::filesystem;

TEST_CASE("artifacts: declared files are copied out with their hashes, links are never followed",
          "[integration][artifacts]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    // A link in the checkout to a host file: asking for it must never read the host file.
    fs::create_symlink("/etc/hostname", ws.path() / "host-link");
    const fs::path dir = out.path() / "run";
    auto p = run_airlock(run_args(
        ws.path(), dir,
        {"--artifact", "dist/**/*.json", "--artifact", "dist/report.xml", "--artifact", "host-link",
         "--artifact", "missing/*.txt", "--artifact", "big.bin"},
        {"sh", "-c",
         "mkdir -p dist/sub && echo '<r/>' > dist/report.xml && echo '{}' > dist/sub/a.json && "
         "echo '[]' > dist/b.json && echo no > dist/c.txt && ln -s /etc/shadow dist/sub/s.json "
         "&& head -c 300000000 /dev/zero > big.bin"}));
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    const json report = read_report(dir);
    const json& a = report["artifacts"];
    std::set<std::string> paths;
    for (const auto& f : a["files"]) {
        paths.insert(f["path"]);
        CHECK(f["sha256"] ==
              util::sha256_hex(read_file(dir / "artifacts" / f["path"].get<std::string>())));
    }
    CHECK(paths == std::set<std::string>{"dist/b.json", "dist/report.xml", "dist/sub/a.json"});
    CHECK(read_file(dir / "artifacts/dist/report.xml") == "<r/>\n");
    CHECK_FALSE(fs::exists(dir / "artifacts/dist/c.txt"));
    CHECK_FALSE(fs::exists(fs::symlink_status(dir / "artifacts/dist/sub/s.json")));
    CHECK_FALSE(fs::exists(fs::symlink_status(dir / "artifacts/host-link")));
    CHECK_FALSE(fs::exists(dir / "artifacts/big.bin")); // over standard's 256m per file
    std::string skipped;
    for (const auto& s : a["skipped"])
        skipped += s.get<std::string>() + "\n";
    INFO(skipped);
    CHECK(skipped.find("dist/sub/s.json") != std::string::npos);
    CHECK(skipped.find("host-link") != std::string::npos);
    CHECK(skipped.find("big.bin") != std::string::npos);
    std::set<std::string> missing;
    for (const auto& m : a["missing"])
        missing.insert(m);
    CHECK(missing == std::set<std::string>{"missing/*.txt", "host-link", "big.bin"});
    // No staging directory is left, and each artifact is an event.
    for (const auto& e : fs::directory_iterator(dir))
        CHECK(e.path().filename().string().rfind(".artifacts-staging", 0) != 0);
    std::size_t events = 0;
    std::istringstream in(read_file(dir / "events.jsonl"));
    for (std::string l; std::getline(in, l);)
        events += json::parse(l)["type"] == "artifact.collected" ? 1 : 0;
    CHECK(events == 3);
    check_against_schema(report);
    require_nothing_left(p);
}

TEST_CASE("artifacts: a pattern outside the workspace is refused before anything starts",
          "[integration][artifacts]") {
    REQUIRE_ENGINE();
    TempDir ws, out;
    auto p = run_airlock(
        run_args(ws.path(), out.path() / "run", {"--artifact", "../../etc/passwd"}, {"true"}));
    CHECK(p.exit_code == 2);
    CHECK_THAT(p.err, Catch::Contains("--artifact: \"../../etc/passwd\" may not contain \"..\""));
    CHECK(airlock_leftovers().empty());
}
