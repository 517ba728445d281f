#include "sandbox/secret_files.hpp"

#include "init/hold_binary.hpp"
#include "sandbox/scratch_image.hpp"
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
    return ensure_scratch_image(client, "airlock/hold", {{"hold", init::hold_binary()}});
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
