// `airlock gate` over a synthetic, signed output directory: it passes as written, and any
// one-byte change, an extra file or another policy makes it fail with the right check.
#include "audit/dsse.hpp"
#include "audit/events.hpp"
#include "audit/gate.hpp"
#include "policy/policy.hpp"
#include "util/sha256.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace airlock;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void spit(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

audit::GatePolicy gate_policy(const std::string& spec) {
    auto p = policy::load({spec});
    REQUIRE(p.ok());
    return {"policy " + p->describe(), policy::to_json(*p)["values"], policy::digest(*p)};
}

const std::string k_patch = "diff --git a/src/a.txt b/src/a.txt\nnew file mode 100644\n";

// A run's output directory, signed; the public key PEM in `pub`.
struct Run {
    fs::path dir = fs::temp_directory_path() / ("airlock-gate-" + std::to_string(::getpid()) + "-" +
                                                std::to_string(std::rand()));
    fs::path out = dir / "out";
    std::string pub;

    Run() {
        fs::create_directories(out / "logs");
        fs::create_directories(out / "changes" / "files" / "src");
        fs::create_directories(out / "artifacts" / "dist");
        audit::EventLog log;
        REQUIRE(log.open(out / "events.jsonl", nullptr).ok());
        log.append("run.start", {{"run_id", "r1"}});
        log.append("file.changed", {{"change", "added"}, {"path", "src/a.txt"}});
        log.append("run.end", {{"exit_code", 0}});
        log.close();
        auto p = policy::load({"standard"});
        REQUIRE(p.ok());
        json pol = policy::to_json(*p);
        pol["sha256"] = policy::digest(*p);
        // Through text and back, as the gate reads it.
        const json changed = {
            {"added",
             {{{"path", "src/a.txt"},
               {"type", "file"},
               {"sha256", "0f15384d18789b1ebf3043dc7b6bc27273c8576373fbeb6f3e15854b588141c0"}}}},
            {"modified", json::array()},
            {"deleted", json::array()}};
        json report = json::parse(json{
            {"run_id", "r1"},
            {"image", {{"reference", "docker.io/library/debian:12"}}},
            {"policy", pol},
            {"enforcement", {{"verified", true}, {"mismatches", json::array()}}},
            {"changes",
             {{"added", 1},
              {"modified", 0},
              {"deleted", 0},
              {"files", changed},
              {"patch",
               {{"written", true},
                {"path", "changes.patch"},
                {"bytes", k_patch.size()},
                {"sha256", util::sha256_hex(k_patch)},
                {"files", 1},
                {"left_out", json::array()}}}}},
            {"artifacts",
             {{"files",
               {{{"path", "dist/a.json"},
                 {"size", 3},
                 {"sha256", util::sha256_hex("{}\n")},
                 {"pattern", "dist/*.json"}}}},
              {"total_bytes", 3},
              {"skipped", json::array()},
              {"missing", json::array()},
              {"dir", "artifacts"}}},
            {"result",
             {{"outcome", "success"},
              {"status_code", 0},
              {"oom_killed", false},
              {"timed_out", false},
              {"exit_code", 0}}},
            {"events",
             {{"path", "events.jsonl"},
              {"count", log.count()},
              {"last_digest",
               log.last_digest()}}}}.dump(2));
        spit(out / "report.json", report.dump(2) + "\n");
        spit(out / "logs" / "stdout.log", "hello from the task\n");
        spit(out / "logs" / "stderr.log", "warning: nothing\n");
        spit(out / "changes" / "manifest.json", changed.dump(2));
        spit(out / "changes" / "files" / "src" / "a.txt", "new file\n");
        spit(out / "changes.patch", k_patch);
        spit(out / "artifacts" / "dist" / "a.json", "{}\n");
        auto keys = audit::keygen((dir / "k").string());
        REQUIRE(keys.ok());
        pub = slurp(keys->public_key);
        REQUIRE(audit::sign_run(out, keys->private_key).ok());
    }
    ~Run() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    audit::GateResult gate(bool with_key = true,
                           std::optional<audit::GatePolicy> policy = std::nullopt) const {
        audit::GateOptions o{out, std::move(policy), std::nullopt, "k.pub", {}, 0};
        if (with_key) o.public_key = pub;
        auto r = audit::run_gate(o);
        REQUIRE(r.ok());
        return *r;
    }
};

const audit::GateCheck& find(const audit::GateResult& r, const std::string& id) {
    for (const auto& c : r.checks)
        if (c.id == id) return c;
    FAIL("no check " << id);
    throw std::logic_error("unreachable");
}

std::vector<std::string> failed(const audit::GateResult& r) {
    std::vector<std::string> ids;
    for (const auto& c : r.checks)
        if (c.status == audit::CheckStatus::fail) ids.push_back(c.id);
    return ids;
}

// Changes one byte of `path` at the first occurrence of `needle`, keeping JSON valid.
void flip(const fs::path& path, const std::string& needle) {
    std::string text = slurp(path);
    const auto at = text.find(needle);
    REQUIRE(at != std::string::npos);
    text[at] = text[at] == 'x' ? 'y' : 'x';
    spit(path, text);
}

} // namespace

TEST_CASE("gate: a signed run under its policy passes every check", "[audit][gate]") {
    Run run;
    auto r = run.gate(true, gate_policy("standard"));
    INFO(audit::format_checks(r));
    CHECK(r.passed());
    for (const char* id : {"signature", "subjects", "events", "policy", "image", "unsigned",
                           "task-failed", "max-changed-files"})
        CHECK(find(r, id).status == audit::CheckStatus::pass);
    CHECK(find(r, "subjects").reason == "8 files match the signed statement");
    CHECK(find(r, "timeout").status == audit::CheckStatus::pass); // standard enforces it
    CHECK(audit::format_checks(r).find("PASS  signature: verified with k.pub (keyid ") == 0);
    CHECK(r.to_json()["checks"][0]["status"] == "pass");
    CHECK(r.to_json()["exit_code"] == 0);
}

TEST_CASE("gate: without --pubkey or --policy, unsigned fails and the rules come from the "
          "report",
          "[audit][gate]") {
    Run run;
    auto r = run.gate(false);
    INFO(audit::format_checks(r));
    CHECK(find(r, "signature").status == audit::CheckStatus::skip);
    CHECK(find(r, "subjects").status == audit::CheckStatus::skip);
    CHECK(find(r, "policy").status == audit::CheckStatus::skip);
    CHECK(find(r, "policy").reason.find("recorded in report.json") != std::string::npos);
    CHECK(failed(r) == std::vector<std::string>{"unsigned"});
}

TEST_CASE("gate: a one-byte change to any file fails the subjects check", "[audit][gate]") {
    const std::vector<std::pair<std::string, std::string>> edits = {
        {"report.json", "debian"},          {"events.jsonl", "run.start"},
        {"logs/stdout.log", "hello"},       {"logs/stderr.log", "nothing"},
        {"changes/manifest.json", "src/a"}, {"changes/files/src/a.txt", "new"},
        {"changes.patch", "diff"},          {"artifacts/dist/a.json", "{"}};
    for (const auto& [file, needle] : edits) {
        Run run;
        flip(run.out / file, needle);
        auto r = run.gate(true, gate_policy("standard"));
        INFO(file << "\n" << audit::format_checks(r));
        CHECK_FALSE(r.passed());
        const auto& s = find(r, "subjects");
        CHECK(s.status == audit::CheckStatus::fail);
        CHECK(s.reason.find(file + ": sha256 ") != std::string::npos);
        CHECK(s.reason.find("changed after signing") != std::string::npos);
    }
}

TEST_CASE("gate: without a key, an edited event or digest fails the events check",
          "[audit][gate]") {
    {
        Run run;
        flip(run.out / "events.jsonl", "file.changed");
        auto r = run.gate(false);
        CHECK(find(r, "events").status == audit::CheckStatus::fail);
        CHECK(find(r, "events").reason.find("line 3: prev does not match") != std::string::npos);
    }
    {
        Run run;
        flip(run.out / "events.jsonl", "run.end");
        auto r = run.gate(false);
        CHECK(find(r, "events").status == audit::CheckStatus::fail);
        CHECK(find(r, "events").reason.find("is not report.json's events.last_digest") !=
              std::string::npos);
    }
    {
        Run run;
        std::string text = slurp(run.out / "events.jsonl");
        text.pop_back();
        spit(run.out / "events.jsonl", text);
        CHECK(find(run.gate(false), "events").reason.find("does not end with a newline") !=
              std::string::npos);
    }
}

TEST_CASE("gate: without a key, a changed file or manifest fails the changes check",
          "[audit][gate]") {
    CHECK(find(Run().gate(false), "changes").status == audit::CheckStatus::pass);
    CHECK(find(Run().gate(true), "changes").status == audit::CheckStatus::skip);
    {
        Run run;
        flip(run.out / "changes" / "files" / "src" / "a.txt", "new");
        const auto r = run.gate(false);
        const auto& c = find(r, "changes");
        CHECK(c.status == audit::CheckStatus::fail);
        CHECK(c.reason.find("changes/files/src/a.txt: sha256 ") != std::string::npos);
    }
    {
        Run run;
        flip(run.out / "changes" / "manifest.json", "src/a");
        CHECK(find(run.gate(false), "changes").reason.find("not the changes.files") !=
              std::string::npos);
    }
    {
        Run run;
        spit(run.out / "changes" / "files" / "extra.sh", "x");
        CHECK(find(run.gate(false), "changes").reason.find("extra.sh: not in the manifest") !=
              std::string::npos);
    }
}

TEST_CASE("gate: without a key, an edited changes.patch or artifact fails, naming the file",
          "[audit][gate]") {
    {
        const auto r = Run().gate(false);
        CHECK(find(r, "changes").status == audit::CheckStatus::pass);
        CHECK(find(r, "changes").reason ==
              "1 changed files match changes/manifest.json and report.json; changes.patch has "
              "the recorded sha256");
        CHECK(find(r, "artifacts").status == audit::CheckStatus::pass);
        CHECK(find(r, "artifacts").reason == "1 artifacts match report.json's artifacts.files");
        CHECK(find(Run().gate(true), "artifacts").status == audit::CheckStatus::skip);
    }
    {
        Run run;
        flip(run.out / "changes.patch", "diff");
        const auto r = run.gate(false);
        INFO(audit::format_checks(r));
        CHECK(failed(r) == std::vector<std::string>{"changes", "unsigned"});
        CHECK(find(r, "changes").reason == "1 problem: changes.patch: sha256 " +
                                               util::sha256_hex(slurp(run.out / "changes.patch")) +
                                               " differs from report.json's " +
                                               util::sha256_hex(k_patch) +
                                               " (changed after the run)");
        CHECK(r.exit_code() == audit::gate_exit::fail);
    }
    {
        Run run;
        fs::remove(run.out / "changes.patch");
        CHECK(find(run.gate(false), "changes").reason ==
              "1 problem: changes.patch: missing or not a regular file (report.json records it)");
    }
    {
        Run run;
        json report = json::parse(slurp(run.out / "report.json"));
        report["changes"].erase("patch");
        spit(run.out / "report.json", report.dump());
        CHECK(find(run.gate(false), "changes").reason ==
              "1 problem: changes.patch: present, but report.json records no patch");
    }
    {
        Run run;
        flip(run.out / "artifacts" / "dist" / "a.json", "{");
        const auto r = run.gate(false);
        CHECK(failed(r) == std::vector<std::string>{"artifacts", "unsigned"});
        CHECK(find(r, "artifacts").reason.find("1 problem: artifacts/dist/a.json: sha256 ") == 0);
    }
    {
        Run run;
        fs::remove(run.out / "artifacts" / "dist" / "a.json");
        spit(run.out / "artifacts" / "extra.bin", "x");
        CHECK(find(run.gate(false), "artifacts").reason ==
              "2 problems: artifacts/extra.bin: not among report.json's artifacts.files (added "
              "after the run); artifacts/dist/a.json: listed in report.json but missing");
    }
}

TEST_CASE("gate: a missing or malformed events.jsonl or envelope is unusable input, exit 2",
          "[audit][gate]") {
    {
        Run run;
        fs::remove(run.out / "events.jsonl");
        const auto r = run.gate(false);
        CHECK(find(r, "events").status == audit::CheckStatus::unusable);
        CHECK(find(r, "events").reason == (run.out / "events.jsonl").string() +
                                              ": missing or unreadable (every run writes it)");
        CHECK(r.exit_code() == audit::gate_exit::unusable);
        CHECK_FALSE(r.passed());
        CHECK(r.to_json()["checks"][2]["status"] == "unusable");
        CHECK(audit::format_checks(r).find("BAD   events: ") != std::string::npos);
    }
    {
        Run run;
        std::string text = slurp(run.out / "events.jsonl");
        text.replace(text.find('\n') + 1, 1, "#");
        spit(run.out / "events.jsonl", text);
        const auto r = run.gate(false);
        CHECK(find(r, "events").status == audit::CheckStatus::unusable);
        CHECK(find(r, "events").reason ==
              (run.out / "events.jsonl").string() + ": line 2: not a JSON object");
        CHECK(r.exit_code() == audit::gate_exit::unusable);
    }
    {
        Run run; // edited but well-formed: a failure, not unusable input
        flip(run.out / "events.jsonl", "file.changed");
        CHECK(find(run.gate(false), "events").status == audit::CheckStatus::fail);
        CHECK(run.gate(false).exit_code() == audit::gate_exit::fail);
    }
    for (const bool with_key : {true, false}) {
        INFO("with a key: " << with_key);
        Run run;
        spit(run.out / "report.dsse.json", "{\"payloadType\": ");
        const auto r = run.gate(with_key);
        CHECK(find(r, "signature").status == audit::CheckStatus::unusable);
        CHECK(find(r, "signature").reason ==
              (run.out / "report.dsse.json").string() + ": the envelope is not a JSON object");
        CHECK(r.exit_code() == audit::gate_exit::unusable);
    }
    {
        Run run; // no envelope and no key: nothing was asked of it
        fs::remove(run.out / "report.dsse.json");
        const auto r = run.gate(false);
        CHECK(find(r, "signature").status == audit::CheckStatus::skip);
        CHECK(r.exit_code() == audit::gate_exit::fail); // standard's "unsigned"
    }
}

TEST_CASE("gate: an extra file, a missing one, the envelope or the wrong key fail",
          "[audit][gate]") {
    Run run;
    SECTION("an extra file") {
        spit(run.out / "changes" / "files" / "extra.sh", "#!/bin/sh\n");
        const auto r = run.gate();
        const auto& s = find(r, "subjects");
        CHECK(s.status == audit::CheckStatus::fail);
        CHECK(s.reason.find("changes/files/extra.sh: not in the signed statement") !=
              std::string::npos);
    }
    SECTION("a missing file") {
        fs::remove(run.out / "logs" / "stderr.log");
        CHECK(find(run.gate(), "subjects").reason.find("logs/stderr.log: signed but missing") !=
              std::string::npos);
    }
    SECTION("a symlink") {
        fs::create_symlink("/etc/passwd", run.out / "logs" / "passwd");
        CHECK(find(run.gate(), "subjects").reason.find("is a symlink") != std::string::npos);
    }
    SECTION("no envelope") {
        fs::remove(run.out / "report.dsse.json");
        auto r = run.gate();
        CHECK(find(r, "signature").reason.find("report.dsse.json: missing") != std::string::npos);
        CHECK(find(r, "signature").status == audit::CheckStatus::unusable);
        CHECK(find(r, "subjects").status == audit::CheckStatus::skip);
        CHECK(find(r, "unsigned").status == audit::CheckStatus::fail);
        CHECK(r.exit_code() == audit::gate_exit::unusable);
    }
    SECTION("another key") {
        auto other = audit::keygen((run.dir / "other").string());
        REQUIRE(other.ok());
        audit::GateOptions o{run.out, std::nullopt, slurp(other->public_key), "other.pub", {}, 0};
        auto r = audit::run_gate(o);
        REQUIRE(r.ok());
        CHECK(find(*r, "signature").status == audit::CheckStatus::fail);
        CHECK(find(*r, "signature").reason.find("wrong key?") != std::string::npos);
        CHECK(r->exit_code() == audit::gate_exit::fail); // well-formed, but not ours
    }
}

TEST_CASE("gate: another policy fails the policy check naming both digests", "[audit][gate]") {
    Run run;
    const auto strict = gate_policy("strict");
    const auto standard = gate_policy("standard");
    auto r = run.gate(true, strict);
    const auto& p = find(r, "policy");
    CHECK(p.status == audit::CheckStatus::fail);
    CHECK(p.reason.find(strict.sha256) != std::string::npos);
    CHECK(p.reason.find(standard.sha256) != std::string::npos);
    CHECK(p.reason.find("(the run had another policy)") != std::string::npos);
}

TEST_CASE("gate: an image outside images.allow fails", "[audit][gate]") {
    Run run;
    json report = json::parse(slurp(run.out / "report.json"));
    report["image"]["reference"] = "evil.example/agent:1";
    spit(run.out / "report.json", report.dump());
    auto r = run.gate(false);
    CHECK(find(r, "image").status == audit::CheckStatus::fail);
    CHECK(find(r, "image").reason.find("\"evil.example/agent:1\" is not among images.allow") == 0);
}

TEST_CASE("gate: unusable input is an error naming the file", "[audit][gate]") {
    Run run;
    audit::GateOptions o{run.dir / "nope", std::nullopt, std::nullopt, "", {}, 0};
    auto r = audit::run_gate(o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("nope: no such directory") != std::string::npos);
    spit(run.out / "report.json", "{\"run_id\": ");
    o.out = run.out;
    r = audit::run_gate(o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("report.json: not valid JSON") != std::string::npos);
    fs::remove(run.out / "report.json");
    r = audit::run_gate(o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("report.json: missing or unreadable") != std::string::npos);
}
