// `airlock policy suggest`: the smallest policy change that would have let some runs pass, read
// from their report.json files, for a person to review. Reports are untrusted input: any shape
// yields suggestions and notes, never a crash. See docs/suggest.md.
#pragma once

#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace airlock::policy {

enum class ChangeOp {
    add, // append `value` to the list at `path`
    set, // replace the value at `path` with `value`
};

// One change to one policy field, in the form a policy file writes it.
struct SuggestedChange {
    std::string path; // "network/allow", "resources/timeout/default"
    ChangeOp op = ChangeOp::add;
    nlohmann::json value; // add: the item ("example.test:443"); set: the new value ("1h", "4g")
    std::string from;     // set: the old value as written ("30m"), or "no limit"
    std::string why;      // "run 20261203t101500-abc123, 3 requests refused, first at ..."
    // `network.allow: + "example.test:443"  (why)` or `resources.timeout.default: 30m -> 1h  (why)`
    std::string line() const;
};

struct Suggestion {
    std::vector<SuggestedChange> changes; // host rules sorted; at most one `set` per path
    std::vector<std::string> notes;       // what needs a person: approvals, CIDRs, budgets
    std::vector<std::string> runs;        // the run ids read, in the order given
    // One line per change, then `# note: ...` lines; "no changes suggested" when there are none.
    std::string text() const;
};

// The changes to the FIRST report's effective policy (report.policy.values) that would have let
// every run pass: allow rules for refused and audited hosts, the allowlist mode after an audit
// run, doubled timeouts and memory after a timeout or OOM. `out_dirs`, when given, names each
// report's directory in the notes (for the `airlock approve --for-report OUT` hint).
Suggestion suggest(const std::vector<nlohmann::json>& reports,
                   const std::vector<std::string>& out_dirs = {});

// A complete policy document: the first report's policy.values (null fields dropped) with the
// changes applied, and "name"/"description" naming the runs. It is checked the way `--policy FILE`
// loads it; invalid_input names the problem when the report's values cannot make a policy.
util::Result<nlohmann::ordered_json> suggested_policy(const nlohmann::json& first_report,
                                                      const Suggestion& suggestion);

} // namespace airlock::policy
