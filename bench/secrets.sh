#!/usr/bin/env bash
# What a secret costs a run: `airlock run --secret S -- true` with the secret injected as a
# variable (inject env) and as a file on a tmpfs volume kept by a holder (inject file), against
# the same run without a secret.
#
#   bench/secrets.sh [N]      N measured runs per variant (default 20), interleaved
#
# Prints median, p10, p90 (ms of wall time) per variant and the median prepare and start-wait
# steps from report.json (file secrets add their volume and holder to prepare).
#
# Environment: AIRLOCK (binary, default build/airlock), DOCKER (CLI, for the engine check).
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-20}
case $N in '' | *[!0-9]*) bench_die "N must be a positive integer (got '$N')" ;; esac
[ "$N" -ge 1 ] || bench_die "N must be at least 1"
WARMUP=2

bench_need jq awk sort date
TMP=$(mktemp -d "${TMPDIR:-/tmp}/airlock-bench-secrets.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_pick_tools "$TMP"
WS=$TMP/workspace
OUT=$TMP/out
mkdir -p "$WS" "$TMP/data"
printf '{"extends": "standard", "secrets": {"inject": "file"}}\n' >"$TMP/file.json"
export OPENAI_API_KEY=sk-bench-0123456789abcdefghij

# run VARIANT RECORD(0|1)
run() {
    local variant=$1 record=$2 t0 t1 rc=0 args=()
    case $variant in
    none) ;;
    env) args=(--secret OPENAI_API_KEY) ;;
    file) args=(--policy "$TMP/file.json" --secret OPENAI_API_KEY) ;;
    esac
    rm -rf "$OUT"
    t0=$(bench_now_ns)
    "$AIRLOCK_BIN" run --quiet "${args[@]}" --workspace "$WS" --out "$OUT" -- true \
        >/dev/null 2>"$TMP/err" || rc=$?
    t1=$(bench_now_ns)
    [ "$rc" -eq 0 ] || { cat "$TMP/err" >&2; bench_die "airlock run ($variant) exited $rc"; }
    if [ "$record" = 1 ]; then
        bench_ms "$t0" "$t1" >>"$TMP/data/$variant"
        bench_step_ms "$OUT/report.json" prepare >>"$TMP/data/$variant.prepare"
        bench_step_ms "$OUT/report.json" start-wait >>"$TMP/data/$variant.start"
    fi
}

bench_describe_tools
printf 'runs:     %s per variant after %s warm-up runs, interleaved\n\n' "$N" "$WARMUP"
for ((i = 0; i < WARMUP; i++)); do
    for v in none env file; do run "$v" 0; done
done
for ((i = 0; i < N; i++)); do
    for v in none env file; do run "$v" 1; done
done
printf '%-8s %10s %8s %8s %14s %16s\n' variant median p10 p90 prepare_med start_wait_med
for v in none env file; do
    read -r med p10 p90 _ < <(bench_stats "$TMP/data/$v")
    printf '%-8s %10s %8s %8s %14s %16s\n' "$v" "$med" "$p10" "$p90" \
        "$(bench_median "$TMP/data/$v.prepare")" "$(bench_median "$TMP/data/$v.start")"
done
