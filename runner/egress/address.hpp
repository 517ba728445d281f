// The address fence: which resolved addresses the proxy may connect to. Everything that is not
// a public unicast address is fenced off unless an allow_cidrs entry covers it.
#pragma once

#include "policy/patterns.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sockaddr;

namespace airlock::egress {

struct IpAddress {
    unsigned char bytes[16] = {}; // IPv4 in the first 4
    bool v6 = false;
};

enum class AddressClass {
    public_,
    loopback,     // 127/8, ::1
    private_,     // 10/8, 172.16/12, 192.168/16, fec0::/10, 64:ff9b:1::/48
    link_local,   // 169.254/16, fe80::/10
    unique_local, // fc00::/7
    unspecified,  // 0/8, ::
    cgnat,        // 100.64/10
    multicast,    // 224/4, ff00::/8
    broadcast,    // 255.255.255.255
    reserved,     // 192.0.0/24, 198.18/15, 240/4, 100::/64
};

// IPv6 forms that carry an IPv4 address (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64
// 64:ff9b::a.b.c.d, 6to4 2002:aabb:ccdd::) take the class of that IPv4 address.
AddressClass classify_address(const IpAddress& address);
const char* to_string(AddressClass c);

// Public, or covered by one of `allow_cidrs` (directly, or through the IPv4 address it carries).
bool address_allowed(const IpAddress& address, const std::vector<policy::Cidr>& allow_cidrs);

std::optional<IpAddress> parse_ip(std::string_view text);
std::optional<IpAddress> from_sockaddr(const sockaddr* sa);
std::string to_string(const IpAddress& address);
// The single-address CIDR, for hints: "172.18.0.2/32".
std::string host_cidr(const IpAddress& address);

} // namespace airlock::egress
