// The Docker Engine API (also spoken by Podman), versioned and typed. All engine I/O goes here.
#pragma once

#include "docker/frames.hpp"
#include "docker/transport.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::docker {

using Json = nlohmann::json;
using Labels = std::map<std::string, std::string>;

inline constexpr const char* k_max_api_version = "1.41";
inline constexpr const char* k_min_api_version = "1.40";

struct EngineVersion {
    std::string api_version; // what the engine speaks at most
    std::string version;     // product version
    std::string negotiated;  // what we use
    bool podman = false;
    std::string os, arch;
};

struct CreateResult {
    std::string id;
    std::vector<std::string> warnings;
};

struct WaitResult {
    long status_code = 0;
    std::string error; // Error.Message from the engine, if any
};

enum class Force { no, yes };

// Percent-encodes a query value (RFC 3986 unreserved kept).
std::string url_encode(std::string_view value);
// The `filters` query value selecting objects with label KEY=VALUE.
std::string label_filter(const std::string& key, const std::string& value);
// Builds an error from a non-2xx response: kind by status, the engine's `message`, and `what`.
util::Error error_from_response(const Response& resp, const std::string& what);
// Compares dotted API versions; negative, zero or positive.
int compare_api_versions(const std::string& a, const std::string& b);

class Client {
public:
    explicit Client(Endpoint endpoint);

    // Reads /version and fixes the API version used for every later call.
    util::Result<EngineVersion> negotiate();
    const EngineVersion& engine() const { return m_engine; }
    const Endpoint& endpoint() const { return m_transport.endpoint(); }

    util::Result<void> ping();
    util::Result<Json> info();

    util::Result<Json> image_inspect(const std::string& ref);
    // Pulls ref; each progress JSON object goes to `progress`. Errors inside the 200 stream count.
    util::Result<void> image_pull(const std::string& ref,
                                  const std::function<void(const Json&)>& progress);
    // Imports a root filesystem tarball (POST /images/create?fromSrc=-) as repo:tag.
    util::Result<void> image_import(const std::string& repo, const std::string& tag,
                                    const UploadReader& tar);

    util::Result<CreateResult> container_create(const std::string& name, const Json& body);
    util::Result<void> container_start(const std::string& id);
    // Blocks until the container is not running or the deadline passes (ErrorKind::timeout).
    util::Result<WaitResult> container_wait(const std::string& id,
                                            std::optional<util::Clock::time_point> deadline);
    // Streams stdout/stderr (demultiplexed) until the container stops (follow) or the logs end.
    util::Result<void> container_logs(const std::string& id, bool follow,
                                      const FrameDemuxer::Callback& on_output);
    // Attaches to stdout/stderr before start; `on_ready` fires once the engine has accepted the
    // attach (start only after that, or early output is lost). Returns when the container stops.
    // A non-empty `stdin_data` also attaches stdin (the container needs OpenStdin, StdinOnce and
    // no TTY) on a hijacked connection, and is written once the attach is accepted, with stdin
    // left open. It is never logged nor put into an error (it may hold a secret).
    util::Result<void> container_attach(const std::string& id,
                                        const FrameDemuxer::Callback& on_output,
                                        const std::function<void(bool ok)>& on_ready,
                                        const util::CancelToken* cancel,
                                        std::string_view stdin_data = {});
    util::Result<Json> container_inspect(const std::string& id);
    util::Result<Json> container_stats(const std::string& id);
    // Streams stats objects (about one a second) until the container stops or `on_stats` says stop.
    util::Result<void> container_stats_stream(const std::string& id,
                                              const std::function<bool(const Json&)>& on_stats);
    util::Result<void> container_kill(const std::string& id, const std::string& signal);
    util::Result<void> container_remove(const std::string& id, Force force);
    util::Result<std::vector<Json>> containers_by_label(const std::string& key,
                                                        const std::string& value);

    // GET /containers/{id}/archive: a tar of `path` streamed to `sink`.
    util::Result<void> archive_get(const std::string& id, const std::string& path,
                                   const BodySink& sink);
    // PUT /containers/{id}/archive: extracts the streamed tar into `path`.
    util::Result<void> archive_put(const std::string& id, const std::string& path,
                                   const UploadReader& tar);

    // `driver_opts` go to the local driver (e.g. type=tmpfs for a volume that lives in memory).
    util::Result<void> volume_create(const std::string& name, const Labels& labels,
                                     const std::map<std::string, std::string>& driver_opts = {});
    util::Result<void> volume_remove(const std::string& name, Force force);
    util::Result<std::vector<Json>> volumes_by_label(const std::string& key,
                                                     const std::string& value);

    // `subnet` (e.g. "10.99.0.0/24") pins the address range; empty lets the engine choose.
    util::Result<std::string> network_create(const std::string& name, const Labels& labels,
                                             bool internal, const std::string& subnet = "");
    util::Result<Json> network_inspect(const std::string& name);
    util::Result<void> network_remove(const std::string& id);
    util::Result<std::vector<Json>> networks_by_label(const std::string& key,
                                                      const std::string& value);

    // Requests made after an interrupt (teardown) must not be cut short by it.
    void set_interruptible(Interruptible mode) { m_interruptible = mode; }

private:
    Request make(std::string method, std::string path) const;
    util::Result<Json> get_json(const std::string& path, const std::string& what);
    util::Result<void> expect_ok(const Request& req, const std::string& what);
    // Performs a request whose body is 8-byte-framed output; stream 3 carries engine errors.
    util::Result<void> stream_frames(const Request& r, const FrameDemuxer::Callback& on_output,
                                     const std::string& what,
                                     const std::function<void()>& after_transfer);
    // container_attach with stdin: POST .../attach with Upgrade: tcp, spoken on a RawConnection.
    util::Result<void> attach_hijacked(const std::string& id,
                                       const FrameDemuxer::Callback& on_output,
                                       const std::function<void(bool ok)>& on_ready,
                                       const util::CancelToken* cancel,
                                       std::string_view stdin_data);

    Transport m_transport;
    EngineVersion m_engine;
    std::string m_prefix;
    std::atomic<Interruptible> m_interruptible{Interruptible::yes};
};

} // namespace airlock::docker
