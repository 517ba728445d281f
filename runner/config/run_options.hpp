// What `airlock run` is asked to do: task file and flags, merged (flags win) and validated.
#pragma once

#include "util/result.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace airlock::config {

enum class WorkspaceMode { volume, bind_ro, bind_rw };
const char* to_string(WorkspaceMode mode);

// Raw values as written, before validation; `origin` says where each came from.
struct RunRequest {
    std::map<std::string, std::string> values; // image, workspace, workspace_mode, out, memory,
                                               // cpus, pids, timeout, user, runtime,
                                               // output_cap, tmpfs_size, grace, pull,
                                               // network, egress_network, ca_bundle
    std::vector<std::string> env;              // NAME or NAME=VALUE
    std::vector<std::string> command;
    std::map<std::string, std::string> origin; // field -> "--memory" or "task.json: /memory"
    std::vector<std::string> env_origins;      // one per env entry
    std::vector<std::string> secrets;          // NAME (from airlock's environment) or NAME=@FILE
    std::vector<std::string> secret_origins;   // one per secrets entry
    std::string env_origin, command_origin;
    // Network rules the task asks for: "allow" and "deny" (HOST[:PORT]), "allow_cidrs" (CIDR),
    // and the credentials it asks for ("credentials": NAME or NAME=@FILE), each item with where
    // it came from ("--allow" or "task.json: /allow/0").
    std::map<std::string, std::vector<std::pair<std::string, std::string>>> lists;
};

// A secret's value is held only in memory; it never reaches a file airlock writes.
struct Secret {
    std::string name;
    std::string value;
};

// A credential the egress sidecar holds for the task (policy `credentials`, docs/credentials.md):
// the task sends plain HTTP to http://127.0.0.1:3129/<name>/..., the sidecar forwards it over
// verified TLS to the upstream with the header added. The value never enters the agent container.
struct Credential {
    std::string name;     // the endpoint's path prefix
    std::string secret;   // the variable it came from, or "FILE" for NAME=@FILE
    std::string value;    // memory only; reaches the sidecar on its standard input
    std::string upstream; // https://host[:port][/base], as the policy wrote it
    std::string host;     // lower case
    std::uint16_t port = 443;
    std::string base_path;                                // "" or "/v1": no trailing slash
    std::string header;                                   // "Authorization"
    std::string value_template;                           // "Bearer {secret}"
    std::vector<std::pair<std::string, std::string>> env; // for the task, {endpoint} filled in
    std::optional<std::uint64_t> max_requests, max_bytes; // per run; none: no budget
    std::string origin; // "--credential" or "task.json: /credentials/0"
};

// How the task reaches the network. `none`: no interface but lo. `allowlist` and `audit`: still no
// interface, but airlock-init relays 127.0.0.1:3128 to the egress proxy sidecar, which applies
// these rules (audit allows everything and records it). `open`: the egress network itself.
struct NetworkOptions {
    std::string mode = "none";
    std::vector<std::string> allow, deny;       // host rules, HOST or *.DOMAIN, optional :PORT
    std::vector<std::string> methods;           // plain-HTTP methods the proxy lets through
    std::vector<std::string> allow_cidrs;       // private ranges the proxy may reach
    std::optional<std::uint64_t> upload_budget; // bytes sent per host per run
    std::string egress_network = "bridge";      // where the sidecar (or an open task) connects
    bool proxied() const { return mode == "allowlist" || mode == "audit"; }
};

struct RunOptions {
    std::string image = "airlock/agent-base:latest";
    std::filesystem::path workspace = ".";
    WorkspaceMode workspace_mode = WorkspaceMode::volume;
    std::optional<std::filesystem::path> out;
    std::vector<std::pair<std::string, std::string>> env; // name, value (values never logged)
    std::uint64_t memory = 2ull << 30;
    std::int64_t nano_cpus = 1'000'000'000;
    std::int64_t pids = 256;
    std::chrono::milliseconds timeout{30 * 60 * 1000};
    std::chrono::milliseconds grace{10 * 1000};
    std::string user = "1000:1000";
    std::string runtime = "runc";
    std::vector<std::string> runtimes; // allowed, in order of preference; preflight picks one
    bool pull_missing = true;          // pull the image when the engine lacks it
    std::uint64_t tmpfs_size = 256ull << 20;
    std::uint64_t output_cap = 64ull << 20;
    std::int64_t nofile = 4096;
    std::int64_t nproc = 1024;
    std::vector<Secret> secrets;
    NetworkOptions network;
    std::vector<Credential> credentials;
    std::vector<std::string> artifacts; // workspace paths or globs, copied to OUT/artifacts
    std::uint64_t artifact_max_file = 256ull << 20, artifact_max_total = 1ull << 30;
    // The CA bundle put into the sidecar's image, against which credential upstreams verify.
    std::filesystem::path ca_bundle = "/etc/ssl/certs/ca-certificates.crt";
    std::vector<std::string> command;
    std::map<std::string, std::string> origin; // field -> where it came from ("default" if absent)
};

// A secret's value from FILE, at most 64 KiB, one trailing newline (LF or CRLF) dropped; errors
// start with `where` and name the file, never the content.
util::Result<std::string> read_secret_file(const std::filesystem::path& file,
                                           const std::string& where);

// Known fields of a task file (JSON object). Unknown fields are an error naming them.
util::Result<RunRequest> parse_task_file(const std::filesystem::path& path);
// Same, from text (for tests and fuzzing); `name` is used in messages.
util::Result<RunRequest> parse_task_json(std::string_view text, const std::string& name,
                                         const std::filesystem::path& base_dir);
// Layers `over` on top of `base`: later values win, env lists are concatenated.
RunRequest merge(RunRequest base, const RunRequest& over);
// Validates every field; `lookup_env` reads airlock's own environment for `--env NAME` and
// `--secret NAME`.
util::Result<RunOptions>
resolve(const RunRequest& req,
        const std::function<std::optional<std::string>(const std::string&)>& lookup_env);

} // namespace airlock::config
