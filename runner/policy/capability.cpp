#include "policy/capability.hpp"

#include "policy/patterns.hpp"
#include "util/closest.hpp"

namespace airlock::policy {

namespace {

struct Split {
    std::string_view name, arg;
    bool has_arg = false;
};

Split split(std::string_view s) {
    const auto colon = s.find(':');
    if (colon == std::string_view::npos) return {s, {}, false};
    return {s.substr(0, colon), s.substr(colon + 1), true};
}

const CapabilityKind* find_kind(std::string_view name) {
    for (const auto& k : capability_kinds())
        if (k.name == name) return &k;
    return nullptr;
}

// Names used before capabilities took arguments, and what they are now.
std::optional<std::string_view> renamed(std::string_view name) {
    if (name == "image.unlisted") return "image:*";
    if (name == "runtime.unlisted") return "runtime.runc or runtime.runsc";
    if (name == "workspace.protected-change") return "path:*";
    if (name == "network.add-hosts") return "network.host:* (and network.cidr:*)";
    if (name == "env.unlisted") return "env:*";
    if (name == "secrets.unlisted") return "secret:*";
    return std::nullopt;
}

std::optional<std::string> argument_problem(std::string_view kind, std::string_view arg) {
    if (arg.empty()) return std::string("has an empty argument (use * for any)");
    if (arg == "*") return std::nullopt;
    for (char c : arg)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return std::string("has a control character in its argument");
    if (kind == "image") return prefix_pattern_problem(arg);
    if (kind == "path") return path_glob_problem(arg);
    if (kind == "network.host") return host_rule_problem(arg);
    if (kind == "network.cidr")
        return parse_cidr(arg) ? std::nullopt
                               : std::optional<std::string>("is not a CIDR (use e.g. 10.0.0.0/8)");
    if (kind == "env" || kind == "secret") return name_pattern_problem(arg);
    return std::nullopt;
}

bool argument_covers(std::string_view kind, std::string_view pattern, std::string_view arg) {
    if (pattern == "*") return true;
    if (kind == "image") return prefix_match(pattern, arg);
    if (kind == "path") return glob_match(pattern, arg);
    if (kind == "network.host") {
        auto p = parse_host_rule(pattern);
        auto a = parse_host_rule(arg);
        return p && a && host_rule_covers(*p, *a);
    }
    if (kind == "network.cidr") {
        auto p = parse_cidr(pattern);
        auto a = parse_cidr(arg);
        return p && a && cidr_covers(*p, *a);
    }
    if (kind == "env" || kind == "secret") return prefix_match(pattern, arg);
    return pattern == arg;
}

} // namespace

const std::vector<CapabilityKind>& capability_kinds() {
    static const std::vector<CapabilityKind> kinds = {
        {"image", "image reference pattern (images.allow syntax)",
         "an image that images.allow does not list"},
        {"image.undigested", "", "an image not pinned by digest where images.require_digest"},
        {"runtime.runc", "", "the runc runtime (when the policy prefers or requires runsc)"},
        {"runtime.runsc", "", "the runsc (gVisor) runtime, where runtime.allow lacks it"},
        {"workspace.bind-ro", "", "the checkout bind-mounted read-only"},
        {"workspace.bind-rw", "", "the checkout bind-mounted read-write (changes land at once)"},
        {"path", "path glob (workspace.protected syntax)",
         "changing a path under workspace.protected"},
        {"network.allowlist", "", "network through the egress proxy's allowlist"},
        {"network.audit", "", "network through the egress proxy, everything allowed and recorded"},
        {"network.open", "", "an unfiltered bridge network"},
        {"network.host", "host rule HOST[:PORT] or *.DOMAIN[:PORT]",
         "a host beyond the policy's allowlist (--allow, or a request the proxy refused)"},
        {"network.cidr", "CIDR", "a private range beyond network.allow_cidrs (--allow-cidr)"},
        {"resources.above-default", "", "a resource request above the policy's default"},
        {"resources.above-ceiling", "", "a resource request above the policy's ceiling"},
        {"user.low-uid", "", "a UID below user.min_uid"},
        {"env", "variable name pattern", "a variable that env.allow does not let cross"},
        {"secret", "secret name pattern",
         "a secret (that secrets.allow lacks, or any listed in "
         "approvals.required)"},
    };
    return kinds;
}

std::optional<std::string> capability_problem(std::string_view pattern) {
    const Split s = split(pattern);
    const CapabilityKind* kind = find_kind(s.name);
    if (!kind) {
        if (auto now = renamed(s.name))
            return "is no longer a capability: it is now " + std::string(*now);
        std::vector<std::string_view> names;
        for (const auto& k : capability_kinds())
            names.push_back(k.name);
        std::string hint;
        if (auto c = util::closest_in(s.name, names)) {
            const CapabilityKind* k = find_kind(*c);
            hint = " (did you mean " + *c + (k && !k->argument.empty() ? ":...?)" : "?)");
        }
        return "is not a capability" + hint + "; see docs/approvals.md for the list";
    }
    if (kind->argument.empty()) {
        if (s.has_arg) return "takes no argument (write \"" + std::string(kind->name) + "\")";
        return std::nullopt;
    }
    if (!s.has_arg)
        return "needs an argument: " + std::string(kind->name) + ":<" +
               std::string(kind->argument) + ">, or " + std::string(kind->name) + ":* for any";
    if (auto p = argument_problem(s.name, s.arg)) return "argument " + *p;
    return std::nullopt;
}

bool capability_covers(std::string_view pattern, std::string_view capability) {
    const Split p = split(pattern), c = split(capability);
    if (p.name != c.name || p.has_arg != c.has_arg) return false;
    if (!p.has_arg) return true;
    return argument_covers(p.name, p.arg, c.arg);
}

bool capability_pattern_covers(std::string_view outer, std::string_view inner) {
    const Split o = split(outer), i = split(inner);
    if (o.name != i.name || o.has_arg != i.has_arg) return false;
    if (!o.has_arg || o.arg == "*" || o.arg == i.arg) return true;
    if (i.arg == "*") return false;
    if (o.name == "image" || o.name == "env" || o.name == "secret")
        return prefix_covers(o.arg, i.arg);
    if (o.name == "network.host" || o.name == "network.cidr")
        return argument_covers(o.name, o.arg, i.arg);
    return false; // path globs: only equal ones are known to cover
}

bool any_covers(const std::vector<std::string>& patterns, std::string_view capability) {
    for (const auto& p : patterns)
        if (capability_covers(p, capability)) return true;
    return false;
}

} // namespace airlock::policy
