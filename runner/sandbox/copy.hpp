// Workspace in and out of the container through the archive API, streamed through a pipe so
// memory stays bounded whatever the size of the tree.
#pragma once

#include "docker/client.hpp"
#include "sandbox/manifest.hpp"
#include "sandbox/workspace.hpp"

namespace airlock::sandbox {

// Tars the scanned workspace into the container's /workspace; returns what was sent.
util::Result<Manifest> copy_in(docker::Client& client, const std::string& container_id,
                               const WorkspaceScan& scan, TarOwner owner);

struct CopyOutLimits {
    std::uint64_t max_file_bytes;
    std::uint64_t max_total_bytes;
};

// Reads /workspace back, writes added and modified files under files_dir, and diffs.
util::Result<ChangeSet> copy_out(docker::Client& client, const std::string& container_id,
                                 const Manifest& before, const std::filesystem::path& files_dir,
                                 CopyOutLimits limits);

} // namespace airlock::sandbox
