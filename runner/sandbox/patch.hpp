// OUT/changes.patch: the workspace changes as a git patch that `git apply` accepts on the
// original tree (binary files as git binary patches). Built by `git diff --no-index --binary`
// over two scratch trees: the originals, read from the checkout without following any link, and
// the collected files. Volume mode only: in bind-rw the changes are already in the checkout.
#pragma once

#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace airlock::sandbox {

// `manifest` is changes/manifest.json (added, modified, deleted entries with path, type, mode).
// Writes `patch` and returns the report's `changes.patch`: {path, bytes, sha256, files,
// left_out: ["path: reason"]}; {written: false, reason} when git is not installed.
util::Result<nlohmann::json> write_changes_patch(const std::filesystem::path& workspace,
                                                 const nlohmann::json& manifest,
                                                 const std::filesystem::path& files_dir,
                                                 const std::filesystem::path& patch);

// `git apply --check`, then `git apply`, of `patch` in `workspace` (no user git configuration).
// Errors name the step that failed; nothing is changed when the check fails.
util::Result<void> apply_changes_patch(const std::filesystem::path& workspace,
                                       const std::filesystem::path& patch);

} // namespace airlock::sandbox
