// Runs a fuzz target's LLVMFuzzerTestOneInput once on every file given, or found under a given
// directory, so compilers without libFuzzer (and the ASan build) exercise the seed corpora in
// ctest. A failing input aborts, and the last "replay:" line names it.
//
//   replay_policy tests/fuzz/corpus/policy [more files or directories...]
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

namespace {

// The regular files under `arg`, sorted so runs are repeatable; false when it does not exist.
bool collect(const fs::path& arg, std::vector<fs::path>& out) {
    std::error_code ec;
    if (fs::is_regular_file(arg, ec)) {
        out.push_back(arg);
        return true;
    }
    if (!fs::is_directory(arg, ec)) return false;
    std::vector<fs::path> found;
    for (const auto& entry : fs::recursive_directory_iterator(arg, ec))
        if (entry.is_regular_file(ec)) found.push_back(entry.path());
    if (ec) return false;
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
    return true;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s FILE-OR-DIRECTORY...\n", argv[0]);
        return 2;
    }
    std::vector<fs::path> inputs;
    for (int i = 1; i < argc; ++i)
        if (!collect(argv[i], inputs)) {
            std::fprintf(stderr, "%s: %s: no such file or directory\n", argv[0], argv[i]);
            return 2;
        }
    if (inputs.empty()) {
        std::fprintf(stderr, "%s: no inputs found in the arguments; add seeds (docs/fuzzing.md)\n",
                     argv[0]);
        return 2;
    }
    for (const auto& path : inputs) {
        std::printf("replay: %s\n", path.c_str());
        std::fflush(stdout);
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            std::fprintf(stderr, "%s: %s: cannot be read\n", argv[0], path.c_str());
            return 2;
        }
        const std::string bytes{std::istreambuf_iterator<char>(in),
                                std::istreambuf_iterator<char>()};
        // A copy of exactly the input's size, so ASan sees any read past its end.
        auto copy = std::make_unique<std::uint8_t[]>(bytes.size());
        std::copy(bytes.begin(), bytes.end(), copy.get());
        LLVMFuzzerTestOneInput(copy.get(), bytes.size());
    }
    std::printf("replayed %zu inputs\n", inputs.size());
    return 0;
}
