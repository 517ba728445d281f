// Helpers for tests against the real engine: run the airlock binary as a child process,
// look at what the engine holds, make temporary workspaces.
#pragma once

#include "docker/client.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace airlock::test {

struct Proc {
    int exit_code = -1;   // or 128 + signal
    std::string out, err; // captured unless discarded
    long max_rss_kb = 0;  // peak resident set of the child
    double seconds = 0;
};

struct ProcOptions {
    std::filesystem::path cwd;
    bool discard_stdout = false;
    std::vector<std::string> env; // extra NAME=VALUE
    unsigned run_as_uid = 0;      // non-zero: drop to this uid (and gid) before exec
    // Called with the child's pid once started; may send signals. Runs on the calling thread.
    std::function<void(int pid)> while_running;
};

Proc run_airlock(const std::vector<std::string>& args, const ProcOptions& opts = {});
// `run --quiet --pull never --workspace WS --out OUT EXTRA... -- CMD...`
std::vector<std::string> run_args(const std::filesystem::path& ws, const std::filesystem::path& out,
                                  std::vector<std::string> extra, std::vector<std::string> cmd);

// The engine from DOCKER_HOST or the default socket. With CI=true an unreachable engine fails
// the test; elsewhere the caller skips (returns false) with a warning.
bool engine_available();
docker::Client& client();

// Names of containers, volumes and networks labelled io.airlock.run (any run).
std::vector<std::string> airlock_leftovers();

// The run id airlock printed ("airlock: run <id>: ..."), or "" when it printed none.
std::string run_id_of(const std::string& err);
// Nothing labelled with p's run id is left (checked at once), then nothing labelled
// io.airlock.run at all (other runs sharing the engine get a few seconds to finish).
void require_nothing_left(const Proc& p);

class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::filesystem::path& path() const { return m_path; }

private:
    std::filesystem::path m_path;
};

void write_file(const std::filesystem::path& p, const std::string& content);
std::string read_file(const std::filesystem::path& p);
// The single run directory under OUT_PARENT (tests pass --out explicitly, mostly).
nlohmann::json read_report(const std::filesystem::path& out);
// REQUIREs that a report is valid under docs/report.schema.json (defined in test_audit.cpp).
void check_against_schema(const nlohmann::json& report);

} // namespace airlock::test

// Skips the rest of a test when no engine answers outside CI; fails in CI.
#define REQUIRE_ENGINE()                                                                           \
    do {                                                                                           \
        if (!airlock::test::engine_available()) return;                                            \
    } while (0)
