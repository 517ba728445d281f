// `airlock report OUT --format F`: a run's report rendered for a CI system (docs/renderers.md).
#include "cli/main.hpp"

#include "audit/render.hpp"
#include "sandbox/classify.hpp"

#include <cxxopts.hpp>

#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

namespace airlock::cli {

namespace {

constexpr const char* k_formats = "md, sarif, junit, codequality, json";

// The rendering, or nothing for an unknown format.
std::optional<std::string> rendered(const std::string& format, const nlohmann::json& report) {
    const auto dump = [](const nlohmann::json& j) {
        return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    };
    if (format == "md" || format == "markdown") return audit::render_markdown(report);
    if (format == "sarif") return dump(audit::render_sarif(report));
    if (format == "junit") return audit::render_junit(report);
    if (format == "codequality") return dump(audit::render_codequality(report));
    if (format == "json") return dump(report);
    return std::nullopt;
}

} // namespace

int report_command(int argc, char** argv) {
    cxxopts::Options o("airlock report",
                       "Render a run's report.json for CI: Markdown summary, SARIF, JUnit XML, "
                       "GitLab Code Quality, or the report with its verdict.");
    o.add_options()("format", std::string("one of ") + k_formats,
                    cxxopts::value<std::string>()->default_value("md"), "F")(
        "output", "write to FILE instead of stdout", cxxopts::value<std::string>(),
        "FILE")("h,help", "show this help")("out", "", cxxopts::value<std::string>());
    o.parse_positional({"out"});
    o.positional_help("OUT");
    cxxopts::ParseResult res;
    try {
        res = o.parse(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "airlock report: %s\n", e.what());
        return sandbox::exit_code::usage;
    }
    if (res.count("help")) {
        std::fputs(o.help({""}).c_str(), stdout);
        return 0;
    }
    if (!res.count("out")) {
        std::fprintf(stderr, "airlock report: name the run's output directory: airlock report "
                             "OUT --format md\n");
        return sandbox::exit_code::usage;
    }
    const std::string format = res["format"].as<std::string>();
    if (!rendered(format, nlohmann::json::object())) {
        std::fprintf(stderr, "airlock report: --format %s: unknown format (use one of %s)\n",
                     format.c_str(), k_formats);
        return sandbox::exit_code::usage;
    }
    auto report = audit::read_report(res["out"].as<std::string>());
    if (!report) {
        std::fprintf(stderr, "airlock report: %s\n", report.error().message.c_str());
        return sandbox::exit_code::usage;
    }
    const auto text = rendered(format, audit::with_verdict(*report));
    if (!text) return sandbox::exit_code::usage;
    if (!res.count("output")) {
        std::fwrite(text->data(), 1, text->size(), stdout);
        return std::fflush(stdout) == 0 ? 0 : 1;
    }
    const std::string file = res["output"].as<std::string>();
    std::ofstream f(file, std::ios::binary | std::ios::trunc);
    f.write(text->data(), static_cast<std::streamsize>(text->size()));
    f.close();
    if (!f) {
        std::fprintf(stderr, "airlock report: %s: cannot write (check the directory exists)\n",
                     file.c_str());
        return sandbox::exit_code::usage;
    }
    return 0;
}

} // namespace airlock::cli
