// Reading one policy document: JSON syntax with line and column, unknown fields with the
// closest known name, and every leaf checked and made canonical by its kind.
#include "policy/approvers.hpp"
#include "policy/capability.hpp"
#include "policy/credentials.hpp"
#include "policy/patterns.hpp"
#include "policy/policy.hpp"
#include "util/json_text.hpp"
#include "util/sha256.hpp"
#include "util/units.hpp"

#include <set>

namespace airlock::policy {

using nlohmann::json;

std::string Problem::str() const {
    std::string s = file + ": ";
    if (!pointer.empty()) s += pointer + ": ";
    return s + message;
}

namespace {

const std::vector<std::string_view> k_meta = {"$schema", "name", "description", "extends"};

std::string quoted(const json& v) {
    return v.is_string() ? "\"" + v.get<std::string>() + "\"" : v.dump();
}

const char* type_name(const json& v) {
    switch (v.type()) {
    case json::value_t::null:
        return "null";
    case json::value_t::boolean:
        return "a boolean";
    case json::value_t::string:
        return "a string";
    case json::value_t::array:
        return "an array";
    case json::value_t::object:
        return "an object";
    case json::value_t::discarded:
        return "nothing";
    default:
        return "a number";
    }
}

// The JSON text as a string for the unit parsers: numbers as written, strings as they are.
std::optional<std::string> scalar_text(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number()) return v.dump();
    return std::nullopt;
}

class Reader {
public:
    Reader(std::string source, std::filesystem::path dir)
        : m_source(std::move(source)), m_dir(std::move(dir)) {}
    std::vector<Problem> problems;

    void problem(const std::string& pointer, const std::string& message) {
        problems.push_back({m_source, pointer, message});
    }

    // Returns the canonical value, or nullopt after recording a problem.
    std::optional<json> leaf(const FieldSpec& spec, const json& v, const std::string& ptr) {
        switch (spec.kind) {
        case Kind::text:
        case Kind::set_once:
            if (!v.is_string() || v.get<std::string>().empty())
                return bad(ptr, "must be a non-empty string", v);
            return v;
        case Kind::size_default:
        case Kind::size_max:
            return size(spec, v, ptr);
        case Kind::duration_default:
        case Kind::duration_max: {
            auto text = scalar_text(v);
            if (!text) return bad(ptr, "must be a duration such as \"30m\" or \"90s\"", v);
            auto r = util::parse_duration(*text, ptr);
            if (!r || r->count() <= 0) {
                problem(ptr, quoted(v) + " is not a positive duration (use e.g. \"30m\", \"90s\")");
                return std::nullopt;
            }
            return json(r->count());
        }
        case Kind::cpus_default:
        case Kind::cpus_max: {
            auto text = scalar_text(v);
            if (!text) return bad(ptr, "must be a CPU count such as 1 or \"0.5\"", v);
            auto r = util::parse_cpus(*text, ptr);
            if (!r || *r <= 0) {
                problem(ptr, quoted(v) + " is not a positive CPU count (use e.g. 1 or \"0.5\")");
                return std::nullopt;
            }
            return json(*r);
        }
        case Kind::count_default:
        case Kind::count_max: {
            const bool zero_ok = spec.path == "gate/max_changed_files";
            if (!v.is_number_integer() && !(v.is_string() && !v.get<std::string>().empty()))
                return bad(ptr, "must be a whole number", v);
            std::int64_t n = -1;
            if (v.is_number_unsigned() || v.is_number_integer())
                n = v.is_number_unsigned() && v.get<std::uint64_t>() > (1ull << 62)
                        ? (1ll << 62)
                        : v.get<std::int64_t>();
            else {
                auto r = util::parse_count(v.get<std::string>(), ptr, 1ll << 62);
                if (r) n = *r;
            }
            if (n < (zero_ok ? 0 : 1)) {
                problem(ptr, quoted(v) + " is not possible (use a whole number of at least " +
                                 (zero_ok ? "0" : "1") + ")");
                return std::nullopt;
            }
            return json(n);
        }
        case Kind::subset:
        case Kind::superset:
            return enum_list(spec, v, ptr);
        case Kind::globs:
            return list(v, ptr, [](const std::string& s) { return path_glob_problem(s); });
        case Kind::prefixes:
            return list(v, ptr, [](const std::string& s) -> std::optional<std::string> {
                if (auto p = prefix_pattern_problem(s)) return p;
                auto at = s.find('@');
                if (at != std::string::npos) {
                    std::string_view d = std::string_view(s).substr(at + 1);
                    bool ok = d.substr(0, 7) == "sha256:" && d.size() == 71;
                    for (char c : d.substr(std::min<std::size_t>(7, d.size())))
                        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) ok = false;
                    if (!ok)
                        return "has a malformed digest (use name@sha256: and 64 lower-case hex "
                               "digits)";
                }
                return std::nullopt;
            });
        case Kind::names:
            return list(v, ptr, [](const std::string& s) { return name_pattern_problem(s); });
        case Kind::hosts_allow:
            return list(v, ptr, [](const std::string& s) -> std::optional<std::string> {
                if (auto p = host_rule_problem(s)) return p;
                if (s.substr(0, 2) == "*." && s.find('.', 2) == std::string::npos)
                    return "allows a whole top-level domain (use e.g. \"*.example.com\")";
                return std::nullopt;
            });
        case Kind::hosts_deny:
            return list(v, ptr, [](const std::string& s) { return host_rule_problem(s); });
        case Kind::cidrs:
            return list(v, ptr, [](const std::string& s) -> std::optional<std::string> {
                auto c = parse_cidr(s);
                if (!c) return "is not a CIDR (use e.g. \"10.0.0.0/8\" or \"fd00::/8\")";
                Cidr canonical = *c;
                int bits = c->bits;
                for (int i = 0; i < 16; ++i) {
                    int keep = std::clamp(bits - i * 8, 0, 8);
                    canonical.addr[i] &=
                        static_cast<unsigned char>(keep == 0 ? 0 : 0xff << (8 - keep));
                }
                for (int i = 0; i < 16; ++i)
                    if (canonical.addr[i] != c->addr[i])
                        return "has host bits set (write the network address, e.g. "
                               "\"10.0.0.0/8\")";
                return std::nullopt;
            });
        case Kind::credentials: {
            std::vector<CredentialProblem> found;
            auto out = parse_credentials(v, ptr, found);
            for (auto& f : found)
                problem(f.pointer, f.message);
            return out;
        }
        case Kind::capabilities:
        case Kind::capability_allow:
            return list(v, ptr, [](const std::string& s) { return capability_problem(s); });
        case Kind::approvers: {
            std::vector<ApproverProblem> found;
            auto out = parse_approvers(v, ptr, m_dir, found);
            for (auto& f : found)
                problem(f.pointer, f.message);
            return out;
        }
        case Kind::true_is_tight:
        case Kind::false_is_tight:
            if (!v.is_boolean()) return bad(ptr, "must be true or false", v);
            return v;
        case Kind::choice:
        case Kind::inject:
            if (!v.is_string()) return bad(ptr, "must be a string", v);
            if (!known(spec, v.get<std::string>())) {
                problem(ptr, quoted(v) + " is not one of " + choices(spec) +
                                 suggestion(spec, v.get<std::string>()));
                return std::nullopt;
            }
            return v;
        case Kind::min_uid:
            if (!v.is_number_integer() || v.get<std::int64_t>() < 1 ||
                v.get<std::int64_t>() > 4294967294ll) {
                problem(ptr, quoted(v) + " is not a UID from 1 to 4294967294 (0 is root, which "
                                         "agents never run as)");
                return std::nullopt;
            }
            return v;
        case Kind::user: {
            if (!v.is_string()) return bad(ptr, "must be a string \"UID:GID\"", v);
            std::string s = v.get<std::string>();
            auto colon = s.find(':');
            std::string uid = s.substr(0, colon);
            std::string gid = colon == std::string::npos ? uid : s.substr(colon + 1);
            auto numeric = [](const std::string& x) {
                return !x.empty() && x.size() <= 10 &&
                       x.find_first_not_of("0123456789") == std::string::npos &&
                       std::stoull(x) <= 4294967294ull;
            };
            if (!numeric(uid) || !numeric(gid)) {
                problem(ptr, quoted(v) + " is not a numeric UID:GID (use e.g. \"1000:1000\")");
                return std::nullopt;
            }
            if (std::stoull(uid) == 0 || std::stoull(gid) == 0) {
                problem(ptr, quoted(v) + " is root or the root group (use e.g. \"1000:1000\")");
                return std::nullopt;
            }
            return json(uid + ":" + gid);
        }
        }
        return std::nullopt;
    }

private:
    std::string m_source;
    std::filesystem::path m_dir; // where relative key files are

    std::optional<json> bad(const std::string& ptr, const std::string& want, const json& v) {
        problem(ptr, std::string(want) + ", not " + type_name(v));
        return std::nullopt;
    }

    std::optional<json> size(const FieldSpec& spec, const json& v, const std::string& ptr) {
        auto text = scalar_text(v);
        if (!text) return bad(ptr, "must be a size such as \"512m\" or \"2g\"", v);
        auto r = util::parse_size(*text, ptr);
        if (!r || *r == 0) {
            problem(ptr, quoted(v) + " is not a positive size (use e.g. \"512m\", \"2g\")");
            return std::nullopt;
        }
        if (spec.path.substr(0, 17) == "resources/memory/" && *r < (6u << 20)) {
            problem(ptr, quoted(v) + " is below the engine's minimum of 6m");
            return std::nullopt;
        }
        return json(*r);
    }

    static bool known(const FieldSpec& spec, const std::string& s) {
        for (auto c : spec.choices)
            if (c == s) return true;
        return false;
    }
    static std::string choices(const FieldSpec& spec) {
        std::string out;
        for (auto c : spec.choices)
            out += (out.empty() ? "" : ", ") + std::string(c);
        return out;
    }
    static std::string suggestion(const FieldSpec& spec, const std::string& s) {
        auto best = closest_in(s, spec.choices);
        return best ? " (did you mean \"" + *best + "\"?)" : "";
    }

    std::optional<json> enum_list(const FieldSpec& spec, const json& v, const std::string& ptr) {
        auto out = list(v, ptr, [&spec](const std::string& s) -> std::optional<std::string> {
            if (known(spec, s)) return std::nullopt;
            return "is not one of " + choices(spec) + suggestion(spec, s);
        });
        if (out && out->empty() && spec.kind == Kind::subset) {
            problem(ptr,
                    "is empty, which allows nothing (list at least one of " + choices(spec) + ")");
            return std::nullopt;
        }
        return out;
    }

    template <typename Check>
    std::optional<json> list(const json& v, const std::string& ptr, Check check) {
        if (!v.is_array()) return bad(ptr, "must be an array of strings", v);
        json out = json::array();
        std::set<std::string> seen;
        bool ok = true;
        for (std::size_t i = 0; i < v.size(); ++i) {
            const std::string p = ptr + "/" + std::to_string(i);
            if (!v[i].is_string()) {
                bad(p, "must be a string", v[i]);
                ok = false;
                continue;
            }
            std::string s = v[i].get<std::string>();
            if (auto why = check(s)) {
                problem(p, quoted(v[i]) + " " + *why);
                ok = false;
            } else if (!seen.insert(s).second) {
                problem(p, quoted(v[i]) + " is listed twice");
                ok = false;
            }
            out.push_back(s);
        }
        return ok ? std::optional<json>(out) : std::nullopt;
    }
};

// The names that may appear inside the object at `prefix` ("" for the top level).
std::vector<std::string> children_of(const std::string& prefix) {
    std::vector<std::string> out;
    if (prefix.empty())
        for (auto m : k_meta)
            out.emplace_back(m);
    for (const auto& s : field_specs()) {
        std::string_view path = s.path;
        if (!prefix.empty()) {
            if (path.substr(0, prefix.size() + 1) != prefix + "/") continue;
            path.remove_prefix(prefix.size() + 1);
        }
        std::string child(path.substr(0, path.find('/')));
        if (std::find(out.begin(), out.end(), child) == out.end()) out.push_back(child);
    }
    return out;
}

void walk(Reader& r, Document& doc, const json& node, const std::string& prefix) {
    const std::string ptr = "/" + prefix;
    if (!node.is_object()) {
        r.problem(ptr, std::string("must be an object, not ") + type_name(node));
        return;
    }
    const auto names = children_of(prefix);
    for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string& key = it.key();
        const std::string path = prefix.empty() ? key : prefix + "/" + key;
        if (std::find(names.begin(), names.end(), key) == names.end()) {
            auto best = closest_in(key, names);
            std::string known;
            for (const auto& n : names)
                known += (known.empty() ? "" : ", ") + n;
            r.problem("/" + path, "unknown field" + (best ? " (did you mean \"" + *best + "\"?)"
                                                          : " (known: " + known + ")"));
            continue;
        }
        if (prefix.empty() && std::find(k_meta.begin(), k_meta.end(), key) != k_meta.end()) {
            if (!it->is_string() || it->get<std::string>().empty()) {
                r.problem("/" + key,
                          std::string("must be a non-empty string, not ") + type_name(*it));
                continue;
            }
            if (key == "name") doc.name = it->get<std::string>();
            if (key == "extends") doc.extends = it->get<std::string>();
            continue;
        }
        if (const FieldSpec* spec = find_spec(path)) {
            if (auto v = r.leaf(*spec, *it, "/" + path)) doc.values[path] = Value{*v, doc.source};
            continue;
        }
        walk(r, doc, *it, path);
    }
}

} // namespace

std::variant<Document, std::vector<Problem>>
parse_document(std::string_view text, const std::string& source, const std::filesystem::path& dir) {
    Document doc;
    doc.source = source;
    doc.dir = dir;
    doc.sha256 = util::sha256_hex(text);
    auto parsed = util::parse_json_text(text, source);
    if (!parsed)
        return std::vector<Problem>{{source, "", parsed.error().message.substr(source.size() + 2)}};
    const json& j = *parsed;
    Reader r(source, dir);
    walk(r, doc, j, "");
    if (!r.problems.empty()) return r.problems;
    return doc;
}

} // namespace airlock::policy
