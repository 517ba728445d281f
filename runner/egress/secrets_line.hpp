// The credential endpoints' secrets: one JSON line the runner writes on stdin before the proxy
// listens, `{"secrets":{"<name>":"<value>",...}}`. Values never appear in any message.
#pragma once

#include "egress/config.hpp"
#include "util/result.hpp"

#include <chrono>
#include <map>
#include <string>
#include <string_view>

namespace airlock::egress {

inline constexpr std::size_t k_max_secrets_line = 64 * 1024; // without its LF

// Overwrites the bytes of `s` (best effort: copies made earlier are out of reach) and empties it.
void wipe(std::string& s);

// Secret values by endpoint name; wiped when destroyed.
class Secrets {
public:
    Secrets() = default;
    Secrets(Secrets&&) = default;
    Secrets& operator=(Secrets&&) = default;
    ~Secrets();
    std::map<std::string, std::string> values;
};

// `line` without its LF (a trailing CR is allowed). Every endpoint of `credentials` needs a
// string value without CR, LF or NUL; unknown names, a missing name and bad JSON are errors.
util::Result<Secrets> parse_secrets_line(std::string_view line,
                                         const std::vector<Credential>& credentials);

// Reads one line from `fd` (byte by byte, so nothing after its LF is consumed) within `timeout`,
// at most k_max_secrets_line bytes; EOF, an error and the timeout are errors. The line without
// its LF.
util::Result<std::string> read_secrets_line(int fd, std::chrono::milliseconds timeout);

// "<header>: <template with the secret>\r\n", for the upstream request head.
std::string credential_header_line(const Credential& credential, std::string_view secret);

} // namespace airlock::egress
