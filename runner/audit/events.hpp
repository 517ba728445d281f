// OUT/events.jsonl: one JSON object per line, appended and flushed as things happen, so a run
// that is killed still leaves its trail. Each line has `seq`, `time` (RFC 3339, UTC, ms), `type`,
// the event's own fields, and `prev`: the SHA-256 of the previous line (empty for the first), so
// that a removed or edited line is detectable.
#pragma once

#include "audit/redact.hpp"
#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>

namespace airlock::audit {

class EventLog {
public:
    EventLog() = default;
    ~EventLog();
    EventLog(const EventLog&) = delete;
    EventLog& operator=(const EventLog&) = delete;

    // Creates the file (it must not exist). Every line goes through `redactor`, which must
    // outlive the log.
    util::Result<void> open(const std::filesystem::path& path, const Redactor* redactor);
    bool is_open() const { return m_file != nullptr; }

    // Appends one event; thread-safe. `fields` must be an object; its seq/time/type/prev keys are
    // overwritten. A write error is remembered (see error()) and later appends are dropped.
    void append(const std::string& type, nlohmann::json fields);

    std::uint64_t count() const;
    std::string last_digest() const; // SHA-256 of the last line written, "" before the first
    std::string error() const;       // the first write error, if any
    void close();

private:
    mutable std::mutex m_mu;
    std::FILE* m_file = nullptr;
    const Redactor* m_redactor = nullptr;
    std::uint64_t m_seq = 0;
    std::string m_prev;
    std::string m_error;
    std::filesystem::path m_path;
};

// Checks the chain of an events file: seq counts up from 1 and every prev matches. Returns the
// number of lines, or an error naming the first bad line: invalid_input when the file cannot be
// read or a line is not a JSON object (malformed), refused when the chain is broken (edited).
util::Result<std::uint64_t> verify_event_chain(const std::filesystem::path& path);

} // namespace airlock::audit
