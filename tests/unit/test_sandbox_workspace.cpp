#include "sandbox/workspace.hpp"
#include "temp_dir.hpp"
#include "util/sha256.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>

using namespace airlock::sandbox;
using airlock::util::ErrorKind;
using Type = FileEntry::Type;
namespace fs = std::filesystem;
using airlock::test::TempDir;

namespace {

constexpr std::uint64_t k_mib = 1024 * 1024;

void put(const fs::path& p, const std::string& content, fs::perms mode = fs::perms(0644)) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    fs::permissions(p, mode);
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Relative paths of everything under `root`, links not followed.
std::set<std::string> tree(const fs::path& root) {
    std::set<std::string> out;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
         ++it)
        out.insert(it->path().lexically_relative(root).string());
    return out;
}

std::vector<std::string> paths(const std::vector<FileEntry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries)
        out.push_back(e.path);
    return out;
}

bool mentions(const std::vector<std::string>& lines, const std::string& start,
              const std::string& part) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
        return l.starts_with(start) && l.find(part) != std::string::npos;
    });
}

la_ssize_t append_cb(archive*, void* out, const void* buf, std::size_t n) {
    static_cast<std::string*>(out)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
}

// An in-memory tar, to play the container's side.
class TarBuilder {
public:
    TarBuilder() : m_a(archive_write_new()) {
        archive_write_set_format_pax_restricted(m_a);
        archive_write_set_bytes_in_last_block(m_a, 1);
        archive_write_open(m_a, &m_out, nullptr, append_cb, nullptr);
    }
    ~TarBuilder() { archive_write_free(m_a); }
    TarBuilder(const TarBuilder&) = delete;
    TarBuilder& operator=(const TarBuilder&) = delete;

    TarBuilder& file(const std::string& name, const std::string& content, unsigned mode = 0644) {
        return add(name, AE_IFREG, mode, content);
    }
    TarBuilder& dir(const std::string& name, unsigned mode = 0755) {
        return add(name, AE_IFDIR, mode, {});
    }
    TarBuilder& symlink(const std::string& name, const std::string& target) {
        return add(name, AE_IFLNK, 0777, {},
                   [&](archive_entry* e) { archive_entry_set_symlink(e, target.c_str()); });
    }
    TarBuilder& hardlink(const std::string& name, const std::string& target) {
        return add(name, AE_IFREG, 0644, {},
                   [&](archive_entry* e) { archive_entry_set_hardlink(e, target.c_str()); });
    }
    TarBuilder& special(const std::string& name, unsigned type) {
        return add(name, type, 0644, {});
    }
    // The archive, or "" when building it failed (which then reads as a corrupt stream).
    std::string finish() {
        if (archive_write_close(m_a) != ARCHIVE_OK) m_failed = true;
        return m_failed ? std::string() : m_out;
    }

private:
    TarBuilder& add(const std::string& name, unsigned type, unsigned mode,
                    const std::string& content,
                    const std::function<void(archive_entry*)>& extra = {}) {
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, name.c_str());
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, mode);
        archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
        if (extra) extra(e);
        if (archive_write_header(m_a, e) < ARCHIVE_WARN) m_failed = true;
        if (!content.empty() && archive_write_data(m_a, content.data(), content.size()) !=
                                    static_cast<la_ssize_t>(content.size()))
            m_failed = true;
        archive_entry_free(e);
        return *this;
    }

    archive* m_a;
    std::string m_out;
    bool m_failed = false;
};

// What the fake container does to the workspace between copy-in and copy-out.
struct ContainerEdits {
    std::set<std::string> drop;
    std::map<std::string, std::string> rewrite;
    std::map<std::string, unsigned> chmod;
    std::function<void(TarBuilder&)> append;
};

// Reads the tar airlock uploaded and answers as GET /archive would: names under "workspace/",
// the edits applied. Runs on its own thread, so no Catch2 assertion here.
std::string container_roundtrip(int fd, const ContainerEdits& edits) {
    TarBuilder out;
    out.dir("workspace/");
    archive* in = archive_read_new();
    archive_read_support_format_tar(in);
    archive_entry* e = nullptr;
    int r = archive_read_open_fd(in, fd, 65536);
    while (r == ARCHIVE_OK && (r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
        const std::string name = archive_entry_pathname(e);
        std::string content;
        char buf[65536];
        for (la_ssize_t n; (n = archive_read_data(in, buf, sizeof buf)) > 0;)
            content.append(buf, static_cast<std::size_t>(n));
        if (edits.drop.contains(name)) continue;
        if (auto it = edits.rewrite.find(name); it != edits.rewrite.end()) content = it->second;
        unsigned mode = archive_entry_perm(e);
        if (auto it = edits.chmod.find(name); it != edits.chmod.end()) mode = it->second;
        switch (archive_entry_filetype(e)) {
        case AE_IFDIR:
            out.dir("workspace/" + name + "/", mode);
            break;
        case AE_IFLNK:
            out.symlink("workspace/" + name, archive_entry_symlink(e));
            break;
        default:
            out.file("workspace/" + name, content, mode);
        }
    }
    archive_read_free(in);
    if (r != ARCHIVE_EOF) return {};
    if (edits.append) edits.append(out);
    return out.finish();
}

// Feeds `bytes` to read_workspace_tar through a pipe, as the download does.
airlock::util::Result<ChangeSet> read_bytes(const std::string& bytes, const Manifest& before,
                                            const fs::path& out,
                                            std::uint64_t max_file = 64 * k_mib,
                                            std::uint64_t max_total = 256 * k_mib) {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    std::thread feeder([&, wr = p[1]] {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        std::size_t off = 0;
        while (off < bytes.size()) {
            const ssize_t n = ::write(wr, bytes.data() + off, bytes.size() - off);
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
        }
        ::close(wr);
    });
    auto changes = read_workspace_tar(p[0], before, out, "workspace/", max_file, max_total);
    ::close(p[0]);
    feeder.join();
    return changes;
}

// Uploads `scan` through a pipe to the fake container and returns what it sends back.
std::string upload(const WorkspaceScan& scan, Manifest& manifest,
                   const ContainerEdits& edits = {}) {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    std::string answer;
    std::thread container([&, rd = p[0]] {
        answer = container_roundtrip(rd, edits);
        ::close(rd);
    });
    auto written = write_workspace_tar(scan, p[1], TarOwner{1000, 1000});
    ::close(p[1]);
    container.join();
    REQUIRE(written.ok());
    manifest = std::move(*written);
    return answer;
}

const FileEntry* find(const WorkspaceScan& scan, const std::string& path) {
    for (const auto& e : scan.entries)
        if (e.path == path) return &e;
    return nullptr;
}

// Runs scan_workspace as an unprivileged user when we are root (root reads anything).
std::string scan_error_unprivileged(const fs::path& root) {
    if (::geteuid() != 0) {
        auto r = scan_workspace(root, {});
        return r.ok() ? "ok" : r.error().message;
    }
    int p[2];
    REQUIRE(::pipe(p) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(p[0]);
        std::string msg = "cannot drop privileges";
        if (::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0) {
            auto r = scan_workspace(root, {});
            msg = r.ok() ? "ok" : r.error().message;
        }
        (void)!::write(p[1], msg.data(), msg.size());
        ::_exit(0);
    }
    ::close(p[1]);
    std::string msg;
    char buf[512];
    for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;)
        msg.append(buf, static_cast<std::size_t>(n));
    ::close(p[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return msg;
}

} // namespace

TEST_CASE("scan_workspace records files, dirs and symlinks without following them", "[workspace]") {
    TempDir ws, outside;
    put(outside.path() / "secret", "top secret content");
    put(ws.path() / "a.txt", "hello");
    put(ws.path() / "src/main.c", "int main() { return 0; }\n", fs::perms(0755));
    fs::create_directories(ws.path() / "empty");
    fs::create_symlink(outside.path() / "secret", ws.path() / "leak");
    fs::create_directory_symlink(outside.path(), ws.path() / "outdir");
    put(ws.path() / ".airlock/runs/1/report.json", "{}");
    put(ws.path() / "build/out.o", "obj");
    put(ws.path() / "builder.txt", "kept");

    auto scan = scan_workspace(ws.path() / ".", {".airlock", "./build/"});
    REQUIRE(scan.ok());
    CHECK(scan->root == ws.path());
    std::vector<std::string> names;
    for (const auto& e : scan->entries)
        names.push_back(e.path);
    CHECK(names == std::vector<std::string>{"a.txt", "builder.txt", "empty", "leak", "outdir",
                                            "src", "src/main.c"});
    CHECK(scan->total_bytes == 5 + 4 + 25);

    const FileEntry* main_c = find(*scan, "src/main.c");
    REQUIRE(main_c != nullptr);
    CHECK(main_c->type == Type::file);
    CHECK(main_c->size == 25);
    CHECK(main_c->mode == 0755);
    CHECK(main_c->sha256.empty());
    CHECK(find(*scan, "empty")->type == Type::dir);

    const FileEntry* leak = find(*scan, "leak");
    REQUIRE(leak != nullptr);
    CHECK(leak->type == Type::symlink);
    CHECK(leak->link_target == (outside.path() / "secret").string());
    CHECK(leak->size == leak->link_target.size());
    CHECK(find(*scan, "outdir")->type == Type::symlink);

    // The archive carries the links as links: the secret's content never enters it.
    Manifest manifest;
    const std::string answer = upload(*scan, manifest);
    CHECK(answer.find("top secret content") == std::string::npos);
    CHECK(answer.find("int main()") != std::string::npos);
    CHECK(manifest.at("leak").type == Type::symlink);
    CHECK(manifest.at("leak").sha256.empty());
    CHECK(manifest.at("a.txt").sha256 == airlock::util::sha256_hex("hello"));
    CHECK_FALSE(manifest.contains("outdir/secret"));
}

TEST_CASE("scan_workspace: a missing root or a file as root names the fix", "[workspace]") {
    TempDir ws;
    auto missing = scan_workspace(ws.path() / "nope", {});
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().kind == ErrorKind::invalid_input);
    CHECK(missing.error().message == "workspace: " + (ws.path() / "nope").string() +
                                         ": does not exist (pass --workspace DIR)");

    put(ws.path() / "file", "x");
    auto not_dir = scan_workspace(ws.path() / "file", {});
    REQUIRE_FALSE(not_dir.ok());
    CHECK(not_dir.error().message == "workspace: " + (ws.path() / "file").string() +
                                         ": is not a directory (pass --workspace DIR)");

    auto bad_exclude = scan_workspace(ws.path(), {"../x"});
    REQUIRE_FALSE(bad_exclude.ok());
    CHECK(bad_exclude.error().message ==
          "workspace: exclude \"../x\" is not a relative path inside the workspace (use e.g. "
          "\".airlock\")");
}

TEST_CASE("scan_workspace: an unreadable file or unlistable directory names the path and fix",
          "[workspace]") {
    TempDir ws;
    fs::permissions(ws.path(), fs::perms(0755));
    put(ws.path() / "ok.txt", "fine");
    SECTION("file") {
        put(ws.path() / "secret.txt", "s", fs::perms::none);
        CHECK(scan_error_unprivileged(ws.path()) ==
              "workspace: " + (ws.path() / "secret.txt").string() +
                  ": cannot read (Permission denied); fix its permissions or remove it");
    }
    SECTION("directory") {
        fs::create_directories(ws.path() / "locked/inner");
        fs::permissions(ws.path() / "locked", fs::perms::none);
        CHECK(scan_error_unprivileged(ws.path()) ==
              "workspace: " + (ws.path() / "locked").string() +
                  ": cannot list (Permission denied); fix its permissions or remove it");
        fs::permissions(ws.path() / "locked", fs::perms::owner_all);
    }
}

TEST_CASE("unreadable_message gives the path, the reason and the fix", "[workspace]") {
    CHECK(detail::unreadable_message("/w/secret.txt", "read", EACCES) ==
          "workspace: /w/secret.txt: cannot read (Permission denied); fix its permissions or "
          "remove it");
    CHECK(detail::unreadable_message("/w/x\ny", "list", EIO) ==
          "workspace: /w/x\\ny: cannot list (Input/output error); fix its permissions or remove "
          "it");
}

TEST_CASE("scan_workspace: a fifo is listed as other and never archived", "[workspace]") {
    TempDir ws;
    put(ws.path() / "a.txt", "a");
    REQUIRE(::mkfifo((ws.path() / "pipe").c_str(), 0644) == 0);
    auto scan = scan_workspace(ws.path(), {});
    REQUIRE(scan.ok());
    REQUIRE(find(*scan, "pipe") != nullptr);
    CHECK(find(*scan, "pipe")->type == Type::other);

    Manifest manifest;
    const std::string answer = upload(*scan, manifest);
    CHECK_FALSE(manifest.contains("pipe"));
    CHECK(manifest.contains("a.txt"));
    CHECK(answer.find("workspace/pipe") == std::string::npos);
}

TEST_CASE("workspace tar roundtrip through a pipe with a prefix gives no changes", "[workspace]") {
    TempDir ws, out;
    put(ws.path() / "a.txt", "hello");
    put(ws.path() / "src/lib/util.h", "#pragma once\n");
    put(ws.path() / "run.sh", "#!/bin/sh\n", fs::perms(0755));
    put(ws.path() / "caf\xc3\xa9 \xe2\x9c\x93.txt", "utf-8 name");
    put(ws.path() / "latin1-\xe9\xff.txt", "not utf-8");
    put(ws.path() / "new\nline\\back", "odd name");
    put(ws.path() / (std::string(120, 'n') + "/long.txt"), "long name");
    put(ws.path() / "empty.txt", "");
    std::string big(3 * k_mib + 17, '\0');
    for (std::size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<char>(i * 7 + i / 4096);
    put(ws.path() / "big.bin", big);
    fs::create_directories(ws.path() / "empty_dir");
    fs::create_symlink("src/lib/util.h", ws.path() / "link");
    fs::create_symlink("/etc/passwd", ws.path() / "abs_link"); // was there before: no change

    auto scan = scan_workspace(ws.path(), {});
    REQUIRE(scan.ok());
    Manifest before;
    const std::string answer = upload(*scan, before);
    CHECK(before.size() == scan->entries.size());
    CHECK(before.at("big.bin").sha256 == airlock::util::sha256_hex(big));

    auto changes = read_bytes(answer, before, out.path());
    REQUIRE(changes.ok());
    CHECK(changes->empty());
    CHECK(changes->skipped.empty());
    CHECK(changes->sanitized.empty());
    CHECK(changes->bytes_added_or_modified == 0);
    CHECK(tree(out.path()).empty()); // nothing changed, nothing written
}

TEST_CASE("read_workspace_tar detects additions, modifications and deletions", "[workspace]") {
    TempDir ws, out;
    put(ws.path() / "a.txt", "hello");
    put(ws.path() / "src/main.c", "int main() {}\n");
    put(ws.path() / "src/old.c", "old");
    put(ws.path() / "docs/readme", "docs");
    auto scan = scan_workspace(ws.path(), {});
    REQUIRE(scan.ok());

    ContainerEdits edits;
    edits.rewrite["a.txt"] = "hello world";
    edits.chmod["src/main.c"] = 0755;
    edits.drop = {"src/old.c"};
    edits.append = [](TarBuilder& t) {
        t.file("workspace/src/new.c", "new file", 0600);
        t.dir("workspace/newdir/");
        t.file("workspace/deep/er/x.txt", "x");
        t.symlink("workspace/link", "src/new.c");
    };
    Manifest before;
    const std::string answer = upload(*scan, before, edits);
    auto changes = read_bytes(answer, before, out.path());
    REQUIRE(changes.ok());
    CHECK(paths(changes->added) ==
          std::vector<std::string>{"deep/er/x.txt", "link", "newdir", "src/new.c"});
    CHECK(paths(changes->modified) == std::vector<std::string>{"a.txt", "src/main.c"});
    CHECK(paths(changes->deleted) == std::vector<std::string>{"src/old.c"});
    CHECK(changes->bytes_added_or_modified == 11 + 14 + 8 + 1);
    CHECK(changes->skipped.empty());
    CHECK(changes->added[1].link_target == "src/new.c");

    CHECK(tree(out.path()) == std::set<std::string>{"a.txt", "deep", "deep/er", "deep/er/x.txt",
                                                    "newdir", "src", "src/main.c", "src/new.c"});
    CHECK(slurp(out.path() / "a.txt") == "hello world");
    CHECK(slurp(out.path() / "src/new.c") == "new file");
    CHECK(fs::status(out.path() / "src/main.c").permissions() == fs::perms(0755));
    CHECK(fs::status(out.path() / "src/new.c").permissions() == fs::perms(0600));
    CHECK(slurp(ws.path() / "a.txt") == "hello"); // the checkout is never touched
    CHECK(fs::exists(ws.path() / "src/old.c"));
}

TEST_CASE("read_workspace_tar: a hostile archive writes nothing outside out_dir", "[workspace]") {
    TempDir parent;
    const fs::path out = parent.path() / "out";
    const std::string passwd_hash = airlock::util::sha256_hex(slurp("/etc/passwd"));
    const std::string tar = TarBuilder()
                                .dir("workspace/")
                                .file("workspace/../evil", "x")
                                .file("/abs/evil", "x")
                                .file("workspace//etc/evil", "x")
                                .symlink("workspace/link", "/etc")
                                .file("workspace/link/passwd", "pwned")
                                .file("workspace/big.bin", std::string(10 * k_mib, 'b'))
                                .file("workspace/suid", "#!/bin/sh\n", 04755)
                                .hardlink("workspace/hard", "workspace/suid")
                                .special("workspace/fifo", AE_IFIFO)
                                .special("workspace/tty", AE_IFCHR)
                                .file("workspace/ok.txt", "fine")
                                .finish();
    auto changes = read_bytes(tar, {}, out, 1 * k_mib, 64 * k_mib);
    REQUIRE(changes.ok());

    CHECK(tree(out) == std::set<std::string>{"ok.txt", "suid"});
    CHECK(fs::status(out / "suid").permissions() == fs::perms(0755));
    CHECK(tree(parent.path()) == std::set<std::string>{"out", "out/ok.txt", "out/suid"});
    CHECK_FALSE(fs::exists("/abs/evil"));
    CHECK_FALSE(fs::exists("/etc/evil"));
    CHECK(airlock::util::sha256_hex(slurp("/etc/passwd")) == passwd_hash);

    CHECK(paths(changes->added) == std::vector<std::string>{"ok.txt", "suid"});
    CHECK(changes->added[1].mode == 0755);
    CHECK(changes->bytes_added_or_modified == 4 + 10);
    const auto& skipped = changes->skipped;
    CHECK(skipped.size() == 9);
    CHECK(mentions(skipped, "workspace/../evil: ", "\"..\""));
    CHECK(mentions(skipped, "/abs/evil: ", "outside \"workspace/\""));
    CHECK(mentions(skipped, "workspace//etc/evil: ", "absolute name"));
    CHECK(mentions(skipped, "link: ", "symlink to \"/etc\" points outside the workspace"));
    CHECK(mentions(skipped, "link/passwd: ", "parent \"link\" was skipped"));
    CHECK(mentions(skipped, "big.bin: ", "10485760 bytes, over the per-file cap of 1048576"));
    CHECK(mentions(skipped, "hard: ", "hard link to \"workspace/suid\" is not supported"));
    CHECK(mentions(skipped, "fifo: ", "fifo is not supported"));
    CHECK(mentions(skipped, "tty: ", "character device is not supported"));
    REQUIRE(changes->sanitized.size() == 1);
    CHECK(changes->sanitized[0] ==
          "suid: setuid/setgid/sticky bits dropped (4755 written as 0755)");
}

TEST_CASE("read_workspace_tar: a symlink or file met earlier in the stream is never a parent",
          "[workspace]") {
    TempDir out;
    const std::string tar = TarBuilder()
                                .symlink("workspace/up", "..")
                                .file("workspace/up/x", "x")
                                .symlink("workspace/in", "sub")
                                .file("workspace/in/y", "y")
                                .file("workspace/f", "f")
                                .file("workspace/f/z", "z")
                                .file("workspace/f", "second")
                                .dir("workspace/d/e/")
                                .file("workspace/d", "not a directory")
                                .finish();
    auto changes = read_bytes(tar, {}, out.path());
    REQUIRE(changes.ok());
    CHECK(tree(out.path()) == std::set<std::string>{"d", "d/e", "f"});
    CHECK(slurp(out.path() / "f") == "f");
    CHECK(paths(changes->added) == std::vector<std::string>{"d/e", "f", "in"});
    CHECK(mentions(changes->skipped, "d: ", "is a directory earlier in the archive"));
    CHECK(mentions(changes->skipped, "up: ", "points outside the workspace"));
    CHECK(mentions(changes->skipped, "up/x: ", "parent \"up\" was skipped"));
    CHECK(mentions(changes->skipped, "in/y: ", "parent \"in\" is a symlink in the archive"));
    CHECK(mentions(changes->skipped, "f/z: ", "parent \"f\" is a file in the archive"));
    CHECK(mentions(changes->skipped, "f: ", "duplicate entry"));
}

TEST_CASE("read_workspace_tar never follows a symlink planted in out_dir", "[workspace]") {
    TempDir out, outside;
    put(outside.path() / "target", "original");
    fs::create_directory_symlink(outside.path(), out.path() / "sub");
    fs::create_symlink(outside.path() / "target", out.path() / "a.txt");
    const std::string tar = TarBuilder()
                                .dir("workspace/")
                                .file("workspace/sub/x.txt", "x")
                                .file("workspace/a.txt", "replaced")
                                .finish();
    auto changes = read_bytes(tar, {}, out.path());
    REQUIRE(changes.ok());
    CHECK(tree(outside.path()) == std::set<std::string>{"target"});
    CHECK(slurp(outside.path() / "target") == "original");
    CHECK(fs::is_regular_file(fs::symlink_status(out.path() / "a.txt")));
    CHECK(slurp(out.path() / "a.txt") == "replaced");
    CHECK(paths(changes->added) == std::vector<std::string>{"a.txt"});
    CHECK(mentions(changes->skipped, "sub/x.txt: ",
                   "\"sub\" is a symlink or not a directory in the output directory"));
}

TEST_CASE("read_workspace_tar: over the total cap a file is skipped and the rest goes on",
          "[workspace]") {
    TempDir out;
    const std::string chunk(400 * 1024, 'c');
    Manifest before;
    before["same.bin"] = FileEntry{"same.bin",
                                   Type::file,
                                   2 * k_mib,
                                   0644,
                                   airlock::util::sha256_hex(std::string(2 * k_mib, 's')),
                                   {}};
    before["gone"] = FileEntry{"gone", Type::file, 1, 0644, airlock::util::sha256_hex("g"), {}};
    before["big"] = FileEntry{"big", Type::file, 1, 0644, airlock::util::sha256_hex("x"), {}};
    const std::string tar = TarBuilder()
                                .file("workspace/one", chunk)
                                .file("workspace/same.bin", std::string(2 * k_mib, 's'))
                                .file("workspace/two", chunk)
                                .file("workspace/three", chunk)
                                .file("workspace/big", std::string(2 * k_mib, 'B'))
                                .file("workspace/small", "s")
                                .finish();
    auto changes = read_bytes(tar, before, out.path(), 1 * k_mib, 1 * k_mib);
    REQUIRE(changes.ok());
    CHECK(paths(changes->added) == std::vector<std::string>{"one", "small", "two"});
    CHECK(paths(changes->deleted) == std::vector<std::string>{"gone"}); // "big" was seen
    CHECK(changes->modified.empty());
    CHECK(changes->skipped ==
          std::vector<std::string>{"three: 409600 bytes would take the total over the cap of "
                                   "1048576 bytes; not written",
                                   "big: 2097152 bytes, over the per-file cap of 1048576 bytes; "
                                   "not written"});
    CHECK(tree(out.path()) == std::set<std::string>{"one", "small", "two"});
}

TEST_CASE("read_workspace_tar: a corrupt or truncated stream is a protocol error", "[workspace]") {
    TempDir out;
    SECTION("garbage") {
        auto r = read_bytes(std::string(4096, 'z'), {}, out.path());
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::protocol);
        CHECK(r.error().message.starts_with("workspace archive: "));
    }
    SECTION("truncated") {
        std::string tar = TarBuilder().file("workspace/a", std::string(100000, 'a')).finish();
        tar.resize(50000);
        auto r = read_bytes(tar, {}, out.path());
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::protocol);
        CHECK(r.error().message.starts_with("workspace archive: "));
    }
    SECTION("cut at an entry boundary, without the end-of-archive marker") {
        std::string tar = TarBuilder().file("workspace/a", "a").file("workspace/b", "b").finish();
        REQUIRE(tar.size() == 4 * 512 + 1024);
        tar.resize(tar.size() - 1024 - 1024); // "b" and the marker gone: "b" is not deleted
        Manifest before;
        before["b"] = FileEntry{"b", Type::file, 1, 0644, airlock::util::sha256_hex("b"), {}};
        auto r = read_bytes(tar, before, out.path());
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::protocol);
        CHECK(r.error().message == "workspace archive: the stream ended without an "
                                   "end-of-archive marker (truncated download)");
    }
    SECTION("empty archive: just the marker") {
        auto r = read_bytes(std::string(1024, '\0'), {}, out.path());
        REQUIRE(r.ok());
        CHECK(r->empty());
    }
    SECTION("empty") {
        auto r = read_bytes("", {}, out.path());
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::protocol);
    }
    // No partial file is left behind.
    for (const auto& p : tree(out.path()))
        CHECK(p.find(".airlock-partial") == std::string::npos);
}

TEST_CASE("write_workspace_tar: a file that vanished or changed size is an io error naming it",
          "[workspace]") {
    TempDir ws;
    put(ws.path() / "a.txt", "hello");
    put(ws.path() / "b.txt", "world");
    auto scan = scan_workspace(ws.path(), {});
    REQUIRE(scan.ok());
    const int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    REQUIRE(devnull >= 0);
    SECTION("vanished") {
        fs::remove(ws.path() / "b.txt");
        auto r = write_workspace_tar(*scan, devnull, TarOwner{});
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::io);
        CHECK(r.error().message == "workspace: " + (ws.path() / "b.txt").string() +
                                       ": vanished while being archived; run again when nothing "
                                       "else writes to the workspace");
    }
    SECTION("changed size") {
        put(ws.path() / "a.txt", "hello, longer");
        auto r = write_workspace_tar(*scan, devnull, TarOwner{});
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message == "workspace: " + (ws.path() / "a.txt").string() +
                                       ": changed size while being archived; run again when "
                                       "nothing else writes to the workspace");
    }
    SECTION("replaced by a symlink") {
        fs::remove(ws.path() / "a.txt");
        fs::create_symlink("/etc/passwd", ws.path() / "a.txt");
        auto r = write_workspace_tar(*scan, devnull, TarOwner{});
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("a.txt: became unreadable while being archived") !=
              std::string::npos);
    }
    ::close(devnull);
}

TEST_CASE("write_workspace_tar: after a failure the stream never reads as a whole archive",
          "[workspace]") {
    TempDir ws, out;
    put(ws.path() / "a.bin", std::string(200000, 'a'));
    put(ws.path() / "b.txt", "b");
    auto scan = scan_workspace(ws.path(), {});
    REQUIRE(scan.ok());
    fs::remove(ws.path() / "b.txt");
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    std::string sent;
    std::thread reader([&, rd = p[0]] {
        char buf[65536];
        for (ssize_t n; (n = ::read(rd, buf, sizeof buf)) > 0;)
            sent.append(buf, static_cast<std::size_t>(n));
        ::close(rd);
    });
    auto r = write_workspace_tar(*scan, p[1], TarOwner{});
    ::close(p[1]);
    reader.join();
    REQUIRE_FALSE(r.ok());
    CHECK(sent.size() % 65536 == 0); // whole blocks only, never the end-of-archive marker
    auto back = read_bytes(sent, {}, out.path());
    REQUIRE_FALSE(back.ok());
    CHECK(back.error().kind == ErrorKind::protocol);
}

TEST_CASE("write_workspace_tar: a reader that went away is an io error, not SIGPIPE",
          "[workspace]") {
    TempDir ws;
    put(ws.path() / "a.txt", std::string(300000, 'a'));
    auto scan = scan_workspace(ws.path(), {});
    REQUIRE(scan.ok());
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    ::close(p[0]);
    auto r = write_workspace_tar(*scan, p[1], TarOwner{});
    ::close(p[1]);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::io);
    CHECK(r.error().message == "workspace upload: cannot write the archive (Broken pipe)");
}
