// DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH parsing, without I/O.
#include "docker/endpoint.hpp"

#include <catch2/catch.hpp>

using airlock::docker::Endpoint;
using airlock::docker::EndpointEnv;
using airlock::docker::parse_endpoint;
using airlock::util::ErrorKind;

namespace {

EndpointEnv env_with_host(std::string host) {
    EndpointEnv env;
    env.docker_host = std::move(host);
    env.home = "/home/dev";
    return env;
}

} // namespace

TEST_CASE("no DOCKER_HOST means the default unix socket", "[docker][endpoint]") {
    auto r = parse_endpoint(EndpointEnv{});
    REQUIRE(r.ok());
    CHECK(r->kind == Endpoint::Kind::unix_socket);
    CHECK(r->socket_path == "/var/run/docker.sock");
    CHECK_FALSE(r->tls);
    CHECK(r->display() == "unix:///var/run/docker.sock");
    CHECK(r->base_url() == "http://localhost");
}

TEST_CASE("DOCKER_TLS_VERIFY alone does not turn the unix socket into TCP", "[docker][endpoint]") {
    EndpointEnv env;
    env.tls_verify = "1";
    auto r = parse_endpoint(env);
    REQUIRE(r.ok());
    CHECK(r->kind == Endpoint::Kind::unix_socket);
    CHECK_FALSE(r->tls);
}

TEST_CASE("unix:// with an absolute path", "[docker][endpoint]") {
    auto r = parse_endpoint(env_with_host("unix:///x.sock"));
    REQUIRE(r.ok());
    CHECK(r->kind == Endpoint::Kind::unix_socket);
    CHECK(r->socket_path == "/x.sock");
    CHECK(r->display() == "unix:///x.sock");
    CHECK(r->base_url() == "http://localhost");

    auto podman = parse_endpoint(env_with_host("unix:///run/user/1000/podman/podman.sock"));
    REQUIRE(podman.ok());
    CHECK(podman->socket_path == "/run/user/1000/podman/podman.sock");
}

TEST_CASE("unix:// without an absolute path is refused", "[docker][endpoint]") {
    for (const char* host : {"unix://", "unix://x.sock", "unix://./x.sock"}) {
        INFO(host);
        auto r = parse_endpoint(env_with_host(host));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::invalid_input);
        CHECK(r.error().message == std::string("DOCKER_HOST: \"") + host +
                                       "\" has no absolute socket path (use "
                                       "unix:///path/to/docker.sock or tcp://HOST:PORT)");
    }
}

TEST_CASE("tcp:// with TLS verification and a cert path", "[docker][endpoint]") {
    EndpointEnv env = env_with_host("tcp://h:2376");
    env.tls_verify = "1";
    env.cert_path = "/etc/docker/certs";
    auto r = parse_endpoint(env);
    REQUIRE(r.ok());
    CHECK(r->kind == Endpoint::Kind::tcp);
    CHECK(r->host == "h");
    CHECK(r->port == 2376);
    CHECK(r->tls);
    CHECK(r->ca_file == "/etc/docker/certs/ca.pem");
    CHECK(r->cert_file == "/etc/docker/certs/cert.pem");
    CHECK(r->key_file == "/etc/docker/certs/key.pem");
    CHECK(r->display() == "tcp://h:2376 (TLS)");
    CHECK(r->base_url() == "https://h:2376");
}

TEST_CASE("TLS without DOCKER_CERT_PATH uses ~/.docker", "[docker][endpoint]") {
    EndpointEnv env = env_with_host("tcp://docker.example.com:2376");
    env.tls_verify = "1";
    auto r = parse_endpoint(env);
    REQUIRE(r.ok());
    CHECK(r->ca_file == "/home/dev/.docker/ca.pem");
    CHECK(r->cert_file == "/home/dev/.docker/cert.pem");
    CHECK(r->key_file == "/home/dev/.docker/key.pem");

    env.home.clear();
    auto no_home = parse_endpoint(env);
    REQUIRE(no_home.ok());
    CHECK(no_home->ca_file == ".docker/ca.pem");
}

TEST_CASE("tcp:// without TLS is plain http and has no cert files", "[docker][endpoint]") {
    for (const char* verify : {"", "0"}) {
        INFO("DOCKER_TLS_VERIFY=" << verify);
        EndpointEnv env = env_with_host("tcp://10.0.0.5:2375");
        env.tls_verify = verify;
        env.cert_path = "/certs";
        auto r = parse_endpoint(env);
        REQUIRE(r.ok());
        CHECK_FALSE(r->tls);
        CHECK(r->ca_file.empty());
        CHECK(r->cert_file.empty());
        CHECK(r->key_file.empty());
        CHECK(r->display() == "tcp://10.0.0.5:2375 (no TLS)");
        CHECK(r->base_url() == "http://10.0.0.5:2375");
    }
}

TEST_CASE("tcp:// without a port picks 2375, or 2376 with TLS", "[docker][endpoint]") {
    auto plain = parse_endpoint(env_with_host("tcp://h"));
    REQUIRE(plain.ok());
    CHECK(plain->port == 2375);
    CHECK(plain->host == "h");

    EndpointEnv env = env_with_host("tcp://h");
    env.tls_verify = "1";
    auto tls = parse_endpoint(env);
    REQUIRE(tls.ok());
    CHECK(tls->port == 2376);
}

TEST_CASE("tcp:// ignores a trailing path", "[docker][endpoint]") {
    auto r = parse_endpoint(env_with_host("tcp://h:1234/some/path"));
    REQUIRE(r.ok());
    CHECK(r->host == "h");
    CHECK(r->port == 1234);
}

TEST_CASE("tcp:// with a bracketed IPv6 address", "[docker][endpoint]") {
    EndpointEnv env = env_with_host("tcp://[::1]:2376");
    env.tls_verify = "1";
    auto r = parse_endpoint(env);
    REQUIRE(r.ok());
    CHECK(r->kind == Endpoint::Kind::tcp);
    CHECK(r->host == "::1");
    CHECK(r->port == 2376);

    auto no_port = parse_endpoint(env_with_host("tcp://[fe80::1]"));
    REQUIRE(no_port.ok());
    CHECK(no_port->host == "fe80::1");
    CHECK(no_port->port == 2375);
}

// Regression (runner/docker/endpoint.cpp, Endpoint::base_url/display): an IPv6 host is written
// without brackets, so DOCKER_HOST=tcp://[::1]:2376 becomes the URL "https://::1:2376", which
// libcurl cannot parse (transport.cpp uses base_url() + target as the URL).
TEST_CASE("an IPv6 host is bracketed in the URL and the display form", "[docker][endpoint]") {
    EndpointEnv env = env_with_host("tcp://[::1]:2376");
    env.tls_verify = "1";
    auto r = parse_endpoint(env);
    REQUIRE(r.ok());
    CHECK(r->base_url() == "https://[::1]:2376");
    CHECK(r->display() == "tcp://[::1]:2376 (TLS)");
}

// Regression (runner/docker/endpoint.cpp, parse_endpoint): anything after the closing bracket that
// is not ":PORT" is silently ignored, so a typo such as "tcp://[::1]2376" connects to port 2375.
TEST_CASE("junk after an IPv6 bracket is refused", "[docker][endpoint]") {
    auto r = parse_endpoint(env_with_host("tcp://[::1]2376"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(r.error().message, Catch::Contains("DOCKER_HOST"));
}

TEST_CASE("unsupported DOCKER_HOST schemes are refused with the fix", "[docker][endpoint]") {
    for (const char* host : {"ssh://user@host", "http://h:2375", "npipe:////./pipe/docker_engine",
                             "h:2375", "/var/run/docker.sock", "fd://", "TCP://h:2375"}) {
        INFO(host);
        auto r = parse_endpoint(env_with_host(host));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::invalid_input);
        CHECK(r.error().message ==
              std::string("DOCKER_HOST: \"") + host +
                  "\" is not a supported address (use unix:///path/to/docker.sock or "
                  "tcp://HOST:PORT)");
    }
}

TEST_CASE("bad tcp ports are refused", "[docker][endpoint]") {
    for (const char* host : {"tcp://h:0", "tcp://h:65536", "tcp://h:99999999999999", "tcp://h:abc",
                             "tcp://h:-1", "tcp://h:12ab", "tcp://[::1]:0", "tcp://[::1]:x"}) {
        INFO(host);
        auto r = parse_endpoint(env_with_host(host));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::invalid_input);
        CHECK_THAT(r.error().message, Catch::StartsWith("DOCKER_HOST: \"") &&
                                          Catch::Contains("is not a number from 1 to 65535"));
    }
    auto max = parse_endpoint(env_with_host("tcp://h:65535"));
    REQUIRE(max.ok());
    CHECK(max->port == 65535);
    auto min = parse_endpoint(env_with_host("tcp://h:1"));
    REQUIRE(min.ok());
    CHECK(min->port == 1);
}

TEST_CASE("the port error quotes the port", "[docker][endpoint]") {
    auto r = parse_endpoint(env_with_host("tcp://h:70000"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "DOCKER_HOST: \"tcp://h:70000\": port \"70000\" is not a number "
                               "from 1 to 65535 (use unix:///path/to/docker.sock or "
                               "tcp://HOST:PORT)");
}

TEST_CASE("an empty tcp host is refused", "[docker][endpoint]") {
    for (const char* host : {"tcp://", "tcp://:2375", "tcp://[]:2375", "tcp:///path"}) {
        INFO(host);
        auto r = parse_endpoint(env_with_host(host));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::invalid_input);
        CHECK_THAT(r.error().message,
                   Catch::StartsWith("DOCKER_HOST: \"") && Catch::Contains("has no host name"));
    }
}

TEST_CASE("an unclosed IPv6 bracket is refused", "[docker][endpoint]") {
    auto r = parse_endpoint(env_with_host("tcp://[::1:2376"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(r.error().message,
               Catch::Contains("DOCKER_HOST") && Catch::Contains("unclosed IPv6 bracket"));
}
