// Secrets as files on a tmpfs that never touches the engine's disk. A tmpfs volume only holds
// data while some container has it mounted, so a holder container (a static binary that only
// waits, imported from scratch) keeps it mounted while the secrets are written into it through
// the archive API; the agent mounts it read-only, and the holder goes once the agent runs.
#pragma once

#include "config/run_options.hpp"
#include "docker/client.hpp"
#include "sandbox/resources.hpp"

#include <string>
#include <vector>

namespace airlock::sandbox {

// airlock/hold:<content hash>, imported when the engine lacks it.
util::Result<std::string> ensure_hold_image(docker::Client& client);

// An uncompressed tar, built in memory only: one file per secret, named after it, owned by
// uid:gid, mode 0400.
std::string secrets_tar(const std::vector<config::Secret>& secrets, unsigned uid, unsigned gid);

// Creates the run's tmpfs volume `volume` (registered for teardown), starts a holder on it
// (registered too) and writes the secrets into it. Returns the holder's id: remove it once the
// agent has started.
util::Result<std::string> stage_secret_files(docker::Client& client, Resources& resources,
                                             const std::string& run_id, const std::string& volume,
                                             const std::vector<config::Secret>& secrets,
                                             const std::string& user);

} // namespace airlock::sandbox
