// Where the task's stdout and stderr go: log files in OUT/logs and, live, the terminal.
// Bounded memory: every piece is written through at once. Output past the cap is counted and
// dropped, and the cut is recorded.
#pragma once

#include "audit/redact.hpp"
#include "docker/frames.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string_view>

namespace airlock::sandbox {

enum class Echo { no, yes };

class OutputSink {
public:
    OutputSink(std::uint64_t cap, Echo echo) : m_cap(cap), m_echo(echo) {}
    ~OutputSink();
    OutputSink(const OutputSink&) = delete;
    OutputSink& operator=(const OutputSink&) = delete;

    util::Result<void> open(const std::filesystem::path& logs_dir);
    // Secrets are replaced before anything is kept or echoed, also when split across pieces.
    // The redactor must outlive the sink; call before the first write.
    void set_redactor(const audit::Redactor& redactor);
    // Writes one piece; false only if a log file cannot be written.
    bool write(docker::StreamId stream, std::string_view data);
    // Flushes what redaction held back, then closes the log files.
    void close();

    std::uint64_t bytes_seen(docker::StreamId s) const;
    std::uint64_t bytes_written() const { return m_written; }
    std::uint64_t bytes_dropped() const { return m_dropped; }
    bool truncated() const { return m_dropped > 0; }
    std::uint64_t cap() const { return m_cap; }
    const std::string& write_error() const { return m_write_error; }

private:
    bool keep(bool err, std::string_view data); // the cap, the files and the echo; m_mu held

    std::uint64_t m_cap;
    Echo m_echo;
    int m_fd_out = -1, m_fd_err = -1;
    std::uint64_t m_seen_out = 0, m_seen_err = 0, m_written = 0, m_dropped = 0;
    bool m_cut_noted = false;
    std::string m_write_error;
    std::unique_ptr<audit::RedactStream> m_redact_out, m_redact_err;
    std::mutex m_mu;
};

using util::write_all;

} // namespace airlock::sandbox
