// Cooperative cancellation: a flag set from another thread or a signal handler,
// polled by long-running I/O (HTTP streams check it at least once a second).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>

namespace airlock::util {

class CancelToken {
public:
    CancelToken() : m_flag(std::make_shared<std::atomic<bool>>(false)) {}
    void cancel() const { m_flag->store(true); }
    bool cancelled() const { return m_flag->load(); }

private:
    std::shared_ptr<std::atomic<bool>> m_flag;
};

// Process-wide interrupt state, set by SIGINT/SIGTERM handlers (async-signal-safe).
void install_interrupt_handlers();
bool interrupted();
int interrupt_signal();  // the first signal received, 0 if none
int interrupt_count();   // how many were received
void reset_interrupts(); // for tests

using Clock = std::chrono::steady_clock;

} // namespace airlock::util
