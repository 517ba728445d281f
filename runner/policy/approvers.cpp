#include "policy/approvers.hpp"

#include "audit/dsse.hpp"
#include "policy/capability.hpp"
#include "policy/policy.hpp"
#include "util/read_limited.hpp"

#include <set>

namespace airlock::policy {

using nlohmann::json;

namespace {

bool good_name(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
            c != '@')
            return false;
    return true;
}

std::string quote_arg(const std::string& s) {
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) &&
            std::string_view("._-:/@").find(c) == std::string_view::npos)
            return "'" + s + "'";
    return s;
}

} // namespace

std::optional<json> parse_approvers(const json& v, const std::string& ptr,
                                    const std::filesystem::path& dir,
                                    std::vector<ApproverProblem>& problems) {
    const std::size_t before = problems.size();
    auto problem = [&](const std::string& p, std::string m) {
        problems.push_back({p, std::move(m)});
    };
    if (!v.is_array()) {
        problem(ptr, "must be an array of {\"name\", \"public_key\" or \"public_key_file\", "
                     "\"capabilities\"} objects");
        return std::nullopt;
    }
    json out = json::array();
    std::set<std::string> names, keyids;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string p = ptr + "/" + std::to_string(i);
        const json& a = v[i];
        if (!a.is_object()) {
            problem(p, "must be an object with \"name\" and \"public_key\" or \"public_key_file\"");
            continue;
        }
        for (auto it = a.begin(); it != a.end(); ++it)
            if (it.key() != "name" && it.key() != "public_key" && it.key() != "public_key_file" &&
                it.key() != "capabilities")
                problem(p + "/" + it.key(), "unknown field (known: name, public_key, "
                                            "public_key_file, capabilities)");
        json entry = json::object();
        if (!a.contains("name") || !a["name"].is_string() ||
            !good_name(a["name"].get<std::string>())) {
            problem(p + "/name", "must be a name of 1 to 64 letters, digits, . _ - @ (who this is, "
                                 "shown in reports)");
        } else if (!names.insert(a["name"].get<std::string>()).second) {
            problem(p + "/name", "\"" + a["name"].get<std::string>() + "\" is listed twice");
        } else {
            entry["name"] = a["name"];
        }
        std::string pem, where;
        const bool inline_key = a.contains("public_key"), file_key = a.contains("public_key_file");
        if (inline_key == file_key) {
            problem(p, "give exactly one of \"public_key\" (PEM text) and \"public_key_file\" (a "
                       "path relative to this policy file), as written by `airlock keygen`");
        } else if (inline_key) {
            where = p + "/public_key";
            if (!a["public_key"].is_string())
                problem(where, "must be the PEM text of an Ed25519 public key");
            else
                pem = a["public_key"].get<std::string>();
        } else {
            where = p + "/public_key_file";
            if (!a["public_key_file"].is_string() ||
                a["public_key_file"].get<std::string>().empty()) {
                problem(where, "must be a path to PREFIX.pub from `airlock keygen`");
            } else {
                std::filesystem::path f = a["public_key_file"].get<std::string>();
                if (f.is_relative()) f = dir / f;
                if (util::read_limited(f, 64u << 10, pem) != util::ReadStatus::ok) {
                    problem(where, f.string() + ": cannot be read");
                    pem.clear();
                }
            }
        }
        if (!pem.empty()) {
            auto id = audit::public_key_id(pem, "the key");
            if (!id) {
                problem(where, "is not an Ed25519 public key in PEM (make one with `airlock "
                               "keygen --out PREFIX` and use PREFIX.pub)");
            } else if (!keyids.insert(*id).second) {
                problem(where, "the same key is listed twice (keyid " + *id + ")");
            } else {
                entry["keyid"] = *id;
                // Canonical PEM, whatever whitespace the file had.
                entry["public_key"] = pem;
            }
        }
        if (a.contains("capabilities")) {
            const json& caps = a["capabilities"];
            if (!caps.is_array() || caps.empty()) {
                problem(p + "/capabilities",
                        "must be a non-empty array of capability patterns (leave it out to "
                        "let this approver approve anything)");
            } else {
                json list = json::array();
                for (std::size_t k = 0; k < caps.size(); ++k) {
                    const std::string cp = p + "/capabilities/" + std::to_string(k);
                    if (!caps[k].is_string()) {
                        problem(cp, "must be a string");
                        continue;
                    }
                    if (auto why = capability_problem(caps[k].get<std::string>()))
                        problem(cp, "\"" + caps[k].get<std::string>() + "\" " + *why);
                    else
                        list.push_back(caps[k]);
                }
                entry["capabilities"] = list;
            }
        } else {
            entry["capabilities"] = nullptr;
        }
        out.push_back(entry);
    }
    if (problems.size() != before) return std::nullopt;
    return out;
}

bool approvers_tighten(const json& old_list, const json& new_list) {
    if (old_list.is_null()) return true;
    if (!old_list.is_array() || !new_list.is_array()) return false;
    for (const auto& n : new_list) {
        bool ok = false;
        for (const auto& o : old_list) {
            if (o.value("keyid", "") != n.value("keyid", "") ||
                o.value("name", "") != n.value("name", ""))
                continue;
            const json& oc = o["capabilities"];
            const json& nc = n["capabilities"];
            if (oc.is_null()) {
                ok = true;
            } else if (nc.is_array()) {
                ok = true;
                for (const auto& c : nc) {
                    bool covered = false;
                    for (const auto& d : oc)
                        covered = covered || capability_pattern_covers(d.get<std::string>(),
                                                                       c.get<std::string>());
                    ok = ok && covered;
                }
            }
        }
        if (!ok) return false;
    }
    return true;
}

std::string format_approvers(const json& v) {
    if (!v.is_array() || v.empty()) return "none";
    std::string out;
    for (const auto& a : v) {
        std::string caps;
        if (a.contains("capabilities") && a["capabilities"].is_array())
            for (const auto& c : a["capabilities"])
                caps += (caps.empty() ? "" : " ") + c.get<std::string>();
        out += (out.empty() ? "" : ", ") + a.value("name", "?") + " (keyid " +
               a.value("keyid", "").substr(0, 12) + ", " + (caps.empty() ? "any" : caps) + ")";
    }
    return out;
}

std::vector<json> approvers_for(const json& approvers, const std::string& capability) {
    std::vector<json> out;
    if (!approvers.is_array()) return out;
    for (const auto& a : approvers) {
        const json& caps = a.contains("capabilities") ? a["capabilities"] : json();
        bool ok = caps.is_null();
        if (caps.is_array())
            for (const auto& c : caps)
                ok = ok || (c.is_string() && capability_covers(c.get<std::string>(), capability));
        if (ok) out.push_back(a);
    }
    return out;
}

std::string approval_hint(const Policy& policy, const std::string& capability) {
    std::vector<std::string> ways;
    const auto who = approvers_for(policy.get("approvals/approvers"), capability);
    if (!who.empty()) {
        std::string names;
        for (const auto& a : who)
            names += (names.empty() ? "" : ", ") + a.value("name", "?");
        ways.push_back("an approver (" + names + ", approvals.approvers from " +
                       policy.origin("approvals/approvers") +
                       ") runs `airlock approve --key KEY --capability " + quote_arg(capability) +
                       " --for-repo REPO|--for-commit SHA|--for-run RUN --out approval.json` "
                       "and you pass --approvals approval.json");
    }
    const json& flag = policy.get("approvals/flag");
    bool by_flag = flag.is_null();
    for (const auto& p : policy.strings("approvals/flag"))
        by_flag = by_flag || capability_covers(p, capability);
    if (by_flag)
        ways.push_back("--approve " + quote_arg(capability) + " (approvals.flag allows it)");
    if (policy.get("approvals/prompt") == true)
        ways.push_back("answer yes when airlock asks on a terminal");
    if (ways.empty())
        return "nobody can approve " + capability +
               " under this policy (no approver lists it, approvals.flag does not allow it and "
               "approvals.prompt is off)";
    std::string out = "to approve " + capability + ": ";
    for (std::size_t i = 0; i < ways.size(); ++i)
        out += (i ? "; or " : "") + ways[i];
    return out;
}

} // namespace airlock::policy
