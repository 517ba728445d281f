// Helpers shared by the renderers (render_*.cpp); not part of the audit interface.
#pragma once

#include "util/json_text.hpp"

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string>

namespace airlock::audit::detail {

// The value at a key path, or null when any step is missing or not an object.
inline const nlohmann::json& at(const nlohmann::json& j, std::initializer_list<const char*> path) {
    return util::json_at(j, path);
}

// A string as is, null as "", anything else as compact JSON (invalid UTF-8 replaced).
inline std::string text(const nlohmann::json& j) {
    if (j.is_string()) return j.get<std::string>();
    if (j.is_null()) return {};
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace airlock::audit::detail
