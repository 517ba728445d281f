// Images airlock makes itself: a few static files in a tar, imported from scratch through the
// engine API and tagged by content hash, so no registry is involved and remote engines work.
#pragma once

#include "docker/client.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace airlock::sandbox {

// An uncompressed tar held in memory: one regular file per entry, owned by uid:gid with `mode`.
std::string tar_of(const std::vector<std::pair<std::string, std::string_view>>& files, unsigned uid,
                   unsigned gid, unsigned mode);

// Reads `data` (which must outlive the reader) as an upload body.
docker::UploadReader reader_of(const std::string& data);

// REPO:<first 16 hex digits of the SHA-256 of `tar`>, imported from that tar when the engine
// lacks it. Returns the reference.
util::Result<std::string> ensure_image_from_tar(docker::Client& client, const std::string& repo,
                                                const std::string& tar);

// REPO:<first 16 hex digits of the SHA-256 of the files>, imported when the engine lacks it.
// Files are owned by root and mode 0555. Returns the reference.
util::Result<std::string>
ensure_scratch_image(docker::Client& client, const std::string& repo,
                     const std::vector<std::pair<std::string, std::string_view>>& files);

} // namespace airlock::sandbox
