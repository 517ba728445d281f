// `airlock images build`: which images, in which order, with which tags and BASE.
#include "cli/images_plan.hpp"

#include <catch2/catch.hpp>

using namespace airlock::cli;
using airlock::util::ErrorKind;

namespace {

const std::vector<std::string> k_known = {"agent-base", "claude-code", "codex"};
const std::filesystem::path k_dir = "/src/images";

std::vector<ImageBuild> plan(const ImagesRequest& r) {
    auto p = plan_builds(r, k_dir, k_known);
    INFO((p ? std::string() : p.error().message));
    REQUIRE(p);
    return *p;
}

std::string refusal(const ImagesRequest& r) {
    auto p = plan_builds(r, k_dir, k_known);
    REQUIRE_FALSE(p);
    CHECK(p.error().kind == ErrorKind::invalid_input);
    return p.error().message;
}

} // namespace

TEST_CASE("images dir: the flag then AIRLOCK_IMAGES_DIR then the source tree", "[cli][images]") {
    auto d = resolve_images_dir("/x", "/env", "/src");
    CHECK(d.path == "/x");
    CHECK(d.origin == "--context-dir");
    d = resolve_images_dir("", "/env", "/src");
    CHECK(d.path == "/env");
    CHECK(d.origin == "AIRLOCK_IMAGES_DIR");
    d = resolve_images_dir("", "", "/src");
    CHECK(d.path == "/src/images");
    d = resolve_images_dir("", nullptr, "/src");
    CHECK(d.path == "/src/images");
    CHECK(d.origin == "the source tree");
}

TEST_CASE("image tags: airlock/NAME:latest or a bare tag or a whole reference", "[cli][images]") {
    CHECK(image_tag("codex", "") == "airlock/codex:latest");
    CHECK(image_tag("codex", "dev") == "airlock/codex:dev");
    CHECK(image_tag("codex", "me/codex:1") == "me/codex:1");
    CHECK(image_tag("codex", "codex:1") == "codex:1");
}

TEST_CASE("images build --all builds agent-base first and the others FROM it", "[cli][images]") {
    ImagesRequest r;
    r.all = AllImages::yes;
    r.base = "airlock/debian:bookworm";
    auto p = plan(r);
    REQUIRE(p.size() == 3);
    CHECK(p[0].name == "agent-base");
    CHECK(p[0].context == k_dir / "agent-base");
    CHECK(p[0].tag == "airlock/agent-base:latest");
    CHECK(p[0].base == "airlock/debian:bookworm");
    CHECK(p[1].name == "claude-code");
    CHECK(p[1].base == "airlock/agent-base:latest");
    CHECK(p[2].name == "codex");
    CHECK(p[2].base == "airlock/agent-base:latest");

    // A bare tag applies to each, and the agent images build FROM the agent-base of that tag.
    r.tag = "it-7";
    p = plan(r);
    CHECK(p[0].tag == "airlock/agent-base:it-7");
    CHECK(p[2].tag == "airlock/codex:it-7");
    CHECK(p[2].base == "airlock/agent-base:it-7");
}

TEST_CASE("named images: agent-base moves first and --base goes to the first", "[cli][images]") {
    ImagesRequest r;
    r.names = {"codex", "agent-base", "codex"};
    auto p = plan(r);
    REQUIRE(p.size() == 2);
    CHECK(p[0].name == "agent-base");
    CHECK(p[0].base.empty()); // the Dockerfile's default
    CHECK(p[1].name == "codex");
    CHECK(p[1].base == "airlock/agent-base:latest");

    // Without agent-base, --base is every image's BASE.
    r.names = {"codex", "claude-code"};
    r.base = "airlock/agent-base:it-1";
    p = plan(r);
    REQUIRE(p.size() == 2);
    CHECK(p[0].name == "codex");
    CHECK(p[0].base == "airlock/agent-base:it-1");
    CHECK(p[1].base == "airlock/agent-base:it-1");

    // One image, a whole reference.
    r.names = {"agent-base"};
    r.base = "airlock/debian:bookworm";
    r.tag = "airlock/agent-base:it-abc";
    p = plan(r);
    REQUIRE(p.size() == 1);
    CHECK(p[0].tag == "airlock/agent-base:it-abc");
    CHECK(p[0].base == "airlock/debian:bookworm");
}

TEST_CASE("images build refusals say what to do", "[cli][images]") {
    ImagesRequest r;
    CHECK(refusal(r) == "name the images to build, or give --all (images in /src/images: "
                        "agent-base, claude-code, codex)");

    r.names = {"codx"};
    CHECK(refusal(r) == "no image \"codx\" in /src/images (known: agent-base, claude-code, "
                        "codex); did you mean \"codex\"?");
    r.names = {"../etc"};
    CHECK(refusal(r).rfind("no image \"../etc\" in /src/images", 0) == 0);

    r.names = {"codex"};
    r.all = AllImages::yes;
    CHECK(refusal(r) == "give image names or --all, not both");

    r.names = {"codex", "claude-code"};
    r.all = AllImages::no;
    r.tag = "me/agent:1";
    CHECK(refusal(r).rfind("--tag me/agent:1 names one image, but 2 are to be built", 0) == 0);

    r.names = {"codex"};
    r.tag = "bad tag";
    CHECK(refusal(r).find("is not a valid tag") != std::string::npos);
    r.tag = "Me/Agent:1";
    CHECK(refusal(r).find("is not an image reference") != std::string::npos);

    auto none = plan_builds(ImagesRequest{{}, AllImages::yes, "", ""}, k_dir, {});
    REQUIRE_FALSE(none);
    CHECK(none.error().message ==
          "no image to build: /src/images has no subdirectory with a Dockerfile");
}
