// libFuzzer target: any bytes as a task file, then validation. Must never crash or throw.
#include "config/run_options.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto req = airlock::config::parse_task_json(text, "fuzz.json", "/fuzz/base");
    if (!req) return 0;
    auto opts = airlock::config::resolve(
        *req, [](const std::string&) -> std::optional<std::string> { return std::nullopt; });
    (void)opts;
    return 0;
}
