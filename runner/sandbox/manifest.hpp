// Workspace manifests (what a tree holds, with content hashes) and the pure diff between two.
#pragma once

#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::sandbox {

// One entry of a workspace tree, as scanned on the host or read back from the container.
struct FileEntry {
    enum class Type { file, dir, symlink, other };

    std::string path;        // relative, '/'-separated, no leading "./", never empty
    Type type = Type::other; // other = socket, fifo or device: reported, never archived
    std::uint64_t size = 0;  // bytes for files, target length for symlinks, 0 otherwise
    std::uint32_t mode = 0;  // permission bits only (mask 0777); setuid/setgid/sticky never kept
    std::string sha256;      // lowercase hex of the content; files only, empty until hashed
    std::string link_target; // symlinks only

    bool operator==(const FileEntry&) const = default;
};

// "file", "dir", "symlink" or "other".
const char* to_string(FileEntry::Type type);

// Entries keyed by their path.
using Manifest = std::map<std::string, FileEntry>;

// What changed between two manifests; every list is sorted by path.
struct ChangeSet {
    std::vector<FileEntry> added;    // entries as they are now
    std::vector<FileEntry> modified; // entries as they are now (content, target, mode or type)
    std::vector<FileEntry> deleted;  // entries as they were
    std::uint64_t bytes_added_or_modified = 0; // sum of the sizes of added or modified files
    std::vector<std::string> skipped;   // "path: reason" for entries refused or not supported
    std::vector<std::string> sanitized; // "path: reason" for entries kept but made safe

    bool empty() const { return added.empty() && modified.empty() && deleted.empty(); }
};

// Compares files and symlinks by type, content, target and mode, directories by existence.
ChangeSet diff_manifests(const Manifest& before, const Manifest& after);

// Maps an archive entry name to a workspace path: strips `strip_prefix` ("workspace/") and
// "." or empty components. "" means the workspace root itself; an error (invalid_input) gives
// the reason the name is unsafe (absolute, "..", NUL, outside the prefix, too long).
util::Result<std::string> workspace_path_from_archive(std::string_view name,
                                                      std::string_view strip_prefix);

// True when a symlink at `link_path` (a workspace path) whose target is `target` would resolve,
// lexically, outside the workspace: absolute targets and ".." climbing above the root.
bool link_escapes_workspace(std::string_view link_path, std::string_view target);

// `text` with control bytes, C1 controls, backslashes and invalid UTF-8 escaped (\n, \x1b, \\),
// safe to print or to put in JSON; valid UTF-8 text is kept.
std::string printable(std::string_view text);

// {"path", "type", "size", "mode" (octal string "0644"), "sha256" (files), "link_target"
// (symlinks)}; path and target pass through printable().
nlohmann::json to_json(const FileEntry& entry);

// {"added", "modified", "deleted", "bytes_added_or_modified", "skipped", "sanitized"}.
nlohmann::json to_json(const ChangeSet& changes);

} // namespace airlock::sandbox
