// Tighten-only layering, loading presets and files (following `extends`), and diffs.
#include "policy/approvers.hpp"
#include "policy/capability.hpp"
#include "policy/credentials.hpp"
#include "policy/patterns.hpp"
#include "policy/policy.hpp"
#include "util/read_limited.hpp"
#include "util/sha256.hpp"

#include <fstream>
#include <set>
#include <sstream>

namespace airlock::policy {

using nlohmann::json;
using util::ErrorKind;
using util::make_error;

namespace {

enum class Order { same, tighter, looser, free };

std::set<std::string> as_set(const json& v) {
    std::set<std::string> s;
    if (v.is_array())
        for (const auto& e : v)
            s.insert(e.get<std::string>());
    return s;
}

bool subset_of(const std::set<std::string>& a, const std::set<std::string>& b) {
    for (const auto& x : a)
        if (!b.count(x)) return false;
    return true;
}

// Every entry of `inner` is covered by some entry of `outer` (null outer covers everything).
template <typename Covers> bool covered(const json& outer, const json& inner, Covers covers) {
    if (outer.is_null()) return true;
    if (inner.is_null()) return false;
    for (const auto& i : inner) {
        bool ok = false;
        for (const auto& o : outer)
            if (covers(o.get<std::string>(), i.get<std::string>())) ok = true;
        if (!ok) return false;
    }
    return true;
}

Order compare(const FieldSpec& spec, const json& old, const json& neu) {
    if (old == neu) return Order::same;
    switch (spec.kind) {
    case Kind::size_max:
    case Kind::duration_max:
    case Kind::cpus_max:
    case Kind::count_max:
        if (neu.is_null()) return Order::looser;
        if (old.is_null()) return Order::tighter;
        return neu.get<double>() < old.get<double>() ? Order::tighter : Order::looser;
    case Kind::min_uid:
        return neu.get<std::int64_t>() > old.get<std::int64_t>() ? Order::tighter : Order::looser;
    case Kind::subset:
        // Same members in another order changes the preference only (runtime.allow).
        if (as_set(neu) == as_set(old)) return Order::free;
        return subset_of(as_set(neu), as_set(old)) ? Order::tighter : Order::looser;
    case Kind::superset:
    case Kind::globs:
    case Kind::hosts_deny:
        return subset_of(as_set(old), as_set(neu)) ? Order::tighter : Order::looser;
    case Kind::prefixes:
    case Kind::names:
        return covered(
                   old, neu,
                   [](const std::string& o, const std::string& i) { return prefix_covers(o, i); })
                   ? Order::tighter
                   : Order::looser;
    case Kind::hosts_allow:
        return covered(old, neu,
                       [](const std::string& o, const std::string& i) {
                           auto a = parse_host_rule(o);
                           auto b = parse_host_rule(i);
                           return a && b && host_rule_covers(*a, *b);
                       })
                   ? Order::tighter
                   : Order::looser;
    case Kind::cidrs:
        return covered(old, neu,
                       [](const std::string& o, const std::string& i) {
                           auto a = parse_cidr(o);
                           auto b = parse_cidr(i);
                           return a && b && cidr_covers(*a, *b);
                       })
                   ? Order::tighter
                   : Order::looser;
    case Kind::true_is_tight:
        return neu.get<bool>() ? Order::tighter : Order::looser;
    case Kind::false_is_tight:
        return neu.get<bool>() ? Order::looser : Order::tighter;
    case Kind::inject:
        return neu == "file" ? Order::tighter : Order::looser;
    case Kind::set_once:
        return old.is_null() ? Order::tighter : Order::looser;
    case Kind::credentials:
        return credentials_tighten(old, neu) ? Order::tighter : Order::looser;
    case Kind::capabilities:
        // Every pattern the old list required is still required (or covered by a wider one).
        return covered(neu, old,
                       [](const std::string& o, const std::string& i) {
                           return capability_pattern_covers(o, i);
                       })
                   ? Order::tighter
                   : Order::looser;
    case Kind::capability_allow:
        return covered(old, neu,
                       [](const std::string& o, const std::string& i) {
                           return capability_pattern_covers(o, i);
                       })
                   ? Order::tighter
                   : Order::looser;
    case Kind::approvers:
        return approvers_tighten(old, neu) ? Order::tighter : Order::looser;
    case Kind::text:
    case Kind::size_default:
    case Kind::duration_default:
    case Kind::cpus_default:
    case Kind::count_default:
    case Kind::choice:
    case Kind::user:
        return Order::free;
    }
    return Order::looser;
}

std::string with_unit(std::uint64_t n,
                      std::initializer_list<std::pair<std::uint64_t, const char*>> units) {
    for (const auto& [size, suffix] : units)
        if (n >= size && n % size == 0) return std::to_string(n / size) + suffix;
    return std::to_string(n);
}

std::string format_duration_ms(std::uint64_t ms) {
    if (ms % 1000) return std::to_string(ms) + "ms";
    std::uint64_t s = ms / 1000;
    std::string out;
    if (s >= 3600) out += std::to_string(s / 3600) + "h";
    if (s % 3600 >= 60) out += std::to_string(s % 3600 / 60) + "m";
    if (s % 60 || out.empty()) out += std::to_string(s % 60) + "s";
    return out;
}

std::uint32_t uid_of(const json& user) {
    return static_cast<std::uint32_t>(std::stoul(user.get<std::string>()));
}

} // namespace

std::string format_value(const FieldSpec& spec, const json& v) {
    if (v.is_null()) {
        switch (spec.kind) {
        case Kind::set_once:
            return "unset";
        case Kind::credentials:
        case Kind::approvers:
            return "none";
        case Kind::capability_allow:
        case Kind::prefixes:
        case Kind::names:
        case Kind::hosts_allow:
        case Kind::cidrs:
            return "any";
        default:
            return "no limit";
        }
    }
    switch (spec.kind) {
    case Kind::credentials:
        return format_credentials(v);
    case Kind::approvers:
        return format_approvers(v);
    case Kind::size_default:
    case Kind::size_max:
        return with_unit(
            v.get<std::uint64_t>(),
            {{1ull << 40, "t"}, {1ull << 30, "g"}, {1ull << 20, "m"}, {1ull << 10, "k"}});
    case Kind::duration_default:
    case Kind::duration_max:
        return format_duration_ms(v.get<std::uint64_t>());
    case Kind::cpus_default:
    case Kind::cpus_max: {
        auto n = v.get<std::int64_t>();
        std::string s = std::to_string(n / 1'000'000'000);
        if (auto frac = n % 1'000'000'000) {
            std::string f = std::to_string(frac + 1'000'000'000).substr(1);
            while (!f.empty() && f.back() == '0')
                f.pop_back();
            s += "." + f;
        }
        return s;
    }
    default:
        return v.is_string() ? v.get<std::string>() : v.dump();
    }
}

const json& Policy::get(std::string_view path) const {
    static const json null;
    auto it = values.find(std::string(path));
    return it == values.end() ? null : it->second.value;
}

const std::string& Policy::origin(std::string_view path) const {
    static const std::string none = "built-in";
    auto it = values.find(std::string(path));
    return it == values.end() ? none : it->second.origin;
}

std::vector<std::string> Policy::strings(std::string_view path) const {
    std::vector<std::string> out;
    const json& v = get(path);
    if (v.is_array())
        for (const auto& e : v)
            out.push_back(e.get<std::string>());
    return out;
}

bool Policy::contains(std::string_view path, std::string_view item) const {
    for (const auto& s : strings(path))
        if (s == item) return true;
    return false;
}

std::string Policy::describe() const {
    std::string out;
    for (const auto& l : layers) {
        if (l.source == "built-in") continue;
        out += (out.empty() ? "" : " + ") + l.source;
    }
    return out.empty() ? "built-in" : out;
}

std::vector<Problem> apply_layer(Policy& base, const Document& doc) {
    std::vector<Problem> problems;
    auto problem = [&](std::string_view path, std::string message) {
        problems.push_back({doc.source, "/" + std::string(path), std::move(message)});
    };
    for (const auto& [path, v] : doc.values) {
        const FieldSpec* spec = find_spec(path);
        if (!spec) continue;
        const Value& old = base.values[path];
        if (compare(*spec, old.value, v.value) == Order::looser) {
            std::string msg = format_value(*spec, v.value) + " loosens " +
                              format_value(*spec, old.value) + " set by " + old.origin;
            msg += spec->kind == Kind::set_once
                       ? " (a later layer may not change it)"
                       : " (a later --policy layer may only tighten; drop the field or tighten "
                         "it)";
            problem(path, msg);
            continue;
        }
        base.values[path] = v;
    }
    // Defaults follow their ceilings; a default set by this layer must fit them.
    for (const auto& spec : field_specs()) {
        if (spec.companion.empty()) continue;
        const std::string path(spec.path), limit(spec.companion);
        const bool own = doc.values.count(path) > 0;
        Value& def = base.values[path];
        const Value& lim = base.values[limit];
        if (spec.kind == Kind::choice) {
            if (as_set(lim.value).count(def.value.get<std::string>())) continue;
            if (own) {
                problem(path, "\"" + def.value.get<std::string>() + "\" is not among the allowed " +
                                  format_value(*find_spec(limit), lim.value) + " (from " +
                                  lim.origin + ")");
            } else {
                def = Value{lim.value.at(0), lim.origin + " (first allowed)"};
            }
        } else if (spec.kind == Kind::user) {
            if (lim.value.is_null() || uid_of(def.value) >= lim.value.get<std::uint32_t>())
                continue;
            problem(path, def.value.get<std::string>() + " (from " + def.origin +
                              ") is below min_uid " + lim.value.dump() + " (from " + lim.origin +
                              "); set user.default to an allowed UID:GID");
        } else {
            if (lim.value.is_null() || def.value.get<double>() <= lim.value.get<double>()) continue;
            if (own)
                problem(path, format_value(spec, def.value) + " is above the maximum " +
                                  format_value(*find_spec(limit), lim.value) + " (from " +
                                  lim.origin + ")");
            else
                def = Value{lim.value, lim.origin + " (default lowered to the maximum)"};
        }
    }
    if (problems.empty()) base.layers.push_back({doc.source, doc.name, doc.sha256});
    return problems;
}

namespace {

constexpr int k_max_extends_depth = 16;

bool looks_like_preset(const std::string& spec) {
    return spec.find('/') == std::string::npos &&
           (spec.size() < 5 || spec.substr(spec.size() - 5) != ".json");
}

// Reads `spec` and whatever it extends, base first.
void load_chain(const std::string& spec, const std::filesystem::path& dir,
                const std::string& asked_by, std::vector<std::string>& stack,
                std::vector<Document>& out, std::vector<Problem>& problems) {
    const std::string where_file = asked_by.empty() ? "--policy" : asked_by;
    const std::string where_ptr = asked_by.empty() ? "" : "/extends";
    std::string text, source, id;
    std::filesystem::path doc_dir = dir;
    if (looks_like_preset(spec)) {
        auto t = preset_text(spec);
        if (!t) {
            std::string names;
            for (const auto& n : preset_names())
                names += (names.empty() ? "" : ", ") + n;
            auto best = closest_in(spec, preset_names());
            problems.push_back({where_file, where_ptr,
                                "\"" + spec + "\" is neither a preset (" + names +
                                    ") nor a .json file" +
                                    (best ? " (did you mean \"" + *best + "\"?)" : "")});
            return;
        }
        text = std::string(*t);
        source = "preset " + spec;
        id = source;
    } else {
        std::filesystem::path p = spec;
        if (p.is_relative()) p = dir / p;
        std::error_code ec;
        auto canonical = std::filesystem::weakly_canonical(p, ec);
        id = ec ? p.string() : canonical.string();
        source = asked_by.empty() ? spec : p.lexically_normal().string();
        auto status = util::read_limited(p, 1u << 20, text);
        if (status == util::ReadStatus::unreadable) {
            problems.push_back({where_file, where_ptr,
                                "\"" + spec +
                                    "\" cannot be read (check the path; presets: "
                                    "strict, standard, permissive)"});
            return;
        }
        if (status == util::ReadStatus::too_large) {
            problems.push_back({source, "", "is larger than 1 MiB; a policy is a short file"});
            return;
        }
        doc_dir = p.parent_path();
    }
    if (std::find(stack.begin(), stack.end(), id) != stack.end()) {
        std::string cycle;
        for (const auto& s : stack)
            cycle += s + " -> ";
        problems.push_back(
            {where_file, where_ptr, "extends itself: " + cycle + id + " (remove the cycle)"});
        return;
    }
    if (static_cast<int>(stack.size()) >= k_max_extends_depth) {
        problems.push_back({where_file, where_ptr,
                            "extends more than " + std::to_string(k_max_extends_depth) +
                                " levels deep (merge some of the files into one)"});
        return;
    }
    auto parsed = parse_document(text, source, doc_dir);
    if (auto* ps = std::get_if<std::vector<Problem>>(&parsed)) {
        problems.insert(problems.end(), ps->begin(), ps->end());
        return;
    }
    Document doc = std::get<Document>(std::move(parsed));
    if (!doc.extends.empty()) {
        stack.push_back(id);
        load_chain(doc.extends, doc.dir, source, stack, out, problems);
        stack.pop_back();
    }
    out.push_back(std::move(doc));
}

} // namespace

std::variant<Policy, std::vector<Problem>> load_all(const std::vector<std::string>& specs) {
    Policy p = builtin();
    std::vector<Problem> problems;
    const std::vector<std::string> effective =
        specs.empty() ? std::vector<std::string>{"standard"} : specs;
    for (const auto& spec : effective) {
        std::vector<Document> docs;
        std::vector<std::string> stack;
        load_chain(spec, ".", "", stack, docs, problems);
        for (const auto& d : docs) {
            auto ps = apply_layer(p, d);
            problems.insert(problems.end(), ps.begin(), ps.end());
        }
    }
    if (!problems.empty()) return problems;
    return p;
}

util::Result<Policy> load(const std::vector<std::string>& specs) {
    auto r = load_all(specs);
    if (auto* ps = std::get_if<std::vector<Problem>>(&r)) {
        std::string msg;
        for (const auto& pr : *ps)
            msg += (msg.empty() ? "" : "\n") + pr.str();
        return make_error(ErrorKind::invalid_input, msg);
    }
    return std::get<Policy>(std::move(r));
}

std::vector<Change> diff(const Policy& a, const Policy& b) {
    std::vector<Change> out;
    for (const auto& spec : field_specs()) {
        const json& x = a.get(spec.path);
        const json& y = b.get(spec.path);
        Order o = compare(spec, x, y);
        if (o == Order::same) continue;
        Direction d = o == Order::tighter  ? Direction::tightens
                      : o == Order::looser ? Direction::loosens
                                           : Direction::changes;
        // Lists show what left and what arrived; a list that gains and loses at once counts as
        // loosening, since that is what a reviewer must see.
        if (x.is_array() && y.is_array()) {
            json removed = json::array(), added = json::array();
            for (const auto& e : x)
                if (std::find(y.begin(), y.end(), e) == y.end()) removed.push_back(e);
            for (const auto& e : y)
                if (std::find(x.begin(), x.end(), e) == x.end()) added.push_back(e);
            std::string from = removed.empty() ? "" : "removes " + removed.dump();
            std::string to = added.empty() ? "" : "adds " + added.dump();
            if (from.empty() && to.empty()) from = "reorders to " + y.dump();
            out.push_back({std::string(spec.path), from, to, d, true});
            continue;
        }
        out.push_back({std::string(spec.path), format_value(spec, x), format_value(spec, y), d});
    }
    return out;
}

std::string digest(const Policy& p) {
    return util::sha256_hex(to_json(p)["values"].dump());
}

json to_json(const Policy& p) {
    json values = json::object();
    json origins = json::object();
    for (const auto& spec : field_specs()) {
        const json& v = p.get(spec.path);
        json shown = v;
        if (!v.is_null() && !v.is_array() && !v.is_boolean() && !v.is_string() && !v.is_object())
            shown = format_value(spec, v);
        values[json::json_pointer("/" + std::string(spec.path))] = shown;
        origins[std::string(spec.path)] = p.origin(spec.path);
    }
    json layers = json::array();
    for (const auto& l : p.layers)
        layers.push_back({{"source", l.source}, {"name", l.name}, {"sha256", l.sha256}});
    return {{"layers", layers}, {"values", values}, {"origins", origins}};
}

} // namespace airlock::policy
