// Puts a file in place whole or not at all: copy to a temporary name next to it, then rename.
#pragma once

#include "util/result.hpp"

#include <string>

namespace airlock::egress {

// `to` ends up mode 0755 (the copy is a program: airlock-init, for the task's container).
util::Result<void> copy_file_atomically(const std::string& from, const std::string& to);

} // namespace airlock::egress
