#!/usr/bin/env bash
# The script of the GitLab CI jobs in airlock.gitlab-ci.yml (docs/gitlab.md).
#
#   airlock-job.sh run    airlock run on $CI_PROJECT_DIR (volume mode), make sure the GitLab
#                         reports exist, exit with airlock's code
#   airlock-job.sh gate   airlock gate on the run's output, exit with the gate's code
#
# Configured by variables (CI/CD variables, or the template's defaults):
#   AIRLOCK_COMMAND       run: the task, a shell command run with `sh -c` in the container (required)
#   AIRLOCK_POLICY        policy layers, in order (default: standard); the gate uses the same
#   AIRLOCK_IMAGE         run: --image (default: airlock's, airlock/agent-base:latest)
#   AIRLOCK_ARTIFACTS     run: paths or globs to keep (--artifact each)
#   AIRLOCK_APPROVALS     run: approval files (--approvals each)
#   AIRLOCK_SIGNING_KEY   run: Ed25519 key file (a file-type CI/CD variable); signs OUT
#   AIRLOCK_OUT           output directory (default: airlock-out)
#   AIRLOCK_EXTRA_ARGS    run: more `airlock run` options
#   AIRLOCK_ON_PENDING_APPROVAL
#                         run: `defer` (default): when the only reason airlock refused (126) is a
#                         change to a protected path awaiting an approval, exit 0 and leave the
#                         decision to the gate job (which answers 3); `fail`: exit 126
#   AIRLOCK_PUBKEY        gate: public key file (--pubkey)
#   AIRLOCK_GATE_APPROVALS
#                         gate: approval files (--approvals each), e.g. bound to the report
#   AIRLOCK_WORKSPACE     run: the directory given to the task (default: $CI_PROJECT_DIR)
#   AIRLOCK_BIN           the airlock binary (default: airlock on PATH)
# List variables are split like shell words ('...' and "..." quote, a backslash escapes), but
# nothing in them is expanded: globs reach airlock as they are.
set -euo pipefail
# bash 5.2 puts the matched text where a replacement has "&"; the escapes below want "&" itself.
shopt -u patsub_replacement 2>/dev/null || true

PROG=airlock-job
AIRLOCK_BIN=${AIRLOCK_BIN:-airlock}
OUT=${AIRLOCK_OUT:-airlock-out}

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  say "error: $*"
  exit 2
}

# WORDS=(the words of $1), split as described above.
split_words() {
  WORDS=()
  local value=$1 words
  [[ $value =~ [^[:space:]] ]] || return 0
  if ! words=$(printf '%s\n' "$value" | xargs printf '%s\n' 2>&1); then
    die "cannot split \"$value\" into words ($words); check its quotes"
  fi
  mapfile -t WORDS <<<"$words"
}

# Adds "FLAG word" to ARGS for every word of $2.
add_each() {
  local flag=$1 w
  split_words "$2"
  for w in "${WORDS[@]}"; do ARGS+=("$flag" "$w"); done
}

# The airlock command line, as a shell would take it.
show_command() {
  local line
  line=$(printf '%q ' "$AIRLOCK_BIN" "${ARGS[@]}")
  say "${line% }"
}

policy_args() {
  add_each --policy "${AIRLOCK_POLICY:-standard}"
}

# What airlock's exit code means (README "Exit codes").
meaning() {
  case $1 in
  0) echo "the task succeeded" ;;
  2) echo "usage or configuration error; nothing was started" ;;
  124) echo "the task hit its timeout" ;;
  125) echo "engine or internal error (the template retries the job)" ;;
  126) echo "refused by the policy, or an approval is missing" ;;
  127) echo "the command is not in the image" ;;
  130) echo "airlock was interrupted" ;;
  137) echo "the task was killed (OOM or SIGKILL)" ;;
  *) echo "the task's own exit code" ;;
  esac
}

# Text made safe for XML and JSON: printable ASCII, tab and newline only.
sanitize() { LC_ALL=C tr '\200-\377' '?' | LC_ALL=C tr -d '\000-\010\013-\037\177'; }
xml_escape() {
  local s=$1
  s=${s//&/&amp;}
  s=${s//</&lt;}
  s=${s//>/&gt;}
  s=${s//\"/&quot;}
  printf '%s' "$s"
}
json_escape() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\n'/\\n}
  printf '%s' "$s"
}

# Writes junit.xml, codequality.json and summary.md for a run that left no report.json (refused
# before it started, or a usage error), so that the job's reports show why.
write_fallback_reports() {
  local rc=$1 errlog=$2 why detail message fingerprint
  why=$(meaning "$rc")
  # airlock's last own line says what went wrong; the task never ran, so the lines are airlock's.
  detail=$(grep '^airlock: ' "$errlog" 2>/dev/null | tail -n 1 | cut -c1-2000 | sanitize || true)
  message="airlock run exited $rc ($why)${detail:+: ${detail#airlock: }}"
  fingerprint=$(printf 'airlock-run %s %s' "$rc" "$message" | sha256sum | cut -c1-64)
  mkdir -p "$OUT"
  {
    printf '<?xml version="1.0" encoding="UTF-8"?>\n'
    printf '<testsuites name="airlock" tests="1" failures="1" errors="0" skipped="0">\n'
    printf '  <testsuite name="airlock" tests="1" failures="1" errors="0" skipped="0">\n'
    printf '    <testcase classname="airlock.run" name="run" time="0">\n'
    printf '      <failure message="%s" type="airlock.run">%s</failure>\n' \
      "$(xml_escape "$message")" "$(xml_escape "$(tail -n 40 "$errlog" 2>/dev/null | sanitize)")"
    printf '    </testcase>\n  </testsuite>\n</testsuites>\n'
  } >"$OUT/junit.xml"
  {
    printf '[\n  {\n    "type": "issue",\n    "check_name": "airlock-run",\n'
    printf '    "description": "%s",\n' "$(json_escape "$message")"
    printf '    "categories": ["Security"],\n    "fingerprint": "%s",\n' "$fingerprint"
    printf '    "severity": "critical",\n'
    printf '    "location": {"path": ".airlock/report.json", "lines": {"begin": 1}}\n  }\n]\n'
  } >"$OUT/codequality.json"
  # An indented code block: Markdown shows the message as it is, whatever it holds.
  printf '# airlock: ❌ no report\n\n    %s\n' "$message" >"$OUT/summary.md"
  say "no $OUT/report.json: wrote junit.xml, codequality.json and summary.md saying why"
}

# The renderings airlock run writes itself; any that is missing is rendered now, unless OUT is
# signed (a file added after signing is one the gate refuses).
render_reports() {
  local format file
  for format in junit:junit.xml codequality:codequality.json md:summary.md; do
    file=${format#*:}
    [ -e "$OUT/$file" ] && continue
    if [ -e "$OUT/report.dsse.json" ]; then
      say "warning: the signed $OUT lacks $file; not adding it (the gate would refuse an unsigned file)"
      continue
    fi
    "$AIRLOCK_BIN" report "$OUT" --format "${format%%:*}" --output "$OUT/$file" ||
      say "warning: airlock report could not render $OUT/$file"
  done
}

# The task's changes wait for an approval of a protected path: airlock refused (126) after the
# task ran, and says why in result.needs_approval (a string; the verdict's is a bool). report.json
# is indented by two, so result's members are at four; should that change, this finds nothing
# and the job keeps airlock's 126 (tests/ci/test_gitlab_template.sh notices).
pending_approval() {
  grep -Eq '^    "needs_approval": "' "$OUT/report.json" 2>/dev/null
}

cmd_run() {
  [ -n "${AIRLOCK_COMMAND:-}" ] || die "AIRLOCK_COMMAND is empty: set it to the task's shell command (a CI/CD variable, or variables: in the job)"
  case ${AIRLOCK_ON_PENDING_APPROVAL:-defer} in
  defer | fail) ;;
  *) die "AIRLOCK_ON_PENDING_APPROVAL is \"$AIRLOCK_ON_PENDING_APPROVAL\"; use defer or fail" ;;
  esac
  local workspace=${AIRLOCK_WORKSPACE:-${CI_PROJECT_DIR:-.}}
  # Volume mode: the workspace is copied into a volume through the Docker API, which works with
  # a remote engine such as the docker:dind service; a bind mount would name a path on the
  # engine's host, where the job's checkout is not.
  ARGS=(run --workspace "$workspace" --workspace-mode volume --out "$OUT" --no-prompt)
  policy_args
  if [ -n "${AIRLOCK_IMAGE:-}" ]; then ARGS+=(--image "$AIRLOCK_IMAGE"); fi
  add_each --artifact "${AIRLOCK_ARTIFACTS:-}"
  add_each --approvals "${AIRLOCK_APPROVALS:-}"
  if [ -n "${AIRLOCK_SIGNING_KEY:-}" ]; then ARGS+=(--sign-key "$AIRLOCK_SIGNING_KEY"); fi
  split_words "${AIRLOCK_EXTRA_ARGS:-}"
  ARGS+=("${WORDS[@]}")
  ARGS+=(-- sh -c "$AIRLOCK_COMMAND")

  show_command
  local errlog rc
  errlog=$(mktemp "${TMPDIR:-/tmp}/airlock-job.XXXXXX")
  # airlock's stderr goes to the job log as it comes, and through tee to a file for the
  # fallback reports; its stdout goes straight to the job log (fd 3).
  exec 3>&1
  if "$AIRLOCK_BIN" "${ARGS[@]}" 2>&1 1>&3 3>&- </dev/null | tee "$errlog" >&2; then
    rc=0
  else
    rc=${PIPESTATUS[0]}
  fi
  exec 3>&-

  if [ -f "$OUT/report.json" ]; then
    render_reports
  else
    write_fallback_reports "$rc" "$errlog"
  fi
  rm -f "$errlog"
  say "airlock run exited $rc: $(meaning "$rc"); reports in $OUT/ (summary.md, junit.xml, codequality.json, report.json)"

  if [ "$rc" -eq 126 ] && [ "${AIRLOCK_ON_PENDING_APPROVAL:-defer}" = defer ] && pending_approval; then
    say "the task's changes touch protected paths and wait for an approval; the gate job answers 3 (needs approval) until an approver gives one (docs/gitlab.md); this job passes"
    exit 0
  fi
  exit "$rc"
}

cmd_gate() {
  ARGS=(gate "$OUT")
  policy_args
  if [ -n "${AIRLOCK_PUBKEY:-}" ]; then
    ARGS+=(--pubkey "$AIRLOCK_PUBKEY")
  else
    say "warning: AIRLOCK_PUBKEY is not set: the signature is not checked (and a policy that requires one fails)"
  fi
  add_each --approvals "${AIRLOCK_GATE_APPROVALS:-}"
  show_command
  local rc=0
  "$AIRLOCK_BIN" "${ARGS[@]}" </dev/null || rc=$?
  case $rc in
  0) say "gate passed" ;;
  1) say "gate failed: a check the policy enforces failed (see above)" ;;
  2) say "gate could not use $OUT (missing or unreadable; did the run job pass its artifacts?)" ;;
  3)
    say "gate needs an approval (ASK lines above). An approver downloads this job's artifacts and runs"
    say "  airlock approve --key KEY --capability CAP --for-report $OUT --out approval.json"
    say "then this job is run again with AIRLOCK_GATE_APPROVALS naming approval.json (docs/gitlab.md)"
    ;;
  *) say "airlock gate exited $rc" ;;
  esac
  exit "$rc"
}

case ${1:-} in
run) cmd_run ;;
gate) cmd_gate ;;
*) die "usage: airlock-job.sh run|gate (got \"${1:-}\")" ;;
esac
