#include "egress/config.hpp"

#include "util/http_text.hpp"

#include <nlohmann/json.hpp>

#include "egress/address.hpp"

#include <arpa/inet.h>

#include <array>
#include <cctype>

namespace airlock::egress {

using util::iequals;
using util::is_token;
using util::is_token_char;

namespace {

using nlohmann::json;
using util::ErrorKind;
using util::make_error;

constexpr std::array k_fields = {"mode",
                                 "allow",
                                 "deny",
                                 "methods",
                                 "allow_cidrs",
                                 "upload_budget",
                                 "listen",
                                 "max_connections",
                                 "head_timeout_ms",
                                 "hello_timeout_ms",
                                 "connect_timeout_ms",
                                 "credentials",
                                 "credential_listen",
                                 "ca_file"};
constexpr std::array k_credential_fields = {"name",   "host",     "port",         "base_path",
                                            "header", "template", "max_requests", "max_bytes"};
constexpr std::array k_credential_required = {"name", "host", "header", "template"};
constexpr std::array k_required = {"mode",        "allow",         "deny",  "methods",
                                   "allow_cidrs", "upload_budget", "listen"};

util::Error invalid(const std::string& pointer, const std::string& message) {
    return make_error(ErrorKind::invalid_input,
                      pointer.empty() ? message : pointer + ": " + message);
}

std::optional<util::Error> unknown_fields(const json& object, const std::string& pointer,
                                          auto known) {
    for (const auto& item : object.items()) {
        bool found = false;
        for (std::string_view k : known)
            found = found || item.key() == k;
        if (found) continue;
        std::string message = "unknown field \"" + item.key() + "\"";
        if (auto near = util::closest_in(item.key(), known))
            message += " (did you mean \"" + *near + "\"?)";
        return invalid(pointer + "/" + item.key(), message);
    }
    return std::nullopt;
}

std::optional<util::Error> string_list(const json& doc, const char* field,
                                       std::vector<std::string>& out) {
    const json& v = doc.at(field);
    const std::string pointer = std::string("/") + field;
    if (!v.is_array()) return invalid(pointer, "must be an array of strings");
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_string())
            return invalid(pointer + "/" + std::to_string(i), "must be a string");
        out.push_back(v[i].get<std::string>());
    }
    return std::nullopt;
}

std::optional<util::Error> host_rules(const json& doc, const char* field,
                                      std::vector<NamedRule>& out) {
    std::vector<std::string> texts;
    if (auto e = string_list(doc, field, texts)) return e;
    for (std::size_t i = 0; i < texts.size(); ++i) {
        auto rule = policy::parse_host_rule(texts[i]);
        if (!rule)
            return invalid(std::string("/") + field + "/" + std::to_string(i),
                           "\"" + texts[i] + "\" " +
                               policy::host_rule_problem(texts[i]).value_or("is not a host rule"));
        out.push_back({texts[i], *rule});
    }
    return std::nullopt;
}

std::optional<util::Error> bounded_int(const json& doc, const char* field, int low, int high,
                                       int& out) {
    if (!doc.contains(field)) return std::nullopt;
    const json& v = doc.at(field);
    if (!v.is_number_integer() || v.get<long long>() < low || v.get<long long>() > high)
        return invalid(std::string("/") + field, "must be a whole number from " +
                                                     std::to_string(low) + " to " +
                                                     std::to_string(high));
    out = v.get<int>();
    return std::nullopt;
}

std::optional<util::Error> absolute_path(const json& v, const std::string& pointer,
                                         std::size_t max_size, std::string& out) {
    if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().front() != '/')
        return invalid(pointer, "must be an absolute path");
    out = v.get<std::string>();
    if (out.size() > max_size)
        return invalid(pointer, "is longer than " + std::to_string(max_size) + " bytes");
    if (out.find('\0') != std::string::npos) return invalid(pointer, "contains a NUL byte");
    return std::nullopt;
}

bool is_endpoint_name(std::string_view s) {
    if (s.empty() || s.size() > 63) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char ch = s[i];
        const bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || (ch != '-' && ch != '_'))) return false;
    }
    return true;
}

// A DNS name (lower-cased, no trailing dot) or an IP literal; false otherwise.
bool normalise_host(std::string& host) {
    for (char& ch : host)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (parse_ip(host)) return true;
    if (!host.empty() && host.back() == '.') host.pop_back();
    if (host.empty() || host.size() > 253) return false;
    std::size_t start = 0;
    while (true) {
        const auto dot = host.find('.', start);
        const std::string_view label =
            std::string_view(host).substr(start, dot == std::string::npos ? dot : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        for (char ch : label)
            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
                return false;
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    // "127.1" and "2130706433" are addresses to getaddrinfo but not dotted quads.
    in_addr a4{};
    return inet_aton(host.c_str(), &a4) == 0;
}

std::optional<util::Error> optional_limit(const json& object, const std::string& pointer,
                                          const char* field, std::optional<std::uint64_t>& out) {
    if (!object.contains(field) || object.at(field).is_null()) return std::nullopt;
    const json& v = object.at(field);
    if (!v.is_number_unsigned() || v.get<std::uint64_t>() == 0)
        return invalid(pointer + "/" + field,
                       "must be a positive whole number, or null for no limit");
    out = v.get<std::uint64_t>();
    return std::nullopt;
}

std::optional<util::Error> string_field(const json& object, const std::string& pointer,
                                        const char* field, std::string& out) {
    if (!object.contains(field)) return std::nullopt;
    if (!object.at(field).is_string()) return invalid(pointer + "/" + field, "must be a string");
    out = object.at(field).get<std::string>();
    return std::nullopt;
}

std::optional<util::Error> credential(const json& v, const std::string& p, Credential& c) {
    if (!v.is_object()) return invalid(p, "must be an object with name, host, header and template");
    if (auto e = unknown_fields(v, p, k_credential_fields)) return e;
    for (std::string_view field : k_credential_required)
        if (!v.contains(field)) return invalid(p + "/" + std::string(field), "is required");

    if (auto e = string_field(v, p, "name", c.name)) return e;
    if (!is_endpoint_name(c.name))
        return invalid(p + "/name",
                       "\"" + c.name +
                           "\" is not an endpoint name (lower-case letters, digits, "
                           "'-' and '_', starting with a letter or digit, at most 63)");
    if (auto e = string_field(v, p, "host", c.host)) return e;
    const std::string host_text = c.host;
    if (!normalise_host(c.host))
        return invalid(p + "/host", "\"" + host_text +
                                        "\" is not a host name or IP address (e.g. "
                                        "\"api.openai.com\")");
    if (v.contains("port")) {
        const json& port = v.at("port");
        if (!port.is_number_integer() || port.get<long long>() < 1 || port.get<long long>() > 65535)
            return invalid(p + "/port", "must be a whole number from 1 to 65535");
        c.port = static_cast<std::uint16_t>(port.get<long long>());
    }
    if (auto e = string_field(v, p, "base_path", c.base_path)) return e;
    if (!c.base_path.empty()) {
        bool ok = c.base_path.front() == '/' && c.base_path.back() != '/';
        for (char ch : c.base_path)
            ok = ok && ch != '?' && ch != '#' && static_cast<unsigned char>(ch) > 0x20 &&
                 static_cast<unsigned char>(ch) != 0x7f;
        if (!ok)
            return invalid(p + "/base_path", "\"" + c.base_path +
                                                 "\" is not a base path (\"\" or like \"/v1\": "
                                                 "starts with \"/\", no trailing \"/\", no "
                                                 "\"?\", \"#\" or spaces)");
    }
    if (auto e = string_field(v, p, "header", c.header)) return e;
    if (!is_token(c.header))
        return invalid(p + "/header",
                       "\"" + c.header + "\" is not an HTTP header name (e.g. \"Authorization\")");
    for (const char* framing : {"Host", "Content-Length", "Transfer-Encoding", "Connection"})
        if (iequals(c.header, framing))
            return invalid(p + "/header", "\"" + c.header +
                                              "\" cannot carry a credential (it frames or routes "
                                              "the request); use e.g. \"Authorization\"");
    if (auto e = string_field(v, p, "template", c.header_template)) return e;
    const auto at = c.header_template.find("{secret}");
    if (at == std::string::npos || c.header_template.find("{secret}", at + 1) != std::string::npos)
        return invalid(p + "/template",
                       "must hold \"{secret}\" exactly once (e.g. \"Bearer {secret}\")");
    if (c.header_template.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
        return invalid(p + "/template", "contains a CR, LF or NUL byte");
    if (auto e = optional_limit(v, p, "max_requests", c.max_requests)) return e;
    if (auto e = optional_limit(v, p, "max_bytes", c.max_bytes)) return e;
    return std::nullopt;
}

std::optional<util::Error> credentials(const json& doc, Config& c) {
    if (doc.contains("credentials") && !doc.at("credentials").is_null()) {
        const json& list = doc.at("credentials");
        if (!list.is_array()) return invalid("/credentials", "must be an array of endpoints");
        for (std::size_t i = 0; i < list.size(); ++i) {
            const std::string pointer = "/credentials/" + std::to_string(i);
            Credential cred;
            if (auto e = credential(list[i], pointer, cred)) return e;
            for (const auto& other : c.credentials)
                if (other.name == cred.name)
                    return invalid(pointer + "/name",
                                   "\"" + cred.name + "\" names two endpoints (names are unique)");
            c.credentials.push_back(std::move(cred));
        }
    }
    if (c.credentials.empty()) {
        if (doc.contains("credential_listen"))
            return invalid("/credential_listen",
                           "is set but there are no credentials (remove it, or add credentials)");
        if (doc.contains("ca_file"))
            if (auto e = absolute_path(doc.at("ca_file"), "/ca_file", 4096, c.ca_file)) return e;
        return std::nullopt;
    }
    if (!doc.contains("credential_listen"))
        return invalid("/credential_listen", "is required when credentials are configured");
    if (auto e = absolute_path(doc.at("credential_listen"), "/credential_listen", 107,
                               c.credential_listen))
        return e;
    if (c.credential_listen == c.listen)
        return invalid("/credential_listen", "must differ from listen");
    if (!doc.contains("ca_file"))
        return invalid("/ca_file", "is required when credentials are configured");
    return absolute_path(doc.at("ca_file"), "/ca_file", 4096, c.ca_file);
}

std::optional<util::Error> fill(const json& doc, Config& c) {
    if (!doc.is_object()) return invalid("", "the configuration must be a JSON object");
    if (auto e = unknown_fields(doc, "", k_fields)) return e;
    for (std::string_view field : k_required)
        if (!doc.contains(field)) return invalid("/" + std::string(field), "is required");

    const json& mode = doc.at("mode");
    if (mode == "allowlist")
        c.mode = Mode::allowlist;
    else if (mode == "audit")
        c.mode = Mode::audit;
    else
        return invalid("/mode", "must be \"allowlist\" or \"audit\"");

    if (auto e = host_rules(doc, "allow", c.allow)) return e;
    if (auto e = host_rules(doc, "deny", c.deny)) return e;

    if (auto e = string_list(doc, "methods", c.methods)) return e;
    for (std::size_t i = 0; i < c.methods.size(); ++i) {
        const std::string& m = c.methods[i];
        bool token = !m.empty();
        for (char ch : m)
            token = token && is_token_char(ch);
        if (!token)
            return invalid("/methods/" + std::to_string(i),
                           "\"" + m + "\" is not an HTTP method (e.g. \"GET\")");
    }

    std::vector<std::string> cidrs;
    if (auto e = string_list(doc, "allow_cidrs", cidrs)) return e;
    for (std::size_t i = 0; i < cidrs.size(); ++i) {
        auto cidr = policy::parse_cidr(cidrs[i]);
        if (!cidr)
            return invalid("/allow_cidrs/" + std::to_string(i),
                           "\"" + cidrs[i] +
                               "\" is not a CIDR (e.g. \"10.0.0.0/8\", \"fd00::/8\")");
        c.allow_cidrs.push_back({cidrs[i], *cidr});
    }

    const json& budget = doc.at("upload_budget");
    if (budget.is_number_unsigned())
        c.upload_budget = budget.get<std::uint64_t>();
    else if (!budget.is_null())
        return invalid("/upload_budget", "must be a whole number of bytes, or null for no budget");

    if (auto e = absolute_path(doc.at("listen"), "/listen", 107, c.listen)) return e;

    if (auto e = bounded_int(doc, "max_connections", 1, 65536, c.max_connections)) return e;
    if (auto e = bounded_int(doc, "head_timeout_ms", 1, 600000, c.head_timeout_ms)) return e;
    if (auto e = bounded_int(doc, "hello_timeout_ms", 1, 600000, c.hello_timeout_ms)) return e;
    if (auto e = bounded_int(doc, "connect_timeout_ms", 1, 600000, c.connect_timeout_ms)) return e;
    return credentials(doc, c);
}

} // namespace

util::Result<Config> parse_config(std::string_view json_text) {
    json doc = json::parse(json_text, nullptr, false);
    if (doc.is_discarded())
        return make_error(ErrorKind::invalid_input, "the configuration is not valid JSON");
    Config c;
    if (auto e = fill(doc, c)) return *e;
    return c;
}

} // namespace airlock::egress
