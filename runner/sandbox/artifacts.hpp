// Artifacts: files the task declares (`--artifact PATH_OR_GLOB`, task file `artifacts`), copied
// out of the container through the archive API into OUT/artifacts/ after the task ends. The tar
// comes from the engine and is untrusted: it is read by read_workspace_tar, so absolute names,
// `..`, links, hard links, devices and fifos are never written (each is listed as skipped), no
// link is ever followed, and the per-file and total caps hold.
#pragma once

#include "docker/client.hpp"
#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace airlock::sandbox {

struct ArtifactLimits {
    std::uint64_t max_file_bytes = 256ull << 20;
    std::uint64_t max_total_bytes = 1ull << 30;
};

// A pattern's problem ("must be relative to /workspace", "`..` is not allowed"), or nullopt.
std::optional<std::string> artifact_pattern_problem(const std::string& pattern);

// The directory to fetch for a pattern: the path up to the first component with a glob
// character ("" for the workspace itself).
std::string artifact_fetch_root(const std::string& pattern);

// Collects every pattern into out_dir (OUT/artifacts). Returns the report's `artifacts`:
// {files: [{path, size, sha256, pattern}], total_bytes, skipped: ["path: reason"], missing:
// [patterns that matched nothing]}.
util::Result<nlohmann::json> collect_artifacts(docker::Client& client,
                                               const std::string& container_id,
                                               const std::vector<std::string>& patterns,
                                               const std::filesystem::path& out_dir,
                                               ArtifactLimits limits);

} // namespace airlock::sandbox
