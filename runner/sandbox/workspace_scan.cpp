#include "sandbox/workspace.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <system_error>

namespace airlock::sandbox {

namespace fs = std::filesystem;

namespace detail {

std::string unreadable_message(const fs::path& path, std::string_view verb, int err) {
    return "workspace: " + printable(path.string()) + ": cannot " + std::string(verb) + " (" +
           std::generic_category().message(err) + "); fix its permissions or remove it";
}

int open_dir_beneath(int dir_fd, std::string_view rel) {
    Fd cur(::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
    if (!cur.valid()) return -1;
    std::size_t pos = 0;
    while (pos < rel.size()) {
        std::size_t slash = rel.find('/', pos);
        if (slash == std::string_view::npos) slash = rel.size();
        const std::string part(rel.substr(pos, slash - pos));
        pos = slash + 1;
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            errno = EINVAL;
            return -1;
        }
        Fd next(::openat(cur.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next.valid()) return -1;
        cur = std::move(next);
    }
    return cur.release();
}

} // namespace detail

namespace {

using detail::Fd;
using detail::unreadable_message;

fs::path below(const fs::path& root, const std::string& rel) {
    return rel.empty() ? root : root / rel;
}

util::Error bad_root(const fs::path& root, const char* what) {
    return util::make_error(util::ErrorKind::invalid_input,
                            "workspace: " + printable(root.string()) + ": " + what +
                                " (pass --workspace DIR)");
}

// Normalised relative excludes; an absolute or climbing exclude is a caller's mistake.
util::Result<std::set<std::string>> normalise_excludes(const std::vector<std::string>& excludes) {
    std::set<std::string> out;
    for (const auto& e : excludes) {
        auto rel = workspace_path_from_archive(e, "");
        if (!rel || rel->empty())
            return util::make_error(util::ErrorKind::invalid_input,
                                    "workspace: exclude \"" + printable(e) +
                                        "\" is not a relative path inside the workspace (use "
                                        "e.g. \".airlock\")");
        out.insert(std::move(*rel));
    }
    return out;
}

// Lists one directory: every name except "." and "..", or -errno.
int list_names(int dir_fd, std::vector<std::string>& names) {
    const int fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return -errno;
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
        const int err = errno;
        ::close(fd);
        return -err;
    }
    int result = 0;
    for (;;) {
        errno = 0;
        const dirent* d = ::readdir(dir);
        if (d == nullptr) {
            result = -errno;
            break;
        }
        const std::string_view name(d->d_name);
        if (name != "." && name != "..") names.emplace_back(name);
    }
    ::closedir(dir);
    return result;
}

// Adds the entry `name` of the directory `dir_fd` (workspace path `rel`) to the scan.
util::Result<void> scan_entry(int dir_fd, const std::string& name, std::string rel,
                              WorkspaceScan& scan, std::vector<std::string>& pending) {
    const fs::path abs = scan.root / rel;
    struct stat st {};
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return {}; // removed while we looked: nothing to archive
        return util::make_error(util::ErrorKind::invalid_input,
                                unreadable_message(abs, "read", errno));
    }
    FileEntry entry;
    entry.path = std::move(rel);
    entry.mode = static_cast<std::uint32_t>(st.st_mode) & 0777u;
    if (S_ISREG(st.st_mode)) {
        Fd fd(::openat(dir_fd, name.c_str(),
                       O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
        if (!fd.valid()) {
            if (errno == ENOENT) return {};
            return util::make_error(util::ErrorKind::invalid_input,
                                    unreadable_message(abs, "read", errno));
        }
        entry.type = FileEntry::Type::file;
        entry.size = static_cast<std::uint64_t>(st.st_size);
        scan.total_bytes += entry.size;
    } else if (S_ISDIR(st.st_mode)) {
        entry.type = FileEntry::Type::dir;
        pending.push_back(entry.path);
    } else if (S_ISLNK(st.st_mode)) {
        std::string target(static_cast<std::size_t>(std::max<off_t>(st.st_size, 4095)) + 1, '\0');
        const ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
        if (n < 0) {
            if (errno == ENOENT) return {};
            return util::make_error(util::ErrorKind::invalid_input,
                                    unreadable_message(abs, "read", errno));
        }
        target.resize(static_cast<std::size_t>(n));
        entry.type = FileEntry::Type::symlink;
        entry.size = target.size();
        entry.link_target = std::move(target);
        entry.mode = 0777;
    } else {
        entry.type = FileEntry::Type::other;
    }
    scan.entries.push_back(std::move(entry));
    return {};
}

} // namespace

util::Result<WorkspaceScan> scan_workspace(const fs::path& root,
                                           const std::vector<std::string>& excludes) {
    WorkspaceScan scan;
    std::error_code ec;
    scan.root = fs::absolute(root, ec).lexically_normal();
    if (ec) scan.root = root;
    if (!scan.root.has_filename() && scan.root.has_parent_path())
        scan.root = scan.root.parent_path();

    auto excluded = normalise_excludes(excludes);
    if (!excluded) return excluded.error();

    // The root itself may be a symlink the user chose; nothing below it is followed.
    struct stat st {};
    if (::stat(scan.root.c_str(), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return bad_root(scan.root, "does not exist");
        return util::make_error(util::ErrorKind::invalid_input,
                                unreadable_message(scan.root, "read", errno));
    }
    if (!S_ISDIR(st.st_mode)) return bad_root(scan.root, "is not a directory");
    Fd root_fd(::open(scan.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd.valid())
        return util::make_error(util::ErrorKind::invalid_input,
                                unreadable_message(scan.root, "list", errno));

    // Depth-first with an explicit stack; each directory is reopened from the root so that at
    // most two descriptors are open, however deep the tree.
    std::vector<std::string> pending{""};
    std::vector<std::string> names;
    while (!pending.empty()) {
        const std::string rel = std::move(pending.back());
        pending.pop_back();
        Fd dir(detail::open_dir_beneath(root_fd.get(), rel));
        if (!dir.valid()) {
            if (errno == ENOENT) continue;
            return util::make_error(util::ErrorKind::invalid_input,
                                    unreadable_message(below(scan.root, rel), "list", errno));
        }
        names.clear();
        if (const int err = list_names(dir.get(), names); err != 0)
            return util::make_error(util::ErrorKind::invalid_input,
                                    unreadable_message(below(scan.root, rel), "list", -err));
        std::sort(names.begin(), names.end());
        for (const auto& name : names) {
            std::string child = rel.empty() ? name : rel + '/' + name;
            if (excluded->contains(child)) continue;
            auto added = scan_entry(dir.get(), name, std::move(child), scan, pending);
            if (!added) return added.error();
        }
    }
    std::sort(scan.entries.begin(), scan.entries.end(),
              [](const FileEntry& a, const FileEntry& b) { return a.path < b.path; });
    return scan;
}

} // namespace airlock::sandbox
