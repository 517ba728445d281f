// The table of policy fields: the one place that says what a policy governs.
#include "policy/policy.hpp"

namespace airlock::policy {

namespace {
const std::vector<std::string_view> k_workspace_modes = {"volume", "bind-ro", "bind-rw"};
const std::vector<std::string_view> k_network_modes = {"none", "allowlist", "audit", "open"};
} // namespace

const std::vector<FieldSpec>& field_specs() {
    static const std::vector<FieldSpec> specs = {
        {"images/allow", Kind::prefixes, {}, {}},
        {"images/require_digest", Kind::true_is_tight, {}, {}},
        {"runtime/allow", Kind::subset, {"runc", "runsc"}, {}},
        {"workspace/modes", Kind::subset, k_workspace_modes, {}},
        {"workspace/default", Kind::choice, k_workspace_modes, "workspace/modes"},
        {"workspace/protected", Kind::globs, {}, {}},
        {"network/modes", Kind::subset, k_network_modes, {}},
        {"network/default", Kind::choice, k_network_modes, "network/modes"},
        {"network/allow", Kind::hosts_allow, {}, {}},
        {"network/deny", Kind::hosts_deny, {}, {}},
        {"network/methods",
         Kind::subset,
         {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"},
         {}},
        {"network/allow_cidrs", Kind::cidrs, {}, {}},
        {"network/flags_may_add_hosts", Kind::false_is_tight, {}, {}},
        {"network/upload_budget", Kind::size_max, {}, {}},
        {"network/egress_network", Kind::set_once, {}, {}},
        {"credentials", Kind::credentials, {}, {}},
        {"artifacts/max_file_size", Kind::size_max, {}, {}},
        {"artifacts/max_total_size", Kind::size_max, {}, {}},
        {"resources/memory/default", Kind::size_default, {}, "resources/memory/max"},
        {"resources/memory/max", Kind::size_max, {}, {}},
        {"resources/cpus/default", Kind::cpus_default, {}, "resources/cpus/max"},
        {"resources/cpus/max", Kind::cpus_max, {}, {}},
        {"resources/pids/default", Kind::count_default, {}, "resources/pids/max"},
        {"resources/pids/max", Kind::count_max, {}, {}},
        {"resources/timeout/default", Kind::duration_default, {}, "resources/timeout/max"},
        {"resources/timeout/max", Kind::duration_max, {}, {}},
        {"resources/grace/default", Kind::duration_default, {}, "resources/grace/max"},
        {"resources/grace/max", Kind::duration_max, {}, {}},
        {"resources/output_cap/default", Kind::size_default, {}, "resources/output_cap/max"},
        {"resources/output_cap/max", Kind::size_max, {}, {}},
        {"resources/tmpfs_size/default", Kind::size_default, {}, "resources/tmpfs_size/max"},
        {"resources/tmpfs_size/max", Kind::size_max, {}, {}},
        {"resources/nofile/default", Kind::count_default, {}, "resources/nofile/max"},
        {"resources/nofile/max", Kind::count_max, {}, {}},
        {"resources/nproc/default", Kind::count_default, {}, "resources/nproc/max"},
        {"resources/nproc/max", Kind::count_max, {}, {}},
        {"user/default", Kind::user, {}, "user/min_uid"},
        {"user/min_uid", Kind::min_uid, {}, {}},
        {"env/allow", Kind::names, {}, {}},
        {"secrets/allow", Kind::names, {}, {}},
        {"secrets/inject", Kind::inject, {"env", "file"}, {}},
        {"approvals/required", Kind::capabilities, {}, {}},
        {"approvals/approvers", Kind::approvers, {}, {}},
        {"approvals/flag", Kind::capability_allow, {}, {}},
        {"approvals/prompt", Kind::false_is_tight, {}, {}},
        {"gate/fail_on",
         Kind::superset,
         {"task-failed", "timeout", "oom", "policy-violation", "protected-change",
          "enforcement-mismatch", "unsigned", "network-denied", "secret-exposed",
          "approval-missing"},
         {}},
        {"gate/ask_on", Kind::superset, {"protected-change", "network-denied"}, {}},
        {"gate/max_changed_files", Kind::count_max, {}, {}},
        {"gate/require_signature", Kind::true_is_tight, {}, {}},
        {"gate/max_patch_bytes", Kind::size_max, {}, {}},
    };
    return specs;
}

const FieldSpec* find_spec(std::string_view path) {
    for (const auto& s : field_specs())
        if (s.path == path) return &s;
    return nullptr;
}

Policy builtin() {
    using nlohmann::json;
    Policy p;
    auto set = [&](std::string_view path, json v) {
        p.values[std::string(path)] = Value{std::move(v), "built-in"};
    };
    const json none; // no ceiling
    set("images/allow", json::array({"*"}));
    set("images/require_digest", false);
    set("runtime/allow", json::array({"runc", "runsc"}));
    set("workspace/modes", json::array({"volume", "bind-ro", "bind-rw"}));
    set("workspace/default", "volume");
    set("workspace/protected", json::array());
    set("network/modes", json::array({"none", "allowlist", "audit", "open"}));
    set("network/default", "none");
    set("network/allow", none);
    set("network/deny", json::array());
    set("network/methods",
        json::array({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}));
    set("network/allow_cidrs", none);
    set("network/flags_may_add_hosts", true);
    set("network/upload_budget", none);
    set("network/egress_network", none);
    set("credentials", none);
    set("artifacts/max_file_size", none);
    set("artifacts/max_total_size", none);
    set("resources/memory/default", 2ull << 30);
    set("resources/memory/max", none);
    set("resources/cpus/default", 1'000'000'000);
    set("resources/cpus/max", none);
    set("resources/pids/default", 256);
    set("resources/pids/max", none);
    set("resources/timeout/default", 30 * 60 * 1000);
    set("resources/timeout/max", none);
    set("resources/grace/default", 10 * 1000);
    set("resources/grace/max", none);
    set("resources/output_cap/default", 64ull << 20);
    set("resources/output_cap/max", none);
    set("resources/tmpfs_size/default", 256ull << 20);
    set("resources/tmpfs_size/max", none);
    set("resources/nofile/default", 4096);
    set("resources/nofile/max", none);
    set("resources/nproc/default", 1024);
    set("resources/nproc/max", none);
    set("user/default", "1000:1000");
    set("user/min_uid", 1);
    set("env/allow", none);
    set("secrets/allow", none);
    set("secrets/inject", "env");
    set("approvals/required", json::array());
    set("approvals/approvers", none);
    set("approvals/flag", none);
    set("approvals/prompt", true);
    set("gate/fail_on", json::array());
    set("gate/ask_on", json::array());
    set("gate/max_changed_files", none);
    set("gate/require_signature", false);
    set("gate/max_patch_bytes", none);
    p.layers.push_back({"built-in", "built-in", ""});
    return p;
}

} // namespace airlock::policy
