#include "sandbox/output.hpp"

#include "util/units.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace airlock::sandbox {

OutputSink::~OutputSink() {
    close();
}

util::Result<void> OutputSink::open(const std::filesystem::path& logs_dir) {
    auto open_one = [](const std::filesystem::path& p, int& fd) -> util::Result<void> {
        fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
            return util::make_error(util::ErrorKind::io,
                                    p.string() + ": cannot create (" + std::strerror(errno) + ")");
        return {};
    };
    if (auto r = open_one(logs_dir / "stdout.log", m_fd_out); !r) return r;
    return open_one(logs_dir / "stderr.log", m_fd_err);
}

void OutputSink::set_redactor(const audit::Redactor& redactor) {
    std::lock_guard<std::mutex> lock(m_mu);
    if (redactor.empty()) return;
    m_redact_out = std::make_unique<audit::RedactStream>(
        redactor, [this](std::string_view piece) { (void)keep(false, piece); });
    m_redact_err = std::make_unique<audit::RedactStream>(
        redactor, [this](std::string_view piece) { (void)keep(true, piece); });
}

void OutputSink::close() {
    std::lock_guard<std::mutex> lock(m_mu);
    if (m_redact_out) m_redact_out->finish();
    if (m_redact_err) m_redact_err->finish();
    m_redact_out.reset();
    m_redact_err.reset();
    if (m_fd_out >= 0) ::close(m_fd_out);
    if (m_fd_err >= 0) ::close(m_fd_err);
    m_fd_out = m_fd_err = -1;
}

std::uint64_t OutputSink::bytes_seen(docker::StreamId s) const {
    return s == docker::StreamId::stderr_ ? m_seen_err : m_seen_out;
}

bool OutputSink::write(docker::StreamId stream, std::string_view data) {
    std::lock_guard<std::mutex> lock(m_mu);
    const bool err = stream == docker::StreamId::stderr_;
    (err ? m_seen_err : m_seen_out) += data.size();
    if (m_redact_out) {
        (err ? m_redact_err : m_redact_out)->write(data);
        return m_write_error.empty();
    }
    return keep(err, data);
}

bool OutputSink::keep(bool err, std::string_view data) {
    std::uint64_t room = m_written < m_cap ? m_cap - m_written : 0;
    std::string_view keep = data.substr(0, room < data.size() ? room : data.size());
    m_dropped += data.size() - keep.size();
    m_written += keep.size();
    if (!keep.empty()) {
        int fd = err ? m_fd_err : m_fd_out;
        if (fd >= 0 && !write_all(fd, keep)) {
            m_write_error = std::string("cannot write a log file: ") + std::strerror(errno);
            return false;
        }
        if (m_echo == Echo::yes) (void)write_all(err ? 2 : 1, keep);
    }
    if (m_dropped > 0 && !m_cut_noted) {
        m_cut_noted = true;
        std::string note = "\n[airlock: output cap of " + util::format_size(m_cap) +
                           " reached; the rest is counted but not kept]\n";
        if (m_fd_err >= 0) (void)write_all(m_fd_err, note);
        if (m_echo == Echo::yes) (void)write_all(2, note);
    }
    return true;
}

} // namespace airlock::sandbox
