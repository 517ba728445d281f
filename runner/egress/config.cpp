#include "egress/config.hpp"

#include <nlohmann/json.hpp>

#include <array>

namespace airlock::egress {

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
                                 "connect_timeout_ms"};
constexpr std::array k_required = {"mode",        "allow",         "deny",  "methods",
                                   "allow_cidrs", "upload_budget", "listen"};

util::Error invalid(const std::string& pointer, const std::string& message) {
    return make_error(ErrorKind::invalid_input,
                      pointer.empty() ? message : pointer + ": " + message);
}

bool is_token_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
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
    return std::nullopt;
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
