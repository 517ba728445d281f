#include "egress/decide.hpp"

#include <algorithm>

namespace airlock::egress {

namespace {

std::string quoted(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

// What to add to network.allow for this request.
std::string suggested_rule(std::string_view host, std::uint16_t port) {
    return std::string(host) + ":" + std::to_string(port);
}

const char* status_text(int status) {
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Error";
}

} // namespace

const char* to_string(Outcome outcome) {
    switch (outcome) {
    case Outcome::allow:
        return "allow";
    case Outcome::deny:
        return "deny";
    case Outcome::cut:
        return "cut";
    }
    return "deny";
}

Verdict decide(const Config& config, RequestKind kind, std::string_view method,
               std::string_view host, std::uint16_t port) {
    const std::string target = authority(host, port);
    for (const auto& d : config.deny)
        if (policy::host_rule_matches(d.rule, host, port))
            return {Outcome::deny, "network.deny " + quoted(d.text),
                    "network.deny " + quoted(d.text) + " matches " + target +
                        " and deny rules win over allow rules; remove or narrow that deny rule "
                        "in the policy to allow it"};
    if (config.mode == Mode::audit)
        return {Outcome::allow, "audit", "audit mode lets every request through and records it"};

    const NamedRule* allowed = nullptr;
    for (const auto& a : config.allow)
        if (policy::host_rule_matches(a.rule, host, port)) {
            allowed = &a;
            break;
        }
    if (!allowed) {
        if (host.find(':') != std::string_view::npos)
            return {Outcome::deny, "no allow rule",
                    "no network.allow rule matches " + target +
                        "; host rules cannot name IPv6 addresses, so reach it by a host name "
                        "that network.allow lists"};
        const std::string rule = suggested_rule(host, port);
        return {Outcome::deny, "no allow rule",
                "no network.allow rule matches " + target + "; add " + quoted(rule) +
                    " to network.allow in the policy, or pass --allow " + rule +
                    " where the policy lets flags add hosts"};
    }
    if (kind == RequestKind::absolute &&
        std::find(config.methods.begin(), config.methods.end(), method) == config.methods.end()) {
        std::string listed;
        for (const auto& m : config.methods)
            listed += (listed.empty() ? "" : ", ") + m;
        return {Outcome::deny, "method " + std::string(method),
                "the plain-HTTP method " + std::string(method) + " is not in network.methods (" +
                    (listed.empty() ? "empty" : listed) + "); add " + quoted(method) +
                    " to network.methods in the policy to allow it"};
    }
    return {Outcome::allow, "network.allow " + quoted(allowed->text),
            "network.allow " + quoted(allowed->text) + " matches " + target};
}

Verdict private_address_verdict(std::string_view host, const std::vector<IpAddress>& refused) {
    std::string list;
    for (const auto& a : refused)
        list +=
            (list.empty() ? "" : ", ") + to_string(a) + " (" + to_string(classify_address(a)) + ")";
    const IpAddress& first = refused.front();
    return {Outcome::deny, "private address " + to_string(first),
            std::string(host) + " resolves only to addresses the proxy does not reach: " + list +
                "; to allow it, add its CIDR to network.allow_cidrs (or --allow-cidr " +
                host_cidr(first) + ")"};
}

Verdict sni_mismatch_verdict(std::string_view connect_host, std::string_view sni_or_problem,
                             bool have_sni) {
    if (have_sni)
        return {Outcome::cut, "sni mismatch",
                "the TLS ClientHello names " + quoted(sni_or_problem) + " but the CONNECT was to " +
                    quoted(connect_host) + "; a client must ask the tunnel for the host it names"};
    return {Outcome::cut, "sni mismatch",
            "the tunnel to " + quoted(connect_host) +
                " did not start with a TLS ClientHello "
                "naming it (" +
                std::string(sni_or_problem) +
                "); the proxy only tunnels TLS to the "
                "host the CONNECT names"};
}

Verdict budget_verdict(std::string_view host, std::uint64_t budget, Outcome outcome) {
    return {outcome, "upload budget",
            "the upload budget of " + std::to_string(budget) + " bytes for " + std::string(host) +
                " is spent; raise network.upload_budget in the policy to send more"};
}

std::string refusal_response(int status, std::string_view reason) {
    std::string line(reason);
    for (char& c : line)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = ' ';
    const std::string body = "airlock egress: " + line + "\n";
    return "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) +
           "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Airlock-Deny-Reason: " + line +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
           body;
}

} // namespace airlock::egress
