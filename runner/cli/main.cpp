#include "cli/main.hpp"

#include "sandbox/classify.hpp"

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

namespace airlock::cli {

namespace {
const char* k_usage =
    "airlock " AIRLOCK_VERSION " — run coding agents in disposable, least-privilege containers\n"
    "\n"
    "usage: airlock <command> [options]\n"
    "\n"
    "commands:\n"
    "  run [options] -- COMMAND [ARGS...]   run a task in a hardened container\n"
    "  policy lint|show|diff|suggest ...    check, show, compare policies; suggest changes\n"
    "  gate OUT [--policy P]... [--pubkey FILE]\n"
    "                                       check a run's output before merging its result\n"
    "  approve --key KEY --capability CAP --for-...\n"
    "                                       sign an approval for a capability (docs/approvals.md)\n"
    "  keygen --out PREFIX                  make an Ed25519 key pair for signing reports\n"
    "  clean [--run ID]                     remove what killed runs left on the engine\n"
    "  doctor                               check the engine and this machine\n"
    "  report OUT [--format F]              render OUT/report.json: md, sarif, junit, ...\n"
    "  apply OUT [--workspace DIR]          apply a run's changes when its gate passes\n"
    "  images build [NAME...|--all]         build the agent images through the engine\n"
    "  version                              print the version\n"
    "\n"
    "`airlock <command> --help` tells more. Docs: README.md, docs/.\n";
} // namespace

void say(const char* text) {
    std::fprintf(stderr, "airlock: %s\n", text);
}

int main(int argc, char** argv) {
    try {
        if (argc < 2) {
            std::fputs(k_usage, stderr);
            return sandbox::exit_code::usage;
        }
        std::string cmd = argv[1];
        if (cmd == "run") return run_command(argc - 1, argv + 1);
        if (cmd == "policy") return policy_command(argc - 1, argv + 1);
        if (cmd == "gate") return gate_command(argc - 1, argv + 1);
        if (cmd == "keygen") return keygen_command(argc - 1, argv + 1);
        if (cmd == "clean") return clean_command(argc - 1, argv + 1);
        if (cmd == "doctor") return doctor_command(argc - 1, argv + 1);
        if (cmd == "report") return report_command(argc - 1, argv + 1);
        if (cmd == "apply") return apply_command(argc - 1, argv + 1);
        if (cmd == "approve") return approve_command(argc - 1, argv + 1);
        if (cmd == "images") return images_command(argc - 1, argv + 1);
        if (cmd == "version" || cmd == "--version") {
            std::printf("airlock %s\n", AIRLOCK_VERSION);
            return 0;
        }
        if (cmd == "help" || cmd == "--help" || cmd == "-h") {
            std::fputs(k_usage, stdout);
            return 0;
        }
        std::fprintf(stderr, "airlock: unknown command \"%s\" (try: airlock --help)\n",
                     cmd.c_str());
        return sandbox::exit_code::usage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "airlock: internal error: %s\n", e.what());
        return sandbox::exit_code::engine;
    }
}

} // namespace airlock::cli
