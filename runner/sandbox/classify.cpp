#include "sandbox/classify.hpp"

namespace airlock::sandbox {

const char* to_string(Outcome o) {
    switch (o) {
    case Outcome::success:
        return "success";
    case Outcome::failed:
        return "failed";
    case Outcome::signalled:
        return "signalled";
    case Outcome::timeout:
        return "timeout";
    case Outcome::oom:
        return "oom";
    case Outcome::command_not_found:
        return "command_not_found";
    case Outcome::not_executable:
        return "not_executable";
    case Outcome::interrupted:
        return "interrupted";
    case Outcome::engine_error:
        return "engine_error";
    }
    return "?";
}

namespace {
bool contains(const std::string& s, const char* what) {
    return s.find(what) != std::string::npos;
}
} // namespace

Classification classify(const ExitFacts& f) {
    if (f.interrupted)
        return {Outcome::interrupted, exit_code::interrupted, "stopped by airlock on a signal"};
    if (!f.started) {
        const std::string& e = f.start_error;
        // Only the exec of the command itself counts; a failed mount also says "no such file".
        const bool exec = contains(e, "exec: \"") || contains(e, "exec failed");
        if (contains(e, "executable file not found") ||
            (exec && contains(e, "no such file or directory")))
            return {Outcome::command_not_found, exit_code::not_found,
                    "the command is not in the image"};
        if (exec && contains(e, "permission denied"))
            return {Outcome::not_executable, exit_code::refused,
                    "the command cannot be executed (permission denied)"};
        return {Outcome::engine_error, exit_code::engine, "the container did not start"};
    }
    if (f.timed_out)
        return {Outcome::timeout, exit_code::timeout, "stopped at the wall-clock timeout"};
    if (f.oom_killed)
        return {Outcome::oom, exit_code::killed, "killed by the out-of-memory killer"};
    if (f.engine_failed || f.status_code < 0)
        return {Outcome::engine_error, exit_code::engine, "the engine lost track of the task"};
    if (f.status_code == 0) return {Outcome::success, exit_code::ok, "exited 0"};
    int code = static_cast<int>(f.status_code & 0xff);
    if (code == 0) code = 1; // never report success for a status that wrapped
    if (f.status_code > 128 && f.status_code < 128 + 65)
        return {Outcome::signalled, code,
                "killed by signal " + std::to_string(f.status_code - 128)};
    return {Outcome::failed, code, "exited " + std::to_string(f.status_code)};
}

} // namespace airlock::sandbox
