// `airlock run`: the pipeline of DESIGN.md as named steps — resolve, preflight, prepare, create,
// verify, copy-in, start, watch, wait, collect, teardown, report.
#pragma once

#include "config/run_options.hpp"
#include "docker/client.hpp"
#include "policy/enforce.hpp"
#include "sandbox/output.hpp"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace airlock::sandbox {

struct RunContext {
    Echo echo = Echo::yes;                        // task output live on the terminal
    std::function<void(const std::string&)> say;  // airlock's own one-line messages
    std::filesystem::path cwd;                    // for the default --out
    const policy::Policy* policy = nullptr;       // effective policy; null means built-in only
    policy::Decision decision;                    // what enforce() allowed
    const policy::Approvals* approvals = nullptr; // null: nothing granted beyond the policy
    bool signing = false;                         // a signing key was given (see cli/run_cmd)
    // Set when the policy refused the run before anything started but the refusal is still to be
    // recorded (approvals were presented): OUT gets events and a report; no engine object is made.
    std::optional<util::Error> refusal;
};

struct RunOutcome {
    int exit_code = 0;
    std::string run_id;
    std::filesystem::path out_dir; // empty when nothing was written
    std::string message;           // one line for the terminal
};

// A fresh run id: UTC time and 6 random hex digits, e.g. 20261127t001002-3fa9c1.
std::string new_run_id();

RunOutcome run(docker::Client& client, const config::RunOptions& opts, const RunContext& ctx);

} // namespace airlock::sandbox
