// The options `airlock gate` and `airlock apply` share: OUT, the expected policy, the public key.
#pragma once

#include "audit/gate.hpp"
#include "util/result.hpp"

#include <cxxopts.hpp>

#include <optional>
#include <string>
#include <vector>

namespace airlock::cli {

// Loads the policy layers and reads the public key (checked to be an Ed25519 key); errors are
// messages for exit 2 that name the file and the fix.
util::Result<audit::GateOptions> gate_options(const std::string& out,
                                              const std::vector<std::string>& policies,
                                              const std::optional<std::string>& pubkey_file,
                                              const std::vector<std::string>& approvals = {});
// The same from parsed options: "out" (one positional), "policy", "pubkey", "approvals".
util::Result<audit::GateOptions> gate_options(const cxxopts::ParseResult& res);

} // namespace airlock::cli
