#!/usr/bin/env bash
# The steps of the airlock GitHub Action (ci/github/action.yml); see docs/github.md.
#
#   airlock-action.sh install    find airlock on PATH, or build it from the action's checkout
#   airlock-action.sh run        airlock run with the action's inputs; outputs; exits with its code
#   airlock-action.sh gate       airlock gate on a (downloaded) OUT; step summary; exits with its code
#   airlock-action.sh outputs OUT CODE
#                                write the run outputs (verdict, exit-class, ...) for OUT and CODE
#   airlock-action.sh cleanup    remove the signing key's directory (INPUT_KEY_DIR, from run)
#
# Inputs come as INPUT_<NAME> variables (the YAML maps each `inputs.<name>` to one in `env:`; a
# composite action gets none by itself). No input is ever evaluated by a shell: lists are split
# into separate arguments, and `command` is given to `sh -c` inside the task's container only.
# Outputs are `name=value` lines in "$GITHUB_OUTPUT", written before the step exits.
set -euo pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# --- helpers ----------------------------------------------------------------

# Workflow-command data: '%', CR and LF are encoded so a value cannot end the command.
escape_data() {
  local s=$1
  s=${s//'%'/'%25'}
  s=${s//$'\r'/'%0D'}
  s=${s//$'\n'/'%0A'}
  printf '%s' "$s"
}

error() { printf '::error title=airlock action::%s\n' "$(escape_data "$*")"; }
warning() { printf '::warning title=airlock action::%s\n' "$(escape_data "$*")"; }

# A mistake in the action's inputs or environment: nothing was started (airlock's usage code).
die() {
  error "$*"
  printf 'airlock-action: %s\n' "$*" >&2
  exit 2
}

need_env() {
  local name=$1
  [ -n "${!name:-}" ] || die "\$$name is not set: run this inside GitHub Actions, or set it (see docs/github.md)"
}

# set_output NAME VALUE: `NAME=VALUE`, or the delimiter form when VALUE spans lines.
set_output() {
  local name=$1 value=$2 delim
  if [[ $value != *$'\n'* && $value != *$'\r'* ]]; then
    printf '%s=%s\n' "$name" "$value" >>"$GITHUB_OUTPUT"
    return
  fi
  delim="airlock_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
  printf '%s<<%s\n%s\n%s\n' "$name" "$delim" "$value" "$delim" >>"$GITHUB_OUTPUT"
}

# split_lines VALUE: one argument per non-empty line, surrounding blanks and CR removed.
split_lines() {
  local line
  SPLIT=()
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    line="${line#"${line%%[![:space:]]*}"}"
    line="${line%"${line##*[![:space:]]}"}"
    [ -z "$line" ] || SPLIT+=("$line")
  done <<<"$1"
}

# split_words VALUE: one argument per word (spaces, tabs or newlines between); no globbing.
split_words() {
  local word
  SPLIT=()
  split_lines "$1"
  local lines=("${SPLIT[@]+"${SPLIT[@]}"}")
  SPLIT=()
  local IFS=$' \t'
  local line words
  for line in "${lines[@]+"${lines[@]}"}"; do
    read -r -a words <<<"$line"
    for word in "${words[@]+"${words[@]}"}"; do SPLIT+=("$word"); done
  done
}

need_jq() {
  command -v jq >/dev/null 2>&1 ||
    die "jq is needed to read report.json (GitHub-hosted runners have it; elsewhere: apt-get install jq)"
}

# Sets BIN: the install step's airlock (AIRLOCK_BIN), else the one on PATH.
find_airlock() {
  if [ -n "${AIRLOCK_BIN:-}" ]; then
    BIN=$AIRLOCK_BIN
  else
    BIN=$(command -v airlock) || die "airlock is not on PATH (use the action's install input: build)"
  fi
}

absolute() {
  case $1 in
    /*) printf '%s' "$1" ;;
    *) printf '%s/%s' "$PWD" "$1" ;;
  esac
}

# Runs airlock in the background and forwards SIGINT/SIGTERM to it as SIGTERM, so that a
# cancelled job still lets airlock tear down what it created (it then exits 130). A background
# command ignores SIGINT in a non-interactive shell, hence TERM for both. Sets RC.
run_forwarding() {
  local child
  "$@" &
  child=$!
  trap 'kill -TERM "$child" 2>/dev/null || true' INT TERM
  while :; do
    RC=0
    wait "$child" || RC=$?
    # wait returns early (>128) when a trapped signal arrives: keep waiting for airlock itself.
    if [ "$RC" -gt 128 ] && kill -0 "$child" 2>/dev/null; then continue; fi
    break
  done
  trap - INT TERM
}

# --- install ----------------------------------------------------------------

cmd_install() {
  need_env GITHUB_OUTPUT
  case ${INPUT_MODE:-run} in
    run | gate | install) ;;
    *) die "mode: \"${INPUT_MODE}\" is not run, gate or install" ;;
  esac
  local how=${INPUT_INSTALL:-auto} bin root
  if [ "$how" = auto ]; then
    if command -v airlock >/dev/null 2>&1; then how=path; else how=build; fi
  fi
  case $how in
    path)
      bin=$(command -v airlock) ||
        die "install: path: airlock is not on PATH; put it there first, or use install: build"
      ;;
    build)
      need_env GITHUB_PATH
      root=$(cd "$SELF_DIR/../.." && pwd)
      [ -f "$root/ci/setup.sh" ] || die "install: build: $root/ci/setup.sh is missing (the action's checkout is incomplete)"
      printf 'airlock-action: building airlock in %s (ci/setup.sh deps build)\n' "$root"
      (cd "$root" && bash ci/setup.sh deps build)
      bin=$root/build/airlock
      [ -x "$bin" ] || die "install: build: $bin was not built; see ci/setup.sh's output above"
      printf '%s\n' "$root/build" >>"$GITHUB_PATH"
      ;;
    *) die "install: \"$how\" is not auto, path or build" ;;
  esac
  local version
  version=$("$bin" version) || die "install: $bin does not run (\`$bin version\` failed)"
  version=${version#airlock }
  if [ -n "${INPUT_AIRLOCK_VERSION:-}" ] && [ "${INPUT_AIRLOCK_VERSION#v}" != "$version" ]; then
    die "airlock-version: want ${INPUT_AIRLOCK_VERSION}, but $bin is $version"
  fi
  printf 'airlock-action: using %s (airlock %s)\n' "$bin" "$version"
  set_output airlock "$bin"
  set_output airlock-version "$version"
}

# --- outputs ----------------------------------------------------------------

# exit_class CODE OUTCOME: the class of airlock run's exit code. A task's own code that
# collides with one of airlock's (2, 124-137) is told apart by report.json's result.outcome.
exit_class() {
  local code=$1 outcome=$2
  if [ "$code" -eq 0 ]; then
    echo success
    return
  fi
  case $outcome in
    failed | signalled)
      echo task-failed
      return
      ;;
  esac
  case $code in
    2) echo usage ;;
    124) echo timeout ;;
    125) echo engine ;;
    126) echo refused ;;
    127) echo not-found ;;
    130) echo interrupted ;;
    137) echo killed ;;
    *)
      if [ "$code" -ge 1 ] && [ "$code" -le 123 ]; then echo task-failed; else echo unknown; fi
      ;;
  esac
}

# write_run_outputs OUT CODE
write_run_outputs() {
  local out=$1 code=$2 report=$1/report.json
  local verdict=none outcome="" run_id="" out_dir="" sarif=""
  if [ -f "$report" ]; then
    verdict=$(jq -r 'if .verdict.passed == true then "passed"
                     elif .verdict.needs_approval == true then "needs-approval"
                     else "failed" end' "$report" 2>/dev/null) || verdict=failed
    # A protected change pending approval keeps the task's own outcome; airlock refused it.
    outcome=$(jq -r 'if .result.needs_approval then "refused" else (.result.outcome // "") end' \
      "$report" 2>/dev/null) || outcome=""
    run_id=$(jq -r '.run_id // ""' "$report" 2>/dev/null) || run_id=""
  fi
  if [ -d "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then out_dir=$out; fi
  if [ -f "$out/report.sarif" ]; then sarif=$out/report.sarif; fi
  local class
  class=$(exit_class "$code" "$outcome")
  set_output exit-code "$code"
  set_output exit-class "$class"
  set_output verdict "$verdict"
  set_output out-dir "$out_dir"
  set_output run-id "$run_id"
  set_output sarif-file "$sarif"
  printf 'airlock-action: exit-code=%s exit-class=%s verdict=%s out-dir=%q\n' \
    "$code" "$class" "$verdict" "${out_dir:-(none)}"
  if [ ! -f "$report" ] && [ "$code" -ne 0 ]; then
    # airlock wrote no report (nor step summary): it stopped before anything started.
    error "airlock run exited $code ($class) before starting the task; the step's log says why"
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
      printf '## ❌ airlock: not run (exit %s, %s)\n\nairlock wrote no report: the request was refused or invalid before anything started; the step'"'"'s log says why.\n\n' \
        "$code" "$class" >>"$GITHUB_STEP_SUMMARY"
    fi
  fi
}

cmd_outputs() {
  need_env GITHUB_OUTPUT
  need_jq
  [ $# -eq 2 ] || die "usage: airlock-action.sh outputs OUT EXIT_CODE"
  [[ $2 =~ ^[0-9]+$ ]] || die "outputs: exit code \"$2\" is not a number"
  write_run_outputs "$(absolute "$1")" "$2"
}

# --- run --------------------------------------------------------------------

KEY_DIR=""
remove_key() {
  if [ -n "$KEY_DIR" ]; then rm -rf -- "$KEY_DIR"; fi
}

cmd_run() {
  need_env GITHUB_OUTPUT
  need_env RUNNER_TEMP
  need_jq
  local out
  find_airlock
  out=$(absolute "${INPUT_OUT:-$RUNNER_TEMP/airlock-out}")
  local args=(run --out "$out" --no-prompt)
  local x
  if [ -n "${INPUT_POLICY:-}" ]; then
    split_words "$INPUT_POLICY"
    for x in "${SPLIT[@]+"${SPLIT[@]}"}"; do args+=(--policy "$x"); done
  fi
  if [ -n "${INPUT_TASK:-}" ]; then args+=(--task "$INPUT_TASK"); fi
  if [ -n "${INPUT_IMAGE:-}" ]; then args+=(--image "$INPUT_IMAGE"); fi
  if [ -n "${INPUT_WORKSPACE:-}" ]; then args+=(--workspace "$INPUT_WORKSPACE"); fi
  if [ -n "${INPUT_WORKSPACE_MODE:-}" ]; then args+=(--workspace-mode "$INPUT_WORKSPACE_MODE"); fi
  if [ -n "${INPUT_NETWORK:-}" ]; then args+=(--network "$INPUT_NETWORK"); fi
  split_words "${INPUT_CREDENTIALS:-}"
  for x in "${SPLIT[@]+"${SPLIT[@]}"}"; do args+=(--credential "$x"); done
  split_lines "${INPUT_ARTIFACTS:-}"
  for x in "${SPLIT[@]+"${SPLIT[@]}"}"; do args+=(--artifact "$x"); done
  split_lines "${INPUT_APPROVALS:-}"
  for x in "${SPLIT[@]+"${SPLIT[@]}"}"; do args+=(--approvals "$x"); done
  split_words "${INPUT_APPROVE:-}"
  for x in "${SPLIT[@]+"${SPLIT[@]}"}"; do args+=(--approve "$x"); done

  if [ -n "${INPUT_SIGNING_KEY:-}" ]; then
    # mktemp -d makes the directory 0700; the key file is 0600 from the start.
    KEY_DIR=$(mktemp -d "$RUNNER_TEMP/airlock-key.XXXXXX")
    trap remove_key EXIT
    # Told before the key exists, so the action's always() step removes it whatever happens.
    set_output key-dir "$KEY_DIR"
    (
      umask 077
      printf '%s\n' "$INPUT_SIGNING_KEY" >"$KEY_DIR/signing.key"
    )
    args+=(--sign-key "$KEY_DIR/signing.key")
  fi

  split_lines "${INPUT_EXTRA_ARGS:-}"
  for x in "${SPLIT[@]+"${SPLIT[@]}"}"; do args+=("$x"); done

  if [ -n "${INPUT_COMMAND:-}" ]; then
    args+=(-- sh -c "$INPUT_COMMAND")
  elif [ -z "${INPUT_TASK:-}" ]; then
    die "run: give a command (or a task file with one)"
  fi

  if [ -n "${INPUT_OTLP_ENDPOINT:-}" ]; then export OTEL_EXPORTER_OTLP_ENDPOINT="$INPUT_OTLP_ENDPOINT"; fi
  printf 'airlock-action: airlock run --out %q ...\n' "$out"
  run_forwarding "$BIN" "${args[@]}"
  remove_key
  write_run_outputs "$out" "$RC"
  exit "$RC"
}

# --- gate -------------------------------------------------------------------

html_escape() {
  LC_ALL=C tr -d '\000-\010\013-\037\177' | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g'
}

# gate_summary CODE VERDICT OUT LOG: the gate's lines, HTML-escaped inside <pre> (the report's
# paths and messages come from the task; they can neither close the block nor add markup).
gate_summary() {
  local code=$1 verdict=$2 out=$3 log=$4 head
  [ -n "${GITHUB_STEP_SUMMARY:-}" ] || return 0
  case $verdict in
    passed) head="✅ airlock gate: passed" ;;
    failed) head="❌ airlock gate: failed" ;;
    needs-approval) head="✋ airlock gate: needs approval" ;;
    *) head="⚠️ airlock gate: unusable input" ;;
  esac
  {
    printf '## %s (exit %s)\n\n' "$head" "$code"
    printf '<pre>\n'
    head -c 65536 "$log" | html_escape
    printf '</pre>\n\n'
    if [ "$verdict" = needs-approval ]; then
      cat <<'EOF'
An approver downloads this run's output, reviews it, and signs an approval bound to the report
(`airlock approve --key KEY --capability CAP --for-report OUT --out approval.json`); the gate
then gets it through its `approvals` input. See docs/github.md.

EOF
    fi
  } >>"$GITHUB_STEP_SUMMARY"
}

cmd_gate() {
  need_env GITHUB_OUTPUT
  need_env RUNNER_TEMP
  local out
  find_airlock
  out=$(absolute "${INPUT_OUT:-$RUNNER_TEMP/airlock-out}")
  local work
  work=$(mktemp -d "$RUNNER_TEMP/airlock-gate.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf -- '$work'" EXIT
  local args=(gate "$out") x
  if [ -n "${INPUT_PUBKEY:-}" ]; then
    if [[ $INPUT_PUBKEY == *"-----BEGIN"* ]]; then
      printf '%s\n' "$INPUT_PUBKEY" >"$work/pubkey.pem"
      args+=(--pubkey "$work/pubkey.pem")
    else
      args+=(--pubkey "$INPUT_PUBKEY")
    fi
  else
    warning "gate: no pubkey input: the run's signature is not checked, so nothing ties OUT to the run (docs/gate.md)"
  fi
  split_words "${INPUT_POLICY:-}"
  for x in "${SPLIT[@]+"${SPLIT[@]}"}"; do args+=(--policy "$x"); done
  split_lines "${INPUT_APPROVALS:-}"
  for x in "${SPLIT[@]+"${SPLIT[@]}"}"; do args+=(--approvals "$x"); done
  split_lines "${INPUT_EXTRA_ARGS:-}"
  for x in "${SPLIT[@]+"${SPLIT[@]}"}"; do args+=("$x"); done

  local log=$work/gate.log
  if [ ! -f "$out/report.json" ]; then
    # A skipped or broken agent job must not look like a pass: say so and fail.
    printf 'airlock gate: %s holds no report.json: the run did not produce an output (was the agent job skipped, cancelled, or did its artifact upload fail?)\n' "$out" >"$log"
    RC=2
  else
    # The gate prints paths and messages the task chose: no workflow command may come from them.
    local token
    token=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    printf '::stop-commands::%s\n' "$token"
    run_forwarding "$BIN" "${args[@]}" >"$log" 2>&1
    cat "$log"
    printf '::%s::\n' "$token"
  fi
  local verdict
  case $RC in
    0) verdict=passed ;;
    1) verdict=failed ;;
    3) verdict=needs-approval ;;
    *) verdict=unusable ;;
  esac
  if [ "$RC" -eq 2 ] && [ ! -f "$out/report.json" ]; then
    error "$(cat "$log")"
  fi
  gate_summary "$RC" "$verdict" "$out" "$log"
  set_output gate-exit-code "$RC"
  set_output verdict "$verdict"
  set_output out-dir "$out"
  printf 'airlock-action: gate-exit-code=%s verdict=%s\n' "$RC" "$verdict"
  exit "$RC"
}

# --- cleanup ----------------------------------------------------------------

cmd_cleanup() {
  local dir=${INPUT_KEY_DIR:-}
  [ -n "$dir" ] || return 0
  # Only the directory `run` made: never remove anything else a caller might pass.
  case $(basename -- "$dir") in
    airlock-key.*) rm -rf -- "$dir" ;;
    *) die "cleanup: $dir is not a key directory made by this action" ;;
  esac
}

# --- main -------------------------------------------------------------------

[ $# -ge 1 ] || die "usage: airlock-action.sh install|run|gate|outputs OUT CODE|cleanup"
sub=$1
shift
case $sub in
  install) cmd_install ;;
  run) cmd_run ;;
  gate) cmd_gate ;;
  outputs) cmd_outputs "$@" ;;
  cleanup) cmd_cleanup ;;
  *) die "unknown subcommand \"$sub\" (install, run, gate, outputs, cleanup)" ;;
esac
