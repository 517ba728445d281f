#include "egress/budget.hpp"

namespace airlock::egress {

bool UploadBudget::spent(const std::string& host) const {
    if (!m_limit) return false;
    std::lock_guard lock(m_mutex);
    const auto it = m_use.find(host);
    if (it == m_use.end()) return *m_limit == 0;
    return it->second.spent || it->second.bytes >= *m_limit;
}

bool UploadBudget::take(const std::string& host, std::uint64_t n) {
    if (!m_limit || n == 0) return true;
    std::lock_guard lock(m_mutex);
    Use& use = m_use[host];
    if (use.spent || n > *m_limit - use.bytes) {
        use.spent = true;
        return false;
    }
    use.bytes += n;
    return true;
}

} // namespace airlock::egress
