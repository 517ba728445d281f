#include "config/run_options.hpp"

#include "util/closest.hpp"
#include "util/json_text.hpp"
#include "util/read_limited.hpp"
#include "util/units.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace airlock::config {

using util::ErrorKind;
using util::make_error;
using util::Result;

const char* to_string(WorkspaceMode mode) {
    switch (mode) {
    case WorkspaceMode::volume:
        return "volume";
    case WorkspaceMode::bind_ro:
        return "bind-ro";
    case WorkspaceMode::bind_rw:
        return "bind-rw";
    }
    return "?";
}

namespace {
const std::set<std::string> k_scalar_fields = {
    "image",   "workspace",      "workspace_mode", "out",        "memory",     "cpus",  "pids",
    "timeout", "user",           "runtime",        "output_cap", "tmpfs_size", "grace", "pull",
    "network", "egress_network", "ca_bundle"};
const std::set<std::string> k_list_fields = {"allow", "deny", "allow_cidrs", "credentials",
                                             "artifacts"};
} // namespace

Result<RunRequest> parse_task_json(std::string_view text, const std::string& name,
                                   const std::filesystem::path& base_dir) {
    auto parsed = util::parse_json_text(text, name);
    if (!parsed) return parsed.error();
    const nlohmann::json& j = *parsed;
    if (!j.is_object())
        return make_error(ErrorKind::invalid_input, name + ": the top level must be a JSON object");
    RunRequest req;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& key = it.key();
        const std::string where = name + ": /" + key;
        if (key == "env" || key == "command" || key == "secrets" || k_list_fields.count(key)) {
            if (!it->is_array())
                return make_error(ErrorKind::invalid_input,
                                  where + ": must be an array of strings");
            std::vector<std::string> items;
            std::size_t i = 0;
            for (const auto& e : *it) {
                if (!e.is_string())
                    return make_error(ErrorKind::invalid_input,
                                      where + "/" + std::to_string(i) + ": must be a string");
                items.push_back(e.get<std::string>());
                ++i;
            }
            if (k_list_fields.count(key)) {
                auto& list = req.lists[key];
                for (std::size_t k = 0; k < items.size(); ++k) {
                    // NAME=@FILE: the file is relative to the task file, as for secrets.
                    auto at = items[k].find("=@");
                    if (key == "credentials" && at != std::string::npos &&
                        at + 2 < items[k].size() && items[k][at + 2] != '/')
                        items[k] = items[k].substr(0, at + 2) +
                                   (base_dir / items[k].substr(at + 2)).lexically_normal().string();
                    list.emplace_back(items[k], where + "/" + std::to_string(k));
                }
            } else if (key == "env") {
                req.env_origins.assign(items.size(), where);
                req.env = std::move(items);
                req.env_origin = where;
            } else if (key == "secrets") {
                for (std::size_t k = 0; k < items.size(); ++k) {
                    auto at = items[k].find("=@");
                    if (at != std::string::npos && at + 2 < items[k].size() &&
                        items[k][at + 2] != '/')
                        items[k] = items[k].substr(0, at + 2) +
                                   (base_dir / items[k].substr(at + 2)).lexically_normal().string();
                    req.secret_origins.push_back(where + "/" + std::to_string(k));
                }
                req.secrets = std::move(items);
            } else {
                req.command = std::move(items);
                req.command_origin = where;
            }
            continue;
        }
        if (!k_scalar_fields.count(key)) {
            std::vector<std::string> known(k_scalar_fields.begin(), k_scalar_fields.end());
            known.insert(known.end(), {"env", "secrets", "command"});
            known.insert(known.end(), k_list_fields.begin(), k_list_fields.end());
            if (auto best = util::closest_in(key, known))
                return make_error(ErrorKind::invalid_input,
                                  where + ": unknown field (did you mean \"" + *best + "\"?)");
            return make_error(ErrorKind::invalid_input,
                              where +
                                  ": unknown field (known: image, workspace, workspace_mode, "
                                  "out, env, memory, cpus, pids, timeout, grace, user, runtime, "
                                  "output_cap, tmpfs_size, pull, secrets, network, allow, deny, "
                                  "allow_cidrs, egress_network, credentials, ca_bundle, "
                                  "artifacts, command)");
        }
        std::string value;
        if (it->is_string())
            value = it->get<std::string>();
        else if (it->is_number())
            value = it->dump();
        else
            return make_error(ErrorKind::invalid_input, where + ": must be a string or a number");
        if ((key == "workspace" || key == "out" || key == "ca_bundle") && !value.empty() &&
            value[0] != '/')
            value = (base_dir / value).lexically_normal().string();
        req.values[key] = value;
        req.origin[key] = where;
    }
    return req;
}

Result<std::string> read_secret_file(const std::filesystem::path& file, const std::string& where) {
    std::string value;
    switch (util::read_limited(file, (64u << 10) + 2, value)) {
    case util::ReadStatus::unreadable:
        return make_error(ErrorKind::invalid_input,
                          where + ": " + file.string() + " cannot be read (check the path)");
    case util::ReadStatus::too_large:
        return make_error(ErrorKind::invalid_input,
                          where + ": " + file.string() + " is larger than 64 KiB");
    case util::ReadStatus::ok:
        break;
    }
    // Files written by editors and `echo` end in a newline that is not part of the secret.
    if (!value.empty() && value.back() == '\n') value.pop_back();
    if (!value.empty() && value.back() == '\r') value.pop_back();
    return value;
}

Result<RunRequest> parse_task_file(const std::filesystem::path& path) {
    std::string text;
    switch (util::read_limited(path, 1u << 20, text)) {
    case util::ReadStatus::unreadable:
        return make_error(ErrorKind::invalid_input,
                          "--task: " + path.string() + ": cannot be read (check the path)");
    case util::ReadStatus::too_large:
        return make_error(ErrorKind::invalid_input, path.string() + ": larger than 1 MiB");
    case util::ReadStatus::ok:
        break;
    }
    auto base = path.parent_path();
    if (base.empty()) base = ".";
    return parse_task_json(text, path.string(), base);
}

RunRequest merge(RunRequest base, const RunRequest& over) {
    for (const auto& [k, v] : over.values) {
        base.values[k] = v;
        std::string flag = k;
        for (auto& c : flag)
            if (c == '_') c = '-';
        base.origin[k] = over.origin.count(k) ? over.origin.at(k) : "--" + flag;
    }
    if (!over.env.empty()) {
        base.env_origins.resize(base.env.size(),
                                base.env_origin.empty() ? "--env" : base.env_origin);
        for (std::size_t i = 0; i < over.env.size(); ++i)
            base.env_origins.push_back(i < over.env_origins.size()
                                           ? over.env_origins[i]
                                           : (over.env_origin.empty() ? "--env" : over.env_origin));
        base.env.insert(base.env.end(), over.env.begin(), over.env.end());
        base.env_origin = over.env_origin;
    }
    base.secrets.insert(base.secrets.end(), over.secrets.begin(), over.secrets.end());
    for (std::size_t i = 0; i < over.secrets.size(); ++i)
        base.secret_origins.push_back(i < over.secret_origins.size() ? over.secret_origins[i]
                                                                     : "--secret");
    for (const auto& [key, items] : over.lists) {
        auto& list = base.lists[key];
        list.insert(list.end(), items.begin(), items.end());
    }
    if (!over.command.empty()) {
        base.command = over.command;
        base.command_origin = over.command_origin;
    }
    return base;
}

namespace {
// The same rules as sandbox::artifact_pattern_problem, checked before anything starts.
std::optional<std::string> artifact_problem(const std::string& pattern) {
    if (pattern.empty()) return "is empty";
    if (pattern[0] == '/')
        return "must be relative to /workspace (e.g. \"dist/report.xml\" or \"out/**/*.json\")";
    if (pattern == ".." || pattern.rfind("../", 0) == 0 ||
        pattern.find("/../") != std::string::npos ||
        (pattern.size() >= 3 && pattern.substr(pattern.size() - 3) == "/.."))
        return "may not contain \"..\"";
    return std::nullopt;
}

bool valid_env_name(const std::string& n) {
    if (n.empty() || (n[0] >= '0' && n[0] <= '9')) return false;
    for (char c : n)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    return true;
}

bool valid_user(const std::string& u) {
    auto colon = u.find(':');
    auto numeric = [](std::string_view s) {
        if (s.empty() || s.size() > 10) return false;
        for (char c : s)
            if (c < '0' || c > '9') return false;
        return true;
    };
    if (colon == std::string::npos) return numeric(u);
    return numeric(std::string_view(u).substr(0, colon)) &&
           numeric(std::string_view(u).substr(colon + 1));
}
} // namespace

Result<RunOptions>
resolve(const RunRequest& req,
        const std::function<std::optional<std::string>(const std::string&)>& lookup_env) {
    RunOptions o;
    auto field = [&](const std::string& k) {
        auto it = req.origin.find(k);
        return it != req.origin.end() ? it->second : "--" + k;
    };
    auto get = [&](const std::string& k) -> const std::string* {
        auto it = req.values.find(k);
        return it == req.values.end() ? nullptr : &it->second;
    };
    for (const auto& k : k_scalar_fields)
        o.origin[k] = req.origin.count(k) ? req.origin.at(k) : "default";

    if (auto v = get("image")) {
        if (v->empty() || v->find_first_of(" \t\n") != std::string::npos)
            return make_error(ErrorKind::invalid_input,
                              field("image") + ": \"" + *v + "\" is not an image reference");
        o.image = *v;
    }
    if (auto v = get("workspace")) o.workspace = *v;
    if (auto v = get("workspace_mode")) {
        if (*v == "volume")
            o.workspace_mode = WorkspaceMode::volume;
        else if (*v == "bind-ro")
            o.workspace_mode = WorkspaceMode::bind_ro;
        else if (*v == "bind-rw")
            o.workspace_mode = WorkspaceMode::bind_rw;
        else
            return make_error(ErrorKind::invalid_input,
                              field("workspace_mode") + ": \"" + *v +
                                  "\" is not a mode (use volume, bind-ro or bind-rw)");
    }
    if (auto v = get("out")) {
        if (v->empty()) return make_error(ErrorKind::invalid_input, field("out") + ": is empty");
        o.out = *v;
    }
    if (auto v = get("memory")) {
        auto r = util::parse_size(*v, field("memory"));
        if (!r) return r.error();
        if (*r < (6u << 20))
            return make_error(ErrorKind::invalid_input,
                              field("memory") + ": \"" + *v +
                                  "\" is below the engine's minimum of 6m");
        o.memory = *r;
    }
    if (auto v = get("cpus")) {
        auto r = util::parse_cpus(*v, field("cpus"));
        if (!r) return r.error();
        o.nano_cpus = *r;
    }
    if (auto v = get("pids")) {
        auto r = util::parse_count(*v, field("pids"), 1'000'000);
        if (!r) return r.error();
        o.pids = *r;
    }
    if (auto v = get("timeout")) {
        auto r = util::parse_duration(*v, field("timeout"));
        if (!r) return r.error();
        o.timeout = *r;
    }
    if (auto v = get("grace")) {
        auto r = util::parse_duration(*v, field("grace"));
        if (!r) return r.error();
        o.grace = *r;
    }
    if (auto v = get("output_cap")) {
        auto r = util::parse_size(*v, field("output_cap"));
        if (!r) return r.error();
        o.output_cap = *r;
    }
    if (auto v = get("tmpfs_size")) {
        auto r = util::parse_size(*v, field("tmpfs_size"));
        if (!r) return r.error();
        o.tmpfs_size = *r;
    }
    if (auto v = get("user")) {
        if (!valid_user(*v))
            return make_error(ErrorKind::invalid_input,
                              field("user") + ": \"" + *v +
                                  "\" is not numeric (use UID[:GID], e.g. 1000:1000)");
        auto colon = v->find(':');
        auto uid = std::stoull(v->substr(0, colon));
        auto gid = colon == std::string::npos ? uid : std::stoull(v->substr(colon + 1));
        if (uid > 4294967294ull || gid > 4294967294ull)
            return make_error(ErrorKind::invalid_input,
                              field("user") + ": \"" + *v +
                                  "\" is out of range (IDs go up to 4294967294)");
        if (gid == 0 && uid != 0)
            return make_error(ErrorKind::refused,
                              field("user") + ": \"" + *v +
                                  "\" puts the task in the root group (use a non-zero GID)");
        if (uid == 0)
            return make_error(ErrorKind::refused,
                              field("user") + ": \"" + *v +
                                  "\" is root; agents run as a non-root user (use e.g. 1000:1000)");
        o.user = v->find(':') == std::string::npos ? *v + ":" + *v : *v;
    }
    if (auto v = get("pull")) {
        if (*v != "missing" && *v != "never")
            return make_error(ErrorKind::invalid_input,
                              field("pull") + ": \"" + *v +
                                  "\" is not a pull policy (use missing or never)");
        o.pull_missing = *v == "missing";
    }
    if (auto v = get("runtime")) {
        if (*v != "runc" && *v != "runsc")
            return make_error(ErrorKind::invalid_input,
                              field("runtime") + ": \"" + *v +
                                  "\" is not supported (use runc or runsc)");
        o.runtime = *v;
    }
    if (auto v = get("network")) {
        static const std::vector<std::string> modes = {"none", "allowlist", "audit", "open"};
        if (std::find(modes.begin(), modes.end(), *v) == modes.end()) {
            std::string hint = "use none, allowlist, audit or open";
            if (auto best = util::closest_in(*v, modes)) hint = "did you mean " + *best + "?";
            return make_error(ErrorKind::invalid_input, field("network") + ": \"" + *v +
                                                            "\" is not a network mode (" + hint +
                                                            ")");
        }
        o.network.mode = *v;
    }
    if (auto v = get("egress_network")) {
        if (v->empty() || v->find_first_of(" \t\n/") != std::string::npos)
            return make_error(ErrorKind::invalid_input,
                              field("egress_network") + ": \"" + *v + "\" is not a network name");
        o.network.egress_network = *v;
    }
    if (auto it = req.lists.find("artifacts"); it != req.lists.end())
        for (const auto& [pattern, where] : it->second) {
            if (auto problem = artifact_problem(pattern))
                return make_error(ErrorKind::invalid_input,
                                  where + ": \"" + pattern + "\" " + *problem);
            o.artifacts.push_back(pattern);
        }
    if (auto v = get("ca_bundle")) {
        if (v->empty())
            return make_error(ErrorKind::invalid_input,
                              field("ca_bundle") + ": empty (give a PEM file of CA certificates)");
        o.ca_bundle = *v;
    }
    for (std::size_t i = 0; i < req.env.size(); ++i) {
        const std::string& e = req.env[i];
        auto eq = e.find('=');
        std::string name = e.substr(0, eq);
        std::string where = i < req.env_origins.size()
                                ? req.env_origins[i]
                                : (req.env_origin.empty() ? "--env" : req.env_origin);
        if (!valid_env_name(name))
            return make_error(ErrorKind::invalid_input,
                              where + ": \"" + name +
                                  "\" is not a variable name (use NAME or NAME=VALUE)");
        std::string value;
        if (eq == std::string::npos) {
            auto v = lookup_env(name);
            if (!v)
                return make_error(ErrorKind::invalid_input,
                                  where + ": " + name +
                                      " is not set in airlock's environment (set it, or pass " +
                                      name + "=VALUE)");
            value = *v;
        } else {
            value = e.substr(eq + 1);
        }
        bool dup = false;
        for (auto& p : o.env)
            if (p.first == name) {
                p.second = value;
                dup = true;
            }
        if (!dup) o.env.emplace_back(name, value);
    }
    for (std::size_t i = 0; i < req.secrets.size(); ++i) {
        const std::string& spec = req.secrets[i];
        const std::string where =
            i < req.secret_origins.size() ? req.secret_origins[i] : "--secret";
        auto at = spec.find("=@");
        std::string name = spec.substr(0, at);
        if (!valid_env_name(name) ||
            (at == std::string::npos && spec.find('=') != std::string::npos))
            return make_error(ErrorKind::invalid_input,
                              where + ": \"" + name.substr(0, name.find('=')) +
                                  "\" is not a secret name (use NAME, taken from airlock's "
                                  "environment, or NAME=@FILE; never put a value on the command "
                                  "line)");
        Secret s{name, {}};
        if (at == std::string::npos) {
            auto v = lookup_env(name);
            if (!v)
                return make_error(ErrorKind::invalid_input,
                                  where + ": " + name +
                                      " is not set in airlock's environment (export it, or use " +
                                      name + "=@FILE)");
            s.value = *v;
        } else {
            auto value = read_secret_file(spec.substr(at + 2), where);
            if (!value) return value.error();
            s.value = std::move(*value);
        }
        if (s.value.size() < 8)
            return make_error(ErrorKind::invalid_input,
                              where + ": " + name +
                                  " is shorter than 8 bytes; airlock redacts "
                                  "secrets from everything it writes and "
                                  "cannot do so safely for values that short");
        if (s.value.size() > (64u << 10))
            return make_error(ErrorKind::invalid_input,
                              where + ": " + name + " is larger than 64 KiB");
        for (const auto& e : o.env)
            if (e.first == name)
                return make_error(ErrorKind::invalid_input,
                                  where + ": " + name +
                                      " is also given with --env (pass it one way only)");
        bool dup = false;
        for (const auto& other : o.secrets)
            if (other.name == name) dup = true;
        if (dup)
            return make_error(ErrorKind::invalid_input, where + ": " + name + " is given twice");
        o.secrets.push_back(std::move(s));
    }
    o.command = req.command;
    if (o.command.empty())
        return make_error(ErrorKind::invalid_input,
                          "no command given (use: airlock run [options] -- COMMAND [ARGS...])");
    return o;
}

} // namespace airlock::config
