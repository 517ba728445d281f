#include "audit/render.hpp"

#include "util/json_text.hpp"
#include "util/read_limited.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace airlock::audit {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t k_report_max_bytes = 512u * 1024 * 1024;
// Below this much room the summary is not worth appending; a note is.
constexpr std::size_t k_min_summary_room = 8 * 1024;

util::Error io_error(const fs::path& path, const char* what, int err) {
    return util::make_error(util::ErrorKind::io,
                            path.string() + ": " + what + " (" + std::strerror(err) + ")");
}

util::Result<void> write_all(int fd, std::string_view text, const fs::path& path) {
    while (!text.empty()) {
        ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return io_error(path, "cannot write", errno);
        text.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

util::Result<void> write_file_atomic(const fs::path& path, const std::string& text) {
    fs::path tmp = path;
    tmp += ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return io_error(tmp, "cannot create", errno);
    auto written = write_all(fd, text, tmp);
    ::fsync(fd);
    ::close(fd);
    if (written && ::rename(tmp.c_str(), path.c_str()) != 0)
        written = io_error(path, "cannot write", errno);
    if (!written) ::unlink(tmp.c_str());
    return written;
}

std::string dumped(const json& j) {
    return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

} // namespace

util::Result<json> read_report(const fs::path& out) {
    std::error_code ec;
    const fs::path file = fs::is_directory(out, ec) ? out / "report.json" : out;
    std::string text;
    switch (util::read_limited(file, k_report_max_bytes, text)) {
    case util::ReadStatus::ok:
        break;
    case util::ReadStatus::too_large:
        return util::make_error(util::ErrorKind::invalid_input,
                                file.string() + ": larger than 512 MiB; not a report.json");
    case util::ReadStatus::unreadable:
        if (!fs::exists(file, ec))
            return util::make_error(util::ErrorKind::not_found,
                                    file.string() + ": no such file (give the output directory "
                                                    "of a run, its --out)");
        return util::make_error(util::ErrorKind::io, file.string() + ": cannot read it");
    }
    auto parsed = util::parse_json_text(text, file.string());
    if (!parsed) return parsed.error();
    if (!parsed->is_object() || !parsed->contains("run_id"))
        return util::make_error(util::ErrorKind::invalid_input,
                                file.string() + ": not an airlock report (no \"run_id\" object "
                                                "member; see docs/report.md)");
    return parsed;
}

util::Result<void> write_renderings(const fs::path& out) {
    auto loaded = read_report(out / "report.json");
    if (!loaded) return loaded.error();
    const json report = with_verdict(*loaded);
    const std::string summary = render_markdown(report);
    const std::pair<const char*, std::string> files[] = {
        {"summary.md", summary},
        {"report.sarif", dumped(render_sarif(report))},
        {"junit.xml", render_junit(report)},
        {"codequality.json", dumped(render_codequality(report))}};
    for (const auto& [name, text] : files)
        if (auto w = write_file_atomic(out / name, text); !w) return w;
    if (const char* step = std::getenv("GITHUB_STEP_SUMMARY"); step && *step)
        return append_step_summary(step, report);
    return {};
}

util::Result<void> append_step_summary(const fs::path& file, const json& report) {
    int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return io_error(file, "cannot open $GITHUB_STEP_SUMMARY", errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        return io_error(file, "cannot stat $GITHUB_STEP_SUMMARY", e);
    }
    const auto size = static_cast<std::size_t>(st.st_size);
    const std::size_t room = size < k_step_summary_limit ? k_step_summary_limit - size - 1 : 0;
    const std::string sep = size > 0 ? "\n" : "";
    std::string text;
    if (room >= k_min_summary_room) text = render_markdown(report, room - sep.size());
    if (text.empty()) {
        text = "airlock: summary left out, $GITHUB_STEP_SUMMARY is near GitHub's 1 MiB limit; "
               "see summary.md in the run's output directory\n";
        if (text.size() + sep.size() > room) text.clear();
    }
    util::Result<void> written;
    if (!text.empty()) written = write_all(fd, sep + text, file);
    ::close(fd);
    return written;
}

} // namespace airlock::audit
