// Images airlock makes itself: a few static files in a tar, imported from scratch through the
// engine API and tagged by content hash, so no registry is involved and remote engines work.
#pragma once

#include "docker/client.hpp"

#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace airlock::sandbox {

struct TarEntry {
    std::string name; // relative; a directory's may end in '/'
    std::string_view body;
    bool directory = false;
    unsigned mode = 0444;
    unsigned uid = 0, gid = 0;
};
// An uncompressed tar held in memory, every entry with modification time `mtime`: with a fixed
// one the bytes depend on the entries only, so their hash can name an image.
std::string tar_of_entries(const std::vector<TarEntry>& entries, std::time_t mtime);

// An uncompressed tar held in memory: one regular file per entry, owned by uid:gid with `mode`.
std::string tar_of(const std::vector<std::pair<std::string, std::string_view>>& files, unsigned uid,
                   unsigned gid, unsigned mode);

// Reads `data` (which must outlive the reader) as an upload body.
docker::UploadReader reader_of(const std::string& data);

// REPO:<first 16 hex digits of the SHA-256 of `tar`>, imported from that tar when the engine
// lacks it. `tar` must be reproducible (tar_of_entries with a fixed mtime), or every call makes
// a new image. Returns the reference.
util::Result<std::string> ensure_image_from_tar(docker::Client& client, const std::string& repo,
                                                const std::string& tar);

// The same for an image of regular files only, owned by root and mode 0555.
util::Result<std::string>
ensure_scratch_image(docker::Client& client, const std::string& repo,
                     const std::vector<std::pair<std::string, std::string_view>>& files);

} // namespace airlock::sandbox
