#include "sandbox/scratch_image.hpp"

#include "util/sha256.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <cstring>
#include <ctime>
#include <memory>

namespace airlock::sandbox {

using util::ErrorKind;
using util::Result;

std::string tar_of_entries(const std::vector<TarEntry>& entries, std::time_t mtime) {
    std::string out;
    std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(),
                                                              archive_write_free);
    archive_write_set_format_pax_restricted(a.get());
    archive_write_set_bytes_in_last_block(a.get(), 1);
    archive_write_open(
        a.get(), &out, nullptr,
        [](archive*, void* client, const void* buf, size_t n) -> la_ssize_t {
            static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
            return static_cast<la_ssize_t>(n);
        },
        nullptr);
    for (const auto& entry : entries) {
        std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                        archive_entry_free);
        archive_entry_set_pathname(e.get(), entry.name.c_str());
        archive_entry_set_filetype(e.get(), entry.directory ? AE_IFDIR : AE_IFREG);
        archive_entry_set_perm(e.get(), entry.mode);
        archive_entry_set_uid(e.get(), entry.uid);
        archive_entry_set_gid(e.get(), entry.gid);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(entry.body.size()));
        archive_entry_set_mtime(e.get(), mtime, 0);
        archive_write_header(a.get(), e.get());
        if (!entry.body.empty()) archive_write_data(a.get(), entry.body.data(), entry.body.size());
    }
    archive_write_close(a.get());
    return out;
}

std::string tar_of(const std::vector<std::pair<std::string, std::string_view>>& files, unsigned uid,
                   unsigned gid, unsigned mode) {
    std::vector<TarEntry> entries;
    for (const auto& [name, body] : files)
        entries.push_back({name, body, false, mode, uid, gid});
    return tar_of_entries(entries, std::time(nullptr));
}

docker::UploadReader reader_of(const std::string& data) {
    auto pos = std::make_shared<std::size_t>(0);
    return [&data, pos](char* buf, std::size_t size) -> std::optional<std::size_t> {
        std::size_t n = std::min(size, data.size() - *pos);
        std::memcpy(buf, data.data() + *pos, n);
        *pos += n;
        return n;
    };
}

Result<std::string> ensure_image_from_tar(docker::Client& client, const std::string& repo,
                                          const std::string& tar) {
    const std::string tag = util::sha256_hex(tar).substr(0, 16);
    const std::string ref = repo + ":" + tag;
    auto found = client.image_inspect(ref);
    if (found) return ref;
    if (found.error().kind != ErrorKind::not_found) return found.error();
    if (auto r = client.image_import(repo, tag, reader_of(tar)); !r) return r.error();
    return ref;
}

Result<std::string>
ensure_scratch_image(docker::Client& client, const std::string& repo,
                     const std::vector<std::pair<std::string, std::string_view>>& files) {
    std::vector<TarEntry> entries;
    for (const auto& [name, body] : files)
        entries.push_back({name, body, false, 0555, 0, 0});
    return ensure_image_from_tar(client, repo, tar_of_entries(entries, 0));
}

} // namespace airlock::sandbox
