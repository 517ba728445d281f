// The host workspace: scanned without following links, streamed into the container as a tar,
// and read back from the container's tar into a staging directory, never into the checkout.
#pragma once

#include "sandbox/manifest.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace airlock::sandbox {

// A walked workspace: what will be archived, before any content is read.
struct WorkspaceScan {
    std::filesystem::path root;     // absolute
    std::vector<FileEntry> entries; // sorted by path (parents first); no hashes yet
    std::uint64_t total_bytes = 0;  // sum of the sizes of regular files
};

// Walks `root` without following symlinks below it and never leaving it, skipping the relative
// paths in `excludes` and their subtrees (e.g. ".airlock"). Every regular file must open for
// reading and every directory must list, else invalid_input naming the path and the fix.
// Sockets, fifos and devices are listed as Type::other and never archived.
util::Result<WorkspaceScan> scan_workspace(const std::filesystem::path& root,
                                           const std::vector<std::string>& excludes);

// Owner written into every archived entry (the agent's user inside the container).
struct TarOwner {
    unsigned uid = 0;
    unsigned gid = 0;
};

// Writes a pax tar of the scanned entries (names relative, "src/a.c") to `fd` in 64 KiB blocks,
// hashing each file as it streams; returns the manifest of what was archived (Type::other left
// out). A file that vanished, changed type or changed size -> io error naming it; a closed
// reader -> io error, never SIGPIPE. Does not close `fd`.
util::Result<Manifest> write_workspace_tar(const WorkspaceScan& scan, int fd, TarOwner owner);

// Reads an untrusted tar from `fd` (names under `strip_prefix`, e.g. "workspace/"), hashes each
// entry, compares with `before`, and writes each added or modified regular file to
// out_dir/<path> (created if missing) without ever following a link: special mode bits dropped,
// symlinks recorded but never created, directories created empty. Unsafe names, new or changed
// symlinks pointing outside the workspace, hard links, devices, fifos, duplicates, files over
// `max_file_bytes` (or over `max_total_bytes` written in all) are listed in `skipped` and the
// rest goes on. Entries of `before` absent from the stream are `deleted`. A corrupt stream ->
// protocol error; more than 1,000,000 entries -> refused. Reads `fd` to EOF (at most 1 MiB past
// the end of the archive) and does not close it. On error out_dir may hold partial results.
util::Result<ChangeSet> read_workspace_tar(int fd, const Manifest& before,
                                           const std::filesystem::path& out_dir,
                                           std::string_view strip_prefix,
                                           std::uint64_t max_file_bytes,
                                           std::uint64_t max_total_bytes);

namespace detail {

using util::Fd;

// "workspace: <path>: cannot <verb> (<strerror(err)>); fix its permissions or remove it".
std::string unreadable_message(const std::filesystem::path& path, std::string_view verb, int err);

// Opens the directory `rel` ("" = dir_fd itself) below `dir_fd`, one component at a time with
// O_NOFOLLOW, so no symlink is ever followed. Returns the new fd or -1 with errno set.
int open_dir_beneath(int dir_fd, std::string_view rel);

} // namespace detail

} // namespace airlock::sandbox
