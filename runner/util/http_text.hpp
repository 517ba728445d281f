// The small text rules of HTTP/1.1 heads (RFC 9110 tokens, control bytes, case-insensitive
// names, optional whitespace), shared by the proxy, the engine client and the policy checks.
#pragma once

#include <string>
#include <string_view>

namespace airlock::util {

bool is_token_char(char c);
bool is_token(std::string_view s); // non-empty, token characters only
bool is_ctl(char c);               // 0x00-0x1f and 0x7f
bool has_ctl(std::string_view s);
char lower_ascii(char c);
std::string to_lower(std::string_view s); // ASCII only, as header names are
bool iequals(std::string_view a, std::string_view b);
std::string_view trim_ows(std::string_view s); // spaces and tabs at both ends

} // namespace airlock::util
