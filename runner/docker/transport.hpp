// HTTP/1.1 to the engine with libcurl: unix socket, or TCP with TLS. One request at a time per
// call; safe to use from several threads (handles come from a locked pool).
#pragma once

#include "docker/endpoint.hpp"
#include "util/cancel.hpp"
#include "util/result.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace airlock::docker {

// Pulls the next bytes of a streamed upload body into buf; returns the count, 0 at the end,
// or nullopt to abort the upload.
using UploadReader = std::function<std::optional<std::size_t>(char* buf, std::size_t size)>;
// Receives a body piece of a successful (2xx) response; false aborts the transfer.
using BodySink = std::function<bool(std::string_view)>;

enum class Streaming { no, yes };     // yes: no transfer timeout (logs, wait, archive, pull)
enum class Interruptible { yes, no }; // no: teardown requests run even after Ctrl-C

struct Request {
    std::string method = "GET";
    std::string target; // path and query, including the /vX.Y prefix
    std::string body;   // sent as JSON unless upload is set
    std::string content_type = "application/json";
    UploadReader upload; // streamed body (e.g. a tar), chunked
    Streaming streaming = Streaming::no;
    Interruptible interruptible = Interruptible::yes;
    std::chrono::milliseconds timeout{60000};        // total, when streaming == no
    std::optional<util::Clock::time_point> deadline; // aborts with ErrorKind::timeout
    const util::CancelToken* cancel = nullptr;
    std::function<void(long status)> on_headers; // called once the response headers are in
};

struct Response {
    long status = 0;
    std::string body; // empty when a sink consumed it
};

class Transport {
public:
    explicit Transport(Endpoint endpoint);
    ~Transport();
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    // Performs the request. Non-2xx statuses are returned as a Response (body collected,
    // never sent to the sink); only transport failures are errors.
    util::Result<Response> perform(const Request& req, const BodySink* sink = nullptr);
    const Endpoint& endpoint() const { return m_endpoint; }

private:
    struct Pool;
    Endpoint m_endpoint;
    std::unique_ptr<Pool> m_pool;
};

} // namespace airlock::docker
