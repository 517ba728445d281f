#!/usr/bin/env bash
# Bootstrap a Debian 12 machine for airlock, then build, test or demo it.
#
#   ci/setup.sh deps     apt packages (skipped when all are installed)
#   ci/setup.sh engine   start dockerd in the background unless an engine answers
#   ci/setup.sh images   airlock/debian:bookworm (debootstrap + import), airlock/agent-base
#   ci/setup.sh build    cmake configure + build into build/
#   ci/setup.sh test     deps engine images build, then ctest (+ ASan/UBSan unit tests and a
#                        short libFuzzer run of every fuzz target when CI=true)
#   ci/setup.sh demo     deps engine images build, then `airlock run` on examples/demo
#
# Several steps may be given; they run in order. Every step is idempotent.
# Environment: CI=true (warnings are errors, sanitizer build), DOCKER_HOST (use that
# engine, never start one), AIRLOCK_DEBIAN_MIRROR (debootstrap mirror),
# AIRLOCK_REBUILD_IMAGES=1 (rebuild both images), AIRLOCK_JOBS (build parallelism, 2),
# AIRLOCK_FUZZ_SECONDS (how long each fuzz target runs in CI, 20).
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
ROOT=$(cd "$(dirname "$SELF")/.." && pwd)
cd "$ROOT"

export DEBIAN_FRONTEND=noninteractive
# The 20.10 daemon's builder is the legacy one; a newer client (>= 23) would
# otherwise ask for buildx, which is not installed.
export DOCKER_BUILDKIT=0

BASE_IMAGE=airlock/debian:bookworm
AGENT_IMAGE=airlock/agent-base:latest
AGENT_CONTEXT=images/agent-base
DOCKERD_LOG=/var/log/airlock-dockerd.log
LOCAL_SOCK=/var/run/docker.sock
JOBS=${AIRLOCK_JOBS:-2}

PACKAGES=(build-essential cmake pkg-config git libcurl4-openssl-dev nlohmann-json3-dev
  libcxxopts-dev libspdlog-dev catch2 libarchive-dev libssl-dev libxml2-dev docker.io debootstrap
  ca-certificates iproute2 procps socat openssl jq python3-yaml runsc)

step() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() {
  printf 'ci/setup.sh: error: %s\n' "$*" >&2
  exit 1
}

# --- privileges -------------------------------------------------------------

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo "--preserve-env=DEBIAN_FRONTEND,DOCKER_BUILDKIT,DOCKER_HOST")
  fi
fi
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif [ ${#SUDO[@]} -gt 0 ]; then
    "${SUDO[@]}" "$@"
  else
    die "'$*' needs root: run ci/setup.sh as root, or install sudo"
  fi
}

# The docker client, pinned to the engine this script checks and starts: $DOCKER_HOST
# when set, otherwise the local socket (a configured docker context is ignored).
docker_cmd() {
  if [ -n "${DOCKER_HOST:-}" ]; then
    docker "$@"
  elif [ -w "$LOCAL_SOCK" ] || [ "$(id -u)" -eq 0 ]; then
    docker -H "unix://$LOCAL_SOCK" "$@"
  else
    as_root docker -H "unix://$LOCAL_SOCK" "$@"
  fi
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found; run: ci/setup.sh deps"
}

# --- deps -------------------------------------------------------------------

step_deps() {
  step "deps: Debian packages"
  local missing=() p st
  # A machine with another Docker engine (docker-ce on GitHub's runners) keeps it: docker.io
  # would conflict with it. (A docker client alone does not count: the engine is what we need.)
  if command -v dockerd >/dev/null 2>&1 &&
    [ "$(dpkg-query -W -f='${db:Status-Status}' docker.io 2>/dev/null || true)" != installed ]; then
    info "a Docker engine is already installed ($(command -v dockerd)); not installing docker.io"
    local keep=()
    for p in "${PACKAGES[@]}"; do [ "$p" = docker.io ] || keep+=("$p"); done
    PACKAGES=("${keep[@]}")
  fi
  for p in "${PACKAGES[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    info "all ${#PACKAGES[@]} packages installed, skipping apt"
    return 0
  fi
  info "installing: ${missing[*]}"
  # Without systemd, docker.io's postinst would try to start the daemon through its
  # init script; forbid service starts during the install (the engine step starts
  # dockerd itself), unless the machine already has a policy-rc.d.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 0755 $policy"
    added_policy=1
  fi
  local rc=0
  as_root apt-get update -q || rc=$?
  if [ "$rc" -eq 0 ]; then
    as_root apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" || rc=$?
  fi
  if [ "$added_policy" -eq 1 ]; then as_root rm -f "$policy"; fi
  [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc) installing: ${missing[*]}; check the apt sources in /etc/apt and that the Debian mirror is reachable"
}

# --- engine -----------------------------------------------------------------

engine_answers() {
  docker_cmd version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# gVisor for the policies that prefer it (strict): registered in the daemon.json of a dockerd that
# this script starts, with the options DESIGN.md found to work here (ptrace, no network of its
# own: the agent has none anyway). An engine that is already running is left as it is.
register_runsc() {
  local conf=/etc/docker/daemon.json runsc
  runsc=$(command -v runsc) || return 0
  if [ -f "$conf" ] && jq -e '.runtimes.runsc' "$conf" >/dev/null 2>&1; then return 0; fi
  info "registering gVisor ($runsc) as runtime runsc in $conf"
  local base='{}'
  if [ -f "$conf" ]; then
    base=$(cat "$conf")
    jq -e 'type == "object"' <<<"$base" >/dev/null 2>&1 || die "$conf is not a JSON object; fix it or remove it, then run again"
  fi
  as_root mkdir -p /etc/docker
  jq --arg path "$runsc" '.runtimes.runsc = {path: $path, runtimeArgs: ["--platform=ptrace", "--network=none"]}' <<<"$base" |
    as_root tee "$conf.airlock-new" >/dev/null && as_root mv "$conf.airlock-new" "$conf"
}

step_engine() {
  step "engine: Docker Engine"
  need docker
  if [ -n "${DOCKER_HOST:-}" ]; then
    if engine_answers; then
      info "DOCKER_HOST=$DOCKER_HOST answers (server $(docker_cmd version --format '{{.Server.Version}}'))"
      return 0
    fi
    docker_cmd version >&2 || true
    die "the engine at DOCKER_HOST=$DOCKER_HOST does not answer; start it (and check DOCKER_TLS_VERIFY/DOCKER_CERT_PATH), or unset DOCKER_HOST to use a local dockerd"
  fi
  if engine_answers; then
    info "dockerd answers on $LOCAL_SOCK (server $(docker_cmd version --format '{{.Server.Version}}'))"
    return 0
  fi
  need dockerd
  if pgrep -x dockerd >/dev/null 2>&1; then
    info "a dockerd process exists but does not answer yet; waiting for it"
  else
    register_runsc
    info "starting dockerd (log: $DOCKERD_LOG)"
    as_root sh -c "setsid -f dockerd >>'$DOCKERD_LOG' 2>&1 </dev/null"
  fi
  local i
  for i in $(seq 1 60); do
    if engine_answers; then
      info "dockerd answers after ${i}s (server $(docker_cmd version --format '{{.Server.Version}}'))"
      return 0
    fi
    # Fail fast when dockerd has already exited (bad config, no cgroups, ...).
    if [ "$i" -ge 3 ] && ! pgrep -x dockerd >/dev/null 2>&1; then
      break
    fi
    sleep 1
  done
  printf '%s\n' "--- last lines of $DOCKERD_LOG ---" >&2
  as_root tail -n 40 "$DOCKERD_LOG" >&2 || true
  pgrep -x dockerd >/dev/null 2>&1 || die "dockerd exited without answering on $LOCAL_SOCK; see $DOCKERD_LOG above"
  die "dockerd did not answer on $LOCAL_SOCK within 60s; see $DOCKERD_LOG (common causes: missing cgroup mounts, no overlay2/iptables support in this kernel, a stale /var/run/docker.pid)"
}

# --- images -----------------------------------------------------------------

# First http(s) URI that the host's apt sources use for a Debian suite (deb822
# .sources files and one-line .list files).
apt_uri_for_suite() {
  local suite=$1 f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v want="$suite" '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^[ \t]*#/ || !match(line, /^[A-Za-z-]+:/)) continue
          key = tolower(substr(line, 1, RLENGTH - 1)); val = substr(line, RLENGTH + 1)
          if (key == "types") types = val; else if (key == "uris") uris = val
          else if (key == "suites") suites = val; else if (key == "enabled") enabled = val
        }
        if (tolower(enabled) ~ /no/ || (" " types " ") !~ /[ \t]deb[ \t]/) next
        if ((" " suites " ") !~ ("[ \t]" want "[ \t]")) next
        n = split(uris, u, /[ \t]+/)
        for (j = 1; j <= n; j++) if (u[j] ~ /^https?:\/\//) { print u[j]; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -e 's/\[[^]]*\]//' "$f" | awk -v want="$suite" \
      '$1 == "deb" && $2 ~ /^https?:\/\// && $3 == want { print $2; exit }'
  done
}

debian_mirror() {
  if [ -n "${AIRLOCK_DEBIAN_MIRROR:-}" ]; then
    printf '%s\n' "$AIRLOCK_DEBIAN_MIRROR"
    return
  fi
  local m
  m=$(apt_uri_for_suite bookworm | head -n 1)
  printf '%s\n' "${m:-http://deb.debian.org/debian}"
}

image_exists() { docker_cmd image inspect "$1" >/dev/null 2>&1; }

ROOTFS_DIR=""
cleanup_rootfs() {
  if [ -n "$ROOTFS_DIR" ] && [ -d "$ROOTFS_DIR" ]; then
    # debootstrap may leave /proc or /sys mounted when it fails half-way.
    local mp
    for mp in proc sys dev/pts dev; do
      if mountpoint -q "$ROOTFS_DIR/rootfs/$mp" 2>/dev/null; then
        as_root umount -l "$ROOTFS_DIR/rootfs/$mp" || true
      fi
    done
    as_root rm -rf --one-file-system "$ROOTFS_DIR"
  fi
  ROOTFS_DIR=""
}

build_base_image() {
  need debootstrap
  local mirror security t0 t1 t2 rootfs
  mirror=$(debian_mirror)
  security=$(apt_uri_for_suite bookworm-security | head -n 1)
  ROOTFS_DIR=$(mktemp -d /var/tmp/airlock-rootfs.XXXXXX)
  trap cleanup_rootfs EXIT
  rootfs=$ROOTFS_DIR/rootfs
  info "debootstrap --variant=minbase bookworm from $mirror (a few minutes)"
  t0=$(date +%s)
  as_root debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$ROOTFS_DIR/debootstrap.log" 2>&1 || {
    tail -n 30 "$ROOTFS_DIR/debootstrap.log" >&2 || true
    die "debootstrap failed (mirror $mirror); set AIRLOCK_DEBIAN_MIRROR to a reachable Debian mirror"
  }
  t1=$(date +%s)
  info "debootstrap took $((t1 - t0))s"
  # Slim it like Debian's -slim images: no docs, man pages or translations (now
  # and for packages installed later), no apt caches or logs.
  # shellcheck disable=SC2016 # expanded by the inner sh
  as_root sh -e -c '
    r=$1; mirror=$2; security=$3
    {
      echo "deb $mirror bookworm main"
      echo "deb $mirror bookworm-updates main"
      if [ -n "$security" ]; then echo "deb $security bookworm-security main"; fi
    } > "$r/etc/apt/sources.list"
    cat > "$r/etc/dpkg/dpkg.cfg.d/airlock-slim" <<EOF
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    cat > "$r/etc/apt/apt.conf.d/airlock-clean" <<EOF
APT::Install-Recommends "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
    find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* \
      "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
      "$r"/var/log/*.log "$r"/var/log/apt/* "$r"/tmp/* "$r"/var/tmp/*
    : > "$r/etc/resolv.conf"; : > "$r/etc/hostname"
  ' sh "$rootfs" "$mirror" "$security"
  info "importing $BASE_IMAGE"
  as_root tar --numeric-owner -C "$rootfs" -c . | docker_cmd import \
    --change 'CMD ["bash"]' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'LABEL io.airlock.image=debian-bookworm' \
    --change "LABEL io.airlock.mirror=$mirror" \
    - "$BASE_IMAGE" >/dev/null || die "docker import of $BASE_IMAGE failed; is the engine up? (ci/setup.sh engine)"
  t2=$(date +%s)
  info "import took $((t2 - t1))s"
  cleanup_rootfs
  trap - EXIT
}

# Hash of the agent-base build context and of the base image it builds on.
agent_context_hash() {
  local base_id
  base_id=$(docker_cmd image inspect --format '{{.Id}}' "$BASE_IMAGE")
  {
    (cd "$AGENT_CONTEXT" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    printf 'base %s\n' "$base_id"
  } | sha256sum | cut -d' ' -f1
}

step_images() {
  step "images: $BASE_IMAGE, $AGENT_IMAGE"
  need docker
  engine_answers || die "no engine answers; run: ci/setup.sh engine"
  if [ "${AIRLOCK_REBUILD_IMAGES:-0}" = 1 ] && image_exists "$BASE_IMAGE"; then
    info "AIRLOCK_REBUILD_IMAGES=1: removing $BASE_IMAGE"
    docker_cmd image rm "$BASE_IMAGE" >/dev/null || true
  fi
  if image_exists "$BASE_IMAGE"; then
    info "$BASE_IMAGE exists, skipping debootstrap"
  else
    build_base_image
  fi

  [ -f "$AGENT_CONTEXT/Dockerfile" ] || die "$AGENT_CONTEXT/Dockerfile is missing"
  local want have t0 t1
  want=$(agent_context_hash)
  have=$(docker_cmd image inspect --format '{{index .Config.Labels "io.airlock.context-hash"}}' "$AGENT_IMAGE" 2>/dev/null || true)
  if [ "$want" = "$have" ] && [ "${AIRLOCK_REBUILD_IMAGES:-0}" != 1 ]; then
    info "$AGENT_IMAGE is up to date (context ${want:0:12}), skipping build"
    return 0
  fi
  info "building $AGENT_IMAGE (context ${want:0:12})"
  t0=$(date +%s)
  docker_cmd build --network host --pull=false \
    --build-arg "BASE=$BASE_IMAGE" \
    --label "io.airlock.context-hash=$want" \
    -t "$AGENT_IMAGE" "$AGENT_CONTEXT" ||
    die "docker build of $AGENT_IMAGE failed; see the output above (the build needs the Debian mirror through the host network)"
  t1=$(date +%s)
  info "build took $((t1 - t0))s"
  # Drop the image the rebuild replaced, if nothing else uses it.
  docker_cmd image prune -f --filter label=io.airlock.image=agent-base >/dev/null 2>&1 || true
}

# --- build / test -----------------------------------------------------------

configure() {
  local dir=$1
  shift
  # Pass AIRLOCK_WERROR both ways: a cached ON from a CI run must not stick.
  local werror=OFF
  if [ "${CI:-}" = true ]; then werror=ON; fi
  local args=(-S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DAIRLOCK_WERROR=$werror")
  cmake "${args[@]}" "$@" || die "cmake configure of $dir failed; missing libraries? run: ci/setup.sh deps"
}

configure_and_build() {
  configure "$@"
  cmake --build "$1" -j"$JOBS" || die "compiling $1 failed; see the compiler output above"
}

step_build() {
  step "build: cmake into build/"
  need cmake
  configure_and_build build
}

step_test() {
  step_deps
  step_engine
  step_images
  step_build
  step "test: ctest in build/"
  local rc=0
  (cd build && ctest --output-on-failure --no-tests=error) || rc=$?
  [ "$rc" -eq 0 ] || printf 'ci/setup.sh: ctest in build/ failed (exit %s)\n' "$rc" >&2
  if [ "${CI:-}" = true ]; then
    step "test: ASan+UBSan unit tests in build-asan/"
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=1:strict_string_checks=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    configure_and_build build-asan -DAIRLOCK_SANITIZE=ON -DAIRLOCK_INTEGRATION=OFF
    local arc=0
    (cd build-asan && ctest -L unit --output-on-failure --no-tests=error) || arc=$?
    if [ "$arc" -ne 0 ]; then
      printf 'ci/setup.sh: sanitizer unit tests in build-asan/ failed (exit %s)\n' "$arc" >&2
      [ "$rc" -ne 0 ] || rc=$arc
    fi
    local frc=0
    run_fuzzers || frc=$?
    [ "$rc" -ne 0 ] || rc=$frc
  fi
  return "$rc"
}

# --- fuzz -------------------------------------------------------------------

# libFuzzer ships with clang's runtime libraries, not with the compiler package.
FUZZ_PACKAGES=(clang libclang-rt-14-dev)
FUZZ_SECONDS=${AIRLOCK_FUZZ_SECONDS:-20}

fuzz_deps() {
  local missing=() p st
  for p in "${FUZZ_PACKAGES[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  info "installing: ${missing[*]}"
  local rc=0
  as_root apt-get update -q || rc=$?
  if [ "$rc" -eq 0 ]; then
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
  fi
  [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc) installing: ${missing[*]}; check the apt sources in /etc/apt and that the Debian mirror is reachable"
}

# One target for FUZZ_SECONDS, from a copy of its seeds (libFuzzer adds to its first corpus
# directory, and tests/fuzz/corpus/ holds only the chosen seeds). Output in build-fuzz/fuzz-runs/.
fuzz_one() {
  local name=$1
  local work=build-fuzz/fuzz-runs/$name
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/findings"
  cp -R "tests/fuzz/corpus/$name/." "$work/corpus/"
  "build-fuzz/tests/fuzz/fuzz_$name" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/findings/" "$work/corpus" >"$work/log" 2>&1
}

fuzz_report() {
  local name=$1 rc=$2
  local work=build-fuzz/fuzz-runs/$name
  local runs per_sec added
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  per_sec=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)
  added=$(sed -n 's/^stat::new_units_added: *//p' "$work/log" | tail -n 1)
  if [ "$rc" -eq 0 ]; then
    info "fuzz_$name: ${runs:-?} runs (${per_sec:-?}/s), ${added:-0} new inputs, no finding"
    return 0
  fi
  printf '%s\n' "--- last lines of $work/log ---" >&2
  tail -n 40 "$work/log" >&2
  local f
  for f in "$work"/findings/*; do
    [ -e "$f" ] || continue
    printf 'ci/setup.sh: fuzz_%s found a failing input, saved as %s; reproduce with: build-fuzz/tests/fuzz/fuzz_%s %s\n' \
      "$name" "$f" "$name" "$f" >&2
  done
  printf 'ci/setup.sh: fuzz_%s failed (exit %s); full log: %s\n' "$name" "$rc" "$work/log" >&2
  return 1
}

run_fuzzers() {
  step "test: libFuzzer targets in build-fuzz/, ${FUZZ_SECONDS}s each"
  fuzz_deps
  configure build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DAIRLOCK_FUZZ=ON -DAIRLOCK_INTEGRATION=OFF
  cmake --build build-fuzz -j"$JOBS" --target airlock_fuzz ||
    die "compiling the fuzz targets in build-fuzz failed; see the compiler output above"
  local names=() src
  for src in tests/fuzz/fuzz_*.cpp; do
    src=${src##*/fuzz_}
    names+=("${src%.cpp}")
  done
  # $JOBS targets at a time, one core each.
  local rc=0 i j pids=() batch=() r
  for ((i = 0; i < ${#names[@]}; i += JOBS)); do
    pids=()
    batch=("${names[@]:i:JOBS}")
    for j in "${batch[@]}"; do
      fuzz_one "$j" &
      pids+=($!)
    done
    for j in "${!batch[@]}"; do
      r=0
      wait "${pids[$j]}" || r=$?
      fuzz_report "${batch[$j]}" "$r" || rc=1
    done
  done
  [ "$rc" -eq 0 ] || printf 'ci/setup.sh: fuzzing found failures; see above (docs/fuzzing.md)\n' >&2
  return "$rc"
}

# --- demo -------------------------------------------------------------------

DEMO_TMP=""
step_demo() {
  step_deps
  step_engine
  step_images
  step_build
  step "demo: airlock run on examples/demo"
  [ -x build/airlock ] || die "build/airlock is missing; see the build step above"
  DEMO_TMP=$(mktemp -d /tmp/airlock-demo.XXXXXX)
  trap 'rm -rf "$DEMO_TMP"' EXIT
  cp -a examples/demo/. "$DEMO_TMP/"
  chmod -R a+rX "$DEMO_TMP"
  local out rc=0
  out=$ROOT/.airlock/runs/demo-$(date -u +%Y%m%dT%H%M%SZ)
  mkdir -p "$(dirname "$out")"
  build/airlock run --policy standard --workspace "$DEMO_TMP" --out "$out" -- sh fix.sh || rc=$?
  echo "demo output: $out"
  if [ -d "$out" ]; then
    (cd "$out" && find . -type f | LC_ALL=C sort | sed 's|^\./|    |')
  else
    info "(no output directory was written)"
  fi
  [ "$rc" -eq 0 ] || printf 'ci/setup.sh: airlock run exited %s\n' "$rc" >&2
  return "$rc"
}

# --- main -------------------------------------------------------------------

usage() {
  sed -n '2,16s/^# \{0,1\}//p' "$SELF"
}

[ $# -ge 1 ] || {
  usage >&2
  exit 2
}
for arg in "$@"; do
  case $arg in
    deps | engine | images | build | test | demo) ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      printf 'ci/setup.sh: unknown step %q\n' "$arg" >&2
      usage >&2
      exit 2
      ;;
  esac
done
# Let EXIT traps (temporary directories) run on Ctrl-C and on `kill` too.
trap 'exit 130' INT
trap 'exit 143' TERM
for arg in "$@"; do
  "step_$arg"
done
