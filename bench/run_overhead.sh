#!/usr/bin/env bash
# Per-run overhead of airlock against a plain `docker run` with the same limits.
#
#   bench/run_overhead.sh [N]      N measured runs per side and variant (default 30)
#
# Variants (each: 3 warm-up runs per side, then N runs interleaved a, b, a, b, ...):
#   volume   airlock run --quiet -- true  (default volume mode, empty workspace)
#            vs docker run --rm <airlock's default limits> IMAGE true
#   bind-ro  airlock run --quiet --workspace-mode bind-ro -- true
#            vs the same docker run with -v WS:/workspace:ro
# Prints median, p10, p90 (ms of wall time) per side, the ratio of medians, and the median
# of each airlock pipeline step taken from report.json.
#
# Environment: AIRLOCK (binary, default build/airlock), DOCKER (CLI, default /usr/bin/docker
# when present), IMAGE (default airlock/agent-base:latest).
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-30}
case $N in '' | *[!0-9]*) bench_die "N must be a positive integer (got '$N')" ;; esac
[ "$N" -ge 1 ] || bench_die "N must be at least 1"
IMAGE=${IMAGE:-airlock/agent-base:latest}
WARMUP=3

bench_need jq awk sort date
TMP=$(mktemp -d "${TMPDIR:-/tmp}/airlock-bench-overhead.XXXXXX")
NAME_PREFIX=airlock-bench-$$-
DOCKER_BIN=

cleanup() {
    local ids
    if [ -n "$DOCKER_BIN" ]; then
        ids=$("$DOCKER_BIN" ps -aq --filter "name=$NAME_PREFIX" 2>/dev/null || true)
        # shellcheck disable=SC2086 # word splitting of the id list is intended
        [ -z "$ids" ] || "$DOCKER_BIN" rm -f $ids >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_pick_tools "$TMP"
"$DOCKER_BIN" image inspect "$IMAGE" >/dev/null 2>&1 || bench_die "image $IMAGE is missing"

WS=$TMP/workspace
OUT=$TMP/out
mkdir -p "$WS" "$TMP/data"

# airlock's defaults: --memory 2g (swap equal), --cpus 1, --pids 256, --user 1000:1000,
# --tmpfs-size 256m, nofile/nproc ulimits, no network, read-only root, no capabilities.
DOCKER_LIMITS=(--network none --read-only --cap-drop ALL --security-opt no-new-privileges
    --user 1000:1000 -m 2g --memory-swap 2g --cpus 1 --pids-limit 256
    --ulimit nofile=4096:4096 --ulimit nproc=1024:1024
    --tmpfs '/tmp:rw,nosuid,nodev,exec,size=268435456' --log-driver none)

SEQ=0

# run_airlock MODE RECORD(0|1)
run_airlock() {
    local mode=$1 record=$2 t0 t1 rc=0 step ms
    rm -rf "$OUT"
    t0=$(bench_now_ns)
    "$AIRLOCK_BIN" run --quiet --workspace-mode "$mode" --workspace "$WS" --out "$OUT" -- true \
        >/dev/null 2>"$TMP/airlock.err" || rc=$?
    t1=$(bench_now_ns)
    if [ "$rc" -ne 0 ]; then
        cat "$TMP/airlock.err" >&2
        bench_die "airlock run ($mode) exited $rc"
    fi
    if [ "$record" = 1 ]; then
        bench_ms "$t0" "$t1" >>"$TMP/data/airlock.$mode"
        jq -r '.duration_ms' "$OUT/report.json" >>"$TMP/data/airlock.$mode.report_total"
        while read -r step ms; do
            printf '%s\n' "$ms" >>"$TMP/data/airlock.$mode.step.$step"
            grep -qx "$step" "$TMP/data/steps.$mode" 2>/dev/null ||
                printf '%s\n' "$step" >>"$TMP/data/steps.$mode"
        done < <(jq -r '.steps[] | "\(.step) \(.duration_ms)"' "$OUT/report.json")
    fi
    rm -rf "$OUT"
}

# run_docker MODE RECORD(0|1)
run_docker() {
    local mode=$1 record=$2 t0 t1 rc=0
    local extra=()
    [ "$mode" = bind-ro ] && extra=(-v "$WS:/workspace:ro")
    SEQ=$((SEQ + 1))
    t0=$(bench_now_ns)
    "$DOCKER_BIN" run --rm --name "$NAME_PREFIX$SEQ" "${DOCKER_LIMITS[@]}" "${extra[@]}" \
        "$IMAGE" true >/dev/null 2>"$TMP/docker.err" || rc=$?
    t1=$(bench_now_ns)
    if [ "$rc" -ne 0 ]; then
        cat "$TMP/docker.err" >&2
        bench_die "docker run ($mode) exited $rc"
    fi
    [ "$record" = 1 ] && bench_ms "$t0" "$t1" >>"$TMP/data/docker.$mode"
    return 0
}

bench_describe_tools
printf 'image:    %s\nruns:     %s per side and variant, interleaved, after %s warm-up runs each\n\n' \
    "$IMAGE" "$N" "$WARMUP"

for mode in volume bind-ro; do
    printf 'variant %s: warming up...\n' "$mode" >&2
    for ((i = 0; i < WARMUP; i++)); do
        run_airlock "$mode" 0
        run_docker "$mode" 0
    done
    for ((i = 1; i <= N; i++)); do
        printf '\rvariant %s: run %d/%d' "$mode" "$i" "$N" >&2
        run_airlock "$mode" 1
        run_docker "$mode" 1
    done
    printf '\n' >&2
done

printf '%-8s %-8s %9s %9s %9s %9s %9s %4s\n' variant side median p10 p90 min max n
for mode in volume bind-ro; do
    for side in airlock docker; do
        read -r med p10 p90 lo hi n < <(bench_stats "$TMP/data/$side.$mode")
        printf '%-8s %-8s %9s %9s %9s %9s %9s %4s\n' "$mode" "$side" "$med" "$p10" "$p90" "$lo" "$hi" "$n"
    done
done
printf '\nratio of medians (airlock / docker), wall time in ms:\n'
for mode in volume bind-ro; do
    a=$(bench_median "$TMP/data/airlock.$mode")
    d=$(bench_median "$TMP/data/docker.$mode")
    printf '  %-8s %s  (airlock %s ms, docker %s ms, difference %s ms)\n' "$mode" \
        "$(bench_ratio "$a" "$d")" "$a" "$d" "$(awk -v a="$a" -v d="$d" 'BEGIN { printf "%+.1f", a - d }')"
done

for mode in volume bind-ro; do
    printf '\nairlock %s: report.json steps (ms; median p10 p90 over %s runs)\n' "$mode" "$N"
    while read -r step; do
        read -r med p10 p90 _ < <(bench_stats "$TMP/data/airlock.$mode.step.$step")
        printf '  %-11s %7s %7s %7s\n' "$step" "$med" "$p10" "$p90"
    done <"$TMP/data/steps.$mode"
    read -r med p10 p90 _ < <(bench_stats "$TMP/data/airlock.$mode.report_total")
    printf '  %-11s %7s %7s %7s\n' "duration_ms" "$med" "$p10" "$p90"
done
printf '\nload at end: %s\n' "$(bench_load)"
