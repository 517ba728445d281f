#include "policy/enforce.hpp"

#include "policy/approvers.hpp"
#include "policy/capability.hpp"
#include "policy/patterns.hpp"

namespace airlock::policy {

using nlohmann::json;
using util::ErrorKind;
using util::make_error;
using util::Result;

namespace {

std::string dotted(std::string_view path) {
    std::string s(path);
    for (auto& c : s)
        if (c == '/') c = '.';
    return s;
}

class Enforcer {
public:
    Enforcer(const Policy& p, const config::RunRequest& req, config::RunOptions& o,
             const Approvals& a)
        : m_p(p), m_req(req), m_o(o), m_approvals(a) {}

    Result<Decision> run() {
        if (auto r = resources(); !r) return r.error();
        if (auto r = image(); !r) return r.error();
        if (auto r = runtime(); !r) return r.error();
        if (auto r = workspace(); !r) return r.error();
        if (auto r = user(); !r) return r.error();
        if (auto r = env(); !r) return r.error();
        if (auto r = secrets(); !r) return r.error();
        if (auto r = network(); !r) return r.error();
        return m_d;
    }

private:
    const Policy& m_p;
    const config::RunRequest& m_req;
    config::RunOptions& m_o;
    const Approvals& m_approvals;
    Decision m_d;

    bool requested(const std::string& key) const { return m_req.values.count(key) > 0; }
    std::string where(const std::string& key) const {
        auto it = m_req.origin.find(key);
        return it != m_req.origin.end() ? it->second : "--" + key;
    }
    std::string from(std::string_view path) const {
        return dotted(path) + " from " + m_p.origin(path);
    }

    bool required(const std::string& capability) const {
        return any_covers(m_p.strings("approvals/required"), capability);
    }

    // Goes ahead when the policy allows `capability` as is, or an approval grants it. A refusal
    // says who could approve it and how, and why any approval presented for it did not count.
    Result<void> need(const std::string& capability, const std::string& detail, bool within_policy,
                      const std::string& refusal) {
        if (within_policy && !required(capability)) {
            m_d.capabilities.push_back({capability, detail, "policy " + m_p.describe()});
            return {};
        }
        if (auto who = m_approvals.grant(capability, detail)) {
            m_d.capabilities.push_back({capability, detail, *who});
            return {};
        }
        std::string why = within_policy ? detail + " needs an explicit approval for " + capability +
                                              " (approvals.required from " +
                                              m_p.origin("approvals/required") + ")"
                                        : refusal;
        why += "; " + approval_hint(m_p, capability);
        const json records = m_approvals.records();
        if (records.is_object() && !records["requested"].empty())
            for (const auto& r : records["requested"].back()["refused"])
                why += "; refused " + r.get<std::string>();
        return make_error(ErrorKind::refused, why);
    }

    template <typename T>
    Result<void> ceiling(const std::string& key, std::string_view name, T& member,
                         const std::function<std::string(const json&)>& show) {
        const std::string def = "resources/" + std::string(name) + "/default";
        const std::string max = "resources/" + std::string(name) + "/max";
        if (!requested(key)) {
            member = m_p.get(def).get<T>();
            m_o.origin[key] = "policy: " + m_p.origin(def);
            return {};
        }
        const json& limit = m_p.get(max);
        if (limit.is_null() || static_cast<double>(member) <= limit.get<double>()) {
            const json& d = m_p.get(def);
            if (d.is_number() && static_cast<double>(member) > d.get<double>() &&
                required("resources.above-default"))
                return need("resources.above-default",
                            where(key) + " " + show(json(member)) + " (default " + show(d) + ")",
                            true, "");
            return {};
        }
        return need("resources.above-ceiling", where(key) + " " + show(json(member)), false,
                    where(key) + ": " + show(json(member)) + " is above the policy ceiling " +
                        show(limit) + " (" + from(max) +
                        "); lower it, or get an approval for "
                        "resources.above-ceiling");
    }

    Result<void> resources() {
        auto fmt = [](std::string_view path) {
            return [path](const json& v) { return format_value(*find_spec(path), v); };
        };
        std::uint64_t memory = m_o.memory, output_cap = m_o.output_cap, tmpfs = m_o.tmpfs_size;
        std::int64_t timeout = m_o.timeout.count(), grace = m_o.grace.count();
        if (auto r = ceiling("memory", "memory", memory, fmt("resources/memory/max")); !r) return r;
        if (auto r = ceiling("cpus", "cpus", m_o.nano_cpus, fmt("resources/cpus/max")); !r)
            return r;
        if (auto r = ceiling("pids", "pids", m_o.pids, fmt("resources/pids/max")); !r) return r;
        if (auto r = ceiling("timeout", "timeout", timeout, fmt("resources/timeout/max")); !r)
            return r;
        if (auto r = ceiling("grace", "grace", grace, fmt("resources/grace/max")); !r) return r;
        if (auto r =
                ceiling("output_cap", "output_cap", output_cap, fmt("resources/output_cap/max"));
            !r)
            return r;
        if (auto r = ceiling("tmpfs_size", "tmpfs_size", tmpfs, fmt("resources/tmpfs_size/max"));
            !r)
            return r;
        if (auto r = ceiling("nofile", "nofile", m_o.nofile, fmt("resources/nofile/max")); !r)
            return r;
        if (auto r = ceiling("nproc", "nproc", m_o.nproc, fmt("resources/nproc/max")); !r) return r;
        // Artifacts: the policy's caps, or airlock's own (256m per file, 1g in all).
        if (const json& v = m_p.get("artifacts/max_file_size"); v.is_number())
            m_o.artifact_max_file = v.get<std::uint64_t>();
        if (const json& v = m_p.get("artifacts/max_total_size"); v.is_number())
            m_o.artifact_max_total = v.get<std::uint64_t>();
        m_o.memory = memory;
        m_o.output_cap = output_cap;
        m_o.tmpfs_size = tmpfs;
        m_o.timeout = std::chrono::milliseconds(timeout);
        m_o.grace = std::chrono::milliseconds(grace);
        return {};
    }

    Result<void> image() {
        const json& allow = m_p.get("images/allow");
        bool listed = allow.is_null();
        for (const auto& pat : m_p.strings("images/allow"))
            if (prefix_match(pat, m_o.image)) listed = true;
        const std::string w = requested("image") ? where("image") : "image";
        if (!listed) {
            std::string pats;
            for (const auto& s : m_p.strings("images/allow"))
                pats += (pats.empty() ? "" : ", ") + s;
            if (auto r =
                    need("image:" + m_o.image, w + " " + m_o.image, false,
                         w + ": \"" + m_o.image + "\" is not among the allowed images (" + pats +
                             "; " + from("images/allow") +
                             "); use an allowed image, or get an approval for image:" + m_o.image);
                !r)
                return r;
        }
        if (m_p.get("images/require_digest") == true &&
            m_o.image.find("@sha256:") == std::string::npos)
            return need("image.undigested", w + " " + m_o.image, false,
                        w + ": \"" + m_o.image + "\" is not pinned by digest (" +
                            from("images/require_digest") + "); use NAME@sha256:DIGEST");
        return {};
    }

    Result<void> runtime() {
        const auto allowed = m_p.strings("runtime/allow");
        if (requested("runtime")) {
            bool ok = std::find(allowed.begin(), allowed.end(), m_o.runtime) != allowed.end();
            if (!ok) {
                std::string list;
                for (const auto& s : allowed)
                    list += (list.empty() ? "" : ", ") + s;
                if (auto r = need(
                        "runtime." + m_o.runtime, where("runtime") + " " + m_o.runtime, false,
                        where("runtime") + ": \"" + m_o.runtime + "\" is not an allowed runtime (" +
                            list + "; " + from("runtime/allow") + ")");
                    !r)
                    return r;
            } else if (required("runtime." + m_o.runtime)) {
                if (auto r = need("runtime." + m_o.runtime, where("runtime") + " " + m_o.runtime,
                                  true, "");
                    !r)
                    return r;
            }
            m_o.runtimes = {m_o.runtime};
        } else {
            // Without a request, a runtime that needs an approval is not a fallback.
            m_o.runtimes.clear();
            for (const auto& r : allowed)
                if (!required("runtime." + r)) m_o.runtimes.push_back(r);
            if (m_o.runtimes.empty()) {
                if (auto r =
                        need("runtime." + allowed.front(), "runtime " + allowed.front(), true, "");
                    !r)
                    return r;
                m_o.runtimes = {allowed.front()};
            }
            m_o.runtime = m_o.runtimes.front();
            m_o.origin["runtime"] = "policy: " + m_p.origin("runtime/allow");
        }
        return {};
    }

    Result<void> workspace() {
        if (!requested("workspace_mode")) {
            const std::string mode = m_p.get("workspace/default").get<std::string>();
            m_o.workspace_mode = mode == "bind-ro"   ? config::WorkspaceMode::bind_ro
                                 : mode == "bind-rw" ? config::WorkspaceMode::bind_rw
                                                     : config::WorkspaceMode::volume;
            m_o.origin["workspace_mode"] = "policy: " + m_p.origin("workspace/default");
        }
        const std::string mode = config::to_string(m_o.workspace_mode);
        const bool allowed = m_p.contains("workspace/modes", mode);
        const std::string w =
            requested("workspace_mode") ? where("workspace_mode") : "workspace mode";
        if (m_o.workspace_mode == config::WorkspaceMode::volume && allowed) return {};
        std::string list;
        for (const auto& s : m_p.strings("workspace/modes"))
            list += (list.empty() ? "" : ", ") + s;
        return need("workspace." + mode, w + " " + mode, allowed,
                    w + ": \"" + mode + "\" is not an allowed workspace mode (" + list + "; " +
                        from("workspace/modes") + ")");
    }

    Result<void> user() {
        if (!requested("user")) {
            m_o.user = m_p.get("user/default").get<std::string>();
            m_o.origin["user"] = "policy: " + m_p.origin("user/default");
        }
        const auto uid = std::stoull(m_o.user.substr(0, m_o.user.find(':')));
        const auto min = m_p.get("user/min_uid").get<std::uint64_t>();
        if (uid >= min) return {};
        return need("user.low-uid", where("user") + " " + m_o.user, false,
                    where("user") + ": UID " + std::to_string(uid) + " is below " +
                        std::to_string(min) + " (" + from("user/min_uid") +
                        "); use a UID of at least " + std::to_string(min));
    }

    Result<void> env() {
        const json& allow = m_p.get("env/allow");
        for (const auto& [name, value] : m_o.env) {
            bool ok = allow.is_null();
            for (const auto& pat : m_p.strings("env/allow"))
                if (prefix_match(pat, name)) ok = true;
            if (!ok || required("env:" + name)) {
                std::string w = "--env";
                for (std::size_t i = 0; i < m_req.env.size(); ++i)
                    if (m_req.env[i].substr(0, m_req.env[i].find('=')) == name &&
                        i < m_req.env_origins.size())
                        w = m_req.env_origins[i];
                if (auto r = need("env:" + name, w + " " + name, ok,
                                  w + ": " + name + " may not cross into the container (" +
                                      from("env/allow") +
                                      "); drop it, or pass a credential with --secret");
                    !r)
                    return r;
            }
            m_d.env_names.push_back(name);
        }
        return {};
    }

    Result<void> secrets() {
        m_d.secret_inject = m_p.get("secrets/inject").get<std::string>();
        const json& allow = m_p.get("secrets/allow");
        for (std::size_t i = 0; i < m_o.secrets.size(); ++i) {
            const auto& s = m_o.secrets[i];
            const std::string w =
                i < m_req.secret_origins.size() ? m_req.secret_origins[i] : "--secret";
            bool ok = allow.is_null();
            for (const auto& pat : m_p.strings("secrets/allow"))
                if (prefix_match(pat, s.name)) ok = true;
            if (!ok || required("secret:" + s.name))
                if (auto r = need("secret:" + s.name, w + " " + s.name, ok,
                                  w + ": " + s.name + " is not a secret this policy lets in (" +
                                      from("secrets/allow") + ")");
                    !r)
                    return r;
            m_d.secret_names.push_back(s.name);
        }
        return {};
    }

    static std::string joined(const std::vector<std::string>& items) {
        std::string out;
        for (const auto& s : items)
            out += (out.empty() ? "" : ", ") + s;
        return out.empty() ? "none" : out;
    }

    // Host and CIDR rules only mean something to the proxy; in open mode the egress network
    // still says where the task goes.
    Result<void> rules_need_proxy() {
        const auto& n = m_o.network;
        if (n.proxied()) return {};
        std::string given;
        for (const char* key : {"allow", "deny", "allow_cidrs"})
            if (auto it = m_req.lists.find(key); it != m_req.lists.end() && !it->second.empty())
                given += (given.empty() ? "" : ", ") + it->second.front().second;
        const std::string mode =
            "the network mode is " + n.mode + ", from " + m_o.origin["network"];
        if (n.mode == "open" && !given.empty())
            return make_error(ErrorKind::invalid_input,
                              given +
                                  ": host and CIDR rules apply only to --network allowlist or "
                                  "audit, and open mode filters nothing (" +
                                  mode + "); drop them, or use --network allowlist");
        if (n.mode != "open" && (!given.empty() || requested("egress_network")))
            return make_error(ErrorKind::invalid_input,
                              "--allow, --deny, --allow-cidr and --egress-network need "
                              "--network allowlist or audit (" +
                                  mode + ")");
        return {};
    }

    Result<void> network() {
        auto& n = m_o.network;
        if (!requested("network")) {
            n.mode = m_p.get("network/default").get<std::string>();
            m_o.origin["network"] = "policy: " + m_p.origin("network/default");
        }
        const std::string w = requested("network") ? where("network") : "network mode";
        // Usage errors come before any approval is asked for.
        if (auto r = rules_need_proxy(); !r) return r;
        if (n.mode != "none") {
            const bool allowed = m_p.contains("network/modes", n.mode);
            if (auto r = need("network." + n.mode, w + " " + n.mode, allowed,
                              w + ": \"" + n.mode + "\" is not an allowed network mode (" +
                                  joined(m_p.strings("network/modes")) + "; " +
                                  from("network/modes") + ")");
                !r)
                return r;
        }
        const auto& lists = m_req.lists;
        // The policy's own rules, then what the task adds within what the policy lets it.
        n.allow = m_p.strings("network/allow");
        n.deny = m_p.strings("network/deny");
        n.methods = m_p.strings("network/methods");
        n.allow_cidrs = m_p.strings("network/allow_cidrs");
        const json& budget = m_p.get("network/upload_budget");
        if (budget.is_number()) n.upload_budget = budget.get<std::uint64_t>();
        const bool flags_may_add = m_p.get("network/flags_may_add_hosts") == true;
        auto listed = [&](const char* key) {
            auto it = lists.find(key);
            return it == lists.end() ? std::vector<std::pair<std::string, std::string>>{}
                                     : it->second;
        };
        for (const auto& [rule, origin] : listed("allow")) {
            auto parsed = parse_host_rule(rule);
            if (!parsed)
                return make_error(ErrorKind::invalid_input,
                                  origin + ": \"" + rule + "\" is not a host rule (" +
                                      host_rule_problem(rule).value_or("use HOST[:PORT]") + ")");
            bool covered = m_p.get("network/allow").is_null();
            for (const auto& have : n.allow)
                if (auto h = parse_host_rule(have); h && host_rule_covers(*h, *parsed))
                    covered = true;
            if (covered) continue; // the policy allows it already
            if (auto r = need("network.host:" + rule, origin + " " + rule, flags_may_add,
                              origin + ": " + rule +
                                  " is not in the policy's allowlist and the policy does not let "
                                  "flags add hosts (" +
                                  from("network/flags_may_add_hosts") + "); add \"" + rule +
                                  "\" to network.allow in a policy file, or get an approval "
                                  "for network.host:" +
                                  rule);
                !r)
                return r;
            n.allow.push_back(rule);
        }
        for (const auto& [rule, origin] : listed("deny")) {
            if (!parse_host_rule(rule))
                return make_error(ErrorKind::invalid_input,
                                  origin + ": \"" + rule + "\" is not a host rule (" +
                                      host_rule_problem(rule).value_or("use HOST[:PORT]") + ")");
            n.deny.push_back(rule); // denying more is always within the policy
        }
        for (const auto& [text, origin] : listed("allow_cidrs")) {
            auto cidr = parse_cidr(text);
            if (!cidr)
                return make_error(ErrorKind::invalid_input,
                                  origin + ": \"" + text +
                                      "\" is not a CIDR (use e.g. 10.1.0.0/16 or fd00::/8)");
            bool covered = m_p.get("network/allow_cidrs").is_null();
            for (const auto& have : n.allow_cidrs)
                if (auto c = parse_cidr(have); c && cidr_covers(*c, *cidr)) covered = true;
            if (!covered)
                if (auto r = need("network.cidr:" + text, origin + " " + text, flags_may_add,
                                  origin + ": " + text +
                                      " is not a range the policy lets the proxy reach, and "
                                      "the policy does not let flags add any (" +
                                      from("network/flags_may_add_hosts") +
                                      "); add it to "
                                      "network.allow_cidrs in a policy file, or get an approval "
                                      "for network.cidr:" +
                                      text);
                    !r)
                    return r;
            n.allow_cidrs.push_back(text);
        }
        const json& pinned = m_p.get("network/egress_network");
        if (pinned.is_string()) {
            const std::string name = pinned.get<std::string>();
            if (requested("egress_network") && n.egress_network != name)
                return make_error(ErrorKind::refused,
                                  where("egress_network") + ": \"" + n.egress_network +
                                      "\" differs from the egress network the policy sets (\"" +
                                      name + "\", " + from("network/egress_network") +
                                      "); drop the flag");
            n.egress_network = name;
            m_o.origin["egress_network"] = "policy: " + m_p.origin("network/egress_network");
        }
        return {};
    }
};

} // namespace

Result<Decision> enforce(const Policy& policy, const config::RunRequest& req,
                         config::RunOptions& opts, const Approvals& approvals) {
    return Enforcer(policy, req, opts, approvals).run();
}

namespace {
// Grants everything, remembering what was asked.
class Recorder final : public Approvals {
public:
    std::optional<std::string> grant(std::string_view capability,
                                     std::string_view detail) const override {
        asked.push_back({std::string(capability), std::string(detail), {}});
        return "recorded";
    }
    mutable std::vector<Grant> asked;
};
} // namespace

std::vector<Grant> beyond(const Policy& reference, const config::RunOptions& effective,
                          const std::string& granted_by) {
    // Every effective value counts as asked for, so each is held against its ceiling.
    config::RunRequest req;
    for (const char* key : {"image", "workspace_mode", "memory", "cpus", "pids", "timeout", "grace",
                            "output_cap", "tmpfs_size", "nofile", "nproc", "user", "runtime"}) {
        req.values[key] = "effective";
        req.origin[key] = key;
    }
    for (const auto& [name, value] : effective.env)
        req.env.push_back(name);
    req.values["network"] = effective.network.mode;
    req.origin["network"] = "network";
    if (effective.network.proxied()) { // elsewhere, rules are a usage error
        for (const auto& rule : effective.network.allow)
            req.lists["allow"].emplace_back(rule, "allow");
        for (const auto& cidr : effective.network.allow_cidrs)
            req.lists["allow_cidrs"].emplace_back(cidr, "allow_cidrs");
    }
    config::RunOptions copy = effective;
    Recorder recorder;
    (void)enforce(reference, req, copy, recorder);
    for (auto& g : recorder.asked)
        g.granted_by = granted_by;
    return recorder.asked;
}

std::optional<std::string> protected_by(const Policy& policy, std::string_view path) {
    for (const auto& g : policy.strings("workspace/protected"))
        if (glob_match(g, path)) return g;
    return std::nullopt;
}

} // namespace airlock::policy
