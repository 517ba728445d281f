// `airlock images build [NAME...|--all]`: the agent images, built by the engine from images/NAME
// through POST /build, with the build context streamed as a tar (docs/images.md).
#include "cli/images_plan.hpp"
#include "cli/main.hpp"
#include "docker/build.hpp"
#include "sandbox/classify.hpp"
#include "sandbox/workspace.hpp"
#include "util/cancel.hpp"
#include "util/fd.hpp"
#include "util/json_text.hpp"
#include "util/units.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

namespace airlock::cli {

namespace {

namespace fs = std::filesystem;
using sandbox::exit_code::engine;
using sandbox::exit_code::usage;

const char* k_images_usage =
    "usage: airlock images build [NAME...|--all] [options]\n"
    "\n"
    "Builds images/NAME/Dockerfile through the engine's API (POST /build) and tags it\n"
    "airlock/NAME:latest. Build output is printed as it comes. With agent-base among them (and\n"
    "with --all), agent-base is built first and the others FROM it.\n"
    "\n"
    "options:\n"
    "  --all                  every image in the images directory\n"
    "  --base IMAGE           BASE of the first image (with --all: of agent-base); default:\n"
    "                         the Dockerfile's (agent-base: debian:bookworm-slim, pulled\n"
    "                         if absent; the agent images: airlock/agent-base:latest);\n"
    "                         offline, use the local base: --base airlock/debian:bookworm\n"
    "  --tag TAG              a bare TAG makes airlock/NAME:TAG; REPO[:TAG] names a single image\n"
    "  --network MODE         network of the build's RUN steps: host, none or bridge (default:\n"
    "                         the engine's); `host` where the bridge cannot reach the mirrors\n"
    "  --context-dir DIR      the images directory (one build context per NAME/); default:\n"
    "                         $AIRLOCK_IMAGES_DIR, else the images/ of airlock's source tree\n"
    "  --ca-file FILE         PEM certificates the build trusts for its downloads (a\n"
    "                         TLS-inspecting proxy's CA); build-time only; repeatable\n"
    "  --build-arg NAME=VALUE another build argument (e.g. CODEX_VERSION=...); recorded in the\n"
    "                         image's history, so never a secret; repeatable\n"
    "  --no-cache             do not reuse cached steps\n"
    "  -q, --quiet            print only airlock's own lines, not the build output\n"
    "\n"
    "exit: 0 built; 2 usage (unknown image, bad option); 125 engine error or failed build;\n"
    "130 interrupted.\n";

constexpr std::size_t k_max_ca_bytes = 256 * 1024;

struct Args {
    ImagesRequest request;
    std::string network;
    std::string context_dir;
    std::vector<std::string> ca_files;
    std::map<std::string, std::string> build_args;
    docker::NoCache no_cache = docker::NoCache::no;
    bool quiet = false;
    bool help = false;
};

int usage_error(const std::string& message) {
    std::fprintf(stderr, "airlock images build: %s (try: airlock images build --help)\n",
                 message.c_str());
    return usage;
}

bool valid_arg_name(const std::string& n) {
    if (n.empty() || (n[0] >= '0' && n[0] <= '9')) return false;
    for (char c : n)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    return true;
}

// Parses argv after "build". Returns an error message, or "" when fine.
std::string parse_args(int argc, char** argv, Args& a) {
    for (int i = 0; i < argc; ++i) {
        std::string arg = argv[i];
        std::string value;
        bool has_value = false;
        if (arg.rfind("--", 0) == 0) {
            auto eq = arg.find('=');
            if (eq != std::string::npos) {
                value = arg.substr(eq + 1);
                arg = arg.substr(0, eq);
                has_value = true;
            }
        }
        auto take = [&](std::string& out) -> bool {
            if (has_value) {
                out = value;
                return true;
            }
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        auto flag_only = [&]() { return !has_value; };
        std::string v;
        if (arg == "-h" || arg == "--help") {
            a.help = true;
        } else if (arg == "--all" && flag_only()) {
            a.request.all = AllImages::yes;
        } else if (arg == "--no-cache" && flag_only()) {
            a.no_cache = docker::NoCache::yes;
        } else if ((arg == "-q" || arg == "--quiet") && flag_only()) {
            a.quiet = true;
        } else if (arg == "--base") {
            if (!take(a.request.base) || a.request.base.empty()) return "--base needs an IMAGE";
        } else if (arg == "--tag") {
            if (!take(a.request.tag) || a.request.tag.empty()) return "--tag needs a TAG";
        } else if (arg == "--network") {
            if (!take(a.network)) return "--network needs host, none or bridge";
            if (a.network != "host" && a.network != "none" && a.network != "bridge")
                return "--network " + a.network + ": give host, none or bridge";
        } else if (arg == "--context-dir") {
            if (!take(a.context_dir) || a.context_dir.empty()) return "--context-dir needs a DIR";
        } else if (arg == "--ca-file") {
            if (!take(v) || v.empty()) return "--ca-file needs a FILE";
            a.ca_files.push_back(v);
        } else if (arg == "--build-arg") {
            if (!take(v)) return "--build-arg needs NAME=VALUE";
            auto eq = v.find('=');
            std::string name = v.substr(0, eq);
            if (eq == std::string::npos || !valid_arg_name(name))
                return "--build-arg \"" + v + "\": give NAME=VALUE (NAME: letters, digits, '_')";
            if (name == "BASE") return "--build-arg BASE=...: use --base IMAGE";
            a.build_args[name] = v.substr(eq + 1);
        } else if (!arg.empty() && arg[0] == '-') {
            return "unknown option " + std::string(argv[i]);
        } else {
            a.request.names.push_back(arg);
        }
    }
    return {};
}

// The --ca-file certificates as one PEM text; refuses private keys and non-PEM files.
util::Result<std::string> read_ca_files(const std::vector<std::string>& files) {
    std::string all;
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        if (!in)
            return util::make_error(util::ErrorKind::invalid_input, "--ca-file " + f +
                                                                        ": cannot read it (" +
                                                                        std::strerror(errno) + ")");
        std::ostringstream ss;
        ss << in.rdbuf();
        std::string pem = ss.str();
        if (pem.find("PRIVATE KEY") != std::string::npos)
            return util::make_error(util::ErrorKind::invalid_input,
                                    "--ca-file " + f +
                                        ": holds a private key; give only the CA certificate");
        if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
            return util::make_error(util::ErrorKind::invalid_input,
                                    "--ca-file " + f +
                                        ": no PEM certificate in it (-----BEGIN CERTIFICATE-----)");
        while (!pem.empty() && (pem.back() == '\n' || pem.back() == '\r'))
            pem.pop_back();
        all += (all.empty() ? "" : "\n") + pem;
        if (all.size() > k_max_ca_bytes)
            return util::make_error(util::ErrorKind::invalid_input,
                                    "--ca-file: more than 256 KiB of certificates; give only the "
                                    "CAs the build needs beyond Debian's (not a whole bundle)");
    }
    return all;
}

// Subdirectories of `dir` that hold a Dockerfile, sorted.
util::Result<std::vector<std::string>> known_images(const ImagesDir& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir.path, ec))
        return util::make_error(
            util::ErrorKind::invalid_input,
            "no images directory at " + dir.path.string() + " (from " + dir.origin +
                "); give --context-dir DIR or set AIRLOCK_IMAGES_DIR to the images/ directory of "
                "airlock's source");
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir.path, ec)) {
        if (e.is_directory(ec) && fs::is_regular_file(e.path() / "Dockerfile", ec))
            names.push_back(e.path().filename().string());
    }
    if (ec)
        return util::make_error(util::ErrorKind::io,
                                dir.path.string() + ": cannot list it (" + ec.message() + ")");
    std::sort(names.begin(), names.end());
    return names;
}

// Prints the build stream: builder output as sent, a pull's status only when it changes.
class Progress {
public:
    explicit Progress(bool quiet) : m_quiet(quiet) {}

    void operator()(const docker::BuildEvent& ev) {
        if (m_quiet) return;
        switch (ev.kind) {
        case docker::BuildEventKind::stream:
            write(ev.text);
            break;
        case docker::BuildEventKind::status: {
            auto& last = m_status[ev.id];
            if (last == ev.text) return;
            last = ev.text;
            write(ev.text + "\n");
            break;
        }
        case docker::BuildEventKind::other:
            write(ev.text + "\n");
            break;
        case docker::BuildEventKind::aux:
        case docker::BuildEventKind::error: // reported once, by the command
            break;
        }
    }

    // Ends a half-written line so that airlock's own message starts on a line of its own.
    void end_line() {
        if (m_mid_line) write("\n");
    }

private:
    void write(const std::string& text) {
        if (text.empty()) return;
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        m_mid_line = text.back() != '\n';
    }

    bool m_quiet;
    bool m_mid_line = false;
    std::map<std::string, std::string> m_status;
};

// Streams the scanned context as a tar into the build; memory stays bounded by the pipe.
util::Result<docker::BuildResult> build_from_scan(docker::Client& client,
                                                  const sandbox::WorkspaceScan& scan,
                                                  const docker::BuildOptions& options,
                                                  Progress& progress) {
    util::Pipe pipe;
    if (!pipe.ok())
        return util::make_error(util::ErrorKind::io, std::string("pipe: ") + std::strerror(errno));
    std::optional<util::Result<sandbox::Manifest>> produced;
    std::thread producer([&] {
        produced.emplace(sandbox::write_workspace_tar(scan, pipe.wr, sandbox::TarOwner{0, 0}));
        pipe.close_wr();
    });
    docker::UploadReader reader = [&](char* buf, std::size_t size) -> std::optional<std::size_t> {
        for (;;) {
            ssize_t n = ::read(pipe.rd, buf, size);
            if (n >= 0) return static_cast<std::size_t>(n);
            if (errno != EINTR) return std::nullopt;
        }
    };
    auto built = docker::build_image(client, options, reader,
                                     [&](const docker::BuildEvent& ev) { progress(ev); });
    pipe.close_rd(); // unblocks the producer if the engine stopped reading early
    producer.join();
    // A context file that changed while streaming cuts the tar short: say which.
    if (!built && produced && !produced->ok()) return produced->error();
    return built;
}

// A hint for the usual reason a FROM fails: the base is not on the engine, and the engine could
// not pull it (no registry, or no such image there).
std::string missing_base_hint(const std::string& message, const std::string& base) {
    if (message.find("pull access denied") == std::string::npos &&
        message.find("No such image") == std::string::npos &&
        message.find("registry-1.docker.io") == std::string::npos &&
        message.find("manifest unknown") == std::string::npos)
        return {};
    return " (the base image" + (base.empty() ? std::string() : " " + base) +
           " is not on the engine, which could not pull it: build it first, e.g. `airlock "
           "images build agent-base --base airlock/debian:bookworm`, or give --base IMAGE)";
}

// The default of `ARG BASE=...` in the Dockerfile, for the progress line; "" if none.
std::string dockerfile_base_default(const fs::path& dockerfile) {
    std::ifstream in(dockerfile);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string keyword, arg;
        if (!(words >> keyword >> arg)) continue;
        for (auto& c : keyword)
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (keyword == "ARG" && arg.rfind("BASE=", 0) == 0) return arg.substr(5);
    }
    return {};
}

std::string short_id(const std::string& id) {
    std::string s = id.rfind("sha256:", 0) == 0 ? id.substr(7) : id;
    return s.substr(0, 12);
}

int build_command(int argc, char** argv) {
    Args a;
    if (auto err = parse_args(argc, argv, a); !err.empty()) return usage_error(err);
    if (a.help) {
        std::fputs(k_images_usage, stdout);
        return 0;
    }
    const ImagesDir dir =
        resolve_images_dir(a.context_dir, std::getenv("AIRLOCK_IMAGES_DIR"), AIRLOCK_SOURCE_DIR);
    auto known = known_images(dir);
    if (!known) return usage_error(known.error().message);
    auto plan = plan_builds(a.request, dir.path, *known);
    if (!plan) return usage_error(plan.error().message);
    if (!a.ca_files.empty()) {
        if (a.build_args.count("EXTRA_CA_CERTS"))
            return usage_error("give --ca-file or --build-arg EXTRA_CA_CERTS=..., not both");
        auto pem = read_ca_files(a.ca_files);
        if (!pem) return usage_error(pem.error().message);
        a.build_args["EXTRA_CA_CERTS"] = *pem;
    }

    auto endpoint = docker::parse_endpoint(docker::endpoint_env_from_process());
    if (!endpoint) {
        std::fprintf(stderr, "airlock: %s\n", endpoint.error().message.c_str());
        return usage;
    }
    docker::Client client(*endpoint);
    if (auto v = client.negotiate(); !v) {
        std::fprintf(stderr, "airlock: %s\n", v.error().message.c_str());
        return engine;
    }
    util::install_interrupt_handlers();

    // Every context is walked before anything is built: an unreadable one is a usage error.
    std::vector<sandbox::WorkspaceScan> scans;
    for (const auto& b : *plan) {
        auto scan = sandbox::scan_workspace(fs::absolute(b.context), {});
        if (!scan) {
            std::fprintf(stderr, "airlock: images build %s: build context %s: %s\n", b.name.c_str(),
                         b.context.string().c_str(), scan.error().message.c_str());
            return usage;
        }
        scans.push_back(std::move(*scan));
    }

    Progress progress(a.quiet);
    for (std::size_t i = 0; i < plan->size(); ++i) {
        const ImageBuild& b = (*plan)[i];
        const sandbox::WorkspaceScan* scan = &scans[i];
        docker::BuildOptions o;
        o.tag = b.tag;
        o.build_args = a.build_args;
        if (!b.base.empty()) o.build_args["BASE"] = b.base;
        o.network_mode = a.network;
        o.no_cache = a.no_cache;
        std::string base = b.base;
        if (base.empty()) {
            const std::string dflt = dockerfile_base_default(b.context / "Dockerfile");
            base = dflt.empty() ? "the Dockerfile's default" : dflt + " from the Dockerfile";
        }
        const std::string network = a.network.empty() ? "" : "; network " + a.network;
        std::fprintf(stderr, "airlock: building %s from %s (%zu %s, %s; BASE=%s%s)\n",
                     b.tag.c_str(), b.context.string().c_str(), scan->entries.size(),
                     scan->entries.size() == 1 ? "entry" : "entries",
                     util::format_size(scan->total_bytes).c_str(), base.c_str(), network.c_str());
        const auto t0 = std::chrono::steady_clock::now();
        auto built = build_from_scan(client, *scan, o, progress);
        progress.end_line();
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!built) {
            if (util::interrupted()) {
                std::fprintf(stderr, "airlock: build of %s interrupted; the engine stops it\n",
                             b.tag.c_str());
                return sandbox::exit_code::interrupted;
            }
            const std::string& msg = built.error().message;
            std::fprintf(stderr, "airlock: images build %s: %s%s\n", b.name.c_str(), msg.c_str(),
                         missing_base_hint(msg, b.base).c_str());
            return engine;
        }
        std::string id = built->image_id, size;
        if (auto img = client.image_inspect(b.tag); img) {
            id = img->value("Id", id);
            const auto& sz = util::json_at(*img, {"Size"});
            if (sz.is_number_integer() && sz.get<std::int64_t>() >= 0)
                size = ", " + util::format_size(sz.get<std::uint64_t>());
        } else {
            std::fprintf(stderr, "airlock: images build %s: built, but %s\n", b.name.c_str(),
                         img.error().message.c_str());
            return engine;
        }
        std::fprintf(stderr, "airlock: built %s (%s%s) in %.1fs\n", b.tag.c_str(),
                     short_id(id).c_str(), size.c_str(), secs);
    }
    return 0;
}

} // namespace

int images_command(int argc, char** argv) {
    std::string sub = argc > 1 ? argv[1] : "";
    if (sub == "build") return build_command(argc - 2, argv + 2);
    if (sub == "-h" || sub == "--help" || sub == "help") {
        std::fputs(k_images_usage, stdout);
        return 0;
    }
    const std::string problem = sub.empty()
                                    ? "give a subcommand: build"
                                    : "unknown subcommand \"" + sub + "\" (there is: build)";
    std::fprintf(stderr, "airlock images: %s (try: airlock images build --help)\n",
                 problem.c_str());
    return usage;
}

} // namespace airlock::cli
