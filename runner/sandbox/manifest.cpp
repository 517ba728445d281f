#include "sandbox/manifest.hpp"

#include <cstdio>

namespace airlock::sandbox {

namespace {

// Linux's PATH_MAX; a longer workspace path could not be written back anyway.
constexpr std::size_t k_max_path_bytes = 4096;

bool same_content(const FileEntry& a, const FileEntry& b) {
    if (a.type != b.type) return false;
    switch (a.type) {
    case FileEntry::Type::file:
        return a.size == b.size && a.sha256 == b.sha256 && a.mode == b.mode;
    case FileEntry::Type::symlink:
        return a.link_target == b.link_target;
    case FileEntry::Type::dir:
    case FileEntry::Type::other:
        return true;
    }
    return true;
}

// Length of the valid, non-C1 UTF-8 sequence at text[i], or 0.
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (i + len > text.size()) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(text[i + k]);
        if ((cc & 0xc0u) != 0x80u) return 0;
        cp = (cp << 6) | (cc & 0x3fu);
    }
    const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    const bool invalid = cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp < 0xa0;
    return overlong || invalid ? 0 : len;
}

} // namespace

const char* to_string(FileEntry::Type type) {
    switch (type) {
    case FileEntry::Type::file:
        return "file";
    case FileEntry::Type::dir:
        return "dir";
    case FileEntry::Type::symlink:
        return "symlink";
    case FileEntry::Type::other:
        return "other";
    }
    return "other";
}

ChangeSet diff_manifests(const Manifest& before, const Manifest& after) {
    ChangeSet changes;
    for (const auto& [path, now] : after) {
        const auto it = before.find(path);
        if (it == before.end()) {
            changes.added.push_back(now);
        } else if (!same_content(it->second, now)) {
            changes.modified.push_back(now);
        } else {
            continue;
        }
        if (now.type == FileEntry::Type::file) changes.bytes_added_or_modified += now.size;
    }
    for (const auto& [path, was] : before)
        if (!after.contains(path)) changes.deleted.push_back(was);
    return changes;
}

util::Result<std::string> workspace_path_from_archive(std::string_view name,
                                                      std::string_view strip_prefix) {
    auto unsafe = [](const char* why) {
        return util::make_error(util::ErrorKind::invalid_input, why);
    };
    if (name.find('\0') != std::string_view::npos) return unsafe("name contains a NUL byte");
    if (!name.starts_with(strip_prefix)) {
        // The prefix directory itself ("workspace" for "workspace/") is the root.
        if (!strip_prefix.empty() && strip_prefix.back() == '/' &&
            name == strip_prefix.substr(0, strip_prefix.size() - 1))
            return std::string();
        return util::make_error(util::ErrorKind::invalid_input,
                                "name is outside \"" + printable(strip_prefix) + "\"");
    }
    name.remove_prefix(strip_prefix.size());
    if (name.starts_with('/')) return unsafe("absolute name");
    if (name.size() > k_max_path_bytes) return unsafe("name longer than 4096 bytes");

    std::string out;
    std::size_t pos = 0;
    while (pos <= name.size()) {
        std::size_t slash = name.find('/', pos);
        if (slash == std::string_view::npos) slash = name.size();
        const std::string_view part = name.substr(pos, slash - pos);
        pos = slash + 1;
        if (part.empty() || part == ".") continue;
        if (part == "..") return unsafe("name contains \"..\"");
        if (!out.empty()) out += '/';
        out += part;
    }
    return out;
}

bool link_escapes_workspace(std::string_view link_path, std::string_view target) {
    if (target.empty() || target.starts_with('/')) return true;
    // Depth of the directory holding the link, then walk the target's components from there.
    long depth = 0;
    for (char c : link_path)
        if (c == '/') ++depth;
    std::size_t pos = 0;
    while (pos <= target.size()) {
        std::size_t slash = target.find('/', pos);
        if (slash == std::string_view::npos) slash = target.size();
        const std::string_view part = target.substr(pos, slash - pos);
        pos = slash + 1;
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            if (--depth < 0) return true;
        } else {
            ++depth;
        }
    }
    return false;
}

std::string printable(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
            ++i;
        } else if (const std::size_t len = c >= 0x80 ? utf8_sequence(text, i) : 0; len > 0) {
            out.append(text.substr(i, len));
            i += len;
        } else {
            char buf[8];
            if (c == '\\') {
                out += "\\\\";
            } else if (c == '\n') {
                out += "\\n";
            } else if (c == '\t') {
                out += "\\t";
            } else {
                std::snprintf(buf, sizeof buf, "\\x%02x", c);
                out += buf;
            }
            ++i;
        }
    }
    return out;
}

nlohmann::json to_json(const FileEntry& entry) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(entry.mode));
    nlohmann::json j = {
        {"path", printable(entry.path)},
        {"type", to_string(entry.type)},
        {"size", entry.size},
        {"mode", mode},
    };
    if (entry.type == FileEntry::Type::file) j["sha256"] = entry.sha256;
    if (entry.type == FileEntry::Type::symlink) j["link_target"] = printable(entry.link_target);
    return j;
}

nlohmann::json to_json(const ChangeSet& changes) {
    auto list = [](const std::vector<FileEntry>& entries) {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& e : entries)
            a.push_back(to_json(e));
        return a;
    };
    return {
        {"added", list(changes.added)},
        {"modified", list(changes.modified)},
        {"deleted", list(changes.deleted)},
        {"bytes_added_or_modified", changes.bytes_added_or_modified},
        {"skipped", changes.skipped},
        {"sanitized", changes.sanitized},
    };
}

} // namespace airlock::sandbox
