// A policy: what an agent run may do, as ceilings and defaults, layered so that every later
// layer may only tighten. Values are kept canonical (bytes, milliseconds, nano-CPUs) with the
// layer each came from, so `policy show` can say where a value was set.
#pragma once

#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace airlock::policy {

// How a field is read, compared and shown.
enum class Kind {
    text,         // name, description: informational
    size_default, // bytes; free within the matching max
    size_max,     // bytes; lower is tighter; null = no ceiling
    duration_default,
    duration_max,
    cpus_default,
    cpus_max,
    count_default,
    count_max,
    subset,           // enum list; fewer is tighter (modes, runtimes, methods)
    superset,         // enum list; more is tighter (approvals.required, gate.fail_on)
    globs,            // path globs; more is tighter (workspace.protected)
    prefixes,         // image prefix patterns; narrower is tighter
    names,            // variable-name patterns; narrower is tighter
    hosts_allow,      // host rules; narrower is tighter
    hosts_deny,       // host rules; more is tighter
    cidrs,            // CIDRs; narrower is tighter
    true_is_tight,    // require_digest, require_signature
    false_is_tight,   // flags_may_add_hosts
    choice,           // workspace.default, network.default: one of the matching list
    inject,           // secrets.inject: env < file
    min_uid,          // higher is tighter
    user,             // user.default: UID[:GID], at least min_uid
    set_once,         // egress_network: a later layer may not change it
    credentials,      // endpoint name -> entry; fewer entries and lower budgets are tighter
    capabilities,     // capability patterns; more is tighter (approvals.required)
    capability_allow, // capability patterns; narrower is tighter, null = any (approvals.flag)
    approvers,        // approvals.approvers; fewer, narrower is tighter; null = not yet set
};

struct FieldSpec {
    std::string_view path; // "resources/memory/max"
    Kind kind;
    std::vector<std::string_view> choices; // enum lists and choice fields
    std::string_view companion;            // default -> its max; choice -> its list
};
const std::vector<FieldSpec>& field_specs();
const FieldSpec* find_spec(std::string_view path);

struct Value {
    nlohmann::json value; // canonical; null = unrestricted (built-in ceilings only)
    std::string origin;   // "built-in", "preset standard", "policies/org.json", "--memory"
};

// One problem in one file, printed as `file: /json/pointer: message (hint)`.
struct Problem {
    std::string file;
    std::string pointer;
    std::string message;
    std::string str() const;
};

// A parsed policy file or preset, not yet layered.
struct Document {
    std::string source; // "preset standard" or the path as given
    std::string name;
    std::string extends;
    std::filesystem::path dir; // where relative `extends` paths start
    std::string sha256;        // of the bytes read
    std::map<std::string, Value> values;
};

struct LayerInfo {
    std::string source;
    std::string name;
    std::string sha256;
};

struct Policy {
    std::map<std::string, Value> values;
    std::vector<LayerInfo> layers; // in the order applied

    const nlohmann::json& get(std::string_view path) const;
    const std::string& origin(std::string_view path) const;
    std::vector<std::string> strings(std::string_view path) const;
    bool contains(std::string_view path, std::string_view item) const;
    // Human names: "policy standard" or "policies/org.json + preset strict".
    std::string describe() const;
};

// Parses one document; every problem found is returned, not just the first.
std::variant<Document, std::vector<Problem>>
parse_document(std::string_view text, const std::string& source, const std::filesystem::path& dir);

// Airlock's own loosest settings, under every layer.
Policy builtin();
std::vector<std::string> preset_names();
std::optional<std::string_view> preset_text(std::string_view name);

// Applies `doc` on `base`; a field that loosens is a problem naming both values and origins.
std::vector<Problem> apply_layer(Policy& base, const Document& doc);

// Loads and layers each spec (preset name or file, following `extends`), over builtin().
// No specs means the default preset, standard.
util::Result<Policy> load(const std::vector<std::string>& specs);
// Same, returning every problem (for lint).
std::variant<Policy, std::vector<Problem>> load_all(const std::vector<std::string>& specs);

// A value as a person writes it: "8g", "30m", "1.5", ["a", "b"], "no limit".
std::string format_value(const FieldSpec& spec, const nlohmann::json& v);

enum class Direction { tightens, loosens, changes };
struct Change {
    std::string path;
    std::string from, to; // for lists: "removes [...]" and "adds [...]" (either may be empty)
    Direction direction;
    bool list = false;
};
// What `b` changes relative to `a`.
std::vector<Change> diff(const Policy& a, const Policy& b);

// The effective policy as JSON (values as written) and with origins, for reports and show.
nlohmann::json to_json(const Policy& p);

// SHA-256 (hex) of the effective values (to_json's "values", compact): the same for two layer
// stacks that end in the same policy, whatever the files were called. The report records it and
// `airlock gate --policy` compares it.
std::string digest(const Policy& p);

} // namespace airlock::policy
