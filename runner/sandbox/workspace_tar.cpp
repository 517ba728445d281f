#include "sandbox/workspace.hpp"
#include "util/sha256.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <memory>
#include <set>
#include <system_error>

namespace airlock::sandbox {

namespace fs = std::filesystem;
using detail::Fd;

namespace {

constexpr std::size_t k_chunk = 64 * 1024;
// Bounds on what an untrusted stream can make us hold in memory or create on disk.
constexpr std::uint64_t k_max_entries = 1'000'000;
constexpr std::uint64_t k_max_name_bytes = 256ull << 20;
constexpr std::size_t k_max_reasons = 1000;
constexpr std::size_t k_max_link_bytes = 4096;
constexpr std::size_t k_max_trailing_bytes = 1 << 20;

struct WriteFree {
    void operator()(archive* a) const { archive_write_free(a); }
};
struct ReadFree {
    void operator()(archive* a) const { archive_read_free(a); }
};
struct EntryFree {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};

std::string errno_text(int err) {
    return std::generic_category().message(err);
}

util::Error io_error(std::string message) {
    return util::make_error(util::ErrorKind::io, std::move(message));
}

// Blocks SIGPIPE in this thread so a reader that went away shows up as EPIPE; a SIGPIPE raised
// meanwhile is consumed before the mask is restored.
class SigpipeBlock {
public:
    SigpipeBlock() {
        sigemptyset(&m_set);
        sigaddset(&m_set, SIGPIPE);
        sigset_t pending;
        sigemptyset(&pending);
        sigpending(&pending);
        m_was_pending = sigismember(&pending, SIGPIPE) == 1;
        pthread_sigmask(SIG_BLOCK, &m_set, &m_old);
    }
    ~SigpipeBlock() {
        if (!m_was_pending) {
            const timespec zero{};
            while (sigtimedwait(&m_set, nullptr, &zero) == SIGPIPE) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &m_old, nullptr);
    }
    SigpipeBlock(const SigpipeBlock&) = delete;
    SigpipeBlock& operator=(const SigpipeBlock&) = delete;

private:
    sigset_t m_set{};
    sigset_t m_old{};
    bool m_was_pending = false;
};

ssize_t read_some(int fd, char* buf, std::size_t size) {
    for (;;) {
        const ssize_t n = ::read(fd, buf, size);
        if (n >= 0 || errno != EINTR) return n;
    }
}

struct WriteTarget {
    int fd = -1;
    int err = 0;
    bool abandoned = false; // after a failure: nothing more may reach fd
};

la_ssize_t write_callback(archive* a, void* client, const void* buf, std::size_t size) {
    auto* target = static_cast<WriteTarget*>(client);
    if (target->abandoned) {
        archive_set_error(a, ECANCELED, "archive abandoned");
        return -1;
    }
    if (!util::write_all(target->fd, std::string_view(static_cast<const char*>(buf), size))) {
        target->err = errno;
        archive_set_error(a, errno, "write to the upload stream failed");
        return -1;
    }
    return static_cast<la_ssize_t>(size);
}

// Streams the scanned entries from the host into the archive, one file open at a time.
class TarWriter {
public:
    TarWriter(const WorkspaceScan& scan, archive* a, const WriteTarget& target, TarOwner owner)
        : m_scan(scan), m_archive(a), m_target(target), m_owner(owner), m_buf(k_chunk) {}

    util::Result<Manifest> run() {
        m_root = Fd(::open(m_scan.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!m_root.valid())
            return io_error(detail::unreadable_message(m_scan.root, "list", errno));
        Manifest manifest;
        for (const auto& entry : m_scan.entries) {
            if (entry.type == FileEntry::Type::other) continue;
            auto written = write_entry(entry);
            if (!written) return written.error();
            manifest.emplace(written->path, std::move(*written));
        }
        if (archive_write_close(m_archive) != ARCHIVE_OK) return archive_failure();
        return manifest;
    }

private:
    util::Error changed(const FileEntry& entry, const std::string& what) const {
        return io_error("workspace: " + printable((m_scan.root / entry.path).string()) + ": " +
                        what +
                        " while being archived; run again when nothing else writes to "
                        "the workspace");
    }

    util::Error archive_failure() const {
        if (m_target.err != 0)
            return io_error("workspace upload: cannot write the archive (" +
                            errno_text(m_target.err) + ")");
        const char* msg = archive_error_string(m_archive);
        return io_error(std::string("workspace upload: ") + (msg ? msg : "archive error"));
    }

    // Directory holding `path`, from a one-entry cache (entries come sorted, siblings together).
    int parent_of(const std::string& path, std::string& leaf) {
        const auto slash = path.rfind('/');
        const std::string parent = slash == std::string::npos ? "" : path.substr(0, slash);
        leaf = slash == std::string::npos ? path : path.substr(slash + 1);
        if (!m_parent.valid() || parent != m_parent_rel) {
            m_parent = Fd(detail::open_dir_beneath(m_root.get(), parent));
            m_parent_rel = parent;
        }
        return m_parent.get();
    }

    util::Result<FileEntry> write_entry(const FileEntry& scanned) {
        std::string leaf;
        const int dir = parent_of(scanned.path, leaf);
        struct stat st {};
        if (dir < 0 || ::fstatat(dir, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return changed(scanned, errno == ENOENT ? "vanished" : "became unreadable");

        FileEntry entry = scanned;
        std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
        archive_entry_set_pathname(e.get(), entry.path.c_str());
        archive_entry_set_uid(e.get(), m_owner.uid);
        archive_entry_set_gid(e.get(), m_owner.gid);
        archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        Fd file;
        switch (entry.type) {
        case FileEntry::Type::dir:
            if (!S_ISDIR(st.st_mode)) return changed(entry, "stopped being a directory");
            archive_entry_set_filetype(e.get(), AE_IFDIR);
            archive_entry_set_perm(e.get(), entry.mode);
            break;
        case FileEntry::Type::symlink: {
            if (!S_ISLNK(st.st_mode)) return changed(entry, "stopped being a symlink");
            std::string target(k_max_link_bytes + 1, '\0');
            const ssize_t n = ::readlinkat(dir, leaf.c_str(), target.data(), target.size());
            if (n < 0) return changed(entry, "became unreadable");
            target.resize(static_cast<std::size_t>(n));
            entry.link_target = target;
            entry.size = target.size();
            archive_entry_set_filetype(e.get(), AE_IFLNK);
            archive_entry_set_perm(e.get(), 0777);
            archive_entry_set_symlink(e.get(), target.c_str());
            break;
        }
        case FileEntry::Type::file:
            file = Fd(::openat(dir, leaf.c_str(),
                               O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
            if (!file.valid())
                return changed(entry, errno == ENOENT ? "vanished" : "became unreadable");
            if (::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode))
                return changed(entry, "stopped being a regular file");
            if (static_cast<std::uint64_t>(st.st_size) != entry.size)
                return changed(entry, "changed size");
            archive_entry_set_filetype(e.get(), AE_IFREG);
            archive_entry_set_perm(e.get(), entry.mode);
            archive_entry_set_size(e.get(), static_cast<la_int64_t>(entry.size));
            break;
        case FileEntry::Type::other:
            break;
        }
        if (archive_write_header(m_archive, e.get()) < ARCHIVE_WARN) return archive_failure();
        if (file.valid()) {
            auto hash = stream_file(file.get(), entry);
            if (!hash) return hash.error();
            entry.sha256 = std::move(*hash);
        }
        return entry;
    }

    // Copies exactly entry.size bytes into the archive and returns their hash.
    util::Result<std::string> stream_file(int fd, const FileEntry& entry) {
        util::Sha256 hash;
        std::uint64_t left = entry.size;
        while (left > 0) {
            const std::size_t want =
                static_cast<std::size_t>(std::min<std::uint64_t>(left, k_chunk));
            const ssize_t n = read_some(fd, m_buf.data(), want);
            if (n < 0) return changed(entry, "became unreadable (" + errno_text(errno) + ")");
            if (n == 0) return changed(entry, "shrank");
            hash.update(m_buf.data(), static_cast<std::size_t>(n));
            if (archive_write_data(m_archive, m_buf.data(), static_cast<std::size_t>(n)) != n)
                return archive_failure();
            left -= static_cast<std::uint64_t>(n);
        }
        if (read_some(fd, m_buf.data(), 1) > 0) return changed(entry, "grew");
        return hash.hex_digest();
    }

    const WorkspaceScan& m_scan;
    archive* m_archive;
    const WriteTarget& m_target;
    TarOwner m_owner;
    std::vector<char> m_buf;
    Fd m_root;
    Fd m_parent;
    std::string m_parent_rel;
};

const char* kind_name(mode_t type) {
    switch (type) {
    case AE_IFCHR:
        return "character device";
    case AE_IFBLK:
        return "block device";
    case AE_IFIFO:
        return "fifo";
    case AE_IFSOCK:
        return "socket";
    default:
        return "entry of unknown type";
    }
}

// Reads the container's archive entry by entry into the staging directory.
class TarReader {
public:
    TarReader(const Manifest& before, const fs::path& out_dir, std::string_view strip_prefix,
              std::uint64_t max_file_bytes, std::uint64_t max_total_bytes)
        : m_before(before), m_out_dir(out_dir), m_prefix(strip_prefix), m_max_file(max_file_bytes),
          m_max_total(max_total_bytes), m_buf(k_chunk) {}

    ~TarReader() { discard_temp(); }
    TarReader(const TarReader&) = delete;
    TarReader& operator=(const TarReader&) = delete;

    util::Result<ChangeSet> run(int fd) {
        std::error_code ec;
        fs::create_directories(m_out_dir, ec);
        m_out = Fd(::open(m_out_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!m_out.valid())
            return io_error("workspace: " + printable(m_out_dir.string()) +
                            ": cannot open the output directory (" + errno_text(errno) + ")");

        std::unique_ptr<archive, ReadFree> a(archive_read_new());
        archive_read_support_format_tar(a.get()); // no decompression filters: plain tar only
        if (archive_read_open_fd(a.get(), fd, k_chunk) != ARCHIVE_OK) return corrupt(a.get());
        // libarchive takes EOF at an entry boundary for the end; a cut download would then
        // report every later file as deleted. Only a consumed end-of-archive marker ends it.
        la_int64_t entry_end = 0;
        for (int retries = 0;;) {
            archive_entry* e = nullptr;
            const int r = archive_read_next_header(a.get(), &e);
            if (r == ARCHIVE_EOF) {
                if (archive_filter_bytes(a.get(), 0) > entry_end) break;
                return util::make_error(util::ErrorKind::protocol,
                                        "workspace archive: the stream ended without an "
                                        "end-of-archive marker (truncated download)");
            }
            if (r == ARCHIVE_RETRY && ++retries < 16) continue;
            if (r < ARCHIVE_WARN) return corrupt(a.get());
            retries = 0;
            auto done = read_entry(a.get(), e);
            if (!done) return done.error();
            if (archive_read_data_skip(a.get()) < ARCHIVE_WARN) return corrupt(a.get());
            entry_end = archive_filter_bytes(a.get(), 0);
        }
        drain(fd);
        return finish();
    }

private:
    static util::Error corrupt(archive* a) {
        const char* msg = archive_error_string(a);
        return util::make_error(util::ErrorKind::protocol,
                                std::string("workspace archive: ") +
                                    (msg ? printable(msg) : "unreadable tar stream"));
    }

    // Lets the producer finish writing, within reason, so it does not see EPIPE.
    void drain(int fd) {
        std::size_t drained = 0;
        while (drained < k_max_trailing_bytes) {
            const ssize_t n = read_some(fd, m_buf.data(), m_buf.size());
            if (n <= 0) break;
            drained += static_cast<std::size_t>(n);
        }
    }

    ChangeSet finish() {
        ChangeSet changes = diff_manifests(m_before, m_after);
        std::erase_if(changes.deleted,
                      [&](const FileEntry& e) { return m_seen_skipped.contains(e.path); });
        if (m_hidden_reasons > 0)
            m_skipped.push_back("... and " + std::to_string(m_hidden_reasons) +
                                " more entries skipped");
        changes.skipped = std::move(m_skipped);
        changes.sanitized = std::move(m_sanitized);
        return changes;
    }

    enum class Name { workspace_path, raw };

    // Records why `name` was not taken; a workspace path is remembered so that it is neither
    // reported deleted nor used as a parent later.
    void skip(std::string_view name, const std::string& reason, Name kind = Name::workspace_path) {
        if (m_skipped.size() < k_max_reasons)
            m_skipped.push_back(printable(name) + ": " + reason);
        else
            ++m_hidden_reasons;
        if (kind == Name::workspace_path) m_seen_skipped.emplace(name);
    }

    util::Result<void> read_entry(archive* a, archive_entry* e) {
        if (++m_entries > k_max_entries)
            return util::make_error(util::ErrorKind::refused,
                                    "workspace archive: more than 1000000 entries; refusing "
                                    "to read further");
        const char* raw = archive_entry_pathname(e);
        if (raw == nullptr) raw = archive_entry_pathname_utf8(e);
        if (raw == nullptr) {
            skip("(unnamed entry)", "name cannot be decoded", Name::raw);
            return {};
        }
        auto rel = workspace_path_from_archive(raw, m_prefix);
        if (!rel) {
            skip(raw, "unsafe name (" + rel.error().message + "); not written", Name::raw);
            return {};
        }
        const std::string& path = *rel;
        if (path.empty()) return {}; // the workspace directory itself
        m_name_bytes += path.size();
        if (m_name_bytes > k_max_name_bytes)
            return util::make_error(util::ErrorKind::refused,
                                    "workspace archive: entry names exceed 256 MiB; refusing to "
                                    "read further");
        if (m_after.contains(path) || m_seen_skipped.contains(path)) {
            skip(path, "duplicate entry; the first one is kept");
            return {};
        }
        if (archive_entry_filetype(e) != AE_IFDIR && m_clean_dirs.contains(path)) {
            skip(path, "is a directory earlier in the archive; not written");
            return {};
        }
        if (auto refusal = check_parents(path); !refusal.empty()) {
            skip(path, refusal);
            return {};
        }
        if (const char* hardlink = archive_entry_hardlink(e)) {
            skip(path, "hard link to \"" + printable(hardlink) + "\" is not supported");
            return {};
        }

        FileEntry entry;
        entry.path = path;
        const auto perm = static_cast<std::uint32_t>(archive_entry_perm(e));
        entry.mode = perm & 0777u;
        switch (archive_entry_filetype(e)) {
        case AE_IFREG:
            entry.type = FileEntry::Type::file;
            return read_file(a, e, std::move(entry), perm);
        case AE_IFDIR:
            entry.type = FileEntry::Type::dir;
            return read_dir(std::move(entry));
        case AE_IFLNK:
            entry.type = FileEntry::Type::symlink;
            return read_symlink(e, std::move(entry));
        default:
            skip(path, std::string(kind_name(archive_entry_filetype(e))) + " is not supported");
            return {};
        }
    }

    // Why `path` may not be taken because of a parent met earlier in the stream, or "". Walks up
    // only to the first directory already known clean, so a deep tree costs no more per entry.
    std::string check_parents(const std::string& path) {
        std::size_t clean_from = std::string::npos;
        for (auto slash = path.rfind('/'); slash != std::string::npos && slash > 0;
             slash = path.rfind('/', slash - 1)) {
            const std::string parent = path.substr(0, slash);
            if (m_clean_dirs.contains(parent)) break;
            const auto it = m_after.find(parent);
            if (it != m_after.end() && it->second.type != FileEntry::Type::dir)
                return "parent \"" + printable(parent) + "\" is a " + to_string(it->second.type) +
                       " in the archive; not written";
            if (m_seen_skipped.contains(parent))
                return "parent \"" + printable(parent) + "\" was skipped; not written";
            clean_from = slash;
        }
        for (auto slash = clean_from; slash != std::string::npos;
             slash = path.find('/', slash + 1)) {
            m_name_bytes += slash;
            m_clean_dirs.emplace(path.substr(0, slash));
        }
        return {};
    }

    const FileEntry* before(const std::string& path, FileEntry::Type type) const {
        const auto it = m_before.find(path);
        return it != m_before.end() && it->second.type == type ? &it->second : nullptr;
    }

    util::Result<void> read_symlink(archive_entry* e, FileEntry entry) {
        const char* target = archive_entry_symlink(e);
        if (target == nullptr) target = archive_entry_symlink_utf8(e);
        if (target == nullptr) {
            skip(entry.path, "symlink target cannot be decoded");
            return {};
        }
        entry.link_target = target;
        entry.size = entry.link_target.size();
        entry.mode = 0777;
        const FileEntry* was = before(entry.path, FileEntry::Type::symlink);
        if (was == nullptr || was->link_target != entry.link_target) {
            if (entry.link_target.size() > k_max_link_bytes) {
                skip(entry.path, "symlink target longer than 4096 bytes");
                return {};
            }
            if (link_escapes_workspace(entry.path, entry.link_target)) {
                skip(entry.path, "symlink to \"" + printable(entry.link_target) +
                                     "\" points outside the workspace; not recorded");
                return {};
            }
        }
        m_after.emplace(entry.path, std::move(entry));
        return {};
    }

    util::Result<void> read_dir(FileEntry entry) {
        if (before(entry.path, FileEntry::Type::dir) == nullptr) {
            std::string leaf, refusal;
            auto parent = parent_dir(entry.path, leaf, refusal);
            if (!parent) return parent.error();
            if (*parent < 0) {
                skip(entry.path, refusal);
                return {};
            }
            if (::mkdirat(*parent, leaf.c_str(), (entry.mode | 0700u) & 0777u) != 0) {
                struct stat st {};
                if (errno != EEXIST) return out_error(entry.path, "cannot create", errno);
                if (::fstatat(*parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                    !S_ISDIR(st.st_mode)) {
                    skip(entry.path, "exists in the output directory as a non-directory");
                    return {};
                }
            }
        }
        m_after.emplace(entry.path, std::move(entry));
        return {};
    }

    util::Result<void> read_file(archive* a, archive_entry* e, FileEntry entry,
                                 std::uint32_t perm) {
        const std::uint64_t room = m_max_total - std::min(m_written, m_max_total);
        const std::uint64_t budget = std::min(m_max_file, room);
        bool writing = !archive_entry_size_is_set(e) ||
                       static_cast<std::uint64_t>(archive_entry_size(e)) <= budget;
        if (writing) {
            auto created = create_temp();
            if (!created) return created.error();
        }
        util::Sha256 hash;
        std::uint64_t total = 0;
        for (;;) {
            const la_ssize_t n = archive_read_data(a, m_buf.data(), m_buf.size());
            if (n == 0) break;
            if (n < 0) return corrupt(a);
            hash.update(m_buf.data(), static_cast<std::size_t>(n));
            total += static_cast<std::uint64_t>(n);
            if (writing && total > budget) {
                writing = false;
                discard_temp();
            }
            if (writing &&
                !util::write_all(m_temp.get(),
                                 std::string_view(m_buf.data(), static_cast<std::size_t>(n))))
                return out_error(entry.path, "cannot write", errno);
        }
        entry.size = total;
        entry.sha256 = hash.hex_digest();

        const FileEntry* was = before(entry.path, FileEntry::Type::file);
        if (was != nullptr && was->sha256 == entry.sha256 && was->mode == entry.mode &&
            was->size == entry.size) {
            discard_temp();
            m_after.emplace(entry.path, std::move(entry));
            return {};
        }
        if (total > m_max_file) {
            discard_temp();
            skip(entry.path, std::to_string(total) + " bytes, over the per-file cap of " +
                                 std::to_string(m_max_file) + " bytes; not written");
            return {};
        }
        if (!writing) {
            skip(entry.path, std::to_string(total) +
                                 " bytes would take the total over the cap of " +
                                 std::to_string(m_max_total) + " bytes; not written");
            return {};
        }
        return commit(std::move(entry), perm);
    }

    // Moves the finished temporary file to out_dir/<path>; rename never follows a link at the
    // destination, and the parents were opened with O_NOFOLLOW.
    util::Result<void> commit(FileEntry entry, std::uint32_t perm) {
        std::string leaf, refusal;
        auto parent = parent_dir(entry.path, leaf, refusal);
        if (!parent) return parent.error();
        if (*parent < 0) {
            discard_temp();
            skip(entry.path, refusal);
            return {};
        }
        if (::fchmod(m_temp.get(), entry.mode) != 0)
            return out_error(entry.path, "cannot set the mode of", errno);
        if (::renameat(m_out.get(), m_temp_name.c_str(), *parent, leaf.c_str()) != 0) {
            const int err = errno;
            discard_temp();
            if (err == EISDIR || err == ENOTEMPTY || err == EEXIST) {
                skip(entry.path, "is a directory in the output directory; not written");
                return {};
            }
            return out_error(entry.path, "cannot write", err);
        }
        m_temp = Fd();
        if ((perm & 07000u) != 0) {
            char note[96];
            std::snprintf(note, sizeof note,
                          "setuid/setgid/sticky bits dropped (%04o written as %04o)",
                          static_cast<unsigned>(perm), static_cast<unsigned>(entry.mode));
            m_sanitized.push_back(printable(entry.path) + ": " + note);
        }
        m_written += entry.size;
        m_after.emplace(entry.path, std::move(entry));
        return {};
    }

    util::Error out_error(const std::string& path, const char* what, int err) const {
        return io_error("workspace: " + printable((m_out_dir / path).string()) + ": " + what +
                        " (" + errno_text(err) + ")");
    }

    util::Result<void> create_temp() {
        discard_temp();
        for (int attempt = 0; attempt < 100; ++attempt) {
            m_temp_name = ".airlock-partial-" + std::to_string(::getpid()) + "-" +
                          std::to_string(m_temp_counter++);
            m_temp = Fd(::openat(m_out.get(), m_temp_name.c_str(),
                                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
            if (m_temp.valid()) return {};
            if (errno != EEXIST) break;
        }
        return out_error(m_temp_name, "cannot create", errno);
    }

    void discard_temp() {
        if (!m_temp.valid()) return;
        m_temp = Fd();
        ::unlinkat(m_out.get(), m_temp_name.c_str(), 0);
    }

    // The directory that will hold `path` inside out_dir, created as needed without following
    // any symlink. Returns -1 with `refusal` set when a component is a link or not a directory.
    util::Result<int> parent_dir(const std::string& path, std::string& leaf, std::string& refusal) {
        const auto slash = path.rfind('/');
        leaf = slash == std::string::npos ? path : path.substr(slash + 1);
        const std::string parent = slash == std::string::npos ? "" : path.substr(0, slash);
        if (parent.empty()) return m_out.get();
        if (m_parent.valid() && parent == m_parent_rel) return m_parent.get();
        m_parent = Fd();
        Fd cur(::fcntl(m_out.get(), F_DUPFD_CLOEXEC, 0));
        std::size_t pos = 0;
        while (cur.valid() && pos < parent.size()) {
            std::size_t next = parent.find('/', pos);
            if (next == std::string::npos) next = parent.size();
            const std::string part = parent.substr(pos, next - pos);
            const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
            Fd child(::openat(cur.get(), part.c_str(), flags));
            if (!child.valid() && errno == ENOENT) {
                if (::mkdirat(cur.get(), part.c_str(), 0755) != 0 && errno != EEXIST)
                    return out_error(parent.substr(0, next), "cannot create", errno);
                child = Fd(::openat(cur.get(), part.c_str(), flags));
            }
            if (!child.valid()) {
                if (errno == ELOOP || errno == ENOTDIR) {
                    refusal = "\"" + printable(parent.substr(0, next)) +
                              "\" is a symlink or not a directory in the output directory; not "
                              "written";
                    return -1;
                }
                return out_error(parent.substr(0, next), "cannot open", errno);
            }
            cur = std::move(child);
            pos = next + 1;
        }
        if (!cur.valid()) return out_error(parent, "cannot open", errno);
        m_parent = std::move(cur);
        m_parent_rel = parent;
        return m_parent.get();
    }

    const Manifest& m_before;
    fs::path m_out_dir;
    std::string m_prefix;
    std::uint64_t m_max_file;
    std::uint64_t m_max_total;
    std::vector<char> m_buf;

    Fd m_out;
    Fd m_parent;
    std::string m_parent_rel;
    Fd m_temp;
    std::string m_temp_name;
    std::uint64_t m_temp_counter = 0;

    Manifest m_after;
    std::set<std::string, std::less<>> m_seen_skipped; // paths met in the stream but not taken
    std::set<std::string, std::less<>> m_clean_dirs;   // parents with no non-directory above
    std::vector<std::string> m_skipped;
    std::vector<std::string> m_sanitized;
    std::size_t m_hidden_reasons = 0;
    std::uint64_t m_written = 0;
    std::uint64_t m_entries = 0;
    std::uint64_t m_name_bytes = 0;
};

} // namespace

util::Result<Manifest> write_workspace_tar(const WorkspaceScan& scan, int fd, TarOwner owner) {
    SigpipeBlock sigpipe;
    std::unique_ptr<archive, WriteFree> a(archive_write_new());
    WriteTarget target{fd, 0};
    if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a.get(), static_cast<int>(k_chunk)) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK ||
        archive_write_open(a.get(), &target, nullptr, write_callback, nullptr) != ARCHIVE_OK)
        return io_error(std::string("workspace upload: ") + (archive_error_string(a.get())
                                                                 ? archive_error_string(a.get())
                                                                 : "cannot start the archive"));
    auto manifest = TarWriter(scan, a.get(), target, owner).run();
    if (!manifest) {
        // Leave the stream truncated so the reader cannot take it for a whole archive. Closing
        // (rather than archive_write_fail) frees libarchive 3.6's block buffer.
        target.abandoned = true;
        archive_write_close(a.get());
    }
    return manifest;
}

util::Result<ChangeSet> read_workspace_tar(int fd, const Manifest& before, const fs::path& out_dir,
                                           std::string_view strip_prefix,
                                           std::uint64_t max_file_bytes,
                                           std::uint64_t max_total_bytes) {
    return TarReader(before, out_dir, strip_prefix, max_file_bytes, max_total_bytes).run(fd);
}

} // namespace airlock::sandbox
