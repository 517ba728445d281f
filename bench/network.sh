#!/usr/bin/env bash
# What the egress proxy costs, on a docker network of the benchmark's own with the project's test
# server (build/airlock-testserver) as `bench.test`; no traffic leaves the machine.
#
#   bench/network.sh [N] [BYTES]
#     N      runs per start-up variant and small-request rounds (default 10)
#     BYTES  size of the download (default 1073741824, 1 GiB)
#
# Measures, direct (curl in a container on the network) against through the proxy (curl in an
# `airlock run --network allowlist` task, via airlock-init and airlock-egress):
#   - download throughput of BYTES over plain HTTP (three each way, medians),
#   - per-request time of 1,000 small requests (one curl process, a new connection each, as
#     the server closes every connection): median and p99, and what the proxy adds,
#   - start-up: `airlock run -- true` with --network none against --network allowlist.
#
# Environment: AIRLOCK (binary, default build/airlock), TESTSERVER (default
# build/airlock-testserver), DOCKER (CLI), IMAGE (default airlock/agent-base:latest).
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-10}
BYTES=${2:-1073741824}
case $N in '' | *[!0-9]*) bench_die "N must be a positive integer (got '$N')" ;; esac
case $BYTES in '' | *[!0-9]*) bench_die "BYTES must be a positive integer (got '$BYTES')" ;; esac
IMAGE=${IMAGE:-airlock/agent-base:latest}
TESTSERVER=${TESTSERVER:-$BENCH_REPO/build/airlock-testserver}
[ -x "$TESTSERVER" ] || bench_die "test server not found at $TESTSERVER (cmake --build build)"

bench_need jq awk sort date tar
TMP=$(mktemp -d "${TMPDIR:-/tmp}/airlock-bench-network.XXXXXX")
NET=airlock-bench-net-$$
cleanup() {
    "$DOCKER_BIN" rm -f airlock-bench-server-$$ >/dev/null 2>&1 || true
    "$DOCKER_BIN" network rm "$NET" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_pick_tools "$TMP"
mkdir -p "$TMP/ws" "$TMP/data" "$TMP/img"
cp "$TESTSERVER" "$TMP/img/airlock-testserver"
SERVER_IMAGE=$(tar -C "$TMP/img" -c airlock-testserver | "$DOCKER_BIN" import - airlock-bench/testserver:latest)
"$DOCKER_BIN" network create "$NET" >/dev/null
SUBNET=$("$DOCKER_BIN" network inspect "$NET" --format '{{(index .IPAM.Config 0).Subnet}}')
"$DOCKER_BIN" run -d --name airlock-bench-server-$$ --network "$NET" --network-alias bench.test \
    "$SERVER_IMAGE" /airlock-testserver --name bench --http 80 >/dev/null
sleep 0.5

URLS=$TMP/ws/urls
for ((i = 0; i < 1000; i++)); do printf 'url = "http://bench.test/hello"\noutput = /dev/null\n'; done >"$URLS"

direct() { # direct SCRIPT: sh -c SCRIPT in a plain container on the network
    "$DOCKER_BIN" run --rm --network "$NET" -v "$TMP/ws:/workspace" -w /workspace "$IMAGE" sh -c "$1"
}
proxied() { # proxied SCRIPT: the same in an airlock allowlist run
    rm -rf "$TMP/out"
    "$AIRLOCK_BIN" run --quiet --pull never --policy permissive --network allowlist \
        --egress-network "$NET" --allow bench.test --allow-cidr "$SUBNET" \
        --workspace "$TMP/ws" --out "$TMP/out" -- sh -c "$1" >/dev/null 2>"$TMP/err" ||
        { cat "$TMP/err" >&2; bench_die "airlock run failed"; }
    cat "$TMP/out/logs/stdout.log"
}

bench_describe_tools
printf 'network:  %s (%s); download %s bytes; %s start-up runs per variant\n\n' "$NET" "$SUBNET" "$BYTES" "$N"

# Three downloads each way, interleaved; medians (one download is at the mercy of the other core).
DL="curl -sS -o /dev/null -w '%{speed_download}\n' http://bench.test/bytes/$BYTES"
for ((i = 0; i < 3; i++)); do
    direct "$DL" | awk '{ printf "%.1f\n", $1 / 1048576 }' >>"$TMP/data/direct.dl"
    proxied "$DL" | awk '{ printf "%.1f\n", $1 / 1048576 }' >>"$TMP/data/proxy.dl"
done
d_speed=$(bench_median "$TMP/data/direct.dl")
p_speed=$(bench_median "$TMP/data/proxy.dl")
printf '%-28s %12s %24s\n' download 'median MiB/s' 'all runs'
printf '%-28s %12s %24s\n' direct "$d_speed" "$(tr '\n' ' ' <"$TMP/data/direct.dl")"
printf '%-28s %12s %24s\n' proxy "$p_speed" "$(tr '\n' ' ' <"$TMP/data/proxy.dl")"
printf '%-28s %12s\n\n' 'proxy / direct' "$(bench_ratio "$p_speed" "$d_speed")"

SMALL="curl -sS -K /workspace/urls -w '%{time_total}\n'"
direct "$SMALL" | awk '{ printf "%.3f\n", $1 * 1000 }' >"$TMP/data/direct.small"
proxied "$SMALL" | awk '{ printf "%.3f\n", $1 * 1000 }' >"$TMP/data/proxy.small"
pct() { sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int((NR - 1) * p + 1); printf "%.3f\n", v[i] }'; }
dm=$(pct "$TMP/data/direct.small" 0.5) d99=$(pct "$TMP/data/direct.small" 0.99)
pm=$(pct "$TMP/data/proxy.small" 0.5) p99=$(pct "$TMP/data/proxy.small" 0.99)
printf '%-28s %10s %10s %6s\n' '1000 small requests (ms)' median p99 n
printf '%-28s %10s %10s %6s\n' direct "$dm" "$d99" "$(wc -l <"$TMP/data/direct.small")"
printf '%-28s %10s %10s %6s\n' proxy "$pm" "$p99" "$(wc -l <"$TMP/data/proxy.small")"
printf '%-28s %10s %10s\n\n' added \
    "$(awk -v a="$pm" -v b="$dm" 'BEGIN{printf "%.3f", a-b}')" \
    "$(awk -v a="$p99" -v b="$d99" 'BEGIN{printf "%.3f", a-b}')"

start() { # start VARIANT RECORD
    local t0 t1 args=()
    [ "$1" = allowlist ] && args=(--policy permissive --network allowlist --egress-network "$NET" --allow bench.test)
    rm -rf "$TMP/out"
    t0=$(bench_now_ns)
    "$AIRLOCK_BIN" run --quiet --pull never "${args[@]}" --workspace "$TMP/ws" --out "$TMP/out" -- true \
        >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; bench_die "airlock run ($1) failed"; }
    t1=$(bench_now_ns)
    if [ "$2" = 1 ]; then
        bench_ms "$t0" "$t1" >>"$TMP/data/start.$1"
        bench_step_ms "$TMP/out/report.json" prepare >>"$TMP/data/prepare.$1"
    fi
}
for v in none allowlist; do start "$v" 0; done
for ((i = 0; i < N; i++)); do for v in none allowlist; do start "$v" 1; done; done
printf '%-28s %10s %8s %8s %14s\n' 'start-up (ms)' median p10 p90 prepare_med
for v in none allowlist; do
    read -r med p10 p90 _ < <(bench_stats "$TMP/data/start.$v")
    printf '%-28s %10s %8s %8s %14s\n' "$v" "$med" "$p10" "$p90" "$(bench_median "$TMP/data/prepare.$v")"
done
printf '%-28s %10s\n' added "$(awk -v a="$(bench_median "$TMP/data/start.allowlist")" \
    -v b="$(bench_median "$TMP/data/start.none")" 'BEGIN{printf "%.1f", a-b}')"
