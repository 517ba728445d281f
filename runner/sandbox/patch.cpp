#include "sandbox/patch.hpp"

#include "sandbox/workspace.hpp"
#include "util/fd.hpp"
#include "util/sha256.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace airlock::sandbox {

using nlohmann::json;
using util::ErrorKind;
using util::make_error;
using util::Result;
namespace fs = std::filesystem;

namespace {

// Copies workspace/<rel> to `dest` without following a link on the way (a link planted in the
// checkout never makes airlock read a host file). False when it is not a regular file there.
bool copy_original(int root, const std::string& rel, const fs::path& dest) {
    const auto slash = rel.rfind('/');
    util::Fd dir(slash == std::string::npos ? ::dup(root)
                                            : detail::open_dir_beneath(root, rel.substr(0, slash)));
    if (!dir.valid()) return false;
    const std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
    util::Fd in(::openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!in.valid()) return false;
    struct stat st {};
    if (::fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    std::error_code ec;
    fs::create_directories(dest.parent_path(), ec);
    util::Fd out(::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0755));
    if (!out.valid()) return false;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(in.get(), buf, sizeof buf);
        if (n == 0) return true;
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        if (::write(out.get(), buf, static_cast<std::size_t>(n)) != n) return false;
    }
}

// Runs argv in `cwd` with stdout to `out_fd`; the exit status, or -1.
int run(const std::vector<std::string>& argv, const fs::path& cwd, int out_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    // No user or system git configuration: no external diff program, no textconv, no pager.
    std::vector<std::string> env_store = {"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
                                          "HOME=/nonexistent", "LC_ALL=C",
                                          "PATH=/usr/bin:/bin:/usr/local/bin"};
    std::vector<char*> env;
    for (auto& e : env_store)
        env.push_back(e.data());
    env.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, argv[0].c_str(), &actions, nullptr, args.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return -1;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace

Result<json> write_changes_patch(const fs::path& workspace, const json& manifest,
                                 const fs::path& files_dir, const fs::path& patch) {
    {
        util::Fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
        if (run({"git", "--version"}, "/", null.get()) != 0)
            return json{{"written", false},
                        {"reason", "git is not installed on airlock's host (apt-get install git)"}};
    }
    char tmpl[] = "/tmp/airlock-patch-XXXXXX";
    if (!::mkdtemp(tmpl))
        return make_error(ErrorKind::io, std::string("mkdtemp: ") + std::strerror(errno));
    const fs::path tmp = tmpl;
    struct Cleanup {
        fs::path p;
        ~Cleanup() {
            std::error_code ec;
            fs::remove_all(p, ec);
        }
    } cleanup{tmp};
    fs::create_directories(tmp / "a");
    fs::create_directories(tmp / "b");
    util::Fd root(::open(workspace.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid())
        return make_error(ErrorKind::io, "workspace " + workspace.string() + ": cannot open");
    json left_out = json::array();
    std::size_t files = 0;
    auto regular = [](const json& e) { return e.value("type", "") == "file"; };
    for (const char* kind : {"modified", "deleted"})
        for (const auto& e : manifest.value(kind, json::array())) {
            const std::string path = e.value("path", "");
            if (!regular(e)) {
                left_out.push_back(path + ": a " + e.value("type", "") + ", not in the patch");
                continue;
            }
            if (!copy_original(root.get(), path, tmp / "a" / path))
                left_out.push_back(path + ": the original is not a regular file in the checkout");
        }
    for (const char* kind : {"added", "modified"})
        for (const auto& e : manifest.value(kind, json::array())) {
            const std::string path = e.value("path", "");
            if (!regular(e)) {
                if (std::string(kind) == "added")
                    left_out.push_back(path + ": a " + e.value("type", "") + ", not in the patch");
                continue;
            }
            std::error_code ec;
            fs::create_directories((tmp / "b" / path).parent_path(), ec);
            fs::copy_file(files_dir / path, tmp / "b" / path, ec);
            if (ec) {
                left_out.push_back(path + ": not collected (" + ec.message() + ")");
                continue;
            }
            const std::string mode = e.value("mode", "0644");
            ::chmod((tmp / "b" / path).c_str(),
                    static_cast<mode_t>(std::strtoul(mode.c_str(), nullptr, 8)) & 0755);
            ++files;
        }
    util::Fd out(::open(patch.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!out.valid()) return make_error(ErrorKind::io, patch.string() + ": cannot write");
    // Paths in the patch are a/<path> and b/<path>, as git apply -p1 (its default) expects.
    const int rc = run({"git", "diff", "--no-index", "--binary", "--no-color", "--no-prefix",
                        "--no-ext-diff", "--no-textconv", "--no-renames", "--full-index", "a", "b"},
                       tmp, out.get());
    out.reset();
    if (rc != 0 && rc != 1)
        return make_error(ErrorKind::io, "git diff failed (exit " + std::to_string(rc) +
                                             ") while writing " + patch.string());
    const auto digest = util::sha256_file(patch);
    if (!digest) return make_error(ErrorKind::io, patch.string() + ": cannot be read back");
    return json{{"written", true},          {"path", "changes.patch"}, {"bytes", digest->size},
                {"sha256", digest->sha256}, {"files", files},          {"left_out", left_out}};
}

Result<void> apply_changes_patch(const fs::path& workspace, const fs::path& patch) {
    util::Fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    const fs::path abs = fs::absolute(patch);
    const int check = run({"git", "apply", "--check", abs.string()}, workspace, null.get());
    if (check < 0)
        return make_error(ErrorKind::not_found,
                          "git is not installed (apt-get install git); nothing was changed");
    if (check != 0)
        return make_error(ErrorKind::conflict,
                          "`git apply --check` refuses " + abs.string() + " in " +
                              workspace.string() +
                              ": the checkout is not the tree the run started from; nothing was "
                              "changed");
    if (run({"git", "apply", abs.string()}, workspace, null.get()) != 0)
        return make_error(ErrorKind::io, "`git apply` failed in " + workspace.string());
    return {};
}

} // namespace airlock::sandbox
