#include "util/cancel.hpp"

#include <csignal>

namespace airlock::util {

namespace {
volatile std::sig_atomic_t g_signal = 0;
volatile std::sig_atomic_t g_count = 0;

extern "C" void on_interrupt(int sig) {
    if (g_signal == 0) g_signal = sig;
    g_count = g_count + 1;
}
} // namespace

void install_interrupt_handlers() {
    struct sigaction sa = {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
}

bool interrupted() {
    return g_signal != 0;
}
int interrupt_signal() {
    return g_signal;
}
int interrupt_count() {
    return g_count;
}
void reset_interrupts() {
    g_signal = 0;
    g_count = 0;
}

} // namespace airlock::util
