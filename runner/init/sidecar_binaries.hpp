// airlock-init and airlock-egress, embedded at build time so airlock needs no install directory.
#pragma once

#include <string_view>

namespace airlock::init {

std::string_view init_binary();
std::string_view egress_binary();

} // namespace airlock::init
