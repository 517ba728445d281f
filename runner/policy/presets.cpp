// The presets in policies/*.json, compiled in so that `--policy standard` needs no install path.
#include "policy/policy.hpp"

namespace airlock::policy {

namespace {
struct Preset {
    std::string_view name;
    std::string_view text;
};
const Preset k_presets[] = {
#include "policy_presets.inc"
};
} // namespace

std::vector<std::string> preset_names() {
    std::vector<std::string> out;
    for (const auto& p : k_presets)
        out.emplace_back(p.name);
    return out;
}

std::optional<std::string_view> preset_text(std::string_view name) {
    for (const auto& p : k_presets)
        if (p.name == name) return p.text;
    return std::nullopt;
}

} // namespace airlock::policy
