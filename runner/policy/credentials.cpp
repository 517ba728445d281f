#include "policy/credentials.hpp"

#include "util/http_text.hpp"

#include "policy/patterns.hpp"
#include "util/closest.hpp"
#include "util/units.hpp"

#include <array>
#include <set>
#include <variant>

namespace airlock::policy {

using util::has_ctl;
using util::is_token;
using util::to_lower;

using nlohmann::json;
using util::ErrorKind;
using util::make_error;
using util::Result;

namespace {

constexpr std::array k_entry_fields = {"secret", "upstream",     "header",
                                       "env",    "max_requests", "max_bytes"};
constexpr std::size_t k_max_value = 64u << 10;

bool valid_endpoint_name(const std::string& s) {
    if (s.empty() || s.size() > 63) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '-' && c != '_'))) return false;
    }
    return true;
}

bool valid_variable(const std::string& s) {
    if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
    for (char c : s)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    return true;
}

std::size_t count_of(std::string_view s, std::string_view what) {
    std::size_t n = 0;
    for (auto at = s.find(what); at != std::string_view::npos; at = s.find(what, at + 1))
        ++n;
    return n;
}

struct Upstream {
    std::string host;
    std::uint16_t port = 443;
    std::string base_path;
};

// https://host[:port][/path]; the problem in words otherwise.
std::variant<Upstream, std::string> parse_upstream(const std::string& url) {
    if (url.find(k_secret_placeholder) != std::string::npos)
        return std::string("would put the secret in a URL, where logs and proxies keep it (a "
                           "credential travels only in its header)");
    if (to_lower(url.substr(0, 7)) == "http://")
        return std::string("is plain HTTP; a credential only travels over TLS (use https://)");
    if (to_lower(url.substr(0, 8)) != "https://")
        return std::string("is not an https:// URL (use e.g. \"https://api.openai.com\")");
    std::string rest = url.substr(8);
    if (has_ctl(rest) || rest.find_first_of(" ?#@\\") != std::string::npos)
        return std::string("may hold only a host, a port and a path (no user, query, fragment or "
                           "spaces)");
    Upstream u;
    const auto slash = rest.find('/');
    const std::string authority = rest.substr(0, slash);
    if (slash != std::string::npos) u.base_path = rest.substr(slash);
    while (!u.base_path.empty() && u.base_path.back() == '/')
        u.base_path.pop_back();
    if (u.base_path.find("//") != std::string::npos ||
        u.base_path.find("/../") != std::string::npos || u.base_path.ends_with("/.."))
        return std::string("has a path with empty or \"..\" segments");
    std::string host;
    std::optional<std::string> port;
    if (!authority.empty() && authority[0] == '[') {
        const auto close = authority.find(']');
        if (close == std::string::npos) return std::string("has an unclosed IPv6 literal");
        host = authority.substr(1, close - 1);
        const std::string after = authority.substr(close + 1);
        if (!after.empty() && after[0] != ':')
            return std::string("has text after the IPv6 literal");
        if (!after.empty()) port = after.substr(1);
    } else {
        const auto colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string::npos) port = authority.substr(colon + 1);
    }
    if (port) {
        if (port->empty() || port->size() > 5 ||
            port->find_first_not_of("0123456789") != std::string::npos || std::stoul(*port) == 0 ||
            std::stoul(*port) > 65535)
            return std::string("has a port that is not 1 to 65535");
        u.port = static_cast<std::uint16_t>(std::stoul(*port));
    }
    u.host = to_lower(host);
    const bool ipv6 = u.host.find(':') != std::string::npos;
    if (u.host.empty() || u.host.find('*') != std::string::npos ||
        (!ipv6 && host_rule_problem(u.host)))
        return std::string("does not name a host (use e.g. \"https://api.openai.com\")");
    return u;
}

// "Name: template" -> name, template.
std::variant<std::pair<std::string, std::string>, std::string>
parse_header(const std::string& text) {
    const auto colon = text.find(':');
    if (colon == std::string::npos)
        return std::string("is not \"Name: value\" (use e.g. \"Authorization: Bearer {secret}\")");
    std::string name = text.substr(0, colon);
    std::string value = text.substr(colon + 1);
    while (!value.empty() && value.front() == ' ')
        value.erase(0, 1);
    while (!value.empty() && value.back() == ' ')
        value.pop_back();
    if (!is_token(name)) return std::string("has a header name that is not an HTTP token");
    const std::string l = to_lower(name);
    if (l == "host" || l == "content-length" || l == "transfer-encoding" || l == "connection")
        return "may not set " + name + " (the sidecar controls it)";
    if (has_ctl(text)) return std::string("holds control characters");
    if (count_of(name, k_secret_placeholder) > 0 || count_of(value, k_secret_placeholder) != 1)
        return std::string("must hold {secret} exactly once, in the value (e.g. "
                           "\"x-api-key: {secret}\")");
    return std::make_pair(name, value);
}

} // namespace

std::optional<json> parse_credentials(const json& section, const std::string& pointer,
                                      std::vector<CredentialProblem>& problems) {
    auto problem = [&](const std::string& p, std::string m) {
        problems.push_back({p, std::move(m)});
    };
    const std::size_t before = problems.size();
    if (!section.is_object()) {
        problem(pointer, "must be an object: endpoint name -> {secret, upstream, header, ...}");
        return std::nullopt;
    }
    json out = json::object();
    for (auto it = section.begin(); it != section.end(); ++it) {
        const std::string name = it.key();
        const std::string p = pointer + "/" + name;
        if (!valid_endpoint_name(name)) {
            problem(p, "\"" + name +
                           "\" is not an endpoint name (lower-case letters, digits, - and _, "
                           "e.g. \"openai\")");
            continue;
        }
        const json& e = *it;
        if (!e.is_object()) {
            problem(p, "must be an object with secret, upstream and header");
            continue;
        }
        for (auto f = e.begin(); f != e.end(); ++f) {
            bool known = false;
            for (std::string_view k : k_entry_fields)
                known = known || f.key() == k;
            if (known) continue;
            auto near = util::closest_in(f.key(), k_entry_fields);
            problem(p + "/" + f.key(),
                    "unknown field" + (near ? " (did you mean \"" + *near + "\"?)"
                                            : std::string(" (known: secret, upstream, header, "
                                                          "env, max_requests, max_bytes)")));
        }
        json entry = json::object();
        for (const char* required : {"secret", "upstream", "header"})
            if (!e.contains(required) || !e[required].is_string())
                problem(p + "/" + required, "is required and must be a string");
        if (e.contains("secret") && e["secret"].is_string()) {
            const std::string s = e["secret"].get<std::string>();
            if (!valid_variable(s))
                problem(p + "/secret", "\"" + s +
                                           "\" is not a variable name (the value is read from "
                                           "airlock's environment variable of that name)");
            entry["secret"] = s;
        }
        if (e.contains("upstream") && e["upstream"].is_string()) {
            const std::string url = e["upstream"].get<std::string>();
            auto u = parse_upstream(url);
            if (auto* why = std::get_if<std::string>(&u))
                problem(p + "/upstream", "\"" + url + "\" " + *why);
            std::string canonical = url;
            while (canonical.size() > 8 && canonical.back() == '/')
                canonical.pop_back();
            entry["upstream"] = canonical;
        }
        if (e.contains("header") && e["header"].is_string()) {
            const std::string h = e["header"].get<std::string>();
            auto parsed = parse_header(h);
            if (auto* why = std::get_if<std::string>(&parsed))
                problem(p + "/header", "\"" + h + "\" " + *why);
            entry["header"] = h;
        }
        entry["env"] = json::object();
        if (e.contains("env")) {
            if (!e["env"].is_object()) {
                problem(p + "/env", "must be an object: variable name -> value");
            } else {
                for (auto v = e["env"].begin(); v != e["env"].end(); ++v) {
                    const std::string vp = p + "/env/" + v.key();
                    if (!valid_variable(v.key()))
                        problem(vp, "\"" + v.key() + "\" is not a variable name");
                    else if (!v->is_string())
                        problem(vp, "must be a string");
                    else if (v->get<std::string>().find(k_secret_placeholder) != std::string::npos)
                        problem(vp, "would put the secret into the agent container (use a "
                                    "placeholder such as \"airlock-placeholder\", or "
                                    "\"{endpoint}\")");
                    else if (has_ctl(v->get<std::string>()))
                        problem(vp, "holds control characters");
                    else
                        entry["env"][v.key()] = *v;
                }
            }
        }
        entry["max_requests"] = nullptr;
        if (e.contains("max_requests") && !e["max_requests"].is_null()) {
            const json& m = e["max_requests"];
            if (!m.is_number_integer() || m.get<std::int64_t>() < 1)
                problem(p + "/max_requests", "must be a whole number of at least 1, or null");
            else
                entry["max_requests"] = m;
        }
        entry["max_bytes"] = nullptr;
        if (e.contains("max_bytes") && !e["max_bytes"].is_null()) {
            const json& m = e["max_bytes"];
            std::optional<std::uint64_t> bytes;
            if (m.is_number_unsigned() && m.get<std::uint64_t>() > 0)
                bytes = m.get<std::uint64_t>();
            else if (m.is_string())
                if (auto r = util::parse_size(m.get<std::string>(), p + "/max_bytes"); r && *r > 0)
                    bytes = *r;
            if (!bytes)
                problem(p + "/max_bytes", "must be a positive size such as \"100m\", or null");
            else
                entry["max_bytes"] = *bytes;
        }
        out[name] = entry;
    }
    if (problems.size() != before) return std::nullopt;
    return out;
}

bool credentials_tighten(const json& old, const json& neu) {
    if (old.is_null()) return true; // the first layer that defines endpoints
    if (!neu.is_object()) return false;
    auto budget_tighter = [](const json& o, const json& n) {
        if (o.is_null()) return true;
        return !n.is_null() && n.get<std::uint64_t>() <= o.get<std::uint64_t>();
    };
    for (auto it = neu.begin(); it != neu.end(); ++it) {
        if (!old.contains(it.key())) return false;
        const json& o = old[it.key()];
        const json& n = *it;
        for (const char* same : {"secret", "upstream", "header", "env"})
            if (o.value(same, json()) != n.value(same, json())) return false;
        if (!budget_tighter(o["max_requests"], n["max_requests"]) ||
            !budget_tighter(o["max_bytes"], n["max_bytes"]))
            return false;
    }
    return true;
}

std::string format_credentials(const json& value) {
    if (!value.is_object() || value.empty()) return "none";
    std::string out;
    for (auto it = value.begin(); it != value.end(); ++it)
        out += (out.empty() ? "" : ", ") + it.key() + " (" + it->value("upstream", std::string()) +
               ")";
    return out;
}

Result<std::vector<config::Credential>> resolve_credentials(
    const Policy& policy, const config::RunRequest& req, const config::RunOptions& opts,
    const std::function<std::optional<std::string>(const std::string&)>& lookup_env) {
    std::vector<config::Credential> out;
    auto it = req.lists.find("credentials");
    if (it == req.lists.end() || it->second.empty()) return out;
    const json& defined = policy.get("credentials");
    const std::string from = "credentials from " + policy.origin("credentials");
    if (!opts.network.proxied())
        return make_error(ErrorKind::invalid_input,
                          it->second.front().second +
                              ": a credential endpoint needs --network allowlist or audit (the "
                              "egress sidecar holds the key); the network mode is " +
                              opts.network.mode);
    std::set<std::string> seen;
    for (const auto& [spec, where] : it->second) {
        const auto at = spec.find("=@");
        const std::string name = spec.substr(0, at);
        if (!defined.is_object() || !defined.contains(name)) {
            std::string names = format_credentials(defined);
            return make_error(ErrorKind::refused,
                              where + ": the policy defines no credential endpoint \"" + name +
                                  "\" (defined: " + names + (defined.is_null() ? "" : "; " + from) +
                                  "); add it to the policy's credentials section");
        }
        if (!seen.insert(name).second)
            return make_error(ErrorKind::invalid_input, where + ": " + name + " is given twice");
        const json& e = defined[name];
        config::Credential c;
        c.name = name;
        c.origin = where;
        c.upstream = e["upstream"].get<std::string>();
        auto u = std::get<Upstream>(parse_upstream(c.upstream));
        c.host = u.host;
        c.port = u.port;
        c.base_path = u.base_path;
        auto h = std::get<std::pair<std::string, std::string>>(
            parse_header(e["header"].get<std::string>()));
        c.header = h.first;
        c.value_template = h.second;
        if (!e["max_requests"].is_null()) c.max_requests = e["max_requests"].get<std::uint64_t>();
        if (!e["max_bytes"].is_null()) c.max_bytes = e["max_bytes"].get<std::uint64_t>();
        const std::string endpoint = "http://127.0.0.1:3129/" + name;
        for (auto v = e["env"].begin(); v != e["env"].end(); ++v) {
            std::string value = v->get<std::string>();
            for (auto p = value.find(k_endpoint_placeholder); p != std::string::npos;
                 p = value.find(k_endpoint_placeholder, p + endpoint.size()))
                value.replace(p, std::string_view(k_endpoint_placeholder).size(), endpoint);
            c.env.emplace_back(v.key(), value);
        }
        const std::string variable = e["secret"].get<std::string>();
        if (at == std::string::npos) {
            auto v = lookup_env(variable);
            if (!v || v->empty())
                return make_error(ErrorKind::invalid_input,
                                  where + ": credential " + name + " needs " + variable +
                                      ", which is not set in airlock's environment (export it, "
                                      "or pass --credential " +
                                      name + "=@FILE)");
            c.secret = variable;
            c.value = *v;
        } else {
            auto value = config::read_secret_file(spec.substr(at + 2), where);
            if (!value) return value.error();
            c.value = std::move(*value);
            c.secret = "FILE";
        }
        if (c.value.size() < 8)
            return make_error(ErrorKind::invalid_input,
                              where + ": the value for credential " + name +
                                  " is shorter than 8 bytes; airlock redacts secrets from "
                                  "everything it writes and cannot do so safely for values that "
                                  "short");
        if (c.value.size() > k_max_value)
            return make_error(ErrorKind::invalid_input, where + ": the value for credential " +
                                                            name + " is larger than 64 KiB");
        if (has_ctl(c.value))
            return make_error(ErrorKind::invalid_input,
                              where + ": the value for credential " + name +
                                  " holds control characters (a line break would let it end "
                                  "its header); check the variable or file");
        // The key stays in the sidecar: no other way into the container may carry it.
        for (const auto& [var, value] : opts.env) {
            if (value.find(c.value) != std::string::npos)
                return make_error(ErrorKind::invalid_input,
                                  "--env " + var + ": its value holds credential " + name +
                                      "'s secret, which must stay out of the container (drop "
                                      "--env " +
                                      var + ")");
            for (const auto& [cvar, cvalue] : c.env)
                if (var == cvar)
                    return make_error(ErrorKind::invalid_input,
                                      "--env " + var + ": credential " + name +
                                          " sets this variable for the task (drop --env " + var +
                                          ")");
        }
        for (const auto& s : opts.secrets)
            if (s.value.find(c.value) != std::string::npos)
                return make_error(ErrorKind::invalid_input,
                                  "--secret " + s.name + ": its value holds credential " + name +
                                      "'s secret, which must stay out of the container (drop "
                                      "--secret " +
                                      s.name + ")");
        out.push_back(std::move(c));
    }
    return out;
}

} // namespace airlock::policy
