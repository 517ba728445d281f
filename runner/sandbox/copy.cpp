#include "sandbox/copy.hpp"

#include "sandbox/output.hpp"
#include "util/fd.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <thread>
#include <unistd.h>

namespace airlock::sandbox {

using util::ErrorKind;
using util::make_error;
using util::Result;

Result<Manifest> copy_in(docker::Client& client, const std::string& container_id,
                         const WorkspaceScan& scan, TarOwner owner) {
    util::Pipe pipe;
    if (!pipe.ok()) return make_error(ErrorKind::io, std::string("pipe: ") + std::strerror(errno));
    std::optional<Result<Manifest>> produced;
    std::thread producer([&] {
        produced.emplace(write_workspace_tar(scan, pipe.wr, owner));
        pipe.close_wr();
    });
    docker::UploadReader reader = [&](char* buf, std::size_t size) -> std::optional<std::size_t> {
        for (;;) {
            ssize_t n = ::read(pipe.rd, buf, size);
            if (n >= 0) return static_cast<std::size_t>(n);
            if (errno != EINTR) return std::nullopt;
        }
    };
    auto put = client.archive_put(container_id, "/workspace", reader);
    pipe.close_rd(); // unblocks the producer if the upload stopped early
    producer.join();
    if (produced && !produced->ok()) return produced->error();
    if (!put) return put.error();
    return std::move(produced->value());
}

Result<ChangeSet> copy_out(docker::Client& client, const std::string& container_id,
                           const Manifest& before, const std::filesystem::path& files_dir,
                           CopyOutLimits limits) {
    util::Pipe pipe;
    if (!pipe.ok()) return make_error(ErrorKind::io, std::string("pipe: ") + std::strerror(errno));
    std::optional<Result<ChangeSet>> consumed;
    std::thread consumer([&] {
        consumed.emplace(read_workspace_tar(pipe.rd, before, files_dir, "workspace/",
                                            limits.max_file_bytes, limits.max_total_bytes));
        pipe.close_rd(); // unblocks the download if the reader stopped early
    });
    docker::BodySink sink = [&](std::string_view d) { return write_all(pipe.wr, d); };
    auto get = client.archive_get(container_id, "/workspace", sink);
    pipe.close_wr();
    consumer.join();
    if (!get) return get.error();
    if (consumed && !consumed->ok()) return consumed->error();
    return std::move(consumed->value());
}

} // namespace airlock::sandbox
