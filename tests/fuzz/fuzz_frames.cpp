// libFuzzer target: the log-frame demuxer over any bytes, cut in two at a point taken from the
// first byte. The output must not depend on the cut.
#include "docker/frames.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

struct Run {
    std::string out, err;
    bool ok = true;
    bool boundary = true;
    std::uint64_t frames = 0;
};

Run demux(std::string_view first, std::string_view second) {
    Run run;
    airlock::docker::FrameDemuxer d([&run](airlock::docker::StreamId s, std::string_view piece) {
        (s == airlock::docker::StreamId::stderr_ ? run.err : run.out).append(piece);
        return true;
    });
    run.ok = d.feed(first) && d.feed(second);
    if (!run.ok && d.error().empty()) std::abort(); // the callback never stops: must be corrupt
    run.boundary = d.at_boundary();
    run.frames = d.frames();
    return run;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::size_t cut = body.empty() ? 0 : data[0] % (body.size() + 1);

    const Run split = demux(body.substr(0, cut), body.substr(cut));
    const Run whole = demux(body, {});
    if (split.ok != whole.ok || split.out != whole.out || split.err != whole.err ||
        split.frames != whole.frames || (split.ok && split.boundary != whole.boundary))
        std::abort();
    return 0;
}
