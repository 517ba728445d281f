// Attach with stdin: the engine turns the HTTP connection into a raw two-way stream, which
// libcurl's request API cannot speak, so the request and the response head are done by hand.
#include "docker/client.hpp"
#include "docker/hijack.hpp"

#include <cstdlib>

namespace airlock::docker {

using util::ErrorKind;
using util::make_error;
using util::Result;

namespace {

constexpr auto k_head_timeout = std::chrono::seconds(60);
constexpr auto k_error_body_timeout = std::chrono::seconds(5);
constexpr std::size_t k_max_error_body = 64 * 1024;

// The body of an error response, as far as it arrives within a few seconds.
std::string read_error_body(RawConnection& conn, const ResponseHead& head, std::string body) {
    conn.set_deadline(util::Clock::now() + k_error_body_timeout);
    const auto te = head.header("Transfer-Encoding");
    const bool chunked = te && te->find("chunked") != std::string::npos;
    std::optional<std::size_t> length;
    if (auto cl = head.header("Content-Length"); cl && !chunked)
        length = std::strtoull(cl->c_str(), nullptr, 10);
    char buf[4096];
    while (body.size() < k_max_error_body) {
        if (length && body.size() >= *length) break;
        if (chunked && decode_chunked(body)) break;
        auto n = conn.receive(buf, sizeof buf);
        if (!n || *n == 0) break;
        body.append(buf, *n);
    }
    if (chunked) {
        auto decoded = decode_chunked(body);
        return decoded ? *decoded : std::string();
    }
    if (length && body.size() > *length) body.resize(*length);
    return body;
}

} // namespace

Result<void> Client::attach_hijacked(const std::string& id, const FrameDemuxer::Callback& on_output,
                                     const std::function<void(bool ok)>& on_ready,
                                     const util::CancelToken* cancel, std::string_view stdin_data) {
    const std::string what = "attach to container " + (id.size() == 64 ? id.substr(0, 12) : id);
    bool ready_sent = false;
    auto fail = [&](util::Error e) -> Result<void> {
        if (!ready_sent) {
            ready_sent = true;
            on_ready(false);
        }
        return e;
    };

    auto conn = m_transport.connect_raw(cancel, m_interruptible.load());
    if (!conn) return fail(conn.error());
    RawConnection& c = **conn;
    c.set_deadline(util::Clock::now() + k_head_timeout);
    const std::string target =
        m_prefix + "/containers/" + id + "/attach?stream=1&stdin=1&stdout=1&stderr=1";
    if (auto sent = c.send_all(upgrade_request("POST", target, c.host())); !sent)
        return fail(sent.error());

    // The head, then whatever followed it in the same reads (the start of the stream).
    std::string buf;
    std::optional<ResponseHead> head;
    char chunk[16384];
    while (!head) {
        auto n = c.receive(chunk, sizeof chunk);
        if (!n) return fail(n.error());
        if (*n == 0)
            return fail(make_error(ErrorKind::protocol,
                                   what + ": the engine closed the connection without answering"));
        buf.append(chunk, *n);
        auto parsed = parse_response_head(buf);
        if (!parsed)
            return fail(make_error(ErrorKind::protocol, what + ": " + parsed.error().message));
        head = std::move(*parsed);
    }
    std::string rest = buf.substr(head->size);
    if (head->status != 101 && head->status != 200) {
        Response resp{head->status, read_error_body(c, *head, std::move(rest))};
        return fail(error_from_response(resp, what));
    }
    c.set_deadline(std::nullopt);
    ready_sent = true;
    on_ready(true);

    // Nothing is copied: the bytes go from the caller's buffer to libcurl. Stdin stays open
    // (no half-close), as a process that reads a line and keeps running expects.
    if (auto sent = c.send_all(stdin_data); !sent) return sent.error();

    std::string system_error;
    FrameDemuxer demux([&](StreamId s, std::string_view d) {
        if (s == StreamId::system_error) {
            system_error.append(d.substr(0, 4096));
            return true;
        }
        return on_output(s, d);
    });
    bool more = demux.feed(rest);
    while (more) {
        auto n = c.receive(chunk, sizeof chunk);
        if (!n) return n.error();
        if (*n == 0) break;
        more = demux.feed(std::string_view(chunk, *n));
    }
    if (!demux.error().empty()) return make_error(ErrorKind::protocol, what + ": " + demux.error());
    if (!system_error.empty())
        return make_error(ErrorKind::server_error,
                          what + ": engine error in stream: " + system_error);
    return {};
}

} // namespace airlock::docker
