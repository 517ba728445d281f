// Streaming SHA-256 (OpenSSL EVP), hex output.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace airlock::util {

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;

    void update(const void* data, std::size_t size);
    void update(std::string_view data) { update(data.data(), data.size()); }
    // Lowercase hex digest; the object is reset afterwards.
    std::string hex_digest();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

std::string sha256_hex(std::string_view data);

// A file's SHA-256 (hex) and size, read in 64 KiB pieces (memory does not follow the file);
// nullopt when it cannot be read.
struct FileDigest {
    std::string sha256;
    std::uint64_t size = 0;
};
std::optional<FileDigest> sha256_file(const std::filesystem::path& path);

} // namespace airlock::util
