// The address fence: which resolved addresses the proxy refuses to reach.
#include "egress/address.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace airlock::egress;

namespace {

AddressClass classify(const char* text) {
    auto a = parse_ip(text);
    if (!a) FAIL("not an address: " << text);
    return classify_address(*a);
}

bool allowed(const char* text, std::initializer_list<const char*> cidrs = {}) {
    std::vector<airlock::policy::Cidr> list;
    for (const char* c : cidrs)
        list.push_back(*airlock::policy::parse_cidr(c));
    return address_allowed(*parse_ip(text), list);
}

} // namespace

TEST_CASE("egress address: IPv4 classes", "[egress]") {
    CHECK(classify("8.8.8.8") == AddressClass::public_);
    CHECK(classify("1.1.1.1") == AddressClass::public_);
    CHECK(classify("127.0.0.1") == AddressClass::loopback);
    CHECK(classify("127.255.255.254") == AddressClass::loopback);
    CHECK(classify("10.1.2.3") == AddressClass::private_);
    CHECK(classify("172.16.0.1") == AddressClass::private_);
    CHECK(classify("172.31.255.255") == AddressClass::private_);
    CHECK(classify("172.32.0.1") == AddressClass::public_);
    CHECK(classify("172.15.255.255") == AddressClass::public_);
    CHECK(classify("192.168.1.1") == AddressClass::private_);
    CHECK(classify("169.254.169.254") == AddressClass::link_local);
    CHECK(classify("0.0.0.0") == AddressClass::unspecified);
    CHECK(classify("0.1.2.3") == AddressClass::unspecified);
    CHECK(classify("100.64.0.1") == AddressClass::cgnat);
    CHECK(classify("100.127.255.255") == AddressClass::cgnat);
    CHECK(classify("100.128.0.1") == AddressClass::public_);
    CHECK(classify("224.0.0.1") == AddressClass::multicast);
    CHECK(classify("239.255.255.250") == AddressClass::multicast);
    CHECK(classify("255.255.255.255") == AddressClass::broadcast);
    CHECK(classify("240.0.0.1") == AddressClass::reserved);
    CHECK(classify("192.0.0.8") == AddressClass::reserved);
    CHECK(classify("198.18.0.1") == AddressClass::reserved);
}

TEST_CASE("egress address: IPv6 classes", "[egress]") {
    CHECK(classify("2606:4700::1111") == AddressClass::public_);
    CHECK(classify("::1") == AddressClass::loopback);
    CHECK(classify("::") == AddressClass::unspecified);
    CHECK(classify("fe80::1") == AddressClass::link_local);
    CHECK(classify("febf::1") == AddressClass::link_local);
    CHECK(classify("fec0::1") == AddressClass::private_);
    CHECK(classify("fc00::1") == AddressClass::unique_local);
    CHECK(classify("fd12:3456::1") == AddressClass::unique_local);
    CHECK(classify("ff02::1") == AddressClass::multicast);
    CHECK(classify("100::1") == AddressClass::reserved);
    CHECK(classify("64:ff9b:1::1") == AddressClass::private_);
}

TEST_CASE("egress address: IPv6 forms of IPv4 addresses take the IPv4 class", "[egress]") {
    CHECK(classify("::ffff:127.0.0.1") == AddressClass::loopback);
    CHECK(classify("::ffff:10.0.0.1") == AddressClass::private_);
    CHECK(classify("::ffff:169.254.169.254") == AddressClass::link_local);
    CHECK(classify("::ffff:8.8.8.8") == AddressClass::public_);
    CHECK(classify("::127.0.0.1") == AddressClass::loopback); // IPv4-compatible
    CHECK(classify("64:ff9b::10.0.0.1") == AddressClass::private_);
    CHECK(classify("64:ff9b::8.8.8.8") == AddressClass::public_);
    CHECK(classify("2002:c0a8:0101::1") == AddressClass::private_); // 6to4 of 192.168.1.1
    CHECK(classify("2002:0808:0808::1") == AddressClass::public_);
}

TEST_CASE("egress address: allow_cidrs opens the fence for what they cover", "[egress]") {
    CHECK(allowed("8.8.8.8"));
    CHECK_FALSE(allowed("127.0.0.1"));
    CHECK(allowed("127.0.0.1", {"127.0.0.0/8"}));
    CHECK_FALSE(allowed("10.0.0.1", {"127.0.0.0/8"}));
    CHECK(allowed("172.18.0.2", {"172.18.0.0/16"}));
    CHECK_FALSE(allowed("172.19.0.2", {"172.18.0.0/16"}));
    CHECK(allowed("fd00::5", {"fd00::/8"}));
    CHECK_FALSE(allowed("::1", {"127.0.0.0/8"}));
    // A mapped address is covered by the IPv4 CIDR of the address it carries, or its own.
    CHECK(allowed("::ffff:127.0.0.1", {"127.0.0.0/8"}));
    CHECK(allowed("::ffff:127.0.0.1", {"::ffff:0:0/96"}));
    CHECK_FALSE(allowed("::ffff:10.0.0.1", {"127.0.0.0/8"}));
}

TEST_CASE("egress address: text forms", "[egress]") {
    CHECK(to_string(*parse_ip("10.0.0.1")) == "10.0.0.1");
    CHECK(to_string(*parse_ip("2001:DB8:0::1")) == "2001:db8::1");
    CHECK(host_cidr(*parse_ip("172.18.0.2")) == "172.18.0.2/32");
    CHECK(host_cidr(*parse_ip("fd00::1")) == "fd00::1/128");
    CHECK_FALSE(parse_ip("localhost"));
    CHECK(std::string(to_string(AddressClass::cgnat)) == "shared (CGNAT)");
}
