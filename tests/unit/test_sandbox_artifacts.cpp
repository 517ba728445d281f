// Artifact patterns: what may be asked for, and which directory is fetched for each.
#include "sandbox/artifacts.hpp"

#include <catch2/catch.hpp>

using namespace airlock::sandbox;

TEST_CASE("artifact patterns stay inside the workspace", "[artifacts]") {
    CHECK_FALSE(artifact_pattern_problem("dist/report.xml"));
    CHECK_FALSE(artifact_pattern_problem("out/**/*.json"));
    CHECK(artifact_pattern_problem("/etc/passwd") ==
          "must be relative to /workspace (e.g. \"dist/report.xml\" or \"out/**/*.json\")");
    CHECK(artifact_pattern_problem("dist/../../etc/passwd") == "may not contain \"..\"");
    CHECK(artifact_pattern_problem("..") == "may not contain \"..\"");
    CHECK(artifact_pattern_problem("") == "is empty");
}

TEST_CASE("the fetched directory is the pattern up to its first glob", "[artifacts]") {
    CHECK(artifact_fetch_root("dist/report.xml") == "dist/report.xml");
    CHECK(artifact_fetch_root("dist/**/*.json") == "dist");
    CHECK(artifact_fetch_root("a/b/c*.txt") == "a/b");
    CHECK(artifact_fetch_root("*.xml") == "");
    CHECK(artifact_fetch_root("./dist/x") == "dist/x");
}
