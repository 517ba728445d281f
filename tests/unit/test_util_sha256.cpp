// Hashing a file in pieces gives the digest of its bytes, however large.
#include "util/sha256.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace airlock;

TEST_CASE("sha256_file streams a file and counts its size", "[util]") {
    const auto p =
        std::filesystem::temp_directory_path() / ("airlock-sha256-" + std::to_string(::getpid()));
    std::string content(200000, 'x'); // more than one 64 KiB piece
    content += "end";
    std::ofstream(p, std::ios::binary) << content;
    auto d = util::sha256_file(p);
    std::filesystem::remove(p);
    REQUIRE(d);
    CHECK(d->sha256 == util::sha256_hex(content));
    CHECK(d->size == content.size());
    CHECK_FALSE(util::sha256_file("/nonexistent/file"));
}
