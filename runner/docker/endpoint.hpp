// Where the engine is: DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, parsed without I/O.
#pragma once

#include "util/result.hpp"

#include <string>

namespace airlock::docker {

struct Endpoint {
    enum class Kind { unix_socket, tcp };
    Kind kind = Kind::unix_socket;
    std::string socket_path = "/var/run/docker.sock"; // unix_socket
    std::string host;                                 // tcp: host name or address
    int port = 0;                                     // tcp
    bool tls = false;                                 // tcp: https with verification
    std::string ca_file, cert_file, key_file;         // tcp + tls
    // Human-readable form for messages: unix:///var/run/docker.sock, tcp://h:2376 (TLS).
    std::string display() const;
    // Base URL for libcurl: http://localhost (unix), http(s)://host:port (tcp).
    std::string base_url() const;
};

struct EndpointEnv {
    std::string docker_host; // DOCKER_HOST
    std::string tls_verify;  // DOCKER_TLS_VERIFY
    std::string cert_path;   // DOCKER_CERT_PATH
    std::string home;        // HOME, for the default cert path ~/.docker
};

EndpointEnv endpoint_env_from_process();
util::Result<Endpoint> parse_endpoint(const EndpointEnv& env);

} // namespace airlock::docker
