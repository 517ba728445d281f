#include "sandbox/manifest.hpp"

#include <catch2/catch.hpp>

using namespace airlock::sandbox;
using Type = FileEntry::Type;

namespace {

FileEntry file(std::string path, std::string sha, std::uint64_t size = 5,
               std::uint32_t mode = 0644) {
    return FileEntry{std::move(path), Type::file, size, mode, std::move(sha), {}};
}
FileEntry dir(std::string path, std::uint32_t mode = 0755) {
    return FileEntry{std::move(path), Type::dir, 0, mode, {}, {}};
}
FileEntry slink(std::string path, std::string target) {
    const auto size = target.size();
    return FileEntry{std::move(path), Type::symlink, size, 0777, {}, std::move(target)};
}
Manifest manifest(std::initializer_list<FileEntry> entries) {
    Manifest m;
    for (const auto& e : entries)
        m.emplace(e.path, e);
    return m;
}
std::vector<std::string> paths(const std::vector<FileEntry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries)
        out.push_back(e.path);
    return out;
}

} // namespace

TEST_CASE("diff_manifests: identical manifests give no changes", "[manifest]") {
    const auto m = manifest({dir("src"), file("src/a.c", "aa"), slink("l", "src/a.c")});
    const auto changes = diff_manifests(m, m);
    CHECK(changes.empty());
    CHECK(changes.bytes_added_or_modified == 0);
    CHECK(changes.skipped.empty());
}

TEST_CASE("diff_manifests: added, modified and deleted, sorted by path", "[manifest]") {
    const auto before = manifest({file("a", "1"), file("b", "2"), file("c", "3"), dir("d")});
    const auto after = manifest(
        {file("a", "1"), file("b", "X", 7), file("z", "4", 10), file("e", "5", 1), dir("d")});
    const auto changes = diff_manifests(before, after);
    CHECK(paths(changes.added) == std::vector<std::string>{"e", "z"});
    CHECK(paths(changes.modified) == std::vector<std::string>{"b"});
    CHECK(paths(changes.deleted) == std::vector<std::string>{"c"});
    CHECK(changes.modified[0].sha256 == "X"); // the entry as it is now
    CHECK(changes.deleted[0].sha256 == "3");  // the entry as it was
    CHECK(changes.bytes_added_or_modified == 7 + 10 + 1);
}

TEST_CASE("diff_manifests: dirs by existence, symlinks by target, files by mode", "[manifest]") {
    const auto before = manifest({dir("d", 0755), slink("l", "a"), file("f", "1", 5, 0644)});
    SECTION("a directory's mode does not matter") {
        const auto changes = diff_manifests(
            before, manifest({dir("d", 0700), slink("l", "a"), file("f", "1", 5, 0644)}));
        CHECK(changes.empty());
    }
    SECTION("a new symlink target is a modification") {
        const auto changes =
            diff_manifests(before, manifest({dir("d"), slink("l", "b"), file("f", "1", 5, 0644)}));
        CHECK(paths(changes.modified) == std::vector<std::string>{"l"});
        CHECK(changes.bytes_added_or_modified == 0);
    }
    SECTION("a file's mode change is a modification") {
        const auto changes =
            diff_manifests(before, manifest({dir("d"), slink("l", "a"), file("f", "1", 5, 0755)}));
        CHECK(paths(changes.modified) == std::vector<std::string>{"f"});
        CHECK(changes.bytes_added_or_modified == 5);
    }
}

TEST_CASE("diff_manifests: a change of type is a modification", "[manifest]") {
    const auto changes =
        diff_manifests(manifest({file("x", "1")}), manifest({dir("x"), file("x/y", "2", 3)}));
    REQUIRE(paths(changes.modified) == std::vector<std::string>{"x"});
    CHECK(changes.modified[0].type == Type::dir);
    CHECK(paths(changes.added) == std::vector<std::string>{"x/y"});
    CHECK(changes.bytes_added_or_modified == 3);
}

TEST_CASE("workspace_path_from_archive strips the prefix and refuses unsafe names", "[manifest]") {
    auto ok = [](std::string_view name, std::string_view prefix = "workspace/") {
        auto r = workspace_path_from_archive(name, prefix);
        REQUIRE(r.ok());
        return *r;
    };
    auto why = [](std::string_view name, std::string_view prefix = "workspace/") {
        auto r = workspace_path_from_archive(name, prefix);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == airlock::util::ErrorKind::invalid_input);
        return r.error().message;
    };
    CHECK(ok("workspace/src/a.c") == "src/a.c");
    CHECK(ok("workspace/src/") == "src");
    CHECK(ok("workspace/./src//a.c") == "src/a.c");
    CHECK(ok("workspace/") == "");
    CHECK(ok("workspace") == "");
    CHECK(ok("./a", "") == "a");
    CHECK(ok(".", "") == "");

    CHECK(why("workspace/../evil") == "name contains \"..\"");
    CHECK(why("workspace/a/../../evil") == "name contains \"..\"");
    CHECK(why("workspace//etc/passwd") == "absolute name");
    CHECK(why("/etc/passwd", "") == "absolute name");
    CHECK(why("/abs/x") == "name is outside \"workspace/\"");
    CHECK(why("other/x") == "name is outside \"workspace/\"");
    CHECK(why(std::string_view("workspace/a\0b", 13)) == "name contains a NUL byte");
    CHECK(why("workspace/" + std::string(5000, 'a')) == "name longer than 4096 bytes");
}

TEST_CASE("link_escapes_workspace resolves targets lexically from the link's directory",
          "[manifest]") {
    CHECK(link_escapes_workspace("l", "/etc"));
    CHECK(link_escapes_workspace("l", ""));
    CHECK(link_escapes_workspace("l", ".."));
    CHECK(link_escapes_workspace("a/l", "../.."));
    CHECK(link_escapes_workspace("a/l", "x/../../../y"));
    CHECK_FALSE(link_escapes_workspace("l", "src/a.c"));
    CHECK_FALSE(link_escapes_workspace("a/b/l", "../../c"));
    CHECK_FALSE(link_escapes_workspace("a/l", "./x/../y"));
}

TEST_CASE("printable escapes control bytes and invalid UTF-8 but keeps text", "[manifest]") {
    CHECK(printable("src/a.c") == "src/a.c");
    CHECK(printable("caf\xc3\xa9") == "caf\xc3\xa9");
    CHECK(printable("a\nb\tc") == "a\\nb\\tc");
    CHECK(printable("\x1b[31mred") == "\\x1b[31mred");
    CHECK(printable("bad\xff") == "bad\\xff");
    CHECK(printable("c1\xc2\x9b") == "c1\\xc2\\x9b"); // C1 control (CSI)
    CHECK(printable("back\\slash") == "back\\\\slash");
}

TEST_CASE("to_json of a FileEntry and a ChangeSet", "[manifest]") {
    CHECK(to_json(file("a.c", "ab", 3, 0644)) ==
          nlohmann::json{
              {"path", "a.c"}, {"type", "file"}, {"size", 3}, {"mode", "0644"}, {"sha256", "ab"}});
    CHECK(to_json(slink("l", "a.c")) == nlohmann::json{{"path", "l"},
                                                       {"type", "symlink"},
                                                       {"size", 3},
                                                       {"mode", "0777"},
                                                       {"link_target", "a.c"}});
    CHECK(to_json(dir("d")) ==
          nlohmann::json{{"path", "d"}, {"type", "dir"}, {"size", 0}, {"mode", "0755"}});

    ChangeSet changes = diff_manifests(manifest({file("gone", "1")}), manifest({file("new", "2")}));
    changes.skipped.push_back("x: reason");
    const auto j = to_json(changes);
    CHECK(j["added"][0]["path"] == "new");
    CHECK(j["deleted"][0]["path"] == "gone");
    CHECK(j["modified"].empty());
    CHECK(j["bytes_added_or_modified"] == 5);
    CHECK(j["skipped"] == nlohmann::json{"x: reason"});
    CHECK(j["sanitized"].empty());
    // Names that are not UTF-8 must not make the report unserialisable.
    CHECK_NOTHROW(to_json(file("bad\xff", "1")).dump());
}
