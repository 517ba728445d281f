#include "egress/credentials.hpp"

#include "util/http_text.hpp"

#include <algorithm>
#include <array>

namespace airlock::egress {

using util::to_lower;
using util::trim_ows;

bool CredentialEndpoint::take_request() {
    std::lock_guard lock(m_mutex);
    if (m_bytes_spent) return false;
    if (m_credential.max_requests && m_requests >= *m_credential.max_requests) return false;
    ++m_requests;
    return true;
}

bool CredentialEndpoint::take_bytes(std::uint64_t n) {
    std::lock_guard lock(m_mutex);
    if (m_bytes_spent) return false;
    if (m_credential.max_bytes && n > *m_credential.max_bytes - m_bytes) {
        m_bytes_spent = true;
        return false;
    }
    m_bytes += n;
    return true;
}

util::Result<std::shared_ptr<CredentialEndpoints>>
CredentialEndpoints::make(const Config& config, const Secrets& secrets) {
    auto tls = TlsClientContext::load(config.ca_file);
    if (!tls) return tls.error();
    auto out = std::make_shared<CredentialEndpoints>();
    out->m_tls = std::move(*tls);
    for (const auto& c : config.credentials) {
        const auto value = secrets.values.find(c.name);
        if (value == secrets.values.end())
            return util::make_error(util::ErrorKind::invalid_input,
                                    "no secret for the credential endpoint " + c.name);
        out->m_endpoints.push_back(
            std::make_unique<CredentialEndpoint>(c, credential_header_line(c, value->second)));
    }
    return out;
}

CredentialEndpoint* CredentialEndpoints::route(std::string_view target) const {
    const std::string_view path = target.substr(0, target.find('?'));
    for (const auto& e : m_endpoints) {
        const std::string& name = e->credential().name;
        if (path.size() < name.size() + 1 || path[0] != '/' || path.substr(1, name.size()) != name)
            continue;
        if (path.size() == name.size() + 1 || path[name.size() + 1] == '/') return e.get();
    }
    return nullptr;
}

std::optional<std::string> path_escape(std::string_view path) {
    if (path.find('\\') != std::string_view::npos) return "a backslash";
    for (std::size_t at = path.find('%'); at != std::string_view::npos;
         at = path.find('%', at + 1)) {
        const std::string code = to_lower(path.substr(at, 3));
        const char* meant = code == "%2e"   ? "."
                            : code == "%2f" ? "/"
                            : code == "%5c" ? "\\"
                                            : nullptr;
        if (meant)
            return "\"" + std::string(path.substr(at, 3)) + "\" (an encoded \"" + meant + "\")";
    }
    std::string_view rest = path;
    while (!rest.empty()) {
        const auto slash = rest.find('/');
        const std::string_view segment = rest.substr(0, slash);
        if (segment == "." || segment == "..")
            return "the segment \"" + std::string(segment) + "\"";
        rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    }
    return std::nullopt;
}

std::string CredentialEndpoints::listing() const {
    std::string out;
    for (const auto& e : m_endpoints)
        out += (out.empty() ? "/" : ", /") + e->credential().name + "/";
    return out;
}

std::string upstream_target(const Credential& credential, std::string_view target) {
    std::string_view rest = target.substr(credential.name.size() + 1);
    std::string out = credential.base_path;
    if (rest.empty() || rest.front() == '?') out += "/";
    out += rest;
    return out;
}

std::string credential_upstream_head(const RequestHead& head, const CredentialEndpoint& endpoint,
                                     std::string_view target) {
    const Credential& c = endpoint.credential();
    // Headers the Connection header lists are hop-by-hop too, except the ones that frame the
    // body.
    std::vector<std::string> listed;
    for (const auto& h : head.headers) {
        if (to_lower(h.name) != "connection") continue;
        std::string_view rest = h.value;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            listed.push_back(to_lower(trim_ows(rest.substr(0, comma))));
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
    }
    static constexpr std::array k_dropped = {"host", "connection", "keep-alive",
                                             "te",   "trailer",    "upgrade"};
    const std::string secret_header = to_lower(c.header);
    std::string out = head.method + " " + std::string(target) + " HTTP/1.1\r\nHost: ";
    out += c.host.find(':') != std::string::npos ? "[" + c.host + "]" : c.host;
    if (c.port != 443) out += ":" + std::to_string(c.port);
    out += "\r\n";
    for (const auto& h : head.headers) {
        const std::string name = to_lower(h.name);
        if (std::find(k_dropped.begin(), k_dropped.end(), name) != k_dropped.end()) continue;
        if (name.rfind("proxy-", 0) == 0 || name == secret_header) continue;
        if (name != "content-length" && name != "transfer-encoding" &&
            std::find(listed.begin(), listed.end(), name) != listed.end())
            continue;
        out += h.name + ": " + h.value + "\r\n";
    }
    out += endpoint.header_line();
    return out + "Connection: close\r\n\r\n";
}

} // namespace airlock::egress
