#!/usr/bin/env bash
# The GitLab CI template (ci/gitlab/airlock.gitlab-ci.yml) and its job script, run as a GitLab
# runner would, against an engine reached the way the template reaches docker:dind: TCP with
# mutual TLS. The test starts a second dockerd on 127.0.0.1 (its own data root, exec root,
# pidfile, containerd, no bridge, no iptables) with certificates it makes, loads the agent image
# into it, runs the `script:` lines of .airlock and .airlock-gate with the template's variables
# and the CI_* variables GitLab sets, and checks exit codes, reports and leftovers.
#
# usage: test_gitlab_template.sh AIRLOCK_BINARY
# Needs: root (for dockerd), dockerd, docker (client), openssl, git, python3 with yaml
# (python3-yaml). AIRLOCK_TEST_TLS_ENGINE=socat exposes the engine the environment names
# (DOCKER_HOST, or the local socket) over TLS through socat instead of a second dockerd.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 AIRLOCK_BINARY" >&2
  exit 2
fi
AIRLOCK=$(readlink -f "$1")
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TEMPLATE=$ROOT/ci/gitlab/airlock.gitlab-ci.yml
JOB_SCRIPT=$ROOT/ci/gitlab/airlock-job.sh
IMAGE=airlock/agent-base:latest
ENGINE_MODE=${AIRLOCK_TEST_TLS_ENGINE:-dockerd}
T0=$(date +%s)

CHECKS=0
FAILS=0
ok() {
  CHECKS=$((CHECKS + 1))
  printf 'ok    %s\n' "$1"
}
bad() {
  CHECKS=$((CHECKS + 1))
  FAILS=$((FAILS + 1))
  printf 'FAIL  %s\n' "$1"
  shift
  local line
  for line in "$@"; do printf '        %s\n' "$line"; done
}
# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected: $2" "actual:   $3"; fi
}
# expect_in WHAT NEEDLE FILE
expect_in() {
  if grep -qF -- "$2" "$3"; then ok "$1"; else bad "$1" "\"$2\" not in $3:" "$(tail -n 30 "$3")"; fi
}
fatal() {
  printf 'FATAL %s\n' "$*"
  exit 1
}

# Debian's python3 has python3-yaml; a python3 earlier on PATH (pyenv) may not.
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3
for tool in dockerd docker openssl git python3 sha256sum xargs; do
  command -v "$tool" >/dev/null 2>&1 || fatal "$tool not found (ci/setup.sh deps installs it)"
done
"$PYTHON" -c 'import yaml' 2>/dev/null ||
  fatal "python3 cannot import yaml: apt-get install -y python3-yaml (ci/setup.sh deps)"
[ -x "$AIRLOCK" ] || fatal "$AIRLOCK is not an executable airlock binary"

T=$(mktemp -d /tmp/airlock-gitlab-test.XXXXXX)
DOCKERD_PID=""
SOCAT_PID=""
WATCHDOG_PID=""

# Processes whose command line names our containerd socket (shims left by a killed dockerd).
our_shims() {
  local p
  for p in /proc/[0-9]*; do
    if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$T/exec/containerd/containerd.sock"; then
      echo "${p#/proc/}"
    fi
  done
}

stop_pid() { # PID [SECONDS]: TERM, wait, KILL
  local pid=$1 wait=${2:-20} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < wait * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? pid mp
  trap - EXIT INT TERM
  if [ -n "$DOCKERD_PID" ]; then
    stop_pid "$DOCKERD_PID" 30
    if [ -f "$T/exec/containerd/containerd.pid" ]; then
      stop_pid "$(cat "$T/exec/containerd/containerd.pid")" 10
    fi
    for pid in $(our_shims); do stop_pid "$pid" 5; done
  fi
  if [ -n "$SOCAT_PID" ]; then stop_pid "$SOCAT_PID" 5; fi
  if [ -n "$WATCHDOG_PID" ]; then kill -KILL "$WATCHDOG_PID" 2>/dev/null || true; fi
  # dockerd unmounts its data root when it stops; should it have been killed, nothing of the
  # test may stay mounted (deepest first).
  awk -v t="$T" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r mp; do
    umount -l "$mp" 2>/dev/null || true
  done
  rm -rf "$T" 2>/dev/null || rm -rf "$T" || true
  if [ -e "$T" ]; then
    echo "FAIL  could not remove $T"
    rc=1
  fi
  printf '%s: %d checks, %d failed, %ds (%s engine)\n' "$(basename "$0")" "$CHECKS" "$FAILS" \
    "$(($(date +%s) - T0))" "$ENGINE_MODE"
  if [ "$rc" -eq 0 ] && [ "$FAILS" -gt 0 ]; then rc=1; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- the template, as GitLab reads it ------------------------------------------------------

mkdir -p "$T/yaml"
# Checks the template's structure and writes, per job, its variables (the global ones, then the
# job's; NUL-separated NAME=VALUE) and its script (one line each).
"$PYTHON" - "$TEMPLATE" "$T/yaml" <<'PY' >"$T/yaml/checks.txt"
import sys, yaml
path, out = sys.argv[1], sys.argv[2]
doc = yaml.safe_load(open(path))
def check(what, cond, detail=""):
    print(("ok    " if cond else "FAIL  ") + what + ("" if cond else "\n        " + detail))
glob = doc.get("variables", {})
check("template: global variables are a mapping", isinstance(glob, dict), repr(glob))
for name in ["AIRLOCK_COMMAND", "AIRLOCK_POLICY", "AIRLOCK_IMAGE", "AIRLOCK_ARTIFACTS",
             "AIRLOCK_APPROVALS", "AIRLOCK_OUT", "AIRLOCK_EXTRA_ARGS"]:
    check("template: variable %s is defined" % name, name in glob, sorted(glob))
check("template: AIRLOCK_OUT defaults to airlock-out", glob.get("AIRLOCK_OUT") == "airlock-out",
      repr(glob.get("AIRLOCK_OUT")))
check("template: AIRLOCK_SIGNING_KEY is left to a file-type CI/CD variable",
      "AIRLOCK_SIGNING_KEY" not in glob, repr(glob.get("AIRLOCK_SIGNING_KEY")))
run, gate = doc.get(".airlock"), doc.get(".airlock-gate")
check("template: hidden jobs .airlock and .airlock-gate exist", isinstance(run, dict) and
      isinstance(gate, dict), sorted(doc))
run, gate = run or {}, gate or {}
services = [s["name"] if isinstance(s, dict) else s for s in run.get("services", [])]
check(".airlock: services has docker:dind", "docker:dind" in services, repr(services))
v = run.get("variables", {})
for name, want in [("DOCKER_HOST", "tcp://docker:2376"), ("DOCKER_TLS_CERTDIR", "/certs"),
                   ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", "/certs/client")]:
    check(".airlock: %s is %s" % (name, want), str(v.get(name)) == want, repr(v.get(name)))
check(".airlock: script runs airlock-job.sh run",
      run.get("script") == ['bash "$AIRLOCK_CI_DIR/airlock-job.sh" run'], repr(run.get("script")))
check(".airlock-gate: script runs airlock-job.sh gate",
      gate.get("script") == ['bash "$AIRLOCK_CI_DIR/airlock-job.sh" gate'], repr(gate.get("script")))
a = run.get("artifacts", {})
check(".airlock: artifacts when: always", a.get("when") == "always", repr(a.get("when")))
check(".airlock: artifacts paths [airlock-out/]", a.get("paths") == ["airlock-out/"], repr(a.get("paths")))
check(".airlock: junit report airlock-out/junit.xml",
      a.get("reports", {}).get("junit") == "airlock-out/junit.xml", repr(a.get("reports")))
check(".airlock: codequality report airlock-out/codequality.json",
      a.get("reports", {}).get("codequality") == "airlock-out/codequality.json", repr(a.get("reports")))
r = run.get("retry", {})
when = r.get("when", [])
when = [when] if isinstance(when, str) else when
check(".airlock: retry max 2 on exit code 125 only",
      r.get("max") == 2 and r.get("exit_codes") in ([125], 125), repr(r))
# GitLab retries when the failure reason is in `when` OR the exit code in `exit_codes`: a
# `when` that matches script failures would retry every failing task.
check(".airlock: retry:when does not match script failures",
      not set(when) & {"always", "script_failure", "unknown_failure"}, repr(when))
check(".airlock: not allowed to fail", run.get("allow_failure") in (None, False),
      repr(run.get("allow_failure")))
check(".airlock-gate: allowed to fail only with exit 3 (needs approval)",
      gate.get("allow_failure") == {"exit_codes": [3]}, repr(gate.get("allow_failure")))
check(".airlock-gate: no retry", "retry" not in gate, repr(gate.get("retry")))
check(".airlock-gate: needs the run job's artifacts",
      gate.get("needs") == [{"job": "airlock", "artifacts": True}], repr(gate.get("needs")))
# The test exports the values as they are; GitLab would expand a $ in them.
expanded = [n for n, value in list(glob.items()) + list(v.items()) if "$" in str(value)]
check("template: no variable value needs expansion", not expanded, repr(expanded))
for job, body in [("airlock", run), ("airlock-gate", gate)]:
    with open("%s/%s.env" % (out, job), "w") as f:
        for name, value in list(glob.items()) + list(body.get("variables", {}).items()):
            f.write("%s=%s\0" % (name, "" if value is None else value))
    with open("%s/%s.sh" % (out, job), "w") as f:
        f.write("\n".join(body.get("script", [])) + "\n")
PY
while IFS= read -r line; do
  case $line in
  "ok    "*) ok "${line#ok    }" ;;
  "FAIL  "*) bad "${line#FAIL  }" ;;
  *) printf '%s\n' "$line" ;;
  esac
done <"$T/yaml/checks.txt"
if grep -qi 'bind mounts do not' "$TEMPLATE"; then ok "template: says why not bind mounts"; else
  bad "template: a comment says bind mounts do not work with dind"; fi
if grep -qF -- '--workspace-mode volume' "$JOB_SCRIPT"; then ok "job script: --workspace-mode volume"; else
  bad "job script passes --workspace-mode volume"; fi
if bash -n "$JOB_SCRIPT"; then ok "job script: bash -n"; else bad "job script: bash -n"; fi

# --- certificates --------------------------------------------------------------------------

PKI=$T/pki
CERTS=$T/certs/client # the layout dind gives the job: ca.pem, cert.pem, key.pem
mkdir -p "$PKI" "$CERTS"
cat >"$PKI/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF
(
  cd "$PKI"
  key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 -config openssl.cnf "${key[@]}" -keyout ca-key.pem -out ca.pem -days 2 \
    -subj /CN=airlock-gitlab-test-ca -extensions ca
  serial=2
  for leaf in server client; do
    openssl req -new -config openssl.cnf "${key[@]}" -keyout "$leaf-key.pem" -out "$leaf.csr" \
      -subj "/CN=airlock-gitlab-test-$leaf"
    openssl x509 -req -in "$leaf.csr" -CA ca.pem -CAkey ca-key.pem -set_serial "$serial" -days 2 \
      -extfile openssl.cnf -extensions "$leaf" -out "$leaf.pem"
    serial=$((serial + 1))
  done
) >"$T/openssl.log" 2>&1 || fatal "openssl failed: $(tail -n 20 "$T/openssl.log")"
cp "$PKI/ca.pem" "$CERTS/ca.pem"
cp "$PKI/client.pem" "$CERTS/cert.pem"
install -m 0600 "$PKI/client-key.pem" "$CERTS/key.pem"

# --- the TLS engine ------------------------------------------------------------------------

# The engine the environment names (DOCKER_HOST or the local socket): the image comes from it.
docker_src() { docker "$@"; }
# The TLS engine, as the job sees it.
docker_tls() {
  env DOCKER_HOST="tcp://127.0.0.1:$PORT" DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$CERTS" docker "$@"
}

docker_src image inspect "$IMAGE" >/dev/null 2>&1 ||
  fatal "$IMAGE is not on the engine (${DOCKER_HOST:-unix:///var/run/docker.sock}): ci/setup.sh images"

# If this test process dies without its EXIT trap (SIGKILL from a timeout), stop what it started.
start_watchdog() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c '
    parent=$1 pidfile=$2 dir=$3
    while kill -0 "$parent" 2>/dev/null; do sleep 1; done
    [ -d "$dir" ] || exit 0 # the test cleaned up
    if [ -f "$pidfile" ]; then kill -TERM "$(cat "$pidfile")" 2>/dev/null; sleep 15; fi
    rm -rf "$dir"' watchdog "$$" "$1" "$T" </dev/null >/dev/null 2>&1 &
  WATCHDOG_PID=$!
  disown "$WATCHDOG_PID"
}

start_dockerd() {
  [ "$(id -u)" -eq 0 ] || fatal "starting a second dockerd needs root (or set AIRLOCK_TEST_TLS_ENGINE=socat)"
  echo '{}' >"$T/daemon.json"
  local i
  for _ in 1 2 3; do
    PORT=$(free_port)
    # Its own everything: no unix socket (only --host tcp), data root, exec root (its containerd
    # socket lives there: dockerd 20.10 starts its own containerd unless one answers on
    # /run/containerd/containerd.sock), pidfile, config file, containerd namespaces and cgroup
    # parent; no bridge and no iptables rules, so the host's networking is not touched.
    setsid dockerd --host "tcp://127.0.0.1:$PORT" --tlsverify --tlscacert "$PKI/ca.pem" \
      --tlscert "$PKI/server.pem" --tlskey "$PKI/server-key.pem" \
      --config-file "$T/daemon.json" --data-root "$T/data" --exec-root "$T/exec" \
      --pidfile "$T/dockerd.pid" --bridge none --iptables=false --ip6tables=false \
      --ip-masq=false --containerd-namespace airlock-gitlab-test \
      --containerd-plugins-namespace airlock-gitlab-test-plugins \
      --cgroup-parent airlock-gitlab-test >>"$T/dockerd.log" 2>&1 </dev/null &
    DOCKERD_PID=$!
    [ -n "$WATCHDOG_PID" ] || start_watchdog "$T/dockerd.pid"
    for ((i = 0; i < 600; i++)); do
      if docker_tls version --format '{{.Server.Version}}' >/dev/null 2>&1; then
        echo "dockerd (pid $DOCKERD_PID) answers on tcp://127.0.0.1:$PORT with TLS after $((i / 10))s"
        if [ -S "$T/exec/containerd/containerd.sock" ]; then
          echo "its containerd is its own, at $T/exec/containerd/containerd.sock"
        else
          echo "it uses the system containerd, in the namespace airlock-gitlab-test"
        fi
        return 0
      fi
      kill -0 "$DOCKERD_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then
      fatal "dockerd did not answer within 60s: $(tail -n 30 "$T/dockerd.log")"
    fi
    wait "$DOCKERD_PID" 2>/dev/null || true
    DOCKERD_PID=""
    grep -q 'address already in use' "$T/dockerd.log" ||
      fatal "dockerd exited: $(tail -n 30 "$T/dockerd.log")"
  done
  fatal "dockerd found no free port in 3 attempts"
}

start_socat() {
  command -v socat >/dev/null 2>&1 || fatal "socat not found (ci/setup.sh deps)"
  local sock=${DOCKER_HOST:-unix:///var/run/docker.sock} i
  case $sock in unix://*) sock=${sock#unix://} ;; *) fatal "socat mode needs a unix-socket engine, not $sock" ;; esac
  PORT=$(free_port)
  socat "OPENSSL-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork,cert=$PKI/server.pem,key=$PKI/server-key.pem,cafile=$PKI/ca.pem,verify=1" \
    "UNIX-CONNECT:$sock" >"$T/socat.log" 2>&1 </dev/null &
  SOCAT_PID=$!
  for ((i = 0; i < 100; i++)); do
    docker_tls version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fatal "socat did not answer: $(tail -n 20 "$T/socat.log")"
}

case $ENGINE_MODE in
dockerd)
  start_dockerd
  t=$(date +%s)
  if ! docker_src save "$IMAGE" | docker_tls load >"$T/load.log" 2>&1; then
    fatal "loading $IMAGE into the TLS engine failed: $(cat "$T/load.log")"
  fi
  echo "loaded $IMAGE into the TLS engine in $(($(date +%s) - t))s"
  ;;
socat) start_socat ;;
*) fatal "AIRLOCK_TEST_TLS_ENGINE is \"$ENGINE_MODE\"; use dockerd or socat" ;;
esac
expect_eq "the TLS engine answers with mutual TLS" "yes" \
  "$(docker_tls version --format '{{.Server.Version}}' >/dev/null 2>&1 && echo yes || echo no)"
expect_eq "the TLS engine refuses a client without a certificate" "no" \
  "$(env DOCKER_HOST="tcp://127.0.0.1:$PORT" DOCKER_TLS_VERIFY= DOCKER_CERT_PATH= \
    docker --tls --tlscacert "$CERTS/ca.pem" version --format '{{.Server.Version}}' >/dev/null 2>&1 &&
    echo yes || echo no)"

# --- keys and an approver ------------------------------------------------------------------

KEYS=$T/keys
mkdir -p "$KEYS"
for who in ci bob; do
  "$AIRLOCK" keygen --out "$KEYS/$who" >/dev/null || fatal "airlock keygen failed"
done
# An organisation layer that names bob as the approver of protected paths; standard follows it.
cat >"$KEYS/org.json" <<'EOF'
{"approvals": {"approvers": [{"name": "bob", "public_key_file": "bob.pub", "capabilities": ["path:*"]}]}}
EOF

# A PATH where `airlock` is the binary under test, as in a job image.
mkdir -p "$T/bin"
ln -s "$AIRLOCK" "$T/bin/airlock"

# --- running a job -------------------------------------------------------------------------

RUN_IDS=()
N=0
# new_project: a fresh checkout, as CI_PROJECT_DIR, with the job script where AIRLOCK_CI_DIR
# (ci/gitlab) expects it. Sets PROJ and SHA.
new_project() {
  N=$((N + 1))
  PROJ=$T/builds/group/project-$N
  mkdir -p "$PROJ/ci/gitlab" "$PROJ/src"
  cp "$JOB_SCRIPT" "$PROJ/ci/gitlab/airlock-job.sh"
  printf 'stages: [test]\n' >"$PROJ/.gitlab-ci.yml"
  printf 'int main() { return 0; }\n' >"$PROJ/src/main.c"
  git -C "$PROJ" init -q -b main
  git -C "$PROJ" -c user.name=t -c user.email=t@example.invalid add -A
  git -C "$PROJ" -c user.name=t -c user.email=t@example.invalid commit -qm init
  SHA=$(git -C "$PROJ" rev-parse HEAD)
}

# run_job JOB [NAME=VALUE...]: the job's script lines, in bash with `set -eo pipefail` as the
# runner does, in $PROJ, with the template's variables, then GitLab's predefined ones, then the
# given ones (CI/CD variables win over the YAML's). Sets RC and LOG.
run_job() {
  local job=$1
  shift
  LOG=$T/logs/$N-$job.log
  mkdir -p "$T/logs"
  local -a yaml_vars=()
  mapfile -d '' -t yaml_vars <"$T/yaml/$job.env"
  {
    echo 'set -eo pipefail'
    cat "$T/yaml/$job.sh"
  } >"$T/logs/$N-$job.script"
  RC=0
  (cd "$PROJ" && env -i PATH="$T/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    HOME="$T" TMPDIR="$T" "${yaml_vars[@]}" \
    CI=true GITLAB_CI=true CI_PROJECT_DIR="$PROJ" CI_PROJECT_PATH=group/project \
    CI_COMMIT_SHA="$SHA" CI_COMMIT_REF_NAME=main CI_PIPELINE_ID=4242 CI_JOB_ID="$((9000 + N))" \
    CI_JOB_URL="https://gitlab.example.invalid/group/project/-/jobs/$((9000 + N))" \
    GITLAB_USER_LOGIN=dev DOCKER_HOST="tcp://127.0.0.1:$PORT" DOCKER_TLS_VERIFY=1 \
    DOCKER_CERT_PATH="$CERTS" "$@" bash "$T/logs/$N-$job.script") >"$LOG" 2>&1 || RC=$?
  if [ "$job" = airlock ] && [ -f "$PROJ/airlock-out/report.json" ]; then
    RUN_IDS+=("$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' \
      "$PROJ/airlock-out/report.json")")
  fi
}

# json_get FILE EXPR: EXPR evaluated in python with r = the parsed JSON.
json_get() {
  "$PYTHON" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>&1
}

# junit_summary FILE: "failures=N" (the root's count, once it agrees with the testcases) and the
# failed testcases as classname/name, sorted.
junit_summary() {
  "$PYTHON" - "$1" <<'PY' 2>&1
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
cases = root.findall("./testsuite/testcase")
failed = sorted("%s/%s" % (c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None)
assert root.get("tests") == str(len(cases)), (root.get("tests"), len(cases))
assert root.get("failures") == str(len(failed)), (root.get("failures"), failed)
print("failures=%d" % len(failed))
for f in failed:
    print("failed " + f)
PY
}

# The run ids of everything labelled io.airlock.run on the TLS engine.
leftovers() {
  {
    docker_tls ps -a --filter label=io.airlock.run --format '{{.Label "io.airlock.run"}}'
    docker_tls volume ls --filter label=io.airlock.run --format '{{.Label "io.airlock.run"}}'
    docker_tls network ls --filter label=io.airlock.run --format '{{.Label "io.airlock.run"}}'
  } 2>&1 | sort -u
}
expect_nothing_left() {
  local left ours="" id
  left=$(leftovers)
  if [ "$ENGINE_MODE" = socat ]; then # a shared engine: only our runs count
    for id in "${RUN_IDS[@]}"; do
      if grep -qxF -- "$id" <<<"$left"; then ours+="$id "; fi
    done
    left=$ours
  fi
  expect_eq "$1: nothing labelled io.airlock.run remains on the TLS engine" "" "$left"
}

OUT_REL=airlock-out

# --- 1. a passing task, signed; the gate passes --------------------------------------------

echo "--- 1: passing task ($(($(date +%s) - T0))s)"
new_project
run_job airlock AIRLOCK_COMMAND='echo "made in CI" > made.txt && echo task-ran' \
  AIRLOCK_EXTRA_ARGS='--pull never --timeout "5m"' AIRLOCK_ARTIFACTS='made.txt' \
  AIRLOCK_SIGNING_KEY="$KEYS/ci.key"
O=$PROJ/$OUT_REL
expect_eq "pass: run job exit code" 0 "$RC"
expect_in "pass: the task's output is in the job log" "task-ran" "$LOG"
expect_in "pass: the job log shows the airlock command" "--workspace-mode volume" "$LOG"
expect_eq "pass: workspace mode" volume "$(json_get "$O/report.json" 'r["workspace"]["mode"]')"
expect_eq "pass: workspace is CI_PROJECT_DIR" "$PROJ" "$(json_get "$O/report.json" 'r["workspace"]["path"]')"
expect_eq "pass: engine endpoint" "tcp://127.0.0.1:$PORT (TLS)" "$(json_get "$O/report.json" 'r["engine"]["endpoint"]')"
expect_eq "pass: CI context" "gitlab group/project $SHA 4242 $((9000 + N))" \
  "$(json_get "$O/report.json" '" ".join(str(r["ci"][k]) for k in ["provider", "repository", "commit", "run_id", "job"])')"
expect_eq "pass: signed" yes "$([ -f "$O/report.dsse.json" ] && echo yes || echo no)"
expect_eq "pass: artifact kept" "made in CI" "$(cat "$O/artifacts/made.txt" 2>&1)"
expect_eq "pass: the checkout is untouched (volume mode)" "?? $OUT_REL/" \
  "$(git -C "$PROJ" status --porcelain --untracked-files=normal | tr '\n' ' ' | sed 's/ $//')"
expect_eq "pass: junit.xml" "failures=0" "$(junit_summary "$O/junit.xml" | head -n 1)"
expect_eq "pass: junit.xml has the gate and CIS testcases" "True" \
  "$("$PYTHON" -c 'import sys, xml.etree.ElementTree as E; c = E.parse(sys.argv[1]).findall(".//testcase"); print(any(x.get("classname") == "airlock.gate" and x.get("name") == "task-failed" for x in c) and any(x.get("classname", "").startswith("airlock.cis") for x in c))' "$O/junit.xml" 2>&1)"
expect_eq "pass: codequality.json is an empty array" "[]" "$(json_get "$O/codequality.json" 'json.dumps(r)')"
expect_eq "pass: summary.md says passed" yes "$(grep -q 'passed' "$O/summary.md" && echo yes || echo no)"
expect_nothing_left "pass"

run_job airlock-gate AIRLOCK_PUBKEY="$KEYS/ci.pub"
expect_eq "pass: gate job exit code" 0 "$RC"
expect_in "pass: gate checked the signature" "PASS  signature" "$LOG"
expect_in "pass: gate held the run to AIRLOCK_POLICY" "PASS  policy" "$LOG"
run_job airlock-gate AIRLOCK_PUBKEY="$KEYS/bob.pub"
expect_eq "pass: gate with another key fails" 1 "$RC"

# --- 2. a failing task: its exit code; the gate fails ---------------------------------------

echo "--- 2: failing task ($(($(date +%s) - T0))s)"
new_project
run_job airlock AIRLOCK_COMMAND='echo about to fail >&2; exit 7' \
  AIRLOCK_EXTRA_ARGS='--pull never' AIRLOCK_SIGNING_KEY="$KEYS/ci.key"
O=$PROJ/$OUT_REL
expect_eq "fail: run job exit code is the task's" 7 "$RC"
expect_in "fail: the task's stderr is in the job log" "about to fail" "$LOG"
expect_eq "fail: junit.xml" "$(printf 'failures=1\nfailed airlock.gate/task-failed')" \
  "$(junit_summary "$O/junit.xml")"
expect_eq "fail: codequality.json" "task-failed critical" \
  "$(json_get "$O/codequality.json" '" ".join(i["check_name"] + " " + i["severity"] for i in r)')"
expect_eq "fail: workspace mode" volume "$(json_get "$O/report.json" 'r["workspace"]["mode"]')"
expect_nothing_left "fail"
run_job airlock-gate AIRLOCK_PUBKEY="$KEYS/ci.pub"
expect_eq "fail: gate job exit code" 1 "$RC"

# --- 3. refused before it starts: 126, reports that say why ---------------------------------

echo "--- 3: refused task ($(($(date +%s) - T0))s)"
new_project
run_job airlock AIRLOCK_COMMAND='echo never' AIRLOCK_EXTRA_ARGS='--pull never --memory 100g'
O=$PROJ/$OUT_REL
expect_eq "refused: run job exit code" 126 "$RC"
expect_eq "refused: no report.json (nothing started)" no "$([ -e "$O/report.json" ] && echo yes || echo no)"
expect_eq "refused: junit.xml" "$(printf 'failures=1\nfailed airlock.run/run')" \
  "$(junit_summary "$O/junit.xml")"
expect_in "refused: junit.xml says why" "exited 126 (refused by the policy, or an approval is missing): refused: --memory: 100g is above the policy ceiling 8g" "$O/junit.xml"
expect_eq "refused: codequality.json" "airlock-run critical 1" \
  "$(json_get "$O/codequality.json" '" ".join("%s %s %d" % (i["check_name"], i["severity"], "100g is above" in i["description"]) for i in r)')"
expect_nothing_left "refused"
run_job airlock-gate AIRLOCK_PUBKEY="$KEYS/ci.pub"
expect_eq "refused: gate job exit code (unusable)" 2 "$RC"
# The fallback reports quote airlock's message, which quotes the request: markup, quotes, a
# control character and non-ASCII text must not break them.
new_project
run_job airlock AIRLOCK_COMMAND='echo never' AIRLOCK_EXTRA_ARGS='--pull never' \
  AIRLOCK_IMAGE="$(printf 'evil/<&>"\\\001x\303\251')"
O=$PROJ/$OUT_REL
expect_eq "refused image: run job exit code" 126 "$RC"
expect_eq "refused image: junit.xml parses and quotes the image" "True" \
  "$("$PYTHON" -c 'import sys, xml.etree.ElementTree as E; f = E.parse(sys.argv[1]).find(".//failure"); print("evil/<&>\"\\" in f.get("message") and "not among the allowed images" in f.text)' "$O/junit.xml" 2>&1)"
expect_eq "refused image: codequality.json parses and quotes the image" "True" \
  "$(json_get "$O/codequality.json" '"evil/<&>\"\\" in r[0]["description"]')"

# --- 4. the engine cannot be reached: 125 (the one code the template retries) ---------------

echo "--- 4: engine error ($(($(date +%s) - T0))s)"
new_project
run_job airlock AIRLOCK_COMMAND='echo never' AIRLOCK_EXTRA_ARGS='--pull never' \
  DOCKER_HOST="tcp://127.0.0.1:$(free_port)"
O=$PROJ/$OUT_REL
expect_eq "engine error: run job exit code" 125 "$RC"
# airlock writes a report (outcome "error") even then; its renderings say why.
expect_eq "engine error: outcome" error "$(json_get "$O/report.json" 'r["result"]["outcome"]')"
expect_in "engine error: junit.xml says why" "cannot reach the Docker engine at tcp://127.0.0.1:" "$O/junit.xml"
expect_eq "engine error: codequality.json" "task-failed critical" \
  "$(json_get "$O/codequality.json" '" ".join(i["check_name"] + " " + i["severity"] for i in r)')"

# --- 5. a protected change: the run job defers, the gate asks, an approval passes it ---------

echo "--- 5: protected change ($(($(date +%s) - T0))s)"
new_project
run_job airlock AIRLOCK_COMMAND='echo "stages: [deploy]" > .gitlab-ci.yml' \
  AIRLOCK_POLICY="$KEYS/org.json standard" AIRLOCK_EXTRA_ARGS='--pull never' \
  AIRLOCK_SIGNING_KEY="$KEYS/ci.key"
O=$PROJ/$OUT_REL
expect_eq "protected: run job exit code (defer)" 0 "$RC"
expect_in "protected: the run job says the gate decides" "the gate job answers 3" "$LOG"
expect_eq "protected: the change is pending" "True" "$(json_get "$O/report.json" 'bool(r["result"]["needs_approval"])')"
expect_eq "protected: the checkout is untouched" "stages: [test]" "$(cat "$PROJ/.gitlab-ci.yml")"
expect_eq "protected: junit.xml" "$(printf 'failures=1\nfailed airlock.gate/protected-change')" \
  "$(junit_summary "$O/junit.xml")"
expect_nothing_left "protected"
run_job airlock-gate AIRLOCK_POLICY="$KEYS/org.json standard" AIRLOCK_PUBKEY="$KEYS/ci.pub"
expect_eq "protected: gate job exit code (needs approval: allowed to fail)" 3 "$RC"
expect_in "protected: gate asks" "ASK   protected-change" "$LOG"
expect_in "protected: gate job says how to approve" "--for-report $OUT_REL" "$LOG"
"$AIRLOCK" approve --key "$KEYS/bob.key" --capability 'path:.gitlab-ci.yml' --for-report "$O" \
  --reason test --out "$T/approval.json" >"$T/approve.log" 2>&1 || fatal "airlock approve: $(cat "$T/approve.log")"
run_job airlock-gate AIRLOCK_POLICY="$KEYS/org.json standard" AIRLOCK_PUBKEY="$KEYS/ci.pub" \
  AIRLOCK_GATE_APPROVALS="$T/approval.json"
expect_eq "protected: gate job with the approval" 0 "$RC"
expect_in "protected: the approval was consumed" "APPROVED path:.gitlab-ci.yml by bob" "$LOG"

new_project
run_job airlock AIRLOCK_COMMAND='echo "stages: [deploy]" > .gitlab-ci.yml' \
  AIRLOCK_EXTRA_ARGS='--pull never' AIRLOCK_ON_PENDING_APPROVAL=fail
expect_eq "protected: run job exit code with AIRLOCK_ON_PENDING_APPROVAL=fail" 126 "$RC"
expect_nothing_left "protected (fail)"

# --- 6. usage: no command -------------------------------------------------------------------

echo "--- 6: no command ($(($(date +%s) - T0))s)"
new_project
run_job airlock
expect_eq "no command: run job exit code" 2 "$RC"
expect_in "no command: says what to set" "AIRLOCK_COMMAND is empty" "$LOG"

expect_eq "runs with a report" 5 "${#RUN_IDS[@]}"
if [ "$ENGINE_MODE" = dockerd ]; then
  expect_eq "the main engine does not see the TLS engine's runs" "" \
    "$(for id in "${RUN_IDS[@]}"; do docker_src ps -aq --filter "label=io.airlock.run=$id"; done)"
  # The two daemons coexist: stopping ours leaves no mount behind and the main one answering.
  stop_pid "$DOCKERD_PID" 30
  expect_eq "the TLS dockerd stops on SIGTERM" stopped \
    "$(kill -0 "$DOCKERD_PID" 2>/dev/null && echo running || echo stopped)"
  expect_eq "nothing of the TLS engine stays mounted" "" \
    "$(awk -v t="$T" 'index($2, t) == 1 { print $2 }' /proc/self/mounts)"
  expect_eq "the main engine still answers" yes \
    "$(docker_src version --format '{{.Server.Version}}' >/dev/null 2>&1 && echo yes || echo no)"
fi
if [ "$FAILS" -gt 0 ]; then
  echo "--- job logs"
  for f in "$T"/logs/*.log; do
    echo "=== $f"
    tail -n 40 "$f"
  done
fi
