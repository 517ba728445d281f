#include "egress/tls.hpp"

#include "egress/address.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <poll.h>

namespace airlock::egress {

namespace {

// OpenSSL's queued errors, joined; "" when there are none.
std::string openssl_errors() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out += (out.empty() ? "" : "; ") + std::string(buf);
    }
    return out;
}

} // namespace

util::Result<std::shared_ptr<TlsClientContext>> TlsClientContext::load(const std::string& ca_file) {
    using util::ErrorKind;
    std::FILE* f = std::fopen(ca_file.c_str(), "r");
    if (!f)
        return util::make_error(ErrorKind::invalid_input, "ca_file " + ca_file + ": " +
                                                              std::strerror(errno) +
                                                              " (mount a PEM CA bundle there)");
    std::fclose(f);
    ERR_clear_error();
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return util::make_error(ErrorKind::io, "cannot create a TLS context: " + openssl_errors());
    std::shared_ptr<TlsClientContext> out(new TlsClientContext(ctx));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Only the configured bundle: never the system's default paths.
    if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1)
        return util::make_error(ErrorKind::invalid_input,
                                "ca_file " + ca_file +
                                    ": holds no PEM certificate OpenSSL can read (" +
                                    openssl_errors() + ")");
    return out;
}

TlsClientContext::~TlsClientContext() {
    SSL_CTX_free(m_ctx);
}

TlsStream::TlsStream(const TlsClientContext& context, int fd, int stop_fd)
    : m_ssl(SSL_new(context.get())), m_fd(fd), m_stop_fd(stop_fd) {
    if (m_ssl) SSL_set_fd(m_ssl, fd);
}

TlsStream::~TlsStream() {
    SSL_free(m_ssl);
}

TlsStream::Step TlsStream::after(int result, Clock::time_point deadline) {
    const int e = SSL_get_error(m_ssl, result);
    short events = 0;
    if (e == SSL_ERROR_WANT_READ) events = POLLIN;
    if (e == SSL_ERROR_WANT_WRITE) events = POLLOUT;
    if (events == 0) {
        const int err = errno;
        m_error = openssl_errors();
        if (m_error.empty())
            m_error = e == SSL_ERROR_SYSCALL && err != 0
                          ? std::string(std::strerror(err))
                          : std::string("the upstream closed the connection");
        return Step::failed;
    }
    const Wait w = wait_for(m_fd, events, m_stop_fd, deadline);
    if (w == Wait::stopped) return Step::stopped;
    if (w == Wait::timeout) return Step::timeout;
    return Step::retry;
}

Handshake TlsStream::handshake(const std::string& host, Clock::time_point deadline) {
    if (!m_ssl) return {Handshake::Kind::failed, "cannot create a TLS connection"};
    if (parse_ip(host)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(m_ssl), host.c_str());
    } else {
        // SSL_set_tlsext_host_name, without the macro's C cast.
        SSL_ctrl(m_ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(host.c_str()));
        SSL_set1_host(m_ssl, host.c_str());
    }
    while (true) {
        ERR_clear_error();
        errno = 0;
        const int r = SSL_connect(m_ssl);
        if (r == 1) return {Handshake::Kind::ok, {}};
        switch (after(r, deadline)) {
        case Step::retry:
            continue;
        case Step::timeout:
            return {Handshake::Kind::timeout, "the TLS handshake did not finish in time"};
        case Step::stopped:
            return {Handshake::Kind::stopped, {}};
        case Step::failed: {
            const long verify = SSL_get_verify_result(m_ssl);
            if (verify != X509_V_OK)
                return {Handshake::Kind::certificate, X509_verify_cert_error_string(verify)};
            return {Handshake::Kind::failed, m_error};
        }
        }
    }
}

Io TlsStream::write_all(std::string_view data, Clock::time_point deadline) {
    while (!data.empty()) {
        ERR_clear_error();
        errno = 0;
        const int n = SSL_write(m_ssl, data.data(),
                                static_cast<int>(std::min<std::size_t>(data.size(), INT_MAX)));
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        switch (after(n, deadline)) {
        case Step::retry:
            continue;
        case Step::timeout:
            return Io::timeout;
        case Step::stopped:
            return Io::stopped;
        case Step::failed:
            return Io::failed;
        }
    }
    return Io::done;
}

TlsRead TlsStream::read_some(std::string& out, std::size_t max, Clock::time_point deadline) {
    const std::size_t old = out.size();
    while (true) {
        out.resize(old + max);
        ERR_clear_error();
        errno = 0;
        const int n = SSL_read(m_ssl, out.data() + old,
                               static_cast<int>(std::min<std::size_t>(max, INT_MAX)));
        out.resize(old + static_cast<std::size_t>(n > 0 ? n : 0));
        if (n > 0) return TlsRead::data;
        if (SSL_get_error(m_ssl, n) == SSL_ERROR_ZERO_RETURN) return TlsRead::eof;
        switch (after(n, deadline)) {
        case Step::retry:
            continue;
        case Step::timeout:
            return TlsRead::timeout;
        case Step::stopped:
            return TlsRead::stopped;
        case Step::failed:
            return TlsRead::failed;
        }
    }
}

} // namespace airlock::egress
