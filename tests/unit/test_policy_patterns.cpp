// The pattern languages of a policy: globs, host rules, prefixes, CIDRs.
#include "policy/patterns.hpp"

#include <catch2/catch.hpp>

using namespace airlock::policy;

TEST_CASE("path globs", "[policy]") {
    CHECK(glob_match(".github/workflows/**", ".github/workflows/ci.yml"));
    CHECK(glob_match(".github/workflows/**", ".github/workflows/sub/x.yml"));
    CHECK(glob_match(".github/workflows/**", ".github/workflows"));
    CHECK_FALSE(glob_match(".github/workflows/**", ".github/workflowsx/ci.yml"));
    CHECK(glob_match("**/.env", ".env"));
    CHECK(glob_match("**/.env", "a/b/.env"));
    CHECK_FALSE(glob_match("**/.env", "a/b/.env.local"));
    CHECK(glob_match("**/.env.*", "a/.env.local"));
    CHECK(glob_match("src/*.c", "src/main.c"));
    CHECK_FALSE(glob_match("src/*.c", "src/sub/main.c"));
    CHECK(glob_match("src/?.c", "src/a.c"));
    CHECK_FALSE(glob_match("src/?.c", "src/ab.c"));
    CHECK(glob_match("a/**/b/**/c", "a/x/y/b/c"));
    CHECK(glob_match("**", "anything/at/all"));
    CHECK_FALSE(glob_match("Makefile", "sub/Makefile"));
    CHECK(path_glob_problem("docs/**") == std::nullopt);
    CHECK(path_glob_problem("a//b").has_value());
    CHECK(path_glob_problem("a\\b").has_value());
}

TEST_CASE("host rules", "[policy]") {
    auto exact = parse_host_rule("api.example.com");
    auto wild = parse_host_rule("*.example.com:443");
    REQUIRE(exact);
    REQUIRE(wild);
    CHECK(host_rule_matches(*exact, "api.example.com", 443));
    CHECK(host_rule_matches(*exact, "api.example.com", 80));
    CHECK_FALSE(host_rule_matches(*exact, "xapi.example.com", 443));
    CHECK(host_rule_matches(*wild, "a.b.example.com", 443));
    CHECK_FALSE(host_rule_matches(*wild, "example.com", 443));
    CHECK_FALSE(host_rule_matches(*wild, "a.example.com", 80));
    CHECK_FALSE(host_rule_matches(*wild, "badexample.com", 443));
    CHECK(host_rule_covers(*parse_host_rule("*.example.com"), *parse_host_rule("*.a.example.com")));
    CHECK(host_rule_covers(*parse_host_rule("*.example.com"), *parse_host_rule("a.example.com:1")));
    CHECK_FALSE(
        host_rule_covers(*parse_host_rule("*.example.com:443"), *parse_host_rule("a.example.com")));
    CHECK_FALSE(
        host_rule_covers(*parse_host_rule("a.example.com"), *parse_host_rule("*.example.com")));
    CHECK(host_rule_problem("Example.com").has_value());
    CHECK(host_rule_problem("a.example.com:0").has_value());
    CHECK(host_rule_problem("a.example.com:65536").has_value());
    CHECK(host_rule_problem("-a.example.com").has_value());
    CHECK(host_rule_problem("a..b").has_value());
    CHECK(host_rule_problem("*").has_value());
    CHECK(host_rule_problem("*.internal") == std::nullopt);
}

TEST_CASE("host rules with a port list", "[policy]") {
    auto both = parse_host_rule("example.com:443,80,443");
    REQUIRE(both);
    CHECK(both->host == "example.com");
    CHECK_FALSE(both->wildcard);
    CHECK(both->ports == std::vector<std::uint16_t>{80, 443}); // sorted, a duplicate once
    CHECK(host_rule_matches(*both, "example.com", 80));
    CHECK(host_rule_matches(*both, "example.com", 443));
    CHECK_FALSE(host_rule_matches(*both, "example.com", 8080));

    auto wild = parse_host_rule("*.example.com:443,8443");
    REQUIRE(wild);
    CHECK(wild->wildcard);
    CHECK(wild->ports == std::vector<std::uint16_t>{443, 8443});
    CHECK(host_rule_matches(*wild, "api.example.com", 8443));
    CHECK_FALSE(host_rule_matches(*wild, "api.example.com", 80));
    CHECK_FALSE(host_rule_matches(*wild, "example.com", 443));

    // A list covers each of its ports and any sublist; one port does not cover a list.
    CHECK(host_rule_covers(*both, *parse_host_rule("example.com:80")));
    CHECK(host_rule_covers(*wild, *parse_host_rule("a.example.com:8443,443")));
    CHECK(host_rule_covers(*parse_host_rule("example.com"), *both));
    CHECK_FALSE(host_rule_covers(*both, *parse_host_rule("example.com")));
    CHECK_FALSE(host_rule_covers(*parse_host_rule("example.com:443"), *both));
    CHECK_FALSE(host_rule_covers(*both, *parse_host_rule("example.com:80,8080")));

    CHECK(host_rule_problem("a.example.com:1,65535") == std::nullopt);
    CHECK(host_rule_problem("a.example.com:80,0") ==
          "has an invalid port \"0\" (ports are 1-65535, e.g. host:443 or host:80,443)");
    CHECK(host_rule_problem("a.example.com:443,65536") ==
          "has an invalid port \"65536\" (ports are 1-65535, e.g. host:443 or host:80,443)");
    CHECK(host_rule_problem("a.example.com:80,https") ==
          "has an invalid port \"https\" (ports are 1-65535, e.g. host:443 or host:80,443)");
    CHECK(host_rule_problem("a.example.com:80,,443") ==
          "has an empty item in its port list \"80,,443\" (use e.g. host:80,443)");
    CHECK(host_rule_problem("a.example.com:80,") ==
          "has an empty item in its port list \"80,\" (use e.g. host:80,443)");
    CHECK(host_rule_problem("a.example.com:") ==
          "has no port after ':' (use host:1-65535, or a list such as host:80,443)");
    CHECK(host_rule_problem("a.example.com,b.example.com").has_value());
    CHECK_FALSE(parse_host_rule("a.example.com:80,0"));
}

TEST_CASE("prefix patterns", "[policy]") {
    CHECK(prefix_match("airlock/*", "airlock/agent-base:latest"));
    CHECK_FALSE(prefix_match("airlock/*", "airlockx/agent"));
    CHECK(prefix_match("*", "anything"));
    CHECK(prefix_match("debian:12", "debian:12"));
    CHECK_FALSE(prefix_match("debian:12", "debian:12.1"));
    CHECK(prefix_covers("*", "airlock/*"));
    CHECK(prefix_covers("airlock/*", "airlock/agent*"));
    CHECK_FALSE(prefix_covers("airlock/agent*", "airlock/*"));
    CHECK_FALSE(prefix_covers("airlock/x", "airlock/*"));
}

TEST_CASE("CIDRs", "[policy]") {
    auto ten = parse_cidr("10.0.0.0/8");
    auto sub = parse_cidr("10.1.0.0/16");
    auto v6 = parse_cidr("fd00::/8");
    REQUIRE(ten);
    REQUIRE(sub);
    REQUIRE(v6);
    CHECK(cidr_covers(*ten, *sub));
    CHECK_FALSE(cidr_covers(*sub, *ten));
    CHECK_FALSE(cidr_covers(*ten, *v6));
    CHECK(cidr_covers(*parse_cidr("0.0.0.0/0"), *sub));
    CHECK_FALSE(parse_cidr("10.0.0.0/33"));
    CHECK_FALSE(parse_cidr("10.0.0.0"));
    CHECK_FALSE(parse_cidr("x/8"));
}

TEST_CASE("closest names", "[policy]") {
    std::vector<std::string> names{"memory", "cpus", "pids"};
    CHECK(closest_in("memroy", names) == "memory");
    CHECK(closest_in("zzzzzzzz", names) == std::nullopt);
    CHECK(edit_distance("kitten", "sitting") == 3);
}
