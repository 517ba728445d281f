# shellcheck shell=bash
# Helpers shared by the benchmarks in bench/. Sourced, not run.
#
# Environment:
#   AIRLOCK  airlock binary to measure (default: build/airlock). It is copied into the
#            benchmark's temp dir first, so a concurrent rebuild cannot change it mid-run.
#   DOCKER   docker CLI for the baseline (default: /usr/bin/docker if present, else `docker`).

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bench_die() {
    printf 'bench: %s\n' "$*" >&2
    exit 1
}

bench_need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || bench_die "needs '$c' on PATH"
    done
}

# bench_pick_tools TMPDIR: sets AIRLOCK_BIN (a private copy) and DOCKER_BIN.
bench_pick_tools() {
    local tmp=$1 src=${AIRLOCK:-$BENCH_REPO/build/airlock}
    [ -x "$src" ] || bench_die "airlock binary not found at $src (build it or set AIRLOCK=...)"
    AIRLOCK_BIN=$tmp/airlock
    cp "$src" "$AIRLOCK_BIN" || bench_die "cannot copy $src"
    if [ -n "${DOCKER:-}" ]; then
        DOCKER_BIN=$DOCKER
    elif [ -x /usr/bin/docker ]; then
        DOCKER_BIN=/usr/bin/docker
    else
        DOCKER_BIN=$(command -v docker) || bench_die "no docker CLI found (set DOCKER=...)"
    fi
    "$DOCKER_BIN" info >/dev/null 2>&1 || bench_die "the engine does not answer through $DOCKER_BIN"
}

bench_describe_tools() {
    local client server
    client=$("$DOCKER_BIN" version --format '{{.Client.Version}}' 2>/dev/null || echo '?')
    server=$("$DOCKER_BIN" version --format '{{.Server.Version}}' 2>/dev/null || echo '?')
    printf 'airlock:  %s (%s)\n' "${AIRLOCK:-$BENCH_REPO/build/airlock}" \
        "$("$AIRLOCK_BIN" --version 2>/dev/null | head -n1 || echo '?')"
    printf 'docker:   %s (client %s, engine %s)\n' "$DOCKER_BIN" "$client" "$server"
    printf 'machine:  %s cores, kernel %s, cgroup v%s, storage %s\n' "$(nproc)" "$(uname -r)" \
        "$("$DOCKER_BIN" info --format '{{.CgroupVersion}}' 2>/dev/null || echo '?')" \
        "$("$DOCKER_BIN" info --format '{{.Driver}}' 2>/dev/null || echo '?')"
    printf 'date:     %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'load:     %s (1/5/15-min load average at start)\n' "$(bench_load)"
}

# The 1/5/15-minute load averages: the benchmarks share the machine with whatever else runs.
bench_load() {
    cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'
}

# Nanoseconds since the epoch.
bench_now_ns() {
    date +%s%N
}

# bench_ms START_NS END_NS: elapsed milliseconds with one decimal.
bench_ms() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", (b - a) / 1e6 }'
}

# bench_stats FILE: one number a line in; "median p10 p90 min max n" out.
# Percentiles interpolate linearly between the closest ranks.
bench_stats() {
    sort -n "$1" | awk '
        { v[NR] = $1 }
        function pct(p,   pos, lo, frac) {
            pos = (NR - 1) * p + 1
            lo = int(pos)
            frac = pos - lo
            if (lo >= NR) return v[NR]
            return v[lo] + frac * (v[lo + 1] - v[lo])
        }
        END {
            if (NR == 0) { print "nan nan nan nan nan 0"; exit }
            printf "%.1f %.1f %.1f %.1f %.1f %d\n", pct(0.5), pct(0.1), pct(0.9), v[1], v[NR], NR
        }'
}

# bench_median FILE: the median alone.
bench_median() {
    bench_stats "$1" | awk '{ print $1 }'
}

# bench_ratio A B: A / B with two decimals.
bench_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "nan"; else printf "%.2f\n", a / b }'
}

# bench_step_ms REPORT STEP: duration_ms of one step of an airlock report.json.
bench_step_ms() {
    jq -r --arg s "$2" '[.steps[] | select(.step == $s) | .duration_ms][0] // "nan"' "$1"
}
