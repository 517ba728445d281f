#include "docker/endpoint.hpp"

#include <cstdlib>

namespace airlock::docker {

using util::ErrorKind;
using util::make_error;

namespace {
std::string getenv_str(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}
} // namespace

namespace {
std::string host_port(const std::string& host, int port) {
    bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}
} // namespace

std::string Endpoint::display() const {
    if (kind == Kind::unix_socket) return "unix://" + socket_path;
    return "tcp://" + host_port(host, port) + (tls ? " (TLS)" : " (no TLS)");
}

std::string Endpoint::base_url() const {
    if (kind == Kind::unix_socket) return "http://localhost";
    return std::string(tls ? "https://" : "http://") + host_port(host, port);
}

EndpointEnv endpoint_env_from_process() {
    return EndpointEnv{getenv_str("DOCKER_HOST"), getenv_str("DOCKER_TLS_VERIFY"),
                       getenv_str("DOCKER_CERT_PATH"), getenv_str("HOME")};
}

util::Result<Endpoint> parse_endpoint(const EndpointEnv& env) {
    Endpoint ep;
    const std::string& h = env.docker_host;
    if (h.empty()) return ep;
    const std::string fix = " (use unix:///path/to/docker.sock or tcp://HOST:PORT)";
    if (h.rfind("unix://", 0) == 0) {
        ep.socket_path = h.substr(7);
        if (ep.socket_path.empty() || ep.socket_path[0] != '/')
            return make_error(ErrorKind::invalid_input,
                              "DOCKER_HOST: \"" + h + "\" has no absolute socket path" + fix);
        return ep;
    }
    if (h.rfind("tcp://", 0) != 0)
        return make_error(ErrorKind::invalid_input,
                          "DOCKER_HOST: \"" + h + "\" is not a supported address" + fix);
    std::string rest = h.substr(6);
    if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
    std::string host = rest;
    std::string port_str;
    if (!rest.empty() && rest[0] == '[') {
        auto close = rest.find(']');
        if (close == std::string::npos)
            return make_error(ErrorKind::invalid_input,
                              "DOCKER_HOST: \"" + h + "\" has an unclosed IPv6 bracket" + fix);
        host = rest.substr(1, close - 1);
        if (close + 1 < rest.size()) {
            if (rest[close + 1] != ':')
                return make_error(ErrorKind::invalid_input,
                                  "DOCKER_HOST: \"" + h +
                                      "\": expected :PORT after the IPv6 address" + fix);
            port_str = rest.substr(close + 2);
            if (port_str.empty())
                return make_error(ErrorKind::invalid_input,
                                  "DOCKER_HOST: \"" + h + "\" has an empty port" + fix);
        }
    } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
        host = rest.substr(0, colon);
        port_str = rest.substr(colon + 1);
        if (port_str.empty())
            return make_error(ErrorKind::invalid_input,
                              "DOCKER_HOST: \"" + h + "\" has an empty port" + fix);
    }
    if (host.empty())
        return make_error(ErrorKind::invalid_input,
                          "DOCKER_HOST: \"" + h + "\" has no host name" + fix);
    ep.kind = Endpoint::Kind::tcp;
    ep.host = host;
    ep.tls = !env.tls_verify.empty() && env.tls_verify != "0";
    if (port_str.empty()) {
        ep.port = ep.tls ? 2376 : 2375;
    } else {
        int port = 0;
        for (char c : port_str) {
            if (c < '0' || c > '9' || port > 65535) {
                port = -1;
                break;
            }
            port = port * 10 + (c - '0');
        }
        if (port <= 0 || port > 65535)
            return make_error(ErrorKind::invalid_input,
                              "DOCKER_HOST: \"" + h + "\": port \"" + port_str +
                                  "\" is not a number from 1 to 65535" + fix);
        ep.port = port;
    }
    if (ep.tls) {
        std::string dir = env.cert_path;
        if (dir.empty()) dir = env.home.empty() ? std::string(".docker") : env.home + "/.docker";
        ep.ca_file = dir + "/ca.pem";
        ep.cert_file = dir + "/cert.pem";
        ep.key_file = dir + "/key.pem";
    }
    return ep;
}

} // namespace airlock::docker
