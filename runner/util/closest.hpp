// "Did you mean ...?": the nearest known word to a misspelt one.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::util {

std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` by edit distance, when close enough to be a likely typo.
template <typename Range>
std::optional<std::string> closest_in(std::string_view word, const Range& candidates) {
    std::optional<std::string> best;
    std::size_t best_d = 0;
    for (const auto& c : candidates) {
        std::size_t d = edit_distance(word, c);
        if (!best || d < best_d) {
            best = std::string(c);
            best_d = d;
        }
    }
    if (best && best_d <= std::max<std::size_t>(2, word.size() / 3)) return best;
    return std::nullopt;
}

} // namespace airlock::util
