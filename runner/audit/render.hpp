// Renderings of report.json for CI systems: a Markdown summary, SARIF for GitHub code scanning,
// JUnit XML, GitLab Code Quality, and the GitHub Actions workflow commands (docs/renderers.md).
// Every renderer is a pure function of the report; text from the report is untrusted (the task
// chose file names, hosts and messages) and is escaped for the target format.
#pragma once

#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace airlock::audit {

// GitHub refuses a $GITHUB_STEP_SUMMARY larger than 1 MiB per step.
inline constexpr std::size_t k_step_summary_limit = 1024 * 1024;
// What render_markdown produces at most by default: the limit minus room for other steps' text.
inline constexpr std::size_t k_summary_max_bytes = k_step_summary_limit - 16 * 1024;
// Where results without a workspace path point (code scanning refuses results without one).
inline constexpr const char* k_fallback_location = ".airlock/report.json";

// The report with "violations", "checks" and "verdict" filled in (verdict.hpp, unsigned) where
// it lacks them; the rest unchanged.
nlohmann::json with_verdict(const nlohmann::json& report);

// The workspace-relative path of a violation, or k_fallback_location.
std::string location_of(const nlohmann::json& violation);

// A stable hex SHA-256 of rule, path and message (and `occurrence` when > 0, so identical
// violations in one report stay distinct).
std::string fingerprint_of(const nlohmann::json& violation, std::size_t occurrence = 0);

// Valid UTF-8: every invalid sequence becomes U+FFFD.
std::string to_valid_utf8(std::string_view text);

// summary.md: verdict, key facts, failed checks, the first 20 violations, failed CIS checks;
// never longer than max_bytes (cut with a note).
std::string render_markdown(const nlohmann::json& report,
                            std::size_t max_bytes = k_summary_max_bytes);

// SARIF 2.1.0 as GitHub code scanning accepts it: one result per violation.
nlohmann::json render_sarif(const nlohmann::json& report);

// JUnit XML: testsuite "airlock", a testcase per gate check and CIS check. Always well-formed.
std::string render_junit(const nlohmann::json& report);

// GitLab Code Quality: an array with one issue per violation.
nlohmann::json render_codequality(const nlohmann::json& report);

// A GitHub Actions workflow command for one violation: `::error file=P,line=1,title=R::MSG`
// (or ::warning), escaped so that the message cannot start another command.
std::string annotation(const nlohmann::json& violation);

// 32 lowercase hex characters from OpenSSL's CSPRNG, for `::stop-commands::TOKEN` ... `::TOKEN::`
// around the task's output. Throws when the CSPRNG fails.
std::string stop_commands_token();

// OUT/report.json (or the file itself when `out` is one), parsed; errors name the file.
util::Result<nlohmann::json> read_report(const std::filesystem::path& out);

// Writes OUT/summary.md, OUT/report.sarif, OUT/junit.xml and OUT/codequality.json (each through
// a temporary file and rename) from OUT/report.json; with GITHUB_STEP_SUMMARY set, appends the
// summary to that file too (append_step_summary).
util::Result<void> write_renderings(const std::filesystem::path& out);

// Appends the Markdown summary to `file` keeping it under k_step_summary_limit; when too little
// room is left, appends a one-line note instead (or nothing when not even that fits).
util::Result<void> append_step_summary(const std::filesystem::path& file,
                                       const nlohmann::json& report);

} // namespace airlock::audit
