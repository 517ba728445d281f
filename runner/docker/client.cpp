#include "docker/client.hpp"

#include <cstdio>
#include <sstream>

namespace airlock::docker {

using util::ErrorKind;
using util::make_error;
using util::Result;

std::string url_encode(std::string_view value) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : value) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xf]);
        }
    }
    return out;
}

std::string label_filter(const std::string& key, const std::string& value) {
    Json f = {{"label", Json::array({value.empty() ? key : key + "=" + value})}};
    return url_encode(f.dump());
}

int compare_api_versions(const std::string& a, const std::string& b) {
    int amaj = 0, amin = 0, bmaj = 0, bmin = 0;
    std::sscanf(a.c_str(), "%d.%d", &amaj, &amin);
    std::sscanf(b.c_str(), "%d.%d", &bmaj, &bmin);
    if (amaj != bmaj) return amaj - bmaj;
    return amin - bmin;
}

util::Error error_from_response(const Response& resp, const std::string& what) {
    std::string message;
    try {
        auto j = Json::parse(resp.body);
        if (j.is_object() && j.contains("message") && j["message"].is_string())
            message = j["message"].get<std::string>();
    } catch (const std::exception&) {
    }
    if (message.empty()) {
        message = resp.body.substr(0, 300);
        while (!message.empty() && (message.back() == '\n' || message.back() == '\r'))
            message.pop_back();
    }
    ErrorKind kind = ErrorKind::server_error;
    if (resp.status == 404)
        kind = ErrorKind::not_found;
    else if (resp.status == 409)
        kind = ErrorKind::conflict;
    else if (resp.status == 400 || resp.status == 403)
        kind = ErrorKind::invalid_input;
    else if (resp.status < 500)
        kind = ErrorKind::protocol;
    return make_error(kind, what + ": engine said " + std::to_string(resp.status) + ": " + message);
}

Client::Client(Endpoint endpoint) : m_transport(std::move(endpoint)) {
    m_prefix = std::string("/v") + k_max_api_version;
}

Request Client::make(std::string method, std::string path) const {
    Request r;
    r.method = std::move(method);
    r.target = m_prefix + path;
    r.interruptible = m_interruptible.load();
    return r;
}

Result<void> Client::expect_ok(const Request& req, const std::string& what) {
    auto resp = m_transport.perform(req);
    if (!resp) return resp.error();
    if (resp->status < 200 || resp->status >= 300) return error_from_response(*resp, what);
    return {};
}

Result<Json> Client::get_json(const std::string& path, const std::string& what) {
    auto resp = m_transport.perform(make("GET", path));
    if (!resp) return resp.error();
    if (resp->status != 200) return error_from_response(*resp, what);
    try {
        return Json::parse(resp->body);
    } catch (const std::exception& e) {
        return make_error(ErrorKind::protocol,
                          what + ": the engine sent invalid JSON: " + e.what());
    }
}

Result<EngineVersion> Client::negotiate() {
    Request r;
    r.target = "/version";
    r.interruptible = m_interruptible.load();
    r.timeout = std::chrono::milliseconds(15000);
    auto resp = m_transport.perform(r);
    if (!resp) return resp.error();
    if (resp->status != 200) return error_from_response(*resp, "engine version");
    Json j;
    try {
        j = Json::parse(resp->body);
    } catch (const std::exception& e) {
        return make_error(ErrorKind::protocol,
                          "engine version: " + m_transport.endpoint().display() +
                              " did not answer like a Docker engine: " + e.what());
    }
    EngineVersion v;
    v.api_version = j.value("ApiVersion", "");
    v.version = j.value("Version", "");
    v.os = j.value("Os", "");
    v.arch = j.value("Arch", "");
    if (j.contains("Components") && j["Components"].is_array())
        for (const auto& c : j["Components"])
            if (c.is_object() && c.value("Name", "").find("Podman") != std::string::npos)
                v.podman = true;
    if (v.api_version.empty())
        return make_error(ErrorKind::protocol, "engine version: no ApiVersion in /version");
    if (compare_api_versions(v.api_version, k_min_api_version) < 0)
        return make_error(ErrorKind::refused, "the engine speaks API " + v.api_version +
                                                  "; airlock needs " + k_min_api_version +
                                                  " or later (upgrade Docker to 19.03+)");
    v.negotiated = compare_api_versions(v.api_version, k_max_api_version) < 0 ? v.api_version
                                                                              : k_max_api_version;
    m_prefix = "/v" + v.negotiated;
    m_engine = v;
    return v;
}

Result<void> Client::ping() {
    Request r = make("GET", "/_ping");
    r.timeout = std::chrono::milliseconds(10000);
    return expect_ok(r, "ping");
}

Result<Json> Client::info() {
    return get_json("/info", "engine info");
}

Result<Json> Client::image_inspect(const std::string& ref) {
    return get_json("/images/" + url_encode(ref) + "/json", "image " + ref);
}

namespace {
// Splits name[:tag][@digest] for /images/create.
std::pair<std::string, std::string> split_ref(const std::string& ref) {
    auto at = ref.find('@');
    if (at != std::string::npos) return {ref.substr(0, at), ref.substr(at + 1)};
    auto slash = ref.rfind('/');
    auto colon = ref.rfind(':');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
        return {ref.substr(0, colon), ref.substr(colon + 1)};
    return {ref, "latest"};
}

// Feeds newline-delimited JSON objects; remembers the first "error" in the stream.
class JsonLines {
public:
    explicit JsonLines(std::function<bool(const Json&)> cb) : m_cb(std::move(cb)) {}
    bool feed(std::string_view data) {
        m_buf.append(data);
        std::size_t pos;
        while ((pos = m_buf.find('\n')) != std::string::npos) {
            std::string line = m_buf.substr(0, pos);
            m_buf.erase(0, pos + 1);
            if (!handle(line)) return false;
        }
        if (m_buf.size() > (4u << 20)) {
            m_error = "a stream line is longer than 4 MiB";
            return false;
        }
        return true;
    }
    bool finish() { return m_buf.empty() || handle(m_buf); }
    const std::string& error() const { return m_error; }

private:
    bool handle(const std::string& line) {
        if (line.find_first_not_of(" \r\t") == std::string::npos) return true;
        Json j = Json::parse(line, nullptr, false);
        if (j.is_discarded()) {
            m_error = "the engine sent a line that is not JSON";
            return false;
        }
        if (j.is_object() && j.contains("error")) {
            m_error = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
            return false;
        }
        return m_cb(j);
    }
    std::function<bool(const Json&)> m_cb;
    std::string m_buf;
    std::string m_error;
};
} // namespace

Result<void> Client::image_pull(const std::string& ref,
                                const std::function<void(const Json&)>& progress) {
    auto [name, tag] = split_ref(ref);
    Request r =
        make("POST", "/images/create?fromImage=" + url_encode(name) + "&tag=" + url_encode(tag));
    r.streaming = Streaming::yes;
    JsonLines lines([&](const Json& j) {
        if (progress) progress(j);
        return true;
    });
    BodySink sink = [&](std::string_view d) { return lines.feed(d); };
    auto resp = m_transport.perform(r, &sink);
    if (!resp) return resp.error();
    if (resp->status != 200) return error_from_response(*resp, "pull " + ref);
    if (lines.error().empty()) (void)lines.finish();
    if (!lines.error().empty())
        return make_error(ErrorKind::not_found, "pull " + ref + ": " + lines.error());
    return {};
}

Result<void> Client::image_import(const std::string& repo, const std::string& tag,
                                  const UploadReader& tar) {
    Request r = make("POST", "/images/create?fromSrc=-&repo=" + url_encode(repo) +
                                 "&tag=" + url_encode(tag));
    r.streaming = Streaming::yes;
    r.upload = tar;
    r.content_type = "application/x-tar";
    JsonLines lines([](const Json&) { return true; });
    BodySink sink = [&](std::string_view d) { return lines.feed(d); };
    auto resp = m_transport.perform(r, &sink);
    if (!resp) return resp.error();
    if (resp->status != 200) return error_from_response(*resp, "import " + repo + ":" + tag);
    if (lines.error().empty()) (void)lines.finish();
    if (!lines.error().empty())
        return make_error(ErrorKind::server_error,
                          "import " + repo + ":" + tag + ": " + lines.error());
    return {};
}

Result<CreateResult> Client::container_create(const std::string& name, const Json& body) {
    Request r = make("POST", "/containers/create?name=" + url_encode(name));
    r.body = body.dump();
    auto resp = m_transport.perform(r);
    if (!resp) return resp.error();
    if (resp->status != 201) return error_from_response(*resp, "create container " + name);
    try {
        Json j = Json::parse(resp->body);
        CreateResult c;
        c.id = j.at("Id").get<std::string>();
        if (j.contains("Warnings") && j["Warnings"].is_array())
            for (const auto& w : j["Warnings"])
                if (w.is_string()) c.warnings.push_back(w.get<std::string>());
        return c;
    } catch (const std::exception& e) {
        return make_error(ErrorKind::protocol, "create container " + name + ": " + e.what());
    }
}

Result<void> Client::container_start(const std::string& id) {
    return expect_ok(make("POST", "/containers/" + id + "/start"), "start container");
}

Result<WaitResult> Client::container_wait(const std::string& id,
                                          std::optional<util::Clock::time_point> deadline) {
    Request r = make("POST", "/containers/" + id + "/wait?condition=not-running");
    r.streaming = Streaming::yes;
    r.deadline = deadline;
    auto resp = m_transport.perform(r);
    if (!resp) return resp.error();
    if (resp->status != 200) return error_from_response(*resp, "wait for container");
    // Errors can arrive in the 200 body.
    try {
        Json j = Json::parse(resp->body);
        WaitResult w;
        w.status_code = j.at("StatusCode").get<long>();
        if (j.contains("Error") && j["Error"].is_object())
            w.error = j["Error"].value("Message", "");
        return w;
    } catch (const std::exception& e) {
        return make_error(ErrorKind::protocol, std::string("wait for container: ") + e.what() +
                                                   ": " + resp->body.substr(0, 200));
    }
}

Result<void> Client::stream_frames(const Request& r, const FrameDemuxer::Callback& on_output,
                                   const std::string& what,
                                   const std::function<void()>& after_transfer) {
    std::string system_error;
    FrameDemuxer demux([&](StreamId s, std::string_view d) {
        if (s == StreamId::system_error) {
            system_error.append(d.substr(0, 4096));
            return true;
        }
        return on_output(s, d);
    });
    BodySink sink = [&](std::string_view d) { return demux.feed(d); };
    auto resp = m_transport.perform(r, &sink);
    if (after_transfer) after_transfer();
    if (!resp) return resp.error();
    if (resp->status != 200 && resp->status != 101) return error_from_response(*resp, what);
    if (!demux.error().empty()) return make_error(ErrorKind::protocol, what + ": " + demux.error());
    if (!system_error.empty())
        return make_error(ErrorKind::server_error,
                          what + ": engine error in stream: " + system_error);
    return {};
}

Result<void> Client::container_logs(const std::string& id, bool follow,
                                    const FrameDemuxer::Callback& on_output) {
    Request r = make("GET", "/containers/" + id + "/logs?stdout=1&stderr=1&follow=" +
                                (follow ? std::string("1") : std::string("0")));
    r.streaming = Streaming::yes;
    return stream_frames(r, on_output, "container logs", nullptr);
}

Result<void> Client::container_attach(const std::string& id,
                                      const FrameDemuxer::Callback& on_output,
                                      const std::function<void(bool ok)>& on_ready,
                                      const util::CancelToken* cancel,
                                      std::string_view stdin_data) {
    if (!stdin_data.empty()) return attach_hijacked(id, on_output, on_ready, cancel, stdin_data);
    Request r = make("POST", "/containers/" + id + "/attach?stream=1&stdout=1&stderr=1");
    r.streaming = Streaming::yes;
    r.cancel = cancel;
    bool ready_sent = false;
    r.on_headers = [&](long status) {
        ready_sent = true;
        on_ready(status == 200 || status == 101);
    };
    return stream_frames(r, on_output, "container output", [&] {
        if (!ready_sent) on_ready(false);
    });
}

Result<Json> Client::container_inspect(const std::string& id) {
    return get_json("/containers/" + id + "/json", "inspect container");
}

Result<Json> Client::container_stats(const std::string& id) {
    return get_json("/containers/" + id + "/stats?stream=0", "container stats");
}

Result<void> Client::container_stats_stream(const std::string& id,
                                            const std::function<bool(const Json&)>& on_stats) {
    Request r = make("GET", "/containers/" + id + "/stats?stream=1");
    r.streaming = Streaming::yes;
    JsonLines lines(on_stats);
    BodySink sink = [&](std::string_view d) { return lines.feed(d); };
    auto resp = m_transport.perform(r, &sink);
    if (!resp) return resp.error();
    if (resp->status != 200) return error_from_response(*resp, "container stats");
    return {};
}

Result<void> Client::container_kill(const std::string& id, const std::string& signal) {
    return expect_ok(make("POST", "/containers/" + id + "/kill?signal=" + url_encode(signal)),
                     "kill container");
}

Result<void> Client::container_remove(const std::string& id, Force force) {
    return expect_ok(
        make("DELETE", "/containers/" + id + "?v=1&force=" +
                           (force == Force::yes ? std::string("1") : std::string("0"))),
        "remove container");
}

namespace {
Result<std::vector<Json>> as_list(Result<Json> j, const char* field) {
    if (!j) return j.error();
    std::vector<Json> out;
    const Json* arr = &*j;
    if (field && j->is_object()) {
        if (!j->contains(field) || !(*j)[field].is_array()) return out;
        arr = &(*j)[field];
    }
    if (arr->is_array())
        for (const auto& e : *arr)
            out.push_back(e);
    return out;
}
} // namespace

Result<std::vector<Json>> Client::containers_by_label(const std::string& key,
                                                      const std::string& value) {
    return as_list(
        get_json("/containers/json?all=1&filters=" + label_filter(key, value), "list containers"),
        nullptr);
}

Result<void> Client::archive_get(const std::string& id, const std::string& path,
                                 const BodySink& sink) {
    Request r = make("GET", "/containers/" + id + "/archive?path=" + url_encode(path));
    r.streaming = Streaming::yes;
    auto resp = m_transport.perform(r, &sink);
    if (!resp) return resp.error();
    if (resp->status != 200) return error_from_response(*resp, "copy " + path + " out");
    return {};
}

Result<void> Client::archive_put(const std::string& id, const std::string& path,
                                 const UploadReader& tar) {
    Request r = make("PUT", "/containers/" + id + "/archive?path=" + url_encode(path) +
                                "&noOverwriteDirNonDir=1");
    r.streaming = Streaming::yes;
    r.upload = tar;
    r.content_type = "application/x-tar";
    auto resp = m_transport.perform(r);
    if (!resp) return resp.error();
    if (resp->status != 200) return error_from_response(*resp, "copy into " + path);
    return {};
}

Result<void> Client::volume_create(const std::string& name, const Labels& labels,
                                   const std::map<std::string, std::string>& driver_opts) {
    Request r = make("POST", "/volumes/create");
    Json body = {{"Name", name}, {"Labels", labels}};
    if (!driver_opts.empty()) {
        body["Driver"] = "local";
        body["DriverOpts"] = driver_opts;
    }
    r.body = body.dump();
    return expect_ok(r, "create volume " + name);
}

Result<void> Client::volume_remove(const std::string& name, Force force) {
    return expect_ok(
        make("DELETE", "/volumes/" + url_encode(name) +
                           "?force=" + (force == Force::yes ? std::string("1") : std::string("0"))),
        "remove volume " + name);
}

Result<std::vector<Json>> Client::volumes_by_label(const std::string& key,
                                                   const std::string& value) {
    return as_list(get_json("/volumes?filters=" + label_filter(key, value), "list volumes"),
                   "Volumes");
}

Result<std::string> Client::network_create(const std::string& name, const Labels& labels,
                                           bool internal, const std::string& subnet) {
    Request r = make("POST", "/networks/create");
    Json body{{"Name", name}, {"Labels", labels}, {"Internal", internal}, {"CheckDuplicate", true}};
    if (!subnet.empty()) body["IPAM"] = {{"Config", Json::array({{{"Subnet", subnet}}})}};
    r.body = body.dump();
    auto resp = m_transport.perform(r);
    if (!resp) return resp.error();
    if (resp->status != 201) return error_from_response(*resp, "create network " + name);
    Json j = Json::parse(resp->body, nullptr, false);
    if (j.is_discarded() || !j.contains("Id"))
        return make_error(ErrorKind::protocol, "create network " + name + ": no Id in answer");
    return j["Id"].get<std::string>();
}

Result<Json> Client::network_inspect(const std::string& name) {
    return get_json("/networks/" + url_encode(name), "inspect network " + name);
}

Result<void> Client::network_remove(const std::string& id) {
    return expect_ok(make("DELETE", "/networks/" + url_encode(id)), "remove network");
}

Result<std::vector<Json>> Client::networks_by_label(const std::string& key,
                                                    const std::string& value) {
    return as_list(get_json("/networks?filters=" + label_filter(key, value), "list networks"),
                   nullptr);
}

} // namespace airlock::docker
