// POST /build: an image from a Dockerfile and a tar context streamed by the caller, and the
// JSON lines the engine streams back while it builds.
#pragma once

#include "docker/client.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace airlock::docker {

enum class NoCache { no, yes };

struct BuildOptions {
    std::string tag;                               // t=, e.g. "airlock/codex:latest"
    std::map<std::string, std::string> build_args; // buildargs= (the Dockerfile's ARGs)
    std::map<std::string, std::string> labels;     // labels=
    std::string network_mode;                      // networkmode=; empty: the engine's default
    std::string dockerfile = "Dockerfile";         // path inside the context
    NoCache no_cache = NoCache::no;
};

// "/build?..." (without the /vX.Y prefix): the options, and always rm=1, forcerm=1 (no
// container is left, even after a failed step) and pull=0 (a base image the engine has is used
// as it is; only a missing one makes the engine try its registry).
std::string build_target(const BuildOptions& options);

enum class BuildEventKind {
    stream, // builder output ("Step 1/5 : FROM ...\n"), text as sent
    status, // a pull's or an export's state: "ID: STATUS", with `progress` apart
    aux,    // the built image: image_id
    error,  // the build failed: text is the engine's message
    other,  // a line that is none of these (not JSON, or unknown fields): text is the line
};

struct BuildEvent {
    BuildEventKind kind = BuildEventKind::other;
    std::string text;
    std::string id;       // status: the layer or image it is about
    std::string progress; // status: the engine's progress bar ("[==>   ] 1.2MB/9MB"), if any
    std::string image_id; // aux: "sha256:..."
};

// One line of the build stream. nullopt for a blank line. Never fails: what cannot be read is
// an `other` event carrying the line, and `error` wins over any other field of the object.
std::optional<BuildEvent> parse_build_line(std::string_view line);

// Splits a streamed body into lines and hands each parsed event on; remembers the first error
// and the built image's id ("aux", or the "Successfully built ID" line of the classic builder).
class BuildStream {
public:
    using Callback = std::function<void(const BuildEvent&)>;
    explicit BuildStream(Callback on_event) : m_on_event(std::move(on_event)) {}

    // False when a line is longer than 4 MiB (the stream is then unusable).
    bool feed(std::string_view data);
    // Handles a last line without its newline.
    void finish();

    const std::string& error() const { return m_error; } // the first build error, or ""
    bool failed() const { return m_failed; }
    const std::string& image_id() const { return m_image_id; }
    const std::string& protocol_error() const { return m_protocol_error; }

private:
    void handle(std::string_view line);

    Callback m_on_event;
    std::string m_buf;
    std::string m_error;
    bool m_failed = false;
    std::string m_image_id;
    std::string m_protocol_error;
};

struct BuildResult {
    std::string image_id; // may be "" if the engine named none; inspect the tag then
};

// Builds through POST /build with `context` (a tar stream) as the body, calling `on_event` for
// each line as it arrives. A failure reported inside the 200 stream is an error like a refused
// request (ErrorKind::server_error, the engine's message); an interrupt cancels the build.
util::Result<BuildResult> build_image(Client& client, const BuildOptions& options,
                                      const UploadReader& context,
                                      const BuildStream::Callback& on_event);

} // namespace airlock::docker
