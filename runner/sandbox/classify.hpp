// How a run ended, and the exit code airlock returns for it (DESIGN.md, "Exit codes").
#pragma once

#include <string>

namespace airlock::sandbox {

namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int usage = 2;
inline constexpr int timeout = 124;
inline constexpr int engine = 125;
inline constexpr int refused = 126;
inline constexpr int not_found = 127;
inline constexpr int interrupted = 130;
inline constexpr int killed = 137;
} // namespace exit_code

enum class Outcome {
    success,           // the task exited 0
    failed,            // the task exited non-zero on its own
    signalled,         // the task died of a signal it did not ask for (not OOM, not timeout)
    timeout,           // airlock stopped it at the wall-clock limit
    oom,               // the kernel's OOM killer ended it (State.OOMKilled)
    command_not_found, // the command is not in the image
    not_executable,    // the command exists but cannot be executed
    interrupted,       // airlock received SIGINT/SIGTERM and stopped the run
    engine_error,      // the engine failed us
};
const char* to_string(Outcome o);

struct ExitFacts {
    bool started = false;
    std::string start_error;  // engine message when start failed
    long status_code = -1;    // from wait
    bool oom_killed = false;  // State.OOMKilled
    bool timed_out = false;   // our deadline fired
    bool interrupted = false; // we were told to stop
    bool engine_failed = false;
};

struct Classification {
    Outcome outcome;
    int exit_code;
    std::string description;
};

Classification classify(const ExitFacts& facts);

} // namespace airlock::sandbox
