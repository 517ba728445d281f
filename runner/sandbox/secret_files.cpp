#include "sandbox/secret_files.hpp"

#include "init/hold_binary.hpp"
#include "sandbox/spec.hpp"
#include "util/sha256.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <cstring>
#include <ctime>
#include <memory>

namespace airlock::sandbox {

using nlohmann::json;
using util::ErrorKind;
using util::make_error;
using util::Result;

namespace {

// One regular file per entry, in a tar held in memory.
std::string tar_of(const std::vector<std::pair<std::string, std::string_view>>& files, unsigned uid,
                   unsigned gid, unsigned mode) {
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
    for (const auto& [name, body] : files) {
        std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                        archive_entry_free);
        archive_entry_set_pathname(e.get(), name.c_str());
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_perm(e.get(), mode);
        archive_entry_set_uid(e.get(), uid);
        archive_entry_set_gid(e.get(), gid);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(body.size()));
        archive_entry_set_mtime(e.get(), std::time(nullptr), 0);
        archive_write_header(a.get(), e.get());
        archive_write_data(a.get(), body.data(), body.size());
    }
    archive_write_close(a.get());
    return out;
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

// Overwrites a string's bytes before it is freed: the tar held secret values.
void wipe(std::string& s) {
    volatile char* p = s.data();
    for (std::size_t i = 0; i < s.size(); ++i)
        p[i] = 0;
    s.clear();
}

} // namespace

std::string secrets_tar(const std::vector<config::Secret>& secrets, unsigned uid, unsigned gid) {
    std::vector<std::pair<std::string, std::string_view>> files;
    for (const auto& s : secrets)
        files.emplace_back(s.name, s.value);
    return tar_of(files, uid, gid, 0400);
}

Result<std::string> ensure_hold_image(docker::Client& client) {
    const std::string_view bin = init::hold_binary();
    const std::string tag = util::sha256_hex(bin).substr(0, 16);
    const std::string ref = "airlock/hold:" + tag;
    auto found = client.image_inspect(ref);
    if (found) return ref;
    if (found.error().kind != ErrorKind::not_found) return found.error();
    const std::string tar = tar_of({{"hold", bin}}, 0, 0, 0555);
    if (auto r = client.image_import("airlock/hold", tag, reader_of(tar)); !r) return r.error();
    return ref;
}

Result<std::string> stage_secret_files(docker::Client& client, Resources& resources,
                                       const std::string& run_id, const std::string& volume,
                                       const std::vector<config::Secret>& secrets,
                                       const std::string& user) {
    const auto colon = user.find(':');
    const unsigned uid = static_cast<unsigned>(std::stoul(user.substr(0, colon)));
    const unsigned gid = colon == std::string::npos
                             ? uid
                             : static_cast<unsigned>(std::stoul(user.substr(colon + 1)));
    auto image = ensure_hold_image(client);
    if (!image) return image.error();
    const docker::Labels labels = {{k_label_run, run_id}, {k_label_role, "secrets"}};
    const std::string opts =
        "size=1m,mode=0700,uid=" + std::to_string(uid) + ",gid=" + std::to_string(gid);
    if (auto r = client.volume_create(volume, labels,
                                      {{"type", "tmpfs"}, {"device", "tmpfs"}, {"o", opts}});
        !r)
        return r.error();
    resources.add_volume(volume);
    json host = {
        {"NetworkMode", "none"},
        {"CapDrop", json::array({"ALL"})},
        {"SecurityOpt", json::array({"no-new-privileges:true"})},
        {"ReadonlyRootfs", true},
        {"Memory", 16 << 20},
        {"MemorySwap", 16 << 20},
        {"PidsLimit", 4},
        {"LogConfig", {{"Type", "none"}}},
        {"Mounts", json::array({{{"Type", "volume"}, {"Source", volume}, {"Target", "/s"}}})},
    };
    json body = {{"Image", *image},
                 {"Cmd", json::array({"/hold"})},
                 {"User", std::to_string(uid) + ":" + std::to_string(gid)},
                 {"NetworkDisabled", true},
                 {"Labels", {{k_label_run, run_id}, {k_label_role, "secrets-holder"}}},
                 {"HostConfig", host}};
    auto holder = client.container_create("airlock-" + run_id + "-secrets", body);
    if (!holder) return holder.error();
    resources.add_container(holder->id);
    if (auto r = client.container_start(holder->id); !r) return r.error();
    std::string tar = secrets_tar(secrets, uid, gid);
    auto put = client.archive_put(holder->id, "/s", reader_of(tar));
    wipe(tar);
    if (!put) return put.error();
    return holder->id;
}

} // namespace airlock::sandbox
