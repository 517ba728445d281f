#include "init/sidecar_binaries.hpp"

// The paths come from CMake (the built programs); .incbin copies their bytes into .rodata.
asm(".pushsection .rodata\n"
    ".balign 16\n"
    ".global airlock_init_begin\n"
    "airlock_init_begin:\n"
    ".incbin \"" AIRLOCK_INIT_BINARY "\"\n"
    ".global airlock_init_end\n"
    "airlock_init_end:\n"
    ".balign 16\n"
    ".global airlock_egress_begin\n"
    "airlock_egress_begin:\n"
    ".incbin \"" AIRLOCK_EGRESS_BINARY "\"\n"
    ".global airlock_egress_end\n"
    "airlock_egress_end:\n"
    ".popsection\n");

extern "C" const char airlock_init_begin[];
extern "C" const char airlock_init_end[];
extern "C" const char airlock_egress_begin[];
extern "C" const char airlock_egress_end[];

namespace airlock::init {

std::string_view init_binary() {
    return {airlock_init_begin, static_cast<std::size_t>(airlock_init_end - airlock_init_begin)};
}

std::string_view egress_binary() {
    return {airlock_egress_begin,
            static_cast<std::size_t>(airlock_egress_end - airlock_egress_begin)};
}

} // namespace airlock::init
