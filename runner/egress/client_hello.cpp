#include "egress/client_hello.hpp"

#include <bitset>

namespace airlock::egress {

namespace {

constexpr unsigned k_record_handshake = 22;
constexpr unsigned k_handshake_client_hello = 1;
constexpr std::size_t k_max_record = 16 * 1024;

ClientHello refuse(std::string problem) {
    return {HelloStatus::not_hello, std::nullopt, std::move(problem)};
}

// Reads big-endian fields from a byte range, failing (not throwing) when it runs out.
class Reader {
public:
    explicit Reader(std::string_view b) : m_b(b) {}
    bool u8(unsigned& v) { return take(1, v); }
    bool u16(unsigned& v) { return take(2, v); }
    bool u24(unsigned& v) { return take(3, v); }
    bool bytes(std::size_t n, std::string_view& out) {
        if (m_b.size() < n) return false;
        out = m_b.substr(0, n);
        m_b.remove_prefix(n);
        return true;
    }
    bool skip(std::size_t n) {
        std::string_view ignored;
        return bytes(n, ignored);
    }
    std::size_t left() const { return m_b.size(); }

private:
    bool take(std::size_t n, unsigned& v) {
        if (m_b.size() < n) return false;
        v = 0;
        for (std::size_t i = 0; i < n; ++i)
            v = (v << 8) | static_cast<unsigned char>(m_b[i]);
        m_b.remove_prefix(n);
        return true;
    }
    std::string_view m_b;
};

bool valid_host_name(std::string_view name) {
    if (name.empty() || name.size() > 254) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    return name.front() != '.' && name.find("..") == std::string_view::npos;
}

// The server_name extension body (RFC 6066 section 3).
ClientHello server_name(std::string_view body) {
    Reader r(body);
    unsigned list = 0;
    if (!r.u16(list) || list != r.left() || list == 0)
        return refuse("the server_name extension is malformed");
    std::optional<std::string> found;
    while (r.left() > 0) {
        unsigned type = 0, size = 0;
        std::string_view name;
        if (!r.u8(type) || !r.u16(size) || !r.bytes(size, name))
            return refuse("the server_name extension is malformed");
        if (type != 0) continue;
        if (found) return refuse("the ClientHello names more than one host");
        if (!valid_host_name(name)) return refuse("the server name is not a host name");
        std::string host;
        for (char c : name)
            host += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        if (host.back() == '.') host.pop_back();
        found = host;
    }
    return {HelloStatus::ok, found, {}};
}

// The body of a ClientHello handshake message (RFC 8446 section 4.1.2).
ClientHello client_hello_body(std::string_view body) {
    Reader r(body);
    unsigned version = 0, session = 0, suites = 0, compression = 0;
    if (!r.u16(version) || !r.skip(32) || !r.u8(session) || session > 32 || !r.skip(session) ||
        !r.u16(suites) || suites < 2 || suites % 2 != 0 || !r.skip(suites) || !r.u8(compression) ||
        compression < 1 || !r.skip(compression))
        return refuse("the ClientHello is malformed");
    if ((version >> 8) != 3) return refuse("the ClientHello has an unknown version");
    if (r.left() == 0) return {HelloStatus::ok, std::nullopt, {}};
    unsigned total = 0;
    if (!r.u16(total) || total != r.left())
        return refuse("the ClientHello extensions are malformed");
    std::bitset<65536> seen; // extension types, to refuse duplicates (RFC 8446 4.2)
    ClientHello result{HelloStatus::ok, std::nullopt, {}};
    while (r.left() > 0) {
        unsigned type = 0, size = 0;
        std::string_view data;
        if (!r.u16(type) || !r.u16(size) || !r.bytes(size, data))
            return refuse("the ClientHello extensions are malformed");
        if (seen.test(type)) return refuse("the ClientHello repeats an extension");
        seen.set(type);
        if (type == 0) {
            result = server_name(data);
            if (result.status != HelloStatus::ok) return result;
        }
    }
    return result;
}

} // namespace

ClientHello parse_client_hello(std::string_view bytes) {
    // Gather handshake bytes from consecutive records until the message is complete.
    std::string message;
    std::size_t need = 0; // 4 + body length, once the header is in
    while (true) {
        if (!bytes.empty() && static_cast<unsigned char>(bytes[0]) != k_record_handshake)
            return refuse("the first bytes are not a TLS handshake");
        if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[1]) != 3)
            return refuse("the TLS record has an unknown version");
        if (bytes.size() < 5) break;
        const std::size_t length =
            (static_cast<std::size_t>(static_cast<unsigned char>(bytes[3])) << 8) |
            static_cast<unsigned char>(bytes[4]);
        if (length == 0 || length > k_max_record) return refuse("the TLS record length is invalid");
        if (bytes.size() < 5 + length) break;
        message.append(bytes.substr(5, length));
        bytes.remove_prefix(5 + length);
        if (need == 0 && message.size() >= 4) {
            if (static_cast<unsigned char>(message[0]) != k_handshake_client_hello)
                return refuse("the first handshake message is not a ClientHello");
            need = 4 + ((static_cast<std::size_t>(static_cast<unsigned char>(message[1])) << 16) |
                        (static_cast<std::size_t>(static_cast<unsigned char>(message[2])) << 8) |
                        static_cast<unsigned char>(message[3]));
            if (need > k_max_record) return refuse("the ClientHello is larger than 16 KiB");
        }
        if (need != 0 && message.size() >= need)
            return client_hello_body(std::string_view(message).substr(4, need - 4));
    }
    if (!message.empty() && static_cast<unsigned char>(message[0]) != k_handshake_client_hello)
        return refuse("the first handshake message is not a ClientHello");
    return {HelloStatus::need_more, std::nullopt, {}};
}

} // namespace airlock::egress
