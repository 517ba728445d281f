#include "egress/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace airlock::egress {

namespace {

bool in_prefix(const unsigned char* addr, std::initializer_list<unsigned char> prefix, int bits) {
    int i = 0;
    for (unsigned char p : prefix) {
        const int take = bits - i * 8;
        if (take <= 0) break;
        const auto mask = static_cast<unsigned char>(take >= 8 ? 0xff : 0xff << (8 - take));
        if ((addr[i] & mask) != (p & mask)) return false;
        ++i;
    }
    return true;
}

AddressClass classify_v4(const unsigned char* a) {
    if (a[0] == 0) return AddressClass::unspecified;
    if (a[0] == 10) return AddressClass::private_;
    if (in_prefix(a, {100, 64}, 10)) return AddressClass::cgnat;
    if (a[0] == 127) return AddressClass::loopback;
    if (in_prefix(a, {169, 254}, 16)) return AddressClass::link_local;
    if (in_prefix(a, {172, 16}, 12)) return AddressClass::private_;
    if (in_prefix(a, {192, 0, 0}, 24)) return AddressClass::reserved;
    if (in_prefix(a, {192, 168}, 16)) return AddressClass::private_;
    if (in_prefix(a, {198, 18}, 15)) return AddressClass::reserved;
    if (in_prefix(a, {224}, 4)) return AddressClass::multicast;
    if (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255) return AddressClass::broadcast;
    if (in_prefix(a, {240}, 4)) return AddressClass::reserved;
    return AddressClass::public_;
}

// The IPv4 address an IPv6 address carries, when it is one of the embedding forms.
std::optional<IpAddress> embedded_v4(const IpAddress& a) {
    if (!a.v6) return std::nullopt;
    const unsigned char* b = a.bytes;
    static constexpr unsigned char k_zero[12] = {};
    static constexpr unsigned char k_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static constexpr unsigned char k_nat64[12] = {0, 0x64, 0xff, 0x9b};
    IpAddress v4;
    if (std::memcmp(b, k_mapped, 12) == 0 || std::memcmp(b, k_nat64, 12) == 0 ||
        std::memcmp(b, k_zero, 12) == 0) {
        std::memcpy(v4.bytes, b + 12, 4);
        return v4;
    }
    if (b[0] == 0x20 && b[1] == 0x02) { // 6to4
        std::memcpy(v4.bytes, b + 2, 4);
        return v4;
    }
    return std::nullopt;
}

policy::Cidr as_cidr(const IpAddress& a) {
    policy::Cidr c;
    std::memcpy(c.addr, a.bytes, 16);
    c.v6 = a.v6;
    c.bits = a.v6 ? 128 : 32;
    return c;
}

} // namespace

AddressClass classify_address(const IpAddress& address) {
    if (!address.v6) return classify_v4(address.bytes);
    const unsigned char* b = address.bytes;
    static constexpr unsigned char k_zero[16] = {};
    if (std::memcmp(b, k_zero, 16) == 0) return AddressClass::unspecified;
    if (std::memcmp(b, k_zero, 15) == 0 && b[15] == 1) return AddressClass::loopback;
    if (auto v4 = embedded_v4(address)) return classify_v4(v4->bytes);
    if (in_prefix(b, {0, 0x64, 0xff, 0x9b, 0, 1}, 48)) return AddressClass::private_;
    if (in_prefix(b, {0x01, 0, 0, 0, 0, 0, 0, 0}, 64)) return AddressClass::reserved;
    if (in_prefix(b, {0xfc}, 7)) return AddressClass::unique_local;
    if (in_prefix(b, {0xfe, 0x80}, 10)) return AddressClass::link_local;
    if (in_prefix(b, {0xfe, 0xc0}, 10)) return AddressClass::private_;
    if (b[0] == 0xff) return AddressClass::multicast;
    return AddressClass::public_;
}

const char* to_string(AddressClass c) {
    switch (c) {
    case AddressClass::public_:
        return "public";
    case AddressClass::loopback:
        return "loopback";
    case AddressClass::private_:
        return "private";
    case AddressClass::link_local:
        return "link-local";
    case AddressClass::unique_local:
        return "unique-local";
    case AddressClass::unspecified:
        return "unspecified";
    case AddressClass::cgnat:
        return "shared (CGNAT)";
    case AddressClass::multicast:
        return "multicast";
    case AddressClass::broadcast:
        return "broadcast";
    case AddressClass::reserved:
        return "reserved";
    }
    return "unknown";
}

bool address_allowed(const IpAddress& address, const std::vector<policy::Cidr>& allow_cidrs) {
    if (classify_address(address) == AddressClass::public_) return true;
    const policy::Cidr self = as_cidr(address);
    const auto v4 = embedded_v4(address);
    for (const auto& cidr : allow_cidrs) {
        if (policy::cidr_covers(cidr, self)) return true;
        if (v4 && policy::cidr_covers(cidr, as_cidr(*v4))) return true;
    }
    return false;
}

std::optional<IpAddress> parse_ip(std::string_view text) {
    const std::string s(text);
    IpAddress a;
    if (inet_pton(AF_INET, s.c_str(), a.bytes) == 1) return a;
    a.v6 = true;
    if (inet_pton(AF_INET6, s.c_str(), a.bytes) == 1) return a;
    return std::nullopt;
}

std::optional<IpAddress> from_sockaddr(const sockaddr* sa) {
    IpAddress a;
    if (sa->sa_family == AF_INET) {
        sockaddr_in in{};
        std::memcpy(&in, sa, sizeof in);
        std::memcpy(a.bytes, &in.sin_addr, 4);
        return a;
    }
    if (sa->sa_family == AF_INET6) {
        sockaddr_in6 in6{};
        std::memcpy(&in6, sa, sizeof in6);
        std::memcpy(a.bytes, &in6.sin6_addr, 16);
        a.v6 = true;
        return a;
    }
    return std::nullopt;
}

std::string to_string(const IpAddress& address) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(address.v6 ? AF_INET6 : AF_INET, address.bytes, buf, sizeof buf);
    return buf;
}

std::string host_cidr(const IpAddress& address) {
    return to_string(address) + (address.v6 ? "/128" : "/32");
}

} // namespace airlock::egress
