// What `airlock images build` builds: from which directory, in which order, with which tag and
// which BASE. Pure functions over names and paths; the command does the I/O.
#pragma once

#include "util/result.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace airlock::cli {

// The image every agent image is built FROM (images/agent-base).
inline constexpr const char* k_agent_base_image = "agent-base";

// Where the image build contexts are, and which setting said so (for messages).
struct ImagesDir {
    std::filesystem::path path;
    std::string origin; // "--context-dir", "AIRLOCK_IMAGES_DIR", "the source tree"
};

// --context-dir, else $AIRLOCK_IMAGES_DIR (when set and not empty), else SOURCE_DIR/images.
ImagesDir resolve_images_dir(const std::string& flag, const char* env_value,
                             const std::string& source_dir);

enum class AllImages { no, yes };

struct ImagesRequest {
    std::vector<std::string> names; // as given on the command line
    AllImages all = AllImages::no;
    std::string base; // --base: BASE of the first image built ("" = the Dockerfile's default)
    std::string tag;  // --tag: "REPO[:TAG]" for one image, or a bare "TAG" for airlock/NAME
};

struct ImageBuild {
    std::string name;              // "codex"
    std::filesystem::path context; // DIR/codex
    std::string tag;               // "airlock/codex:latest"
    std::string base;              // the BASE build argument; "" = the Dockerfile's default
};

// "airlock/NAME:latest"; with --tag, its reference, or airlock/NAME:TAG for a bare tag.
std::string image_tag(const std::string& name, const std::string& tag_option);

// The builds in order. agent-base comes first when it is asked for, and every other image is
// then built FROM it (BASE = the agent-base just built); --base is the BASE of the first image
// (with --all: of agent-base), or of every image when agent-base is not among them.
// invalid_input: no names and no --all, names with --all, an unknown name (the message lists
// `known`), a --tag reference for several images, a malformed tag.
util::Result<std::vector<ImageBuild>> plan_builds(const ImagesRequest& request,
                                                  const std::filesystem::path& dir,
                                                  const std::vector<std::string>& known);

} // namespace airlock::cli
