#include "docker/transport.hpp"

#include <curl/curl.h>

#include <mutex>
#include <vector>

namespace airlock::docker {

using util::ErrorKind;
using util::make_error;

namespace {

std::once_flag g_curl_init;

struct Transfer {
    const Request* req = nullptr;
    const BodySink* sink = nullptr;
    CURL* curl = nullptr;
    std::string body;
    bool sink_stopped = false;
    bool deadline_hit = false;
    bool cancelled = false;
    bool upload_failed = false;
    bool headers_done = false;
    std::string callback_error;
};

std::size_t on_write(char* ptr, std::size_t size, std::size_t nmemb, void* userdata) {
    auto* t = static_cast<Transfer*>(userdata);
    std::size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    if (t->sink && status >= 200 && status < 300) {
        // No exception may unwind through libcurl's C frames.
        try {
            if (!(*t->sink)(std::string_view(ptr, n))) {
                t->sink_stopped = true;
                return 0;
            }
        } catch (const std::exception& e) {
            t->callback_error = e.what();
            return 0;
        }
        return n;
    }
    // Error bodies are small JSON messages; cap what we keep.
    if (t->body.size() < (16u << 20)) t->body.append(ptr, n);
    return n;
}

std::size_t on_header(char* buf, std::size_t size, std::size_t nitems, void* userdata) {
    auto* t = static_cast<Transfer*>(userdata);
    std::size_t n = size * nitems;
    if (n <= 2 && (n == 0 || buf[0] == '\r' || buf[0] == '\n')) {
        long status = 0;
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && t->req->on_headers && !t->headers_done) {
            t->headers_done = true;
            try {
                t->req->on_headers(status);
            } catch (const std::exception& e) {
                t->callback_error = e.what();
                return 0;
            }
        }
    }
    return n;
}

std::size_t on_read(char* buf, std::size_t size, std::size_t nitems, void* userdata) {
    auto* t = static_cast<Transfer*>(userdata);
    std::optional<std::size_t> got;
    try {
        got = t->req->upload(buf, size * nitems);
    } catch (const std::exception& e) {
        t->callback_error = e.what();
    }
    if (!got) {
        t->upload_failed = true;
        return CURL_READFUNC_ABORT;
    }
    return *got;
}

int on_progress(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(userdata);
    const Request& r = *t->req;
    if (r.cancel && r.cancel->cancelled()) {
        t->cancelled = true;
        return 1;
    }
    if (r.interruptible == Interruptible::yes && util::interrupted()) {
        t->cancelled = true;
        return 1;
    }
    if (r.deadline && util::Clock::now() >= *r.deadline) {
        t->deadline_hit = true;
        return 1;
    }
    return 0;
}

} // namespace

struct Transport::Pool {
    std::mutex mu;
    std::vector<CURL*> idle;
    ~Pool() {
        for (CURL* c : idle)
            curl_easy_cleanup(c);
    }
    CURL* acquire() {
        std::lock_guard<std::mutex> lock(mu);
        if (idle.empty()) return curl_easy_init();
        CURL* c = idle.back();
        idle.pop_back();
        curl_easy_reset(c);
        return c;
    }
    void release(CURL* c) {
        std::lock_guard<std::mutex> lock(mu);
        if (idle.size() < 8)
            idle.push_back(c);
        else
            curl_easy_cleanup(c);
    }
};

Transport::Transport(Endpoint endpoint)
    : m_endpoint(std::move(endpoint)), m_pool(std::make_unique<Pool>()) {
    std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

Transport::~Transport() = default;

util::Result<Response> Transport::perform(const Request& req, const BodySink* sink) {
    CURL* curl = m_pool->acquire();
    if (!curl) return make_error(ErrorKind::io, "libcurl: cannot create a handle");
    Transfer t;
    t.req = &req;
    t.sink = sink;
    t.curl = curl;

    std::string url = m_endpoint.base_url() + req.target;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    char errbuf[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    if (m_endpoint.kind == Endpoint::Kind::unix_socket) {
        curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, m_endpoint.socket_path.c_str());
    } else if (m_endpoint.tls) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, m_endpoint.ca_file.c_str());
        curl_easy_setopt(curl, CURLOPT_SSLCERT, m_endpoint.cert_file.c_str());
        curl_easy_setopt(curl, CURLOPT_SSLKEY, m_endpoint.key_file.c_str());
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    if (req.on_headers) {
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    }
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
    if (req.streaming == Streaming::no)
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));

    struct curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Expect:");
    if (req.upload) {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, &t);
        headers = curl_slist_append(headers, ("Content-Type: " + req.content_type).c_str());
        headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
    } else if (req.method != "GET" && req.method != "HEAD") {
        // The engine wants both headers even for empty bodies (DESIGN.md, pitfalls).
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.data());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(req.body.size()));
        headers = curl_slist_append(headers, ("Content-Type: " + req.content_type).c_str());
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
    m_pool->release(curl);

    if (rc != CURLE_OK) {
        if (t.cancelled) return make_error(ErrorKind::cancelled, "interrupted");
        if (t.deadline_hit) return make_error(ErrorKind::timeout, "deadline passed");
        if (!t.callback_error.empty())
            return make_error(ErrorKind::protocol, "engine request " + req.method + " " +
                                                       req.target + ": " + t.callback_error);
        if (t.sink_stopped) return Response{status, {}};
        if (t.upload_failed)
            return make_error(ErrorKind::io,
                              "the upload stream failed while sending to the engine");
        // libcurl's own detail names the certificate or file problem; fall back to its summary.
        std::string what = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
        if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
            rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SSL_CONNECT_ERROR ||
            rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CERTPROBLEM ||
            rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR)
            return make_error(ErrorKind::unreachable, "cannot reach the Docker engine at " +
                                                          m_endpoint.display() + ": " + what);
        return make_error(ErrorKind::protocol,
                          "engine request " + req.method + " " + req.target + " failed: " + what);
    }
    return Response{status, std::move(t.body)};
}

} // namespace airlock::docker
