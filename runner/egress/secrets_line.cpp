#include "egress/secrets_line.hpp"

#include "egress/net.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <unistd.h>

namespace airlock::egress {

namespace {

using util::ErrorKind;
using util::make_error;

util::Error bad_line(const std::string& message) {
    return make_error(ErrorKind::invalid_input, "the secrets line on stdin: " + message);
}

// Wipes every string the parsed document holds before it is freed.
void wipe_json(nlohmann::json& doc) {
    if (doc.is_string()) {
        wipe(doc.get_ref<std::string&>());
        return;
    }
    if (doc.is_structured())
        for (auto& item : doc)
            wipe_json(item);
}

struct WipeJson {
    nlohmann::json& doc;
    ~WipeJson() { wipe_json(doc); }
};

} // namespace

void wipe(std::string& s) {
    if (!s.empty()) ::explicit_bzero(s.data(), s.size());
    s.clear();
}

Secrets::~Secrets() {
    for (auto& [name, value] : values)
        wipe(value);
}

util::Result<Secrets> parse_secrets_line(std::string_view line,
                                         const std::vector<Credential>& credentials) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    nlohmann::json doc = nlohmann::json::parse(line, nullptr, false);
    WipeJson wiper{doc};
    // The parser's own message could quote the value: never shown.
    if (doc.is_discarded()) return bad_line("is not valid JSON");
    if (!doc.is_object() || !doc.contains("secrets"))
        return bad_line("must be a JSON object {\"secrets\":{\"<endpoint>\":\"<value>\",...}}");
    for (const auto& item : doc.items())
        if (item.key() != "secrets")
            return bad_line("unknown field \"" + item.key() + "\" (only \"secrets\")");
    nlohmann::json& values = doc.at("secrets");
    if (!values.is_object()) return bad_line("/secrets must be an object of strings");

    Secrets out;
    for (auto& item : values.items()) {
        bool known = false;
        for (const auto& c : credentials)
            known = known || c.name == item.key();
        if (!known)
            return bad_line("/secrets/" + item.key() +
                            ": no credential endpoint has this name in --config");
        if (!item.value().is_string())
            return bad_line("/secrets/" + item.key() + ": must be a string");
        const std::string& value = item.value().get_ref<const std::string&>();
        if (value.empty()) return bad_line("/secrets/" + item.key() + ": is empty");
        if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
            return bad_line("/secrets/" + item.key() +
                            ": contains a CR, LF or NUL byte, which cannot go in a header");
        out.values[item.key()] = value;
    }
    for (const auto& c : credentials)
        if (!out.values.contains(c.name))
            return bad_line("/secrets/" + c.name +
                            ": is missing (every endpoint needs its secret)");
    return out;
}

util::Result<std::string> read_secrets_line(int fd, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::string line;
    while (true) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd p{fd, POLLIN, 0};
        const int n = left > 0 ? ::poll(&p, 1, static_cast<int>(left)) : 0;
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) {
            wipe(line);
            return make_error(ErrorKind::timeout, "no secrets line arrived on stdin within " +
                                                      std::to_string(timeout.count() / 1000) +
                                                      " s");
        }
        char c = 0;
        const ssize_t got = ::read(fd, &c, 1);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got <= 0) {
            const bool eof = got == 0;
            wipe(line);
            return make_error(ErrorKind::invalid_input,
                              eof ? "stdin ended before the secrets line was complete"
                                  : std::string("reading the secrets line from stdin: ") +
                                        std::strerror(errno));
        }
        if (c == '\n') return line;
        if (line.size() >= k_max_secrets_line) {
            wipe(line);
            return make_error(ErrorKind::invalid_input,
                              "the secrets line on stdin is longer than 64 KiB");
        }
        if (line.capacity() == line.size()) {
            // Grow by hand so that no copy of the bytes is left behind unwiped.
            std::string bigger;
            bigger.reserve(std::max<std::size_t>(256, line.size() * 2));
            bigger = line;
            wipe(line);
            line = std::move(bigger);
        }
        line += c;
    }
}

std::string credential_header_line(const Credential& credential, std::string_view secret) {
    const auto at = credential.header_template.find("{secret}");
    std::string out;
    out.reserve(credential.header.size() + credential.header_template.size() + secret.size() + 4);
    out += credential.header;
    out += ": ";
    out.append(credential.header_template, 0, at);
    out += secret;
    out.append(credential.header_template, at + 8);
    out += "\r\n";
    return out;
}

} // namespace airlock::egress
