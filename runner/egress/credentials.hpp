// The credential endpoint (docs/egress.md): the task sends plain HTTP to /<name>/...; the proxy
// forwards it over verified TLS to the endpoint's upstream with the secret header added. The
// secret lives only here, in the proxy's memory.
#pragma once

#include "egress/config.hpp"
#include "egress/request.hpp"
#include "egress/secrets_line.hpp"
#include "egress/tls.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::egress {

class ProxyState;
struct DecisionRecord;

// One endpoint: its configuration, its header line with the secret, and its budgets.
class CredentialEndpoint {
public:
    CredentialEndpoint(Credential credential, std::string header_line)
        : m_credential(std::move(credential)), m_header_line(std::move(header_line)) {}
    ~CredentialEndpoint() { wipe(m_header_line); }
    CredentialEndpoint(const CredentialEndpoint&) = delete;
    CredentialEndpoint& operator=(const CredentialEndpoint&) = delete;

    const Credential& credential() const { return m_credential; }
    // "<header>: <value>\r\n" with the secret: only ever written to the upstream.
    const std::string& header_line() const { return m_header_line; }

    // Counts one request; false (nothing counted) when max_requests are used up or max_bytes
    // is spent.
    bool take_request();
    // Counts `n` bytes up or down; false, nothing counted and the bytes spent, when they would
    // go over max_bytes.
    bool take_bytes(std::uint64_t n);

private:
    Credential m_credential;
    std::string m_header_line;
    std::mutex m_mutex;
    std::uint64_t m_requests = 0;
    std::uint64_t m_bytes = 0;
    bool m_bytes_spent = false;
};

class CredentialEndpoints {
public:
    // Loads config.ca_file (errors name it) and builds each endpoint's header line from
    // `secrets`, which must hold every endpoint's value.
    static util::Result<std::shared_ptr<CredentialEndpoints>> make(const Config& config,
                                                                   const Secrets& secrets);

    // The endpoint a request target names (`/<name>` or `/<name>/...`), or nullptr.
    CredentialEndpoint* route(std::string_view target) const;
    // "/openai/, /anthropic/": for the 404's reason.
    std::string listing() const;
    const TlsClientContext& tls() const { return *m_tls; }

private:
    std::shared_ptr<TlsClientContext> m_tls;
    std::vector<std::unique_ptr<CredentialEndpoint>> m_endpoints;
};

// What in `path` (a target without its query) could climb out of the endpoint's prefix or the
// upstream's base path: a "." or ".." segment, an encoded ".", "/" or "\" (%2e, %2f, %5c in any
// case) or a backslash, named for a message; nullopt when there is none.
std::optional<std::string> path_escape(std::string_view path);

// The upstream target for `target` routed to `credential`: base_path + what follows /<name>
// ("/" when nothing does), the query kept.
std::string upstream_target(const Credential& credential, std::string_view target);

// The head sent upstream: `METHOD target HTTP/1.1`, Host, the client's headers without the
// hop-by-hop ones, Host and any header named like the credential's (the task's placeholder),
// then the secret header and `Connection: close`.
std::string credential_upstream_head(const RequestHead& head, const CredentialEndpoint& endpoint,
                                     std::string_view target);

// Runs on the connection's own thread until the connection ends and its line is written: one
// request on credential_listen (the same handoff as the proxy's socket).
void handle_credential_connection(ProxyState& state, util::Fd client, DecisionRecord record);

} // namespace airlock::egress
