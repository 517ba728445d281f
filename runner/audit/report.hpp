// OUT/report.json: what a run did, in a versioned schema (docs/report.md).
#pragma once

#include "audit/redact.hpp"
#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace airlock::audit {

inline constexpr const char* k_report_schema = "https://airlock.dev/schemas/report/v0.2";
inline constexpr const char* k_report_version = "0.2";

// Every string and key with secrets replaced; done on values, not text, so the JSON stays valid.
nlohmann::json redact_json(const nlohmann::json& j, const Redactor& redactor);

// Writes JSON to path atomically (temp file in the same directory, fsync, rename), redacted
// when a redactor is given.
util::Result<void> write_json_file(const std::filesystem::path& path, const nlohmann::json& j,
                                   const Redactor* redactor = nullptr);

// RFC 3339 UTC with milliseconds, e.g. 2026-11-27T00:10:02.123Z.
std::string utc_now_rfc3339();

} // namespace airlock::audit
