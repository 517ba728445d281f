// JSON read from files people write: errors with line and column, and duplicate keys refused
// (parsers disagree on which one wins, so a file with two must not mean anything).
#pragma once

#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string>
#include <string_view>

namespace airlock::util {

// On failure the message is "NAME: not valid JSON at line L, column C: WHY" or
// "NAME: the key "K" appears twice in one object (keep one)".
Result<nlohmann::json> parse_json_text(std::string_view text, const std::string& name);

// The value at a key path in untrusted JSON, or a null when a step is missing or not an object.
const nlohmann::json& json_at(const nlohmann::json& j, std::initializer_list<const char*> path);

} // namespace airlock::util
