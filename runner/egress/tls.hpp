// The credential endpoint's TLS client: OpenSSL over a non-blocking socket, every wait bounded
// by a deadline and the stop descriptor like the rest of the proxy. Certificates are verified
// against the configured CA file only, with the host name (or IP address) checked.
#pragma once

#include "egress/net.hpp"
#include "util/result.hpp"

#include <memory>
#include <string>
#include <string_view>

struct ssl_ctx_st;
struct ssl_st;

namespace airlock::egress {

// One SSL_CTX for the whole run: the CA file is read once, at start.
class TlsClientContext {
public:
    // Errors name `ca_file`: missing, unreadable, or holding no PEM certificate.
    static util::Result<std::shared_ptr<TlsClientContext>> load(const std::string& ca_file);
    ~TlsClientContext();
    TlsClientContext(const TlsClientContext&) = delete;
    TlsClientContext& operator=(const TlsClientContext&) = delete;
    ssl_ctx_st* get() const { return m_ctx; }

private:
    explicit TlsClientContext(ssl_ctx_st* ctx) : m_ctx(ctx) {}
    ssl_ctx_st* m_ctx;
};

struct Handshake {
    enum class Kind { ok, certificate, failed, timeout, stopped };
    Kind kind = Kind::failed;
    std::string message; // certificate: X509_verify_cert_error_string's text; failed: OpenSSL's
};

enum class TlsRead { data, eof, timeout, stopped, failed };

// A TLS connection over `fd`, which stays owned by the caller and must outlive the stream.
class TlsStream {
public:
    TlsStream(const TlsClientContext& context, int fd, int stop_fd);
    ~TlsStream();
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    // TLS 1.2 or later; SNI `host` unless it is an IP literal; the certificate must chain to
    // the CA file and name `host`.
    Handshake handshake(const std::string& host, Clock::time_point deadline);
    Io write_all(std::string_view data, Clock::time_point deadline);
    // Appends what one SSL_read returns (at most `max` bytes) to `out`. `eof` is a clean close
    // (close_notify); an upstream that just drops the connection is `failed`.
    TlsRead read_some(std::string& out, std::size_t max, Clock::time_point deadline);
    // The last failure, for messages.
    const std::string& error() const { return m_error; }

private:
    enum class Step { retry, timeout, stopped, failed };
    // After an SSL call returned `result`: waits as SSL_get_error asks (retry), or says why not.
    Step after(int result, Clock::time_point deadline);

    ssl_st* m_ssl = nullptr;
    int m_fd;
    int m_stop_fd;
    std::string m_error;
};

} // namespace airlock::egress
