#!/usr/bin/env bash
# The pre-push hook (ci/pre-push) in a real push: a temporary repository with the hook installed
# and a bare remote. A passing gate lets the push through; a protected change (the gate answers
# 3) and a failing task block it and leave the remote's ref as it was; with nothing configured
# the push goes through with a note; --no-verify bypasses the hook; the refs on stdin never make
# it hang. Runs against the engine the environment names (DOCKER_HOST or the local socket).
#
# usage: test_pre_push.sh AIRLOCK_BINARY
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 AIRLOCK_BINARY" >&2
  exit 2
fi
AIRLOCK=$(readlink -f "$1")
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HOOK=$ROOT/ci/pre-push
IMAGE=airlock/agent-base:latest
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
expect_eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected: $2" "actual:   $3"; fi
}
expect_in() {
  if grep -qF -- "$2" "$3"; then ok "$1"; else bad "$1" "\"$2\" not in the output:" "$(tail -n 30 "$3")"; fi
}
fatal() {
  printf 'FATAL %s\n' "$*"
  exit 1
}

for tool in git docker timeout script mkfifo; do
  command -v "$tool" >/dev/null 2>&1 || fatal "$tool not found (ci/setup.sh deps installs it)"
done
[ -x "$AIRLOCK" ] || fatal "$AIRLOCK is not an executable airlock binary"
[ -x "$HOOK" ] || fatal "$HOOK is not executable (git runs hooks only when they are)"
docker image inspect "$IMAGE" >/dev/null 2>&1 ||
  fatal "$IMAGE is not on the engine (${DOCKER_HOST:-unix:///var/run/docker.sock}): ci/setup.sh images"

T=$(mktemp -d /tmp/airlock-pre-push-test.XXXXXX)
# The ids of the runs the hook made, from what airlock printed ("airlock: run ID: ...").
run_ids() {
  cat "$T"/*.log 2>/dev/null | grep -o 'airlock: run [0-9]*t[0-9]*-[0-9a-f]*' | cut -d' ' -f3 | sort -u
}
cleanup() {
  local rc=$? id
  trap - EXIT INT TERM
  # Whatever a failed test left on the (shared) engine: only our runs, by their ids.
  for id in $(run_ids); do "$AIRLOCK" clean --run "$id" >/dev/null 2>&1 || true; done
  rm -rf "$T"
  if [ -e "$T" ]; then
    echo "FAIL  could not remove $T"
    rc=1
  fi
  printf '%s: %d checks, %d failed, %ds\n' "$(basename "$0")" "$CHECKS" "$FAILS" "$(($(date +%s) - T0))"
  if [ "$rc" -eq 0 ] && [ "$FAILS" -gt 0 ]; then rc=1; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A git of our own: no global or system configuration, no terminal prompts.
export HOME=$T/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=dev GIT_AUTHOR_EMAIL=dev@example.invalid
export GIT_COMMITTER_NAME=dev GIT_COMMITTER_EMAIL=dev@example.invalid
unset GITHUB_ACTIONS GITLAB_CI GIT_DIR GIT_WORK_TREE
unset AIRLOCK_PRE_PUSH_COMMAND AIRLOCK_PRE_PUSH_POLICY AIRLOCK_PRE_PUSH_SIGNKEY AIRLOCK_PRE_PUSH_PUBKEY \
  AIRLOCK_PRE_PUSH_ARGS AIRLOCK_PRE_PUSH_BIN AIRLOCK_PRE_PUSH_OUT AIRLOCK_PRE_PUSH_KEEP
mkdir -p "$HOME" "$T/keys"
"$AIRLOCK" keygen --out "$T/keys/dev" >/dev/null || fatal "airlock keygen failed"

REMOTE=$T/remote.git
WORK=$T/work
git init -q --bare -b main "$REMOTE"
git init -q -b main "$WORK"
cd "$WORK"
printf 'hello\n' >README.md
mkdir -p .github/workflows
printf 'on: push\n' >.github/workflows/ci.yml
git add -A
git commit -qm init
git remote add origin "$REMOTE"
git push -q origin main 2>/dev/null # before the hook is installed
ln -s "$HOOK" .git/hooks/pre-push  # the documented install, with an absolute target here
git config airlock.bin "$AIRLOCK"
git config airlock.policy standard
git config airlock.signkey "$T/keys/dev.key" # the gate's key: dev.pub beside it
git config airlock.args "--pull never --timeout '5m'"
git config airlock.keep 2

remote_head() { git --git-dir="$REMOTE" rev-parse -q --verify refs/heads/main || echo none; }
runs() { find "$WORK/.airlock/pre-push" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | LC_ALL=C sort; }
newest_run() { runs | tail -n 1; }
commit() {
  printf '%s\n' "$1" >>README.md
  git commit -qam "$1"
}
# push ARGS...: git push with a bound on time (a hanging hook fails the test), output in LOG.
N=0
push() {
  N=$((N + 1))
  LOG=$T/push-$N.log
  RC=0
  timeout 300 git push "$@" >"$LOG" 2>&1 </dev/null || RC=$?
}

# --- 1. the task passes, the gate passes: the push goes through -----------------------------

echo "--- 1: gate passes ($(($(date +%s) - T0))s)"
git config airlock.command "echo hi > out.txt"
commit one
push origin main
expect_eq "pass: git push exit code" 0 "$RC"
expect_eq "pass: the remote has the commit" "$(git rev-parse HEAD)" "$(remote_head)"
expect_in "pass: the hook says the gate passed" "airlock pre-push: gate passed (task exit 0); output in $WORK/.airlock/pre-push/" "$LOG"
expect_in "pass: the gate checked the signature" "PASS  signature" "$LOG"
RUN=$(newest_run)
expect_eq "pass: workspace mode" '"mode": "volume",' "$(grep -o '"mode": "volume",' "$RUN/report.json" | head -n 1)"
expect_eq "pass: the task ran (its file is in the output)" "hi" "$(cat "$RUN/changes/files/out.txt" 2>&1)"
expect_eq "pass: the checkout is untouched" "?? .airlock/" "$(git status --porcelain | tr '\n' ' ' | sed 's/ $//')"

# --- 2. a protected change: the gate answers 3, the push is blocked -------------------------

echo "--- 2: protected change ($(($(date +%s) - T0))s)"
before=$(remote_head)
git config airlock.command "echo 'on: pull_request_target' > .github/workflows/x.yml"
commit two
push origin main
expect_eq "protected: git push fails" 1 "$RC"
expect_eq "protected: the remote ref is unchanged" "$before" "$(remote_head)"
expect_in "protected: the gate asked" "ASK   protected-change" "$LOG"
expect_in "protected: the hook says an approval is needed" "approval needed" "$LOG"
expect_in "protected: the hook says how to push anyway" "git push --no-verify" "$LOG"
expect_in "protected: the hook says where the output is" "output in $WORK/.airlock/pre-push/" "$LOG"
expect_in "protected: git reports the hook" "failed to push some refs" "$LOG"
expect_eq "protected: the checkout is untouched" "no" "$([ -e .github/workflows/x.yml ] && echo yes || echo no)"

# --- 3. --no-verify bypasses the hook -------------------------------------------------------

echo "--- 3: --no-verify ($(($(date +%s) - T0))s)"
count=$(runs | wc -l)
push --no-verify origin main
expect_eq "no-verify: git push exit code" 0 "$RC"
expect_eq "no-verify: the remote has the commit" "$(git rev-parse HEAD)" "$(remote_head)"
expect_eq "no-verify: no run was made" "$count" "$(runs | wc -l)"

# --- 4. the environment wins over git config; a failing task blocks -------------------------

echo "--- 4: failing task from the environment ($(($(date +%s) - T0))s)"
commit four
before=$(remote_head)
AIRLOCK_PRE_PUSH_COMMAND='echo failing-task >&2; exit 3' push origin main
expect_eq "failing: git push fails" 1 "$RC"
expect_eq "failing: the remote ref is unchanged" "$before" "$(remote_head)"
expect_in "failing: the task's output is shown" "failing-task" "$LOG"
expect_in "failing: the gate failed on the task" "FAIL  task-failed" "$LOG"
expect_in "failing: the hook says so" "gate failed (task exit 3)" "$LOG"
expect_eq "keep: only the newest 2 runs are kept" 2 "$(runs | wc -l)"

# --- 5. nothing configured: the push goes through with a note --------------------------------

echo "--- 5: nothing configured ($(($(date +%s) - T0))s)"
git config --unset airlock.command
count=$(runs | wc -l)
push origin main
expect_eq "unconfigured: git push exit code" 0 "$RC"
expect_eq "unconfigured: the remote has the commit" "$(git rev-parse HEAD)" "$(remote_head)"
expect_in "unconfigured: the hook says it did not check" "no task configured, not checking this push" "$LOG"
expect_eq "unconfigured: no run was made" "$count" "$(runs | wc -l)"

# --- 6. stdin: deletions only, refs by hand, a hook run with no stdin at all ----------------

echo "--- 6: stdin ($(($(date +%s) - T0))s)"
git config airlock.command "true"
git push -q --no-verify origin main:refs/heads/topic 2>/dev/null
count=$(runs | wc -l)
push origin :refs/heads/topic
expect_eq "delete: git push exit code" 0 "$RC"
expect_in "delete: the hook does not run the task" "only deleting refs; nothing to check" "$LOG"
expect_eq "delete: the branch is gone" none \
  "$(git --git-dir="$REMOTE" rev-parse -q --verify refs/heads/topic || echo none)"
expect_eq "delete: no run was made" "$count" "$(runs | wc -l)"
# Run by hand, stdin closed or a terminal: the hook does not wait for refs.
RC=0
timeout 120 "$HOOK" origin "$REMOTE" <&- >"$T/by-hand.log" 2>&1 || RC=$?
expect_eq "by hand, stdin closed: exit code" 0 "$RC"
expect_in "by hand, stdin closed: it ran the task" "gate passed" "$T/by-hand.log"
RC=0
printf 'refs/heads/main %s refs/heads/main %s\n' "$(git rev-parse HEAD)" "$(remote_head)" |
  timeout 120 "$HOOK" origin "$REMOTE" >"$T/piped.log" 2>&1 || RC=$?
expect_eq "refs on a pipe: exit code" 0 "$RC"
# `script` (bsdutils) gives the hook a terminal on stdin, fed from a FIFO that stays open and
# never sends anything: were the hook to wait for refs there, timeout would end it (exit 124).
mkfifo "$T/silent"
exec 7<>"$T/silent"
RC=0
timeout 120 script -qec "$HOOK origin $REMOTE" /dev/null >"$T/tty.log" 2>&1 <&7 || RC=$?
exec 7>&-
expect_eq "stdin a terminal: exit code" 0 "$RC"
expect_in "stdin a terminal: it ran the task" "gate passed" "$T/tty.log"

# --- 7. core.hooksPath install ---------------------------------------------------------------

echo "--- 7: core.hooksPath ($(($(date +%s) - T0))s)"
rm .git/hooks/pre-push
git config core.hooksPath "$ROOT/ci"
git config airlock.command "echo hi > out.txt"
commit seven
push origin main
expect_eq "hooksPath: git push exit code" 0 "$RC"
expect_in "hooksPath: the hook ran" "gate passed" "$LOG"
expect_eq "hooksPath: the remote has the commit" "$(git rev-parse HEAD)" "$(remote_head)"

# --- nothing left on the engine --------------------------------------------------------------

left=""
ids=$(run_ids)
for id in $ids; do
  left+=$(docker ps -aq --filter "label=io.airlock.run=$id")
  left+=$(docker volume ls -q --filter "label=io.airlock.run=$id")
  left+=$(docker network ls -q --filter "label=io.airlock.run=$id")
done
expect_eq "nothing labelled with our runs' io.airlock.run remains" "" "$left"
expect_eq "runs the hook made (pushes 1, 2, 4, 7 and 2-3 by hand)" yes \
  "$([ "$(wc -w <<<"$ids")" -ge 6 ] && echo yes || echo no)"
if [ "$FAILS" -gt 0 ]; then
  for f in "$T"/push-*.log; do
    echo "=== $f"
    tail -n 40 "$f"
  done
fi
