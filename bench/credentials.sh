#!/usr/bin/env bash
# What a credential endpoint costs, against the project's test server (build/airlock-testserver)
# serving HTTPS as `bench.test` on a docker network of the benchmark's own, with a CA made here;
# no traffic leaves the machine.
#
#   bench/credentials.sh [N] [BYTES]
#     N      start-up runs per variant (default 10)
#     BYTES  size of the streamed download (default 268435456, 256 MiB)
#
# Measures, the task talking HTTPS to bench.test itself through the proxy (CONNECT, the task does
# TLS) against the task talking plain HTTP to its credential endpoint (the sidecar does TLS and
# adds the key):
#   - per-request time of 500 small requests (a new connection each): median and p99,
#   - download throughput of BYTES (medians of three),
#   - start-up: `airlock run --network allowlist -- true` without and with --credential.
#
# Environment: AIRLOCK (binary, default build/airlock), TESTSERVER (default
# build/airlock-testserver), DOCKER (CLI), IMAGE (default airlock/agent-base:latest).
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-10}
BYTES=${2:-268435456}
case $N in '' | *[!0-9]*) bench_die "N must be a positive integer (got '$N')" ;; esac
case $BYTES in '' | *[!0-9]*) bench_die "BYTES must be a positive integer (got '$BYTES')" ;; esac
IMAGE=${IMAGE:-airlock/agent-base:latest}
TESTSERVER=${TESTSERVER:-$BENCH_REPO/build/airlock-testserver}
[ -x "$TESTSERVER" ] || bench_die "test server not found at $TESTSERVER (cmake --build build)"

bench_need jq awk sort date tar openssl
TMP=$(mktemp -d "${TMPDIR:-/tmp}/airlock-bench-credentials.XXXXXX")
NET=airlock-bench-cred-$$
cleanup() {
    "$DOCKER_BIN" rm -f airlock-bench-cred-server-$$ >/dev/null 2>&1 || true
    "$DOCKER_BIN" network rm "$NET" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_pick_tools "$TMP"
mkdir -p "$TMP/ws" "$TMP/data" "$TMP/img" "$TMP/pki"
(
    cd "$TMP/pki"
    ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    # shellcheck disable=SC2086
    openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=airlock-bench-ca \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
    # shellcheck disable=SC2086
    openssl req $ec -keyout server.key -out server.csr -subj /CN=bench.test
    printf 'subjectAltName=DNS:bench.test\nextendedKeyUsage=serverAuth\n' >ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
        -days 2 -extfile ext.cnf
) >"$TMP/pki/log" 2>&1 || { cat "$TMP/pki/log" >&2; bench_die "making the test CA failed"; }
cp "$TMP/pki/ca.pem" "$TMP/ws/ca.pem"
cp "$TESTSERVER" "$TMP/img/airlock-testserver"
SERVER_IMAGE=$(tar -C "$TMP/img" -c airlock-testserver | "$DOCKER_BIN" import - airlock-bench/testserver:latest)
"$DOCKER_BIN" network create "$NET" >/dev/null
SUBNET=$("$DOCKER_BIN" network inspect "$NET" --format '{{(index .IPAM.Config 0).Subnet}}')
"$DOCKER_BIN" run -d --name airlock-bench-cred-server-$$ --network "$NET" --network-alias bench.test \
    -e AIRLOCK_TS_CERT="$(cat "$TMP/pki/server.pem")" -e AIRLOCK_TS_KEY="$(cat "$TMP/pki/server.key")" \
    "$SERVER_IMAGE" /airlock-testserver --name bench --https 443 >/dev/null
sleep 0.5

cat >"$TMP/policy.json" <<'POLICY'
{"credentials": {"bench": {"secret": "AIRLOCK_BENCH_KEY", "upstream": "https://bench.test",
  "header": "Authorization: Bearer {secret}", "env": {"BENCH_BASE_URL": "{endpoint}"}}}}
POLICY
export AIRLOCK_BENCH_KEY=sk-airlock-bench-0123456789abcdef

for ((i = 0; i < 500; i++)); do printf 'url = "https://bench.test/hello"\noutput = /dev/null\n'; done >"$TMP/ws/urls.tls"
for ((i = 0; i < 500; i++)); do printf 'url = "http://127.0.0.1:3129/bench/hello"\noutput = /dev/null\n'; done >"$TMP/ws/urls.endpoint"

run() { # run CREDENTIAL(yes|no) SCRIPT: sh -c SCRIPT in an allowlist run
    local args=(--policy permissive --policy "$TMP/policy.json" --network allowlist
        --egress-network "$NET" --allow bench.test --allow-cidr "$SUBNET")
    [ "$1" = yes ] && args+=(--credential bench --ca-bundle "$TMP/pki/ca.pem")
    rm -rf "$TMP/out"
    "$AIRLOCK_BIN" run --quiet --pull never "${args[@]}" --workspace "$TMP/ws" --out "$TMP/out" \
        -- sh -c "$2" >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; bench_die "airlock run failed"; }
    cat "$TMP/out/logs/stdout.log"
}

bench_describe_tools
printf 'network:  %s (%s); download %s bytes; %s start-up runs per variant\n\n' "$NET" "$SUBNET" "$BYTES" "$N"

run no "curl -sS --cacert /workspace/ca.pem -K /workspace/urls.tls -w '%{time_total}\n'" |
    awk '{ printf "%.3f\n", $1 * 1000 }' >"$TMP/data/tls.small"
run yes "curl -sS -K /workspace/urls.endpoint -w '%{time_total}\n'" |
    awk '{ printf "%.3f\n", $1 * 1000 }' >"$TMP/data/endpoint.small"
pct() { sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int((NR - 1) * p + 1); printf "%.3f\n", v[i] }'; }
printf '%-36s %10s %10s %6s\n' '500 small requests (ms)' median p99 n
for v in tls endpoint; do
    label=$([ $v = tls ] && echo 'task TLS through the proxy' || echo 'credential endpoint')
    printf '%-36s %10s %10s %6s\n' "$label" "$(pct "$TMP/data/$v.small" 0.5)" \
        "$(pct "$TMP/data/$v.small" 0.99)" "$(wc -l <"$TMP/data/$v.small")"
done
echo

for ((i = 0; i < 3; i++)); do
    run no "curl -sS --cacert /workspace/ca.pem -o /dev/null -w '%{speed_download}\n' https://bench.test/bytes/$BYTES" |
        awk '{ printf "%.1f\n", $1 / 1048576 }' >>"$TMP/data/tls.dl"
    run yes "curl -sS -o /dev/null -w '%{speed_download}\n' \$BENCH_BASE_URL/bytes/$BYTES" |
        awk '{ printf "%.1f\n", $1 / 1048576 }' >>"$TMP/data/endpoint.dl"
done
printf '%-36s %12s %24s\n' download 'median MiB/s' 'all runs'
printf '%-36s %12s %24s\n' 'task TLS through the proxy' "$(bench_median "$TMP/data/tls.dl")" "$(tr '\n' ' ' <"$TMP/data/tls.dl")"
printf '%-36s %12s %24s\n\n' 'credential endpoint' "$(bench_median "$TMP/data/endpoint.dl")" "$(tr '\n' ' ' <"$TMP/data/endpoint.dl")"

start() { # start VARIANT RECORD
    local t0 t1 args=(--policy permissive --policy "$TMP/policy.json" --network allowlist --egress-network "$NET")
    [ "$1" = credential ] && args+=(--credential bench --ca-bundle "$TMP/pki/ca.pem")
    rm -rf "$TMP/out"
    t0=$(bench_now_ns)
    "$AIRLOCK_BIN" run --quiet --pull never "${args[@]}" --workspace "$TMP/ws" --out "$TMP/out" -- true \
        >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; bench_die "airlock run ($1) failed"; }
    t1=$(bench_now_ns)
    [ "$2" = 1 ] && bench_ms "$t0" "$t1" >>"$TMP/data/start.$1"
    return 0
}
for v in plain credential; do start "$v" 0; done
for ((i = 0; i < N; i++)); do for v in plain credential; do start "$v" 1; done; done
printf '%-36s %10s %8s %8s\n' 'start-up, allowlist (ms)' median p10 p90
for v in plain credential; do
    read -r med p10 p90 _ < <(bench_stats "$TMP/data/start.$v")
    printf '%-36s %10s %8s %8s\n' "$v" "$med" "$p10" "$p90"
done
printf '%-36s %10s\n' added "$(awk -v a="$(bench_median "$TMP/data/start.credential")" \
    -v b="$(bench_median "$TMP/data/start.plain")" 'BEGIN{printf "%.1f", a-b}')"
