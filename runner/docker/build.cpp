#include "docker/build.hpp"

namespace airlock::docker {

using util::ErrorKind;
using util::make_error;
using util::Result;

namespace {

constexpr std::size_t k_max_line = 4u << 20;

std::string string_field(const Json& j, const char* key) {
    if (!j.contains(key)) return {};
    const Json& v = j[key];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_null()) return {};
    return v.dump();
}

std::string trim_end(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
        s.pop_back();
    return s;
}

// The classic builder ends with "Successfully built 0123456789ab\n".
std::string id_from_success_line(const std::string& text) {
    static const std::string marker = "Successfully built ";
    if (text.rfind(marker, 0) != 0) return {};
    std::string id = trim_end(text.substr(marker.size()));
    if (id.empty() || id.find_first_not_of("0123456789abcdef") != std::string::npos) return {};
    return id;
}

} // namespace

std::string build_target(const BuildOptions& o) {
    std::string t = "/build?dockerfile=" + url_encode(o.dockerfile);
    if (!o.tag.empty()) t += "&t=" + url_encode(o.tag);
    if (!o.build_args.empty()) t += "&buildargs=" + url_encode(Json(o.build_args).dump());
    if (!o.labels.empty()) t += "&labels=" + url_encode(Json(o.labels).dump());
    if (!o.network_mode.empty()) t += "&networkmode=" + url_encode(o.network_mode);
    if (o.no_cache == NoCache::yes) t += "&nocache=1";
    t += "&rm=1&forcerm=1&pull=0";
    return t;
}

std::optional<BuildEvent> parse_build_line(std::string_view line) {
    if (line.find_first_not_of(" \t\r\n") == std::string_view::npos) return std::nullopt;
    BuildEvent ev;
    Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        ev.text = trim_end(std::string(line));
        return ev;
    }
    if (j.contains("error") || j.contains("errorDetail")) {
        ev.kind = BuildEventKind::error;
        ev.text = string_field(j, "error");
        if (ev.text.empty() && j.contains("errorDetail") && j["errorDetail"].is_object())
            ev.text = string_field(j["errorDetail"], "message");
        ev.text = trim_end(ev.text);
        return ev;
    }
    if (j.contains("stream")) {
        ev.kind = BuildEventKind::stream;
        ev.text = string_field(j, "stream");
        return ev;
    }
    if (j.contains("status")) {
        ev.kind = BuildEventKind::status;
        ev.id = string_field(j, "id");
        ev.text = ev.id.empty() ? std::string() : ev.id + ": ";
        ev.text += trim_end(string_field(j, "status"));
        ev.progress = string_field(j, "progress");
        return ev;
    }
    if (j.contains("aux")) {
        const Json& aux = j["aux"];
        if (aux.is_object() && aux.contains("ID") && aux["ID"].is_string()) {
            ev.kind = BuildEventKind::aux;
            ev.image_id = aux["ID"].get<std::string>();
            return ev;
        }
    }
    ev.text = trim_end(std::string(line));
    return ev;
}

bool BuildStream::feed(std::string_view data) {
    if (!m_protocol_error.empty()) return false;
    m_buf.append(data);
    std::size_t start = 0, nl;
    while ((nl = m_buf.find('\n', start)) != std::string::npos) {
        handle(std::string_view(m_buf).substr(start, nl - start));
        start = nl + 1;
    }
    m_buf.erase(0, start);
    if (m_buf.size() > k_max_line) {
        m_protocol_error = "a line of the build stream is longer than 4 MiB";
        return false;
    }
    return true;
}

void BuildStream::finish() {
    if (!m_buf.empty() && m_protocol_error.empty()) handle(m_buf);
    m_buf.clear();
}

void BuildStream::handle(std::string_view line) {
    auto ev = parse_build_line(line);
    if (!ev) return;
    if (ev->kind == BuildEventKind::error && !m_failed) {
        m_failed = true;
        m_error = ev->text;
    } else if (ev->kind == BuildEventKind::aux) {
        m_image_id = ev->image_id;
    } else if (ev->kind == BuildEventKind::stream && m_image_id.empty()) {
        m_image_id = id_from_success_line(ev->text);
    }
    if (m_on_event) m_on_event(*ev);
}

Result<BuildResult> build_image(Client& client, const BuildOptions& options,
                                const UploadReader& context,
                                const BuildStream::Callback& on_event) {
    if (client.engine().negotiated.empty())
        if (auto v = client.negotiate(); !v) return v.error();
    // Client keeps its transport to itself; the build is one more streamed request on the
    // same endpoint and API version.
    Transport transport(client.endpoint());
    Request r;
    r.method = "POST";
    r.target = "/v" + client.engine().negotiated + build_target(options);
    r.streaming = Streaming::yes;
    r.upload = context;
    r.content_type = "application/x-tar";
    const std::string what = "build " + (options.tag.empty() ? std::string("image") : options.tag);

    BuildStream stream(on_event);
    BodySink sink = [&](std::string_view d) { return stream.feed(d); };
    auto resp = transport.perform(r, &sink);
    if (!resp) return resp.error();
    if (resp->status != 200) return error_from_response(*resp, what);
    if (!stream.protocol_error().empty())
        return make_error(ErrorKind::protocol, what + ": " + stream.protocol_error());
    stream.finish();
    if (stream.failed())
        return make_error(ErrorKind::server_error,
                          what + ": " +
                              (stream.error().empty()
                                   ? std::string("the engine reported an error without a message")
                                   : stream.error()));
    return BuildResult{stream.image_id()};
}

} // namespace airlock::docker
