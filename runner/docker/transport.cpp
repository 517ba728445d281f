#include "docker/transport.hpp"

#include <curl/curl.h>

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
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

void apply_endpoint(CURL* curl, const Endpoint& ep) {
    if (ep.kind == Endpoint::Kind::unix_socket) {
        curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, ep.socket_path.c_str());
    } else if (ep.tls) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, ep.ca_file.c_str());
        curl_easy_setopt(curl, CURLOPT_SSLCERT, ep.cert_file.c_str());
        curl_easy_setopt(curl, CURLOPT_SSLKEY, ep.key_file.c_str());
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    }
}

// libcurl's own detail names the certificate or file problem; fall back to its summary.
std::string curl_detail(CURLcode rc, const char* errbuf) {
    return errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
}

// The error for a failure to reach the engine at all, if rc is one.
std::optional<util::Error> connect_error(CURLcode rc, const char* errbuf, const Endpoint& ep) {
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
        rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SSL_CONNECT_ERROR ||
        rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CERTPROBLEM ||
        rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR)
        return make_error(ErrorKind::unreachable, "cannot reach the Docker engine at " +
                                                      ep.display() + ": " +
                                                      curl_detail(rc, errbuf));
    return std::nullopt;
}

struct ConnectProgress {
    const util::CancelToken* cancel = nullptr;
    Interruptible interruptible = Interruptible::yes;
    bool cancelled = false;
};

int on_connect_progress(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* p = static_cast<ConnectProgress*>(userdata);
    if ((p->cancel && p->cancel->cancelled()) ||
        (p->interruptible == Interruptible::yes && util::interrupted())) {
        p->cancelled = true;
        return 1;
    }
    return 0;
}

constexpr auto k_poll_slice = std::chrono::milliseconds(200);

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
    apply_endpoint(curl, m_endpoint);
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
        if (auto e = connect_error(rc, errbuf, m_endpoint)) return *e;
        return make_error(ErrorKind::protocol, "engine request " + req.method + " " + req.target +
                                                   " failed: " + curl_detail(rc, errbuf));
    }
    return Response{status, std::move(t.body)};
}

util::Result<std::unique_ptr<RawConnection>> Transport::connect_raw(const util::CancelToken* cancel,
                                                                    Interruptible interruptible) {
    // A handle of its own: a connect-only connection must never be reused for a request.
    CURL* curl = curl_easy_init();
    if (!curl) return make_error(ErrorKind::io, "libcurl: cannot create a handle");
    std::unique_ptr<RawConnection> conn(new RawConnection());
    conn->m_curl = curl;
    conn->m_cancel = cancel;
    conn->m_interruptible = interruptible;
    conn->m_display = m_endpoint.display();
    const std::string base = m_endpoint.base_url();
    conn->m_host = base.substr(base.find("://") + 3);

    const std::string url = base + "/";
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    char errbuf[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);
    apply_endpoint(curl, m_endpoint);
    ConnectProgress progress{cancel, interruptible};
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_connect_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &progress);

    CURLcode rc = curl_easy_perform(curl);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, nullptr);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 1L);
    if (rc != CURLE_OK) {
        if (progress.cancelled) return make_error(ErrorKind::cancelled, "interrupted");
        if (auto e = connect_error(rc, errbuf, m_endpoint)) return *e;
        return make_error(ErrorKind::unreachable, "cannot reach the Docker engine at " +
                                                      m_endpoint.display() + ": " +
                                                      curl_detail(rc, errbuf));
    }
    curl_socket_t sock = CURL_SOCKET_BAD;
    if (curl_easy_getinfo(curl, CURLINFO_ACTIVESOCKET, &sock) != CURLE_OK ||
        sock == CURL_SOCKET_BAD)
        return make_error(ErrorKind::io, "libcurl: no socket for the connection to the engine at " +
                                             m_endpoint.display());
    conn->m_socket = sock;
    return conn;
}

RawConnection::~RawConnection() {
    if (m_curl) curl_easy_cleanup(static_cast<CURL*>(m_curl));
}

util::Result<void> RawConnection::wait(short events) {
    while (true) {
        if ((m_cancel && m_cancel->cancelled()) ||
            (m_interruptible == Interruptible::yes && util::interrupted()))
            return make_error(ErrorKind::cancelled, "interrupted");
        auto slice = k_poll_slice;
        if (m_deadline) {
            auto left =
                std::chrono::ceil<std::chrono::milliseconds>(*m_deadline - util::Clock::now());
            if (left.count() <= 0) return make_error(ErrorKind::timeout, "deadline passed");
            slice = std::min(slice, left);
        }
        pollfd p{m_socket, events, 0};
        int n = ::poll(&p, 1, static_cast<int>(slice.count()));
        if (n < 0 && errno != EINTR)
            return make_error(ErrorKind::io, std::string("poll on the engine connection: ") +
                                                 std::strerror(errno));
        if (n > 0) return {}; // ready, or an error condition that the next call reports
    }
}

util::Result<void> RawConnection::send_all(std::string_view data) {
    auto* curl = static_cast<CURL*>(m_curl);
    while (!data.empty()) {
        std::size_t sent = 0;
        CURLcode rc = curl_easy_send(curl, data.data(), data.size(), &sent);
        if (rc == CURLE_AGAIN) {
            if (auto w = wait(POLLOUT); !w) return w;
            continue;
        }
        if (rc != CURLE_OK)
            return make_error(ErrorKind::unreachable,
                              "lost the connection to the Docker engine "
                              "at " +
                                  m_display + " while sending: " + curl_easy_strerror(rc));
        data.remove_prefix(sent);
    }
    return {};
}

util::Result<std::size_t> RawConnection::receive(char* buf, std::size_t size) {
    auto* curl = static_cast<CURL*>(m_curl);
    while (true) {
        // Try first: TLS may hold decrypted bytes while the socket shows nothing to read.
        std::size_t got = 0;
        CURLcode rc = curl_easy_recv(curl, buf, size, &got);
        if (rc == CURLE_OK) return got;
        if (rc != CURLE_AGAIN)
            return make_error(ErrorKind::unreachable, "lost the connection to the Docker engine "
                                                      "at " +
                                                          m_display + ": " +
                                                          curl_easy_strerror(rc));
        if (auto w = wait(POLLIN); !w) return w.error();
    }
}

} // namespace airlock::docker
