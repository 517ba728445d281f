// The upload budget: bytes sent from the task to each host, summed over all its connections.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace airlock::egress {

class UploadBudget {
public:
    explicit UploadBudget(std::optional<std::uint64_t> limit) : m_limit(limit) {}

    std::optional<std::uint64_t> limit() const { return m_limit; }
    // Nothing more may go to `host`: a send was cut, or the budget is used up exactly.
    bool spent(const std::string& host) const;
    // Counts `n` more bytes to `host`; false, with nothing counted and the host marked spent,
    // when they would go over the budget.
    bool take(const std::string& host, std::uint64_t n);

private:
    struct Use {
        std::uint64_t bytes = 0;
        bool spent = false;
    };
    std::optional<std::uint64_t> m_limit;
    mutable std::mutex m_mutex;
    std::unordered_map<std::string, Use> m_use;
};

} // namespace airlock::egress
