// `airlock keygen --out PREFIX`: an Ed25519 key pair for signing run reports.
#include "audit/dsse.hpp"
#include "cli/main.hpp"
#include "sandbox/classify.hpp"

#include <cxxopts.hpp>

#include <cstdio>

namespace airlock::cli {

int keygen_command(int argc, char** argv) {
    cxxopts::Options o("airlock keygen",
                       "Write an Ed25519 key pair for signing run reports: PREFIX.key (private, "
                       "PKCS#8 PEM, mode 0600) and PREFIX.pub (public, PEM). Existing files are "
                       "never overwritten. See docs/gate.md.");
    o.add_options()("out", "path prefix of the two files", cxxopts::value<std::string>(),
                    "PREFIX")("h,help", "show this help");
    cxxopts::ParseResult res;
    try {
        res = o.parse(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "airlock keygen: %s (try: airlock keygen --help)\n", e.what());
        return sandbox::exit_code::usage;
    }
    if (res.count("help")) {
        std::fputs(o.help().c_str(), stdout);
        return 0;
    }
    if (!res.count("out") || !res.unmatched().empty()) {
        std::fputs("airlock keygen: give --out PREFIX (e.g. --out airlock, which writes "
                   "airlock.key and airlock.pub)\n",
                   stderr);
        return sandbox::exit_code::usage;
    }
    auto pair = audit::keygen(res["out"].as<std::string>());
    if (!pair) {
        std::fprintf(stderr, "airlock keygen: %s\n", pair.error().message.c_str());
        return sandbox::exit_code::usage;
    }
    std::printf("wrote %s (private: keep it secret) and %s (public: give it to `airlock gate "
                "--pubkey`)\n",
                pair->private_key.c_str(), pair->public_key.c_str());
    return 0;
}

} // namespace airlock::cli
