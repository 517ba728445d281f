// libFuzzer target: the tar stream the container sends back is untrusted; reading it must never
// crash, hang or write outside the output directory.
// Build and run: see docs/fuzzing.md.
#include "sandbox/workspace.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using namespace airlock::sandbox;

namespace {

// One scratch directory per process, emptied after every input and removed at exit.
struct Scratch {
    fs::path dir;
    Scratch() {
        std::string tmpl = (fs::temp_directory_path() / "airlock-fuzz-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
        dir = tmpl;
    }
    ~Scratch() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

const fs::path& scratch() {
    static const Scratch s;
    return s.dir;
}

// A workspace the stream is compared against, so the diff paths run too.
const Manifest& before() {
    static const Manifest m = [] {
        Manifest out;
        out["a.txt"] = FileEntry{"a.txt",
                                 FileEntry::Type::file,
                                 5,
                                 0644,
                                 "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                                 {}};
        out["src"] = FileEntry{"src", FileEntry::Type::dir, 0, 0755, {}, {}};
        out["link"] = FileEntry{"link", FileEntry::Type::symlink, 5, 0777, {}, "a.txt"};
        return out;
    }();
    return m;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const int fd = ::memfd_create("fuzz-tar", MFD_CLOEXEC);
    if (fd < 0) return 0;
    std::size_t off = 0;
    while (off < size) {
        const ssize_t n = ::write(fd, data + off, size - off);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
    if (::lseek(fd, 0, SEEK_SET) == 0) {
        const fs::path out = scratch() / "out";
        auto changes = read_workspace_tar(fd, before(), out, "workspace/", 1 << 20, 4 << 20);
        if (changes.ok()) (void)to_json(*changes).dump();
        std::error_code ec;
        fs::remove_all(out, ec);
    }
    ::close(fd);
    // Nothing may appear next to "out": that would be a write outside the output directory.
    for (const auto& entry : fs::directory_iterator(scratch()))
        if (entry.path().filename() != "out") std::abort();
    return 0;
}
