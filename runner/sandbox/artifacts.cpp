#include "sandbox/artifacts.hpp"

#include "policy/patterns.hpp"
#include "sandbox/output.hpp"
#include "sandbox/workspace.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <thread>
#include <unistd.h>

namespace airlock::sandbox {

using nlohmann::json;
using util::ErrorKind;
using util::make_error;
using util::Result;
namespace fs = std::filesystem;

namespace {

bool has_glob(std::string_view s) {
    return s.find_first_of("*?[") != std::string_view::npos;
}

// Fetches /workspace/<root> and extracts it safely into `staging`.
Result<ChangeSet> fetch(docker::Client& client, const std::string& id, const std::string& root,
                        const fs::path& staging, ArtifactLimits limits) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return make_error(ErrorKind::io, std::string("pipe: ") + std::strerror(errno));
    util::Fd rd(fds[0]), wr(fds[1]);
    // Docker names entries after the last component of the path it was asked for: for the
    // workspace itself they are stripped of "workspace/"; otherwise they stay relative to the
    // root's parent directory ("dist/a.json" for "dist").
    const std::string path = root.empty() ? "/workspace" : "/workspace/" + root;
    const std::string base = root.empty() ? "workspace/" : "";
    std::optional<Result<ChangeSet>> consumed;
    std::thread consumer([&] {
        consumed.emplace(read_workspace_tar(rd.get(), Manifest{}, staging, base,
                                            limits.max_file_bytes, limits.max_total_bytes));
        rd.reset();
    });
    docker::BodySink sink = [&](std::string_view d) { return write_all(wr.get(), d); };
    auto got = client.archive_get(id, path, sink);
    wr.reset();
    consumer.join();
    if (!got) return got.error();
    if (consumed && !consumed->ok()) return consumed->error();
    return std::move(consumed->value());
}

} // namespace

std::optional<std::string> artifact_pattern_problem(const std::string& pattern) {
    if (pattern.empty()) return "is empty";
    if (pattern[0] == '/')
        return "must be relative to /workspace (e.g. \"dist/report.xml\" or \"out/**/*.json\")";
    for (std::size_t start = 0; start <= pattern.size();) {
        const auto slash = pattern.find('/', start);
        const std::string part = pattern.substr(start, slash - start);
        if (part == "..") return "may not contain \"..\"";
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    if (auto p = policy::path_glob_problem(pattern)) return p;
    return std::nullopt;
}

std::string artifact_fetch_root(const std::string& pattern) {
    std::string root;
    std::size_t start = 0;
    while (start < pattern.size()) {
        const auto slash = pattern.find('/', start);
        const std::string part = pattern.substr(start, slash - start);
        if (has_glob(part)) return root;
        if (slash == std::string::npos) return root.empty() ? part : root + "/" + part;
        if (!part.empty() && part != ".") root += (root.empty() ? "" : "/") + part;
        start = slash + 1;
    }
    return root;
}

Result<json> collect_artifacts(docker::Client& client, const std::string& container_id,
                               const std::vector<std::string>& patterns, const fs::path& out_dir,
                               ArtifactLimits limits) {
    json files = json::array(), skipped = json::array(), missing = json::array();
    std::set<std::string> taken;
    std::uint64_t total = 0;
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    for (std::size_t i = 0; i < patterns.size(); ++i) {
        const std::string& pattern = patterns[i];
        if (auto problem = artifact_pattern_problem(pattern))
            return make_error(ErrorKind::invalid_input,
                              "--artifact \"" + pattern + "\": " + *problem);
        const std::string root = artifact_fetch_root(pattern);
        const fs::path staging =
            out_dir.parent_path() / (".artifacts-staging-" + std::to_string(i));
        fs::remove_all(staging, ec);
        ArtifactLimits left{limits.max_file_bytes,
                            limits.max_total_bytes > total ? limits.max_total_bytes - total : 0};
        auto got = fetch(client, container_id, root, staging, left);
        if (!got && got.error().kind == ErrorKind::not_found) {
            fs::remove_all(staging, ec);
            missing.push_back(pattern);
            continue;
        }
        if (!got) {
            fs::remove_all(staging, ec);
            return got.error();
        }
        // Entry paths are relative to the fetched root's parent directory.
        const std::string parent = fs::path(root).parent_path().string();
        std::size_t matched = 0;
        for (const auto& e : got->added) {
            if (e.type != FileEntry::Type::file) continue;
            const std::string path = parent.empty() ? e.path : parent + "/" + e.path;
            const bool match = has_glob(pattern)
                                   ? policy::glob_match(pattern, path)
                                   : (path == pattern || path.rfind(pattern + "/", 0) == 0);
            if (!match) continue;
            ++matched;
            if (!taken.insert(path).second) continue; // an earlier pattern has it
            const fs::path dest = out_dir / path;
            fs::create_directories(dest.parent_path(), ec);
            fs::rename(staging / e.path, dest, ec);
            if (ec) {
                skipped.push_back(path + ": could not be moved into artifacts/ (" + ec.message() +
                                  ")");
                ec.clear();
                continue;
            }
            total += e.size;
            files.push_back(
                {{"path", path}, {"size", e.size}, {"sha256", e.sha256}, {"pattern", pattern}});
        }
        for (const auto& s : got->skipped) {
            const std::string full = (parent.empty() ? "" : parent + "/") + s;
            const std::string path = full.substr(0, full.find(": "));
            if (!has_glob(pattern) || policy::glob_match(pattern, path) || path == pattern)
                skipped.push_back(full);
        }
        if (matched == 0) missing.push_back(pattern);
        fs::remove_all(staging, ec);
    }
    return json{{"files", files},
                {"total_bytes", total},
                {"skipped", skipped},
                {"missing", missing},
                {"dir", "artifacts"}};
}

} // namespace airlock::sandbox
