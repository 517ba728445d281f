#include "util/json_text.hpp"

#include <set>
#include <vector>

namespace airlock::util {

namespace {
struct DuplicateKeys {
    std::vector<std::set<std::string>> seen;
    std::vector<std::string> found;
    bool operator()(int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using E = nlohmann::json::parse_event_t;
        if (event == E::object_start) seen.emplace_back();
        if (event == E::object_end && !seen.empty()) seen.pop_back();
        if (event == E::key && !seen.empty() && parsed.is_string() &&
            !seen.back().insert(parsed.get<std::string>()).second)
            found.push_back(parsed.get<std::string>());
        return true;
    }
};
} // namespace

Result<nlohmann::json> parse_json_text(std::string_view text, const std::string& name) {
    DuplicateKeys dup;
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text, std::ref(dup));
    } catch (const nlohmann::json::parse_error& e) {
        std::size_t line = 1, col = 1;
        for (std::size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
            if (text[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        std::string why = e.what();
        auto column = why.find("column ");
        auto colon = why.find(": ", column == std::string::npos ? 0 : column);
        if (colon != std::string::npos) why = why.substr(colon + 2);
        return make_error(ErrorKind::invalid_input, name + ": not valid JSON at line " +
                                                        std::to_string(line) + ", column " +
                                                        std::to_string(col) + ": " + why);
    } catch (const nlohmann::json::exception& e) {
        // Beyond syntax: a number too large for a double, for one.
        std::string why = e.what();
        auto bracket = why.find("] ");
        if (bracket != std::string::npos) why = why.substr(bracket + 2);
        return make_error(ErrorKind::invalid_input, name + ": not valid JSON: " + why);
    }
    if (!dup.found.empty())
        return make_error(ErrorKind::invalid_input, name + ": the key \"" + dup.found.front() +
                                                        "\" appears twice in one object (keep "
                                                        "one)");
    return j;
}

const nlohmann::json& json_at(const nlohmann::json& j, std::initializer_list<const char*> path) {
    static const nlohmann::json null;
    const nlohmann::json* cur = &j;
    for (const char* key : path) {
        if (!cur->is_object()) return null;
        auto it = cur->find(key);
        if (it == cur->end()) return null;
        cur = &*it;
    }
    return *cur;
}

} // namespace airlock::util
