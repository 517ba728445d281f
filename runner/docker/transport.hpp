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

// A connection on which the caller speaks HTTP itself (a hijacked stream, e.g. attach with
// stdin). libcurl connects, and does TLS on a TCP endpoint. Waits are cut into slices of at most
// 200 ms, so cancellation and interrupts are seen promptly.
class RawConnection {
public:
    ~RawConnection();
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;

    // Sends every byte. The bytes never appear in an error message.
    util::Result<void> send_all(std::string_view data);
    // Blocks until bytes arrive (returns their count), the peer closes (returns 0), or the
    // connection is cancelled, interrupted or past its deadline.
    util::Result<std::size_t> receive(char* buf, std::size_t size);
    // Applies to later calls (ErrorKind::timeout); nullopt waits without limit.
    void set_deadline(std::optional<util::Clock::time_point> deadline) { m_deadline = deadline; }
    // The Host header value for requests on this connection.
    const std::string& host() const { return m_host; }

private:
    friend class Transport;
    RawConnection() = default;
    // Waits until the socket is ready for `events` (poll flags).
    util::Result<void> wait(short events);

    void* m_curl = nullptr; // CURL*, owned, never returned to the pool
    int m_socket = -1;
    std::string m_host;
    std::string m_display; // the endpoint, for messages
    const util::CancelToken* m_cancel = nullptr;
    Interruptible m_interruptible = Interruptible::yes;
    std::optional<util::Clock::time_point> m_deadline;
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
    // Opens a connection for a hijacked stream (see RawConnection); connect errors as perform's.
    util::Result<std::unique_ptr<RawConnection>> connect_raw(const util::CancelToken* cancel,
                                                             Interruptible interruptible);

private:
    struct Pool;
    Endpoint m_endpoint;
    std::unique_ptr<Pool> m_pool;
};

} // namespace airlock::docker
