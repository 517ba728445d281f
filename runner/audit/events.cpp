#include "audit/events.hpp"

#include "audit/report.hpp"
#include "util/sha256.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <unistd.h>

namespace airlock::audit {

using nlohmann::json;
using util::ErrorKind;
using util::make_error;
using util::Result;

EventLog::~EventLog() {
    close();
}

Result<void> EventLog::open(const std::filesystem::path& path, const Redactor* redactor) {
    std::lock_guard<std::mutex> lock(m_mu);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return make_error(ErrorKind::io,
                          path.string() + ": cannot create (" + std::strerror(errno) + ")");
    m_file = ::fdopen(fd, "w");
    if (!m_file) {
        ::close(fd);
        return make_error(ErrorKind::io, path.string() + ": cannot open");
    }
    m_redactor = redactor;
    m_path = path;
    return {};
}

void EventLog::append(const std::string& type, json fields) {
    if (!fields.is_object()) fields = json::object();
    std::lock_guard<std::mutex> lock(m_mu);
    if (!m_file || !m_error.empty()) return;
    json line = {{"seq", m_seq + 1}, {"time", utc_now_rfc3339()}, {"type", type}};
    for (auto it = fields.begin(); it != fields.end(); ++it)
        if (it.key() != "seq" && it.key() != "time" && it.key() != "type" && it.key() != "prev")
            line[it.key()] = std::move(it.value());
    line["prev"] = m_prev;
    std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace);
    if (m_redactor && !m_redactor->empty()) text = m_redactor->redact(text);
    text += '\n';
    if (std::fwrite(text.data(), 1, text.size(), m_file) != text.size() ||
        std::fflush(m_file) != 0) {
        m_error = m_path.string() + ": write failed (" + std::strerror(errno) + ")";
        return;
    }
    ++m_seq;
    text.pop_back();
    m_prev = util::sha256_hex(text);
}

std::uint64_t EventLog::count() const {
    std::lock_guard<std::mutex> lock(m_mu);
    return m_seq;
}

std::string EventLog::last_digest() const {
    std::lock_guard<std::mutex> lock(m_mu);
    return m_prev;
}

std::string EventLog::error() const {
    std::lock_guard<std::mutex> lock(m_mu);
    return m_error;
}

void EventLog::close() {
    std::lock_guard<std::mutex> lock(m_mu);
    if (m_file) std::fclose(m_file);
    m_file = nullptr;
}

Result<std::uint64_t> verify_event_chain(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(ErrorKind::invalid_input, path.string() + ": cannot be read");
    std::string text, prev;
    std::uint64_t n = 0;
    while (std::getline(in, text)) {
        ++n;
        const std::string where = path.string() + ": line " + std::to_string(n);
        json j = json::parse(text, nullptr, false);
        if (j.is_discarded() || !j.is_object())
            return make_error(ErrorKind::invalid_input, where + ": not a JSON object");
        if (j.value("seq", std::uint64_t{0}) != n)
            return make_error(ErrorKind::refused,
                              where + ": seq is not " + std::to_string(n) + " (a line is missing)");
        if (j.value("prev", std::string("?")) != prev)
            return make_error(ErrorKind::refused,
                              where + ": prev does not match the previous line (edited)");
        prev = util::sha256_hex(text);
    }
    return n;
}

} // namespace airlock::audit
