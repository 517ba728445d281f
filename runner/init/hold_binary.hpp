// The airlock-hold executable, embedded at build time so airlock needs no install directory.
#pragma once

#include <string_view>

namespace airlock::init {

std::string_view hold_binary();

} // namespace airlock::init
