#include "audit/ci_context.hpp"

namespace airlock::audit {

using nlohmann::json;

json ci_context(const LookupEnv& env) {
    auto get = [&env](const char* name) -> json {
        auto v = env(name);
        return v && !v->empty() ? json(*v) : json();
    };
    if (env("GITHUB_ACTIONS") == std::optional<std::string>("true")) {
        json url;
        if (auto server = env("GITHUB_SERVER_URL"), repo = env("GITHUB_REPOSITORY"),
            run = env("GITHUB_RUN_ID");
            server && repo && run)
            url = *server + "/" + *repo + "/actions/runs/" + *run;
        return {{"provider", "github"},           {"repository", get("GITHUB_REPOSITORY")},
                {"commit", get("GITHUB_SHA")},    {"ref", get("GITHUB_REF")},
                {"run_id", get("GITHUB_RUN_ID")}, {"job", get("GITHUB_JOB")},
                {"actor", get("GITHUB_ACTOR")},   {"url", url}};
    }
    if (env("GITLAB_CI") == std::optional<std::string>("true"))
        return {{"provider", "gitlab"},
                {"repository", get("CI_PROJECT_PATH")},
                {"commit", get("CI_COMMIT_SHA")},
                {"ref", get("CI_COMMIT_REF_NAME")},
                {"run_id", get("CI_PIPELINE_ID")},
                {"job", get("CI_JOB_ID")},
                {"actor", get("GITLAB_USER_LOGIN")},
                {"url", get("CI_JOB_URL")}};
    return nullptr;
}

} // namespace airlock::audit
