#include "audit/report.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <unistd.h>

namespace airlock::audit {

nlohmann::json redact_json(const nlohmann::json& j, const Redactor& redactor) {
    if (j.is_string()) return redactor.redact(j.get_ref<const std::string&>());
    if (j.is_array()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& e : j)
            out.push_back(redact_json(e, redactor));
        return out;
    }
    if (j.is_object()) {
        nlohmann::json out = nlohmann::json::object();
        for (auto it = j.begin(); it != j.end(); ++it)
            out[redactor.redact(it.key())] = redact_json(it.value(), redactor);
        return out;
    }
    return j;
}

util::Result<void> write_json_file(const std::filesystem::path& path, const nlohmann::json& j,
                                   const Redactor* redactor) {
    const bool redact = redactor && !redactor->empty();
    const nlohmann::json redacted = redact ? redact_json(j, *redactor) : nlohmann::json();
    const nlohmann::json& shown = redact ? redacted : j;
    std::string text = shown.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::filesystem::path tmp = path;
    tmp += ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return util::make_error(util::ErrorKind::io,
                                tmp.string() + ": cannot create (" + std::strerror(errno) + ")");
    std::string_view rest = text;
    while (!rest.empty()) {
        ssize_t n = ::write(fd, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            return util::make_error(util::ErrorKind::io,
                                    tmp.string() + ": cannot write (" + std::strerror(e) + ")");
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    ::fsync(fd);
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        return util::make_error(util::ErrorKind::io,
                                path.string() + ": cannot write (" + std::strerror(errno) + ")");
    return {};
}

std::string utc_now_rfc3339() {
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms % 1000));
    return buf;
}

} // namespace airlock::audit
