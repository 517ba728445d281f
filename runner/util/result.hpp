// Expected failures as values: Result<T> holds a T or an Error with a typed kind.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace airlock::util {

enum class ErrorKind {
    unreachable,   // engine or peer could not be reached
    not_found,     // the named thing does not exist
    conflict,      // exists already / in the wrong state
    refused,       // refused by policy or hardening check
    invalid_input, // bad flag, file or field
    server_error,  // the engine answered 5xx
    protocol,      // the peer said something we cannot parse
    io,            // local file-system or OS failure
    cancelled,     // interrupted by a signal or another thread
    timeout,       // a deadline passed
};

const char* to_string(ErrorKind kind);

struct Error {
    ErrorKind kind;
    std::string message;
};

template <typename T> class [[nodiscard]] Result {
public:
    Result(T value) : m_v(std::move(value)) {}
    Result(Error error) : m_v(std::move(error)) {}

    bool ok() const { return m_v.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(m_v); }
    const T& value() const& { return std::get<0>(m_v); }
    T&& value() && { return std::get<0>(std::move(m_v)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(m_v); }

private:
    std::variant<T, Error> m_v;
};

struct Unit {};

template <> class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : m_err(std::move(error)), m_ok(false) {}
    bool ok() const { return m_ok; }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return m_err; }

private:
    Error m_err{ErrorKind::io, {}};
    bool m_ok = true;
};

inline Error make_error(ErrorKind kind, std::string message) {
    return Error{kind, std::move(message)};
}

} // namespace airlock::util
