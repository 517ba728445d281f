#include "cli/images_plan.hpp"

#include "util/closest.hpp"

#include <algorithm>

namespace airlock::cli {

namespace {

using util::ErrorKind;
using util::make_error;

bool is_bare_tag(const std::string& t) {
    return t.find('/') == std::string::npos && t.find(':') == std::string::npos &&
           t.find('@') == std::string::npos;
}

// Docker's tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
bool valid_tag(const std::string& t) {
    if (t.empty() || t.size() > 128 || t[0] == '.' || t[0] == '-') return false;
    return std::all_of(t.begin(), t.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '-';
    });
}

// A loose check of REPO[:TAG]; the engine has the last word.
bool valid_reference(const std::string& ref) {
    if (ref.empty() || ref.front() == '/' || ref.back() == '/' || ref.back() == ':') return false;
    return std::none_of(ref.begin(), ref.end(), [](char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || (c >= 'A' && c <= 'Z');
    });
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v)
        out += (out.empty() ? "" : ", ") + s;
    return out;
}

} // namespace

ImagesDir resolve_images_dir(const std::string& flag, const char* env_value,
                             const std::string& source_dir) {
    if (!flag.empty()) return {flag, "--context-dir"};
    if (env_value != nullptr && *env_value != '\0') return {env_value, "AIRLOCK_IMAGES_DIR"};
    return {std::filesystem::path(source_dir) / "images", "the source tree"};
}

std::string image_tag(const std::string& name, const std::string& tag_option) {
    if (tag_option.empty()) return "airlock/" + name + ":latest";
    if (is_bare_tag(tag_option)) return "airlock/" + name + ":" + tag_option;
    return tag_option;
}

util::Result<std::vector<ImageBuild>> plan_builds(const ImagesRequest& req,
                                                  const std::filesystem::path& dir,
                                                  const std::vector<std::string>& known) {
    const std::string known_list = known.empty() ? std::string("none") : join(known);
    std::vector<std::string> names;
    if (req.all == AllImages::yes) {
        if (!req.names.empty())
            return make_error(ErrorKind::invalid_input, "give image names or --all, not both");
        names = known;
    } else {
        if (req.names.empty())
            return make_error(ErrorKind::invalid_input,
                              "name the images to build, or give --all (images in " + dir.string() +
                                  ": " + known_list + ")");
        for (const auto& n : req.names) {
            if (std::find(known.begin(), known.end(), n) == known.end()) {
                std::string msg =
                    "no image \"" + n + "\" in " + dir.string() + " (known: " + known_list + ")";
                if (auto near = util::closest_in(n, known))
                    msg += "; did you mean \"" + *near + "\"?";
                return make_error(ErrorKind::invalid_input, msg);
            }
            if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
        }
    }
    if (names.empty())
        return make_error(ErrorKind::invalid_input, "no image to build: " + dir.string() +
                                                        " has no subdirectory with a Dockerfile");

    if (!req.tag.empty()) {
        if (is_bare_tag(req.tag)) {
            if (!valid_tag(req.tag))
                return make_error(ErrorKind::invalid_input,
                                  "--tag \"" + req.tag +
                                      "\" is not a valid tag (letters, digits, '_', '.', '-'; "
                                      "at most 128)");
        } else {
            if (!valid_reference(req.tag))
                return make_error(ErrorKind::invalid_input,
                                  "--tag \"" + req.tag +
                                      "\" is not an image reference (e.g. airlock/codex:dev)");
            if (names.size() > 1)
                return make_error(ErrorKind::invalid_input,
                                  "--tag " + req.tag + " names one image, but " +
                                      std::to_string(names.size()) +
                                      " are to be built; give a bare tag (e.g. --tag dev, which "
                                      "makes airlock/NAME:dev) or one image at a time");
        }
    }

    // agent-base first: the others are built FROM it.
    auto base_it = std::find(names.begin(), names.end(), k_agent_base_image);
    if (base_it != names.end()) std::rotate(names.begin(), base_it, base_it + 1);
    const bool with_agent_base = base_it != names.end();

    std::vector<ImageBuild> plan;
    for (std::size_t i = 0; i < names.size(); ++i) {
        ImageBuild b;
        b.name = names[i];
        b.context = dir / names[i];
        b.tag = image_tag(names[i], req.tag);
        if (with_agent_base && i > 0)
            b.base = plan.front().tag;
        else
            b.base = req.base;
        plan.push_back(std::move(b));
    }
    return plan;
}

} // namespace airlock::cli
