#include "audit/render.hpp"

#include "audit/render_detail.hpp"

#include <openssl/rand.h>

#include <stdexcept>

namespace airlock::audit {

using detail::at;
using detail::text;
using nlohmann::json;

namespace {

// Workflow-command data: the runner splits commands at line ends, so CR and LF (and the '%' that
// introduces the escapes) are encoded; other control characters are dropped.
std::string escape_data(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '%':
            out += "%25";
            break;
        case '\r':
            out += "%0D";
            break;
        case '\n':
            out += "%0A";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20 && c != '\t') break;
            if (c == '\x7f') break;
            out += c;
        }
    }
    return out;
}

// Properties also end at ':' (the "::" before the message) and ',' (the next property).
std::string escape_property(std::string_view s) {
    std::string out;
    for (char c : escape_data(s)) {
        if (c == ':')
            out += "%3A";
        else if (c == ',')
            out += "%2C";
        else
            out += c;
    }
    return out;
}

} // namespace

std::string annotation(const json& violation) {
    const std::string level = at(violation, {"severity"}) == "error" ? "error" : "warning";
    std::string props;
    const json& path = at(violation, {"location", "path"});
    if (path.is_string() && !path.get_ref<const std::string&>().empty())
        props = "file=" + escape_property(to_valid_utf8(location_of(violation))) + ",line=1,";
    const std::string rule = text(at(violation, {"rule"}));
    props += "title=" + escape_property(to_valid_utf8(rule));
    return "::" + level + " " + props +
           "::" + escape_data(to_valid_utf8(text(at(violation, {"message"}))));
}

std::string stop_commands_token() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        throw std::runtime_error("OpenSSL RAND_bytes failed: no token for ::stop-commands::");
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * sizeof bytes);
    for (unsigned char b : bytes) {
        out += k_hex[b >> 4];
        out += k_hex[b & 0x0F];
    }
    return out;
}

} // namespace airlock::audit
