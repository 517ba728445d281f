// Where a run happened: the CI system's own variables (GitHub Actions, GitLab CI), for the report.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>

namespace airlock::audit {

using LookupEnv = std::function<std::optional<std::string>(const std::string&)>;

// {provider ("github" or "gitlab"), repository, commit, ref, run_id, job, actor, url}; null
// outside CI. Missing variables are null, never guessed.
nlohmann::json ci_context(const LookupEnv& env);

} // namespace airlock::audit
