#!/usr/bin/env bash
# shellcheck disable=SC2016 # ${{ }}, $( ) and backticks are meant literally throughout
# Integration test of the GitHub Action (ci/github/action.yml, ci/github/airlock-action.sh).
#
#   tests/ci/test_github_action.sh PATH/TO/airlock
#
# Runs the action's steps the way the runner does: it reads action.yml's inputs (and their
# defaults), each step's `env:` mapping, `if:` and `run:` line and the action's `outputs:`,
# gives every step fresh GITHUB_OUTPUT / GITHUB_STEP_SUMMARY / GITHUB_ENV / GITHUB_PATH files
# and a clean environment (GITHUB_ACTIONS=true, RUNNER_TEMP, ...), runs the script line the YAML
# has, and evaluates the action's outputs from the steps' outputs. Against the real engine,
# always with --pull never. After every case nothing labelled io.airlock.run may be left.
# Every mismatch fails the test (exit 1) and says what was compared; nothing is skipped.
set -euo pipefail

[ $# -eq 1 ] || {
  echo "usage: $0 PATH/TO/airlock" >&2
  exit 2
}
AIRLOCK=$(readlink -f "$1")
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
ACTION_DIR=$ROOT/ci/github
YAML=$ACTION_DIR/action.yml
EXAMPLE=$ACTION_DIR/examples/agent-pr.yml
IMAGE=airlock/agent-base:latest

FAILS=0
CHECKS=0
fail() {
  printf 'FAIL: %s\n' "$*"
  FAILS=$((FAILS + 1))
}
ok() { printf 'ok:   %s\n' "$*"; }
fatal() {
  printf 'FATAL: %s\n' "$*"
  exit 1
}
# expect_eq WHAT WANT GOT
expect_eq() {
  CHECKS=$((CHECKS + 1))
  if [ "$2" == "$3" ]; then ok "$1: \"$3\""; else fail "$1: want \"$2\", got \"$3\""; fi
}
# expect_true WHAT COMMAND...
expect_true() {
  local what=$1
  shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then ok "$what"; else fail "$what (check: $*)"; fi
}
has_line() { grep -qxF -- "$2" "$1"; }
contains() { grep -qF -- "$2" "$1"; }

[ -x "$AIRLOCK" ] || fatal "$AIRLOCK is not an executable airlock binary"
for tool in docker jq od awk; do
  command -v "$tool" >/dev/null 2>&1 || fatal "$tool is needed (ci/setup.sh deps installs it)"
done
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  fatal "no Docker engine answers (start one: ci/setup.sh engine); this test never skips"
docker image inspect "$IMAGE" >/dev/null 2>&1 ||
  fatal "$IMAGE is missing (build it: ci/setup.sh images); runs use --pull never"

T=$(mktemp -d /tmp/airlock-gha-test.XXXXXX)
MARK=/tmp/airlock-gha-pwned-$$
STEP_PID=""
cleanup() {
  # A step still running in the background (a failure during case 6): stop it the runner's way.
  if [ -n "$STEP_PID" ] && kill -0 "$STEP_PID" 2>/dev/null; then
    kill -INT "$STEP_PID" 2>/dev/null || true
    wait "$STEP_PID" 2>/dev/null || true
  fi
  rm -rf "$T"
  rm -f "$MARK"-*
}
trap cleanup EXIT
chmod 0755 "$T"

# --- action.yml, read the way the runner reads it (the file keeps to this layout) ------------

# The value of a top-level section's entry field: yaml_entry_field inputs mode default
yaml_entry_field() {
  awk -v sect="$1" -v name="$2" -v field="$3" '
    /^[^ #]/ { cur = $0; sub(/:.*/, "", cur); key = ""; next }
    cur == sect && /^  [^ #]/ { key = $0; sub(/^  /, "", key); sub(/:.*/, "", key); next }
    cur == sect && key == name && index($0, "    " field ":") == 1 {
      v = substr($0, length("    " field ":") + 1); sub(/^ +/, "", v); print v; found = 1; exit }
    END { if (!found) exit 1 }' "$YAML"
}
yaml_entries() {
  awk -v sect="$1" '
    /^[^ #]/ { cur = $0; sub(/:.*/, "", cur); next }
    cur == sect && /^  [^ #]/ { k = $0; sub(/^  /, "", k); sub(/:.*/, "", k); print k }' "$YAML"
}
unquote() {
  local v=$1
  if [[ $v == \"*\" || $v == \'*\' ]]; then v=${v:1:${#v}-2}; fi
  printf '%s' "$v"
}
yaml_step_ids() {
  awk '/^    - id: / { v = $0; sub(/^    - id: /, "", v); print v }' "$YAML"
}
# yaml_step_field ID FIELD: a one-line field of a step (if, run, uses, shell)
yaml_step_field() {
  awk -v id="$1" -v field="$2" '
    /^    - / { cur = ""; if ($0 ~ /^    - id: /) { cur = $0; sub(/^    - id: /, "", cur) } }
    cur == id && index($0, "      " field ": ") == 1 {
      print substr($0, length("      " field ": ") + 1); found = 1; exit }
    END { if (!found) exit 1 }' "$YAML"
}
# yaml_step_env ID: NAME<TAB>EXPRESSION per line
yaml_step_env() {
  awk -v id="$1" '
    /^    - / { cur = ""; inenv = 0; if ($0 ~ /^    - id: /) { cur = $0; sub(/^    - id: /, "", cur) }; next }
    cur == id && /^      env:$/ { inenv = 1; next }
    cur == id && inenv && /^        [A-Z_]+: / {
      l = $0; sub(/^ +/, "", l); k = l; sub(/:.*/, "", k); v = l; sub(/^[A-Z_]+: /, "", v)
      print k "\t" v; next }
    cur == id && inenv { inenv = 0 }' "$YAML"
}
# yaml_step_with ID: KEY<TAB>VALUE per line
yaml_step_with() {
  awk -v id="$1" '
    /^    - / { cur = ""; inw = 0; if ($0 ~ /^    - id: /) { cur = $0; sub(/^    - id: /, "", cur) }; next }
    cur == id && /^      with:$/ { inw = 1; next }
    cur == id && inw && /^        [a-z_-]+: / {
      l = $0; sub(/^ +/, "", l); k = l; sub(/:.*/, "", k); v = l; sub(/^[a-z_-]+: /, "", v)
      print k "\t" v; next }
    cur == id && inw { inw = 0 }' "$YAML"
}
# Lines inside `run: |` blocks and one-line `run:` values of a workflow or action file.
run_script_lines() {
  awk '
    inrun && (length($0) == 0 || match($0, /^ */) && RLENGTH > ind) { print FILENAME ":" NR ": " $0; next }
    { inrun = 0 }
    /^ *(- )?run: *[|>][-+]? *$/ { match($0, /^ */); ind = RLENGTH; if ($0 ~ /^ *- /) ind += 2; inrun = 1; next }
    /^ *(- )?run: / { print FILENAME ":" NR ": " $0 }' "$@"
}

declare -A IN=()   # the inputs of the next action call
declare -A OUTS=() # step.output -> value, from each step's GITHUB_OUTPUT
declare -A AOUT=() # the action's outputs
declare -A SUMMARY=()
declare -A STEP_RC=()
declare -A STEP_LOG=()

# eval_expr EXPR: the ${{ }} forms action.yml uses: inputs.NAME, steps.ID.outputs.NAME, and
# `||` between step outputs.
eval_expr() {
  local e=$1 inner part v
  [[ $e =~ ^\$\{\{\ (.*)\ \}\}$ ]] || {
    printf '%s' "$e"
    return 0
  }
  inner=${BASH_REMATCH[1]}
  if [[ $inner =~ ^inputs\.([a-z-]+)$ ]]; then
    local name=${BASH_REMATCH[1]}
    if [ -n "${IN[$name]+set}" ]; then
      printf '%s' "${IN[$name]}"
    else
      v=$(yaml_entry_field inputs "$name" default) || fatal "action.yml: input $name has no default"
      v=$(unquote "$v")
      [[ $v != *'${{'* ]] || fatal "action.yml: input $name's default is an expression this test cannot evaluate: $v"
      printf '%s' "$v"
    fi
    return 0
  fi
  local IFS='|'
  local alternatives
  inner=${inner//' || '/'|'}
  read -r -a alternatives <<<"$inner"
  for part in "${alternatives[@]}"; do
    [[ $part =~ ^steps\.([a-z-]+)\.outputs\.([a-z-]+)$ ]] || fatal "action.yml: unsupported expression \${{ $inner }}"
    v=${OUTS[${BASH_REMATCH[1]}.${BASH_REMATCH[2]}]:-}
    if [ -n "$v" ]; then
      printf '%s' "$v"
      return 0
    fi
  done
}

# parse_outputs STEP FILE: name=value and name<<DELIM ... DELIM
parse_outputs() {
  local step=$1 file=$2 line name delim value
  while IFS= read -r line; do
    if [[ $line =~ ^([A-Za-z0-9_-]+)\<\<(.+)$ ]]; then
      name=${BASH_REMATCH[1]}
      delim=${BASH_REMATCH[2]}
      value=""
      local first=1
      while IFS= read -r line && [ "$line" != "$delim" ]; do
        if [ $first -eq 1 ]; then value=$line; else value+=$'\n'$line; fi
        first=0
      done
      OUTS[$step.$name]=$value
    elif [[ $line =~ ^([A-Za-z0-9_-]+)=(.*)$ ]]; then
      OUTS[$step.${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
    elif [ -n "$line" ]; then
      fail "$step: a line in GITHUB_OUTPUT is neither name=value nor name<<DELIM: $line"
    fi
  done <"$file"
}

STEP_N=0
# run_step ID [bg]: the step's run line and env, as the runner would run it. With bg, starts it
# in the background and sets STEP_PID; finish_step ID collects it.
run_step() {
  local id=$1 bg=${2:-} line sub
  line=$(yaml_step_field "$id" run) || fatal "action.yml: step $id has no run line"
  sub=$id
  [ "$line" = "exec bash \"\$GITHUB_ACTION_PATH/airlock-action.sh\" $sub" ] ||
    fatal "action.yml: step $id runs [$line], not [exec bash \"\$GITHUB_ACTION_PATH/airlock-action.sh\" $sub]"
  STEP_N=$((STEP_N + 1))
  local d=$T/steps/$STEP_N-$id
  mkdir -p "$d"
  : >"$d/output"
  : >"$d/summary"
  : >"$d/env"
  : >"$d/path"
  SUMMARY[$id]=$d/summary
  STEP_LOG[$id]=$d/log
  # The runner writes a step's run: text to a file and runs it like this.
  printf '%s\n' "$line" >"$d/script.sh"
  local envs=(
    "PATH=$T/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    "HOME=$T/home" "LANG=C.UTF-8"
    "CI=true" "GITHUB_ACTIONS=true" "GITHUB_REPOSITORY=airlock-test/repo"
    "GITHUB_SHA=0123456789abcdef0123456789abcdef01234567" "GITHUB_RUN_ID=4242"
    "GITHUB_WORKSPACE=$T/ws" "GITHUB_ACTION_PATH=$ACTION_DIR" "RUNNER_TEMP=$T/runner-temp"
    "GITHUB_OUTPUT=$d/output" "GITHUB_STEP_SUMMARY=$d/summary" "GITHUB_ENV=$d/env"
    "GITHUB_PATH=$d/path"
  )
  local v
  for v in DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH; do
    if [ -n "${!v:-}" ]; then envs+=("$v=${!v}"); fi
  done
  local name expr
  while IFS=$'\t' read -r name expr; do
    envs+=("$name=$(eval_expr "$expr")")
  done < <(yaml_step_env "$id")
  STEP_DIR=$d
  if [ "$bg" = bg ]; then
    (cd "$T/ws" && exec env -i "${envs[@]}" bash --noprofile --norc -eo pipefail "$d/script.sh") >"$d/log" 2>&1 &
    STEP_PID=$!
    return 0
  fi
  local rc=0
  (cd "$T/ws" && exec env -i "${envs[@]}" bash --noprofile --norc -eo pipefail "$d/script.sh") >"$d/log" 2>&1 || rc=$?
  finish_step "$id" "$rc"
}
finish_step() {
  local id=$1 rc=$2
  STEP_RC[$id]=$rc
  note_run_ids "$STEP_DIR/log"
  sed "s/^/    [$id] /" "$STEP_DIR/log"
  printf '    [%s] exit %s\n' "$id" "$rc"
  parse_outputs "$id" "$STEP_DIR/output"
}

# run_action: the composite's steps in order, with their `if:`s, then its outputs.
ACTION_RC=0
run_action() {
  local k
  for k in "${!IN[@]}"; do
    yaml_entry_field inputs "$k" description >/dev/null || fatal "the test gives input $k, which action.yml does not declare"
  done
  OUTS=()
  AOUT=()
  SUMMARY=()
  STEP_LOG=()
  STEP_RC=()
  ACTION_RC=0
  local mode
  mode=$(eval_expr '${{ inputs.mode }}')
  run_step install
  ACTION_RC=${STEP_RC[install]}
  if [ "$ACTION_RC" -eq 0 ]; then
    case $mode in
      run | gate)
        if [ "${1:-}" = bg ]; then
          run_step "$mode" bg
          return 0
        fi
        run_step "$mode"
        ACTION_RC=${STEP_RC[$mode]}
        ;;
    esac
  fi
  after_main
}
after_main() {
  if [ -n "${OUTS[run.key-dir]:-}" ]; then run_step cleanup; fi
  local name
  while IFS= read -r name; do
    AOUT[$name]=$(eval_expr "$(yaml_entry_field outputs "$name" value)")
  done < <(yaml_entries outputs)
}

# --- nothing left behind ---------------------------------------------------------------------

# leftovers [RUN_ID]: what is labelled io.airlock.run (=RUN_ID)
leftovers() {
  local filter=label=io.airlock.run${1:+=$1}
  {
    docker ps -a -q --filter "$filter" | sed 's/^/container /'
    docker volume ls -q --filter "$filter" | sed 's/^/volume /'
    docker network ls -q --filter "$filter" | sed 's/^/network /'
  } 2>&1
}
# The run ids this test's runs printed ("airlock: run ID: ...").
declare -A MY_RUNS=()
note_run_ids() {
  local id
  while IFS= read -r id; do
    MY_RUNS[$id]=1
  done < <(sed -n 's/^airlock: run \([0-9a-z-]*\): .*/\1/p' "$1")
}
# Nothing of this test's runs may be left the moment airlock exits (teardown happens before
# it does), and nothing labelled io.airlock.run at all once a concurrent run elsewhere on a
# shared engine has had 30 s to finish (ctest runs this test alone: RUN_SERIAL).
expect_nothing_left() {
  local what=$1 left="" id
  for id in "${!MY_RUNS[@]}"; do left+=$(leftovers "$id"); done
  CHECKS=$((CHECKS + 1))
  if [ -n "$left" ]; then
    fail "$what: this test's runs (${!MY_RUNS[*]}) left behind: $(echo "$left" | tr '\n' ' ')"
    return
  fi
  for _ in $(seq 1 60); do
    left=$(leftovers)
    [ -n "$left" ] || break
    sleep 0.5
  done
  if [ -z "$left" ]; then
    ok "$what: no container, volume or network labelled io.airlock.run"
  else
    fail "$what: left behind (labelled io.airlock.run, 30 s after): $(echo "$left" | tr '\n' ' ')"
  fi
}
expect_no_key_left() {
  local left
  left=$(find "$T/runner-temp" -maxdepth 1 -name 'airlock-key.*' 2>/dev/null)
  expect_eq "$1: signing key directories left in RUNNER_TEMP" "" "$left"
}

# --- set-up ----------------------------------------------------------------------------------

mkdir -p "$T/bin" "$T/home" "$T/runner-temp" "$T/ws" "$T/keys" "$T/steps"
ln -s "$AIRLOCK" "$T/bin/airlock"
printf 'hello from the checkout\n' >"$T/ws/README.txt"
chmod -R a+rX "$T/ws"
"$AIRLOCK" keygen --out "$T/keys/ci" >/dev/null
"$AIRLOCK" keygen --out "$T/keys/maintainer" >/dev/null
# The example's policy (standard + a credential endpoint + an approver), with the maintainer's
# key where the example keeps it.
mkdir -p "$T/policy/keys"
cp "$ACTION_DIR/examples/policy.json" "$T/policy/policy.json"
cp "$T/keys/maintainer.pub" "$T/policy/keys/maintainer.pub"
POLICY=$T/policy/policy.json
SIGNING_KEY=$(cat "$T/keys/ci.key")
for _ in $(seq 1 60); do
  left=$(leftovers)
  [ -n "$left" ] || break
  sleep 0.5
done
[ -z "$left" ] || fatal "the engine already holds objects labelled io.airlock.run before this test ran (another run leaked them; airlock clean removes them): $(echo "$left" | tr '\n' ' ')"

# --- static checks of action.yml and the example ---------------------------------------------

echo "== action.yml"
expect_eq "action.yml: steps in order" "install run gate upload-sarif upload-artifact cleanup" \
  "$(yaml_step_ids | tr '\n' ' ' | sed 's/ $//')"
expect_eq "action.yml: runs.using" "composite" "$(awk '/^  using: /{print $2}' "$YAML")"
expect_eq "step run: if" "inputs.mode == 'run'" "$(yaml_step_field run if)"
expect_eq "step gate: if" "inputs.mode == 'gate'" "$(yaml_step_field gate if)"
expect_eq "step cleanup: if" "always() && steps.run.outputs.key-dir != ''" "$(yaml_step_field cleanup if)"
expect_eq "step upload-artifact: if" \
  "always() && inputs.mode == 'run' && inputs.upload-artifact == 'true' && steps.run.outputs.out-dir != ''" \
  "$(yaml_step_field upload-artifact if)"
expect_eq "step upload-sarif: if" \
  "always() && inputs.mode == 'run' && inputs.upload-sarif == 'true' && steps.run.outputs.sarif-file != ''" \
  "$(yaml_step_field upload-sarif if)"
expect_eq "step upload-artifact: path" 'path	${{ steps.run.outputs.out-dir }}' \
  "$(yaml_step_with upload-artifact | grep '^path')"
expect_eq "step upload-artifact: hidden files (changes/files/.github/...) are uploaded" \
  'include-hidden-files	true' "$(yaml_step_with upload-artifact | grep '^include-hidden-files')"
expect_eq "step upload-sarif: sarif_file" 'sarif_file	${{ steps.run.outputs.sarif-file }}' \
  "$(yaml_step_with upload-sarif | grep '^sarif_file')"
expect_eq "input upload-sarif: default" "false" "$(unquote "$(yaml_entry_field inputs upload-sarif default)")"
expect_eq "input upload-artifact: default" "true" "$(unquote "$(yaml_entry_field inputs upload-artifact default)")"
expect_eq "input mode: default" "run" "$(unquote "$(yaml_entry_field inputs mode default)")"
# Every input a step uses arrives through env:, never pasted into a script.
for f in "$YAML" "$EXAMPLE"; do
  [ -f "$f" ] || fatal "$f is missing"
  interp=$(run_script_lines "$f" | grep -F '${{' || true)
  expect_eq "$(basename "$f"): no \${{ }} inside a run: script" "" "$interp"
done
expect_true "examples/policy.json lints" "$AIRLOCK" policy lint "$POLICY"
expect_true "run_script_lines sees the example's run: scripts" \
  test "$(run_script_lines "$EXAMPLE" | wc -l)" -gt 3
# Every input the steps map is declared, and every declared input reaches a step or a with:.
for name in $(yaml_entries inputs); do
  CHECKS=$((CHECKS + 1))
  if grep -qF "\${{ inputs.$name }}" "$YAML" || grep -qF "inputs.$name ==" "$YAML"; then
    :
  else
    fail "input $name is declared but no step uses it"
  fi
done
ok "every declared input is used by a step"

# --- (1) a passing task -------------------------------------------------------------------------

echo "== (1) a passing task, signed"
IN=(
  [command]='printf "%s\n" "it'"'"'s \"quoted\" $((6 * 7))" > result.txt; cat README.txt'
  [policy]='standard'
  [signing-key]="$SIGNING_KEY"
  [artifacts]='result.txt'
  [out]="$T/out1"
  [extra-args]=$'--pull\nnever'
)
run_action
expect_eq "(1) action exit" 0 "$ACTION_RC"
expect_eq "(1) verdict" passed "${AOUT[verdict]}"
expect_eq "(1) exit-class" success "${AOUT[exit-class]}"
expect_eq "(1) exit-code" 0 "${AOUT[exit-code]}"
expect_eq "(1) out-dir" "$T/out1" "${AOUT[out-dir]}"
expect_eq "(1) sarif-file" "$T/out1/report.sarif" "${AOUT[sarif-file]}"
expect_eq "(1) run-id is report.json's" "$(jq -r .run_id "$T/out1/report.json")" "${AOUT[run-id]}"
expect_eq "(1) airlock-path" "$T/bin/airlock" "${AOUT[airlock-path]}"
expect_true "(1) OUT has report.dsse.json" test -f "$T/out1/report.dsse.json"
expect_true "(1) the step summary has airlock's summary heading" \
  grep -q '^## ✅ airlock: passed · run ' "${SUMMARY[run]}"
expect_true "(1) the task's output sits inside ::stop-commands:: (GITHUB_ACTIONS=true reached airlock)" \
  grep -q '^::stop-commands::[0-9a-f]\{32\}$' "${STEP_LOG[run]}"
expect_eq "(1) the command crossed intact into sh -c (quotes, \$(( )) evaluated inside)" \
  "it's \"quoted\" 42" "$(cat "$T/out1/artifacts/result.txt" 2>/dev/null)"
expect_true "(1) the workspace file was seen by the task" contains "$T/out1/logs/stdout.log" "hello from the checkout"
expect_eq "(1) key-dir was told, under RUNNER_TEMP" "$T/runner-temp/airlock-key." "${OUTS[run.key-dir]%.*}."
expect_eq "(1) files in OUT holding the private key" "" "$(grep -rl 'PRIVATE KEY' "$T/out1" || true)"
expect_no_key_left "(1)"
expect_nothing_left "(1)"

# --- (2) a failing task -------------------------------------------------------------------------

echo "== (2) a failing task"
IN=([command]='echo failing; exit 3' [signing-key]="$SIGNING_KEY" [out]="$T/out2" [extra-args]='--pull=never')
run_action
expect_eq "(2) action exit" 3 "$ACTION_RC"
expect_eq "(2) verdict" failed "${AOUT[verdict]}"
expect_eq "(2) exit-class" task-failed "${AOUT[exit-class]}"
expect_eq "(2) exit-code" 3 "${AOUT[exit-code]}"
expect_eq "(2) out-dir" "$T/out2" "${AOUT[out-dir]}"
expect_true "(2) the step summary says failed" grep -q '^## ❌ airlock: failed' "${SUMMARY[run]}"
expect_no_key_left "(2)"
expect_nothing_left "(2)"

echo "== (2b) a task exiting 2 is task-failed, not usage"
IN=([command]='exit 2' [out]="$T/out2b" [extra-args]='--pull=never')
run_action
expect_eq "(2b) action exit" 2 "$ACTION_RC"
expect_eq "(2b) exit-class" task-failed "${AOUT[exit-class]}"
expect_nothing_left "(2b)"

# --- (3) refused requests -----------------------------------------------------------------------

echo "== (3) workspace-mode bind-rw under standard is refused"
IN=([command]='true' [policy]='standard' [workspace-mode]='bind-rw' [out]="$T/out3" [extra-args]='--pull=never')
run_action
expect_eq "(3) action exit" 126 "$ACTION_RC"
expect_eq "(3) exit-class" refused "${AOUT[exit-class]}"
expect_eq "(3) exit-code" 126 "${AOUT[exit-code]}"
expect_eq "(3) verdict (no report written)" none "${AOUT[verdict]}"
expect_eq "(3) out-dir (nothing written)" "" "${AOUT[out-dir]}"
expect_true "(3) the step summary says it did not run" grep -q '^## ❌ airlock: not run (exit 126, refused)$' "${SUMMARY[run]}"
expect_true "(3) an ::error:: annotation says so" grep -q '^::error title=airlock action::airlock run exited 126 (refused) before starting' "${STEP_LOG[run]}"
expect_nothing_left "(3)"

echo "== (3b) --memory above standard's ceiling (extra-args) is refused"
IN=([command]='true' [out]="$T/out3b" [signing-key]="$SIGNING_KEY" [extra-args]=$'--pull=never\n--memory=16g')
run_action
expect_eq "(3b) action exit" 126 "$ACTION_RC"
expect_eq "(3b) exit-class" refused "${AOUT[exit-class]}"
expect_true "(3b) the refusal names the ceiling" contains "${STEP_LOG[run]}" "above the policy ceiling"
expect_no_key_left "(3b)"
expect_nothing_left "(3b)"

# --- (4) gate mode ------------------------------------------------------------------------------

echo "== (4) gate on (1)'s output, with the public key"
mkdir -p "$T/dl1"
cp -R "$T/out1/." "$T/dl1/" # what actions/download-artifact gives the gate job
IN=([mode]=gate [out]="$T/dl1" [pubkey]="$T/keys/ci.pub" [policy]='standard')
run_action
expect_eq "(4) action exit" 0 "$ACTION_RC"
expect_eq "(4) gate-exit-code" 0 "${AOUT[gate-exit-code]}"
expect_eq "(4) verdict" passed "${AOUT[verdict]}"
expect_eq "(4) out-dir" "$T/dl1" "${AOUT[out-dir]}"
expect_eq "(4) exit-class (run only)" "" "${AOUT[exit-class]}"
expect_true "(4) the step summary has the gate's heading" grep -q '^## ✅ airlock gate: passed (exit 0)$' "${SUMMARY[gate]}"
expect_true "(4) the step summary has the gate's lines" grep -q '^PASS  signature: ' "${SUMMARY[gate]}"
gate_log=${STEP_LOG[gate]}
tok=$(sed -n 's/^::stop-commands::\([0-9a-f]\{32\}\)$/\1/p' "$gate_log")
expect_true "(4) stop-commands token printed" test -n "$tok"
expect_true "(4) the gate lines come after ::stop-commands:: and before ::TOKEN::" \
  awk -v t="$tok" '$0 == "::stop-commands::" t { s = NR } $0 == "::" t "::" { e = NR } /^PASS  signature/ { p = NR }
    END { exit !(s && e && p && s < p && p < e) }' "$gate_log"

echo "== (4) gate with the public key given as PEM text"
IN=([mode]=gate [out]="$T/dl1" [pubkey]="$(cat "$T/keys/ci.pub")" [policy]='standard')
run_action
expect_eq "(4 pem) gate-exit-code" 0 "${AOUT[gate-exit-code]}"

echo "== (4) gate on a tampered copy fails"
mkdir -p "$T/dl1t"
cp -R "$T/out1/." "$T/dl1t/"
echo forged >>"$T/dl1t/logs/stdout.log"
IN=([mode]=gate [out]="$T/dl1t" [pubkey]="$T/keys/ci.pub" [policy]='standard')
run_action
expect_eq "(4 tampered) action exit" 1 "$ACTION_RC"
expect_eq "(4 tampered) gate-exit-code" 1 "${AOUT[gate-exit-code]}"
expect_eq "(4 tampered) verdict" failed "${AOUT[verdict]}"

echo "== (4) gate on a missing output (the agent job was skipped) fails"
IN=([mode]=gate [out]="$T/never-downloaded" [pubkey]="$T/keys/ci.pub" [policy]='standard')
run_action
expect_eq "(4 missing) action exit" 2 "$ACTION_RC"
expect_eq "(4 missing) gate-exit-code" 2 "${AOUT[gate-exit-code]}"
expect_eq "(4 missing) verdict" unusable "${AOUT[verdict]}"
expect_true "(4 missing) an ::error:: annotation says so" grep -q '^::error title=airlock action::airlock gate: .*holds no report.json' "${STEP_LOG[gate]}"
expect_true "(4 missing) the step summary says so" contains "${SUMMARY[gate]}" "holds no report.json"

echo "== (4) a protected-path change under standard: run, gate (3), approval, gate (0)"
IN=(
  [command]='mkdir -p .github/workflows && printf "on: push\n" > .github/workflows/x.yml'
  [policy]="$POLICY"
  [signing-key]="$SIGNING_KEY"
  [out]="$T/out4"
  [extra-args]='--pull=never'
)
run_action
expect_eq "(4 protected) run: action exit" 126 "$ACTION_RC"
expect_eq "(4 protected) run: exit-class" refused "${AOUT[exit-class]}"
expect_eq "(4 protected) run: verdict" needs-approval "${AOUT[verdict]}"
expect_eq "(4 protected) run: out-dir" "$T/out4" "${AOUT[out-dir]}"
expect_true "(4 protected) run: the step summary says needs approval" grep -q '^## ✋ airlock: needs approval' "${SUMMARY[run]}"
expect_true "(4 protected) the change (a hidden path) is in OUT" test -f "$T/out4/changes/files/.github/workflows/x.yml"
expect_nothing_left "(4 protected run)"
mkdir -p "$T/dl4"
cp -R "$T/out4/." "$T/dl4/"
IN=([mode]=gate [out]="$T/dl4" [pubkey]="$T/keys/ci.pub" [policy]="$POLICY")
run_action
expect_eq "(4 protected) gate: action exit" 3 "$ACTION_RC"
expect_eq "(4 protected) gate: gate-exit-code" 3 "${AOUT[gate-exit-code]}"
expect_eq "(4 protected) gate: verdict" needs-approval "${AOUT[verdict]}"
expect_true "(4 protected) gate: the step summary says needs approval" \
  grep -q '^## ✋ airlock gate: needs approval (exit 3)$' "${SUMMARY[gate]}"
expect_true "(4 protected) gate: the summary holds the ASK line" grep -q '^ASK   protected-change' "${SUMMARY[gate]}"
# An approval bound to another report (a stale AIRLOCK_APPROVAL secret) changes nothing.
"$AIRLOCK" approve --key "$T/keys/maintainer.key" --capability 'path:.github/workflows/**' \
  --for-report "$T/dl1" --expires 1h --reason "test" --out "$T/other-approval.json" >/dev/null
IN=([mode]=gate [out]="$T/dl4" [pubkey]="$T/keys/ci.pub" [policy]="$POLICY" [approvals]="$T/other-approval.json")
run_action
expect_eq "(4 protected) gate with another report's approval: gate-exit-code" 3 "${AOUT[gate-exit-code]}"
"$AIRLOCK" approve --key "$T/keys/maintainer.key" --capability 'path:.github/workflows/**' \
  --for-report "$T/dl4" --expires 1h --reason "test" --out "$T/approval.json" >/dev/null
IN=([mode]=gate [out]="$T/dl4" [pubkey]="$T/keys/ci.pub" [policy]="$POLICY" [approvals]="$T/approval.json")
run_action
expect_eq "(4 protected) gate with the approval: action exit" 0 "$ACTION_RC"
expect_eq "(4 protected) gate with the approval: gate-exit-code" 0 "${AOUT[gate-exit-code]}"
expect_eq "(4 protected) gate with the approval: verdict" passed "${AOUT[verdict]}"
expect_true "(4 protected) gate with the approval: APPROVED line" grep -q '^APPROVED path:.github/workflows/x.yml by maintainer' "${SUMMARY[gate]}"

# --- (5) shell metacharacters in inputs are never evaluated on the runner -----------------------

echo "== (5) inputs with shell metacharacters"
# shellcheck disable=SC2016 # the point: these must stay literal
IN=(
  [command]="echo \"\$(touch $MARK-command; echo made-inside)\" > made.txt"
  [artifacts]="\$(touch $MARK-artifact1)"$'\n'"; touch $MARK-artifact2"$'\n'"\`touch $MARK-artifact3\`"$'\n'"made.txt"
  [image]="$IMAGE"
  [out]="$T/out5"
  [extra-args]='--pull=never'
)
run_action
expect_eq "(5) action exit" 0 "$ACTION_RC"
expect_eq "(5) the command's \$( ) ran inside the container" "made-inside" "$(cat "$T/out5/artifacts/made.txt" 2>/dev/null)"
expect_eq "(5) artifact globs reached airlock literally" \
  "[\"\$(touch $MARK-artifact1)\",\"; touch $MARK-artifact2\",\"\`touch $MARK-artifact3\`\"]" \
  "$(jq -c '.artifacts.missing' "$T/out5/report.json")"
expect_nothing_left "(5)"

# An out path with a newline cannot add an output line.
IN=([command]='exit 3' [out]="$T/out5"$'\n'"verdict=passed" [extra-args]='--pull=never')
run_action
expect_eq "(5 newline) verdict" failed "${AOUT[verdict]}"
expect_eq "(5 newline) out-dir" "$T/out5"$'\n'"verdict=passed" "${AOUT[out-dir]}"
expect_nothing_left "(5 newline)"

IN=([command]='true' [policy]="\$(touch $MARK-policy) standard;touch $MARK-policy2" [out]="$T/out5p" [extra-args]='--pull=never')
run_action
expect_eq "(5 policy) action exit (the policy file does not exist)" 2 "$ACTION_RC"
expect_eq "(5 policy) exit-class" usage "${AOUT[exit-class]}"
IN=([command]='true' [approvals]="\$(touch $MARK-approvals)" [out]="$T/out5a" [extra-args]='--pull=never')
run_action
expect_eq "(5 approvals) action exit (the approval file does not exist)" 2 "$ACTION_RC"
expect_true "(5 approvals) airlock names the file" contains "${STEP_LOG[run]}" "\$(touch $MARK-approvals)"
IN=([command]='true' [out]="$T/out5e" [extra-args]=$'--pull=never\n$(touch '"$MARK"'-extra)')
run_action
expect_eq "(5 extra-args) action exit (a stray argument)" 2 "$ACTION_RC"
IN=([mode]=gate [out]="$T/dl1" [pubkey]="\$(touch $MARK-pubkey)" [policy]='standard')
run_action
expect_eq "(5 pubkey) gate-exit-code (the key file does not exist)" 2 "${AOUT[gate-exit-code]}"
IN=([mode]="run; touch $MARK-mode")
run_action
expect_eq "(5 mode) an unknown mode fails the install step" 2 "$ACTION_RC"
expect_eq "(5) files the metacharacters would have made on the runner" "" \
  "$(ls -d "$MARK"-* 2>/dev/null || true)"
expect_nothing_left "(5)"

# --- (6) a cancelled job: the step is sent SIGTERM, airlock tears down --------------------------

echo "== (6) SIGTERM to the run step"
IN=([command]='sleep 120' [signing-key]="$SIGNING_KEY" [out]="$T/out6" [extra-args]='--pull=never')
run_action bg
started=0
for _ in $(seq 1 300); do
  if grep -q '"container.started"' "$T/out6/events.jsonl" 2>/dev/null; then
    started=1
    break
  fi
  sleep 0.1
done
expect_eq "(6) the task started" 1 "$started"
key=$(find "$T/runner-temp" -maxdepth 2 -path '*/airlock-key.*/signing.key' | head -n 1)
expect_true "(6) the key file exists while airlock runs" test -n "$key"
expect_eq "(6) key file mode" 600 "$(stat -c %a "$key" 2>/dev/null)"
expect_eq "(6) key directory mode" 700 "$(stat -c %a "$(dirname "$key")" 2>/dev/null)"
# The runner signals a step's entry process only (the run: line execs the script, so that is
# the script); the script passes it on to airlock. SIGINT first, as the runner does.
kill -INT "$STEP_PID" 2>/dev/null || true
rc=0
wait "$STEP_PID" || rc=$?
finish_step run "$rc"
ACTION_RC=$rc
after_main
expect_eq "(6) action exit" 130 "$ACTION_RC"
expect_eq "(6) exit-class" interrupted "${AOUT[exit-class]}"
expect_no_key_left "(6)"
expect_nothing_left "(6)"

echo
if [ "$FAILS" -ne 0 ]; then
  echo "test_github_action: $FAILS of $CHECKS checks FAILED"
  exit 1
fi
echo "test_github_action: all $CHECKS checks passed"
