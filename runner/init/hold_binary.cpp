#include "init/hold_binary.hpp"

// The path comes from CMake (the built airlock-hold); .incbin copies its bytes into .rodata.
asm(".pushsection .rodata\n"
    ".balign 16\n"
    ".global airlock_hold_begin\n"
    "airlock_hold_begin:\n"
    ".incbin \"" AIRLOCK_HOLD_BINARY "\"\n"
    ".global airlock_hold_end\n"
    "airlock_hold_end:\n"
    ".popsection\n");

extern "C" const char airlock_hold_begin[];
extern "C" const char airlock_hold_end[];

namespace airlock::init {

std::string_view hold_binary() {
    return {airlock_hold_begin, static_cast<std::size_t>(airlock_hold_end - airlock_hold_begin)};
}

} // namespace airlock::init
