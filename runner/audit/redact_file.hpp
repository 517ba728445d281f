// Secrets in files airlock writes (changed workspace files, artifacts): found by streaming, and
// replaced in place, with bounded memory.
#pragma once

#include "audit/redact.hpp"
#include "util/result.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace airlock::audit {

// Rewrites `file` with every secret form replaced. Returns whether anything was replaced; a file
// without secrets is left untouched.
util::Result<bool> redact_file(const std::filesystem::path& file, const Redactor& redactor);

// redact_file on every regular file under `dir` (symlinks are not followed); the paths, relative
// to dir, of the files that held a secret.
util::Result<std::vector<std::string>> redact_tree(const std::filesystem::path& dir,
                                                   const Redactor& redactor);

} // namespace airlock::audit
