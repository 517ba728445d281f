#include "util/result.hpp"

namespace airlock::util {

const char* to_string(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::unreachable:
        return "unreachable";
    case ErrorKind::not_found:
        return "not_found";
    case ErrorKind::conflict:
        return "conflict";
    case ErrorKind::refused:
        return "refused";
    case ErrorKind::invalid_input:
        return "invalid_input";
    case ErrorKind::server_error:
        return "server_error";
    case ErrorKind::protocol:
        return "protocol";
    case ErrorKind::io:
        return "io";
    case ErrorKind::cancelled:
        return "cancelled";
    case ErrorKind::timeout:
        return "timeout";
    }
    return "unknown";
}

} // namespace airlock::util
