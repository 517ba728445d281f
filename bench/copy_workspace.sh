#!/usr/bin/env bash
# Workspace copy cost: airlock's volume mode against `docker cp` on the same tree.
#
#   bench/copy_workspace.sh [ROUNDS]     rounds (default 5)
#
# Builds a deterministic tree of DIRS x FILES files (default 200 x 100 = 20,000 files) with
# sizes between 2 KiB and 18 KiB (mean ~10 KiB, ~200 MB in all); the content is an AES-128-CTR
# keystream with a fixed key, so every machine gets the same bytes. Then, per round, the three
# measurements below, interleaved; the order rotates from round to round (so none always
# follows the same one) and an untimed `sync` precedes each:
#   airlock    airlock run --quiet --workspace TREE --out OUT -- true
#              wall time, and from OUT/report.json the steps resolve (the workspace scan),
#              copy-in (hash + tar stream into the volume), collect (tar stream back out,
#              hash, diff) and the run's duration_ms
#   docker     docker volume create + docker create -v VOL:/workspace IMAGE true, then
#              docker cp TREE/. C:/workspace (in) and docker cp C:/workspace OUTDIR (out),
#              then docker rm + docker volume rm; each part timed
#   airlock-1% as airlock, but the task appends a byte to 1% of the files (one per
#              directory), so collect has to write those files to OUT/changes/files
# Prints medians (and p10/p90) in ms.
#
# Environment: AIRLOCK, DOCKER, IMAGE as in run_overhead.sh; DIRS, FILES to resize the tree;
# KEEP_TREE=DIR to generate the tree once into DIR and reuse it on later runs (never deleted);
# SETTLE=SECONDS to wait (untimed) before each measurement. Every measurement deletes tens of
# thousands of files (volume, output); on ext4 without a journal, creating files soon after
# that is slow (the inode allocator scans past every inode deleted within
# vm.dirty_expire_centisecs, 30 s by default, plus 5 min while its inode table block is
# dirty), so back-to-back rounds (SETTLE=0) measure that too. SETTLE=330 avoided it on the
# machine of docs/bench.md (SETTLE=35 did not); it makes a run take about 1.5 hours.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${1:-5}
case $ROUNDS in '' | *[!0-9]*) bench_die "ROUNDS must be a positive integer (got '$ROUNDS')" ;; esac
[ "$ROUNDS" -ge 1 ] || bench_die "ROUNDS must be at least 1"
IMAGE=${IMAGE:-airlock/agent-base:latest}
DIRS=${DIRS:-200}
FILES=${FILES:-100}
SETTLE=${SETTLE:-0}
case $SETTLE in '' | *[!0-9]*) bench_die "SETTLE must be a whole number of seconds" ;; esac

bench_need jq awk sort date perl openssl
TMP=$(mktemp -d "${TMPDIR:-/tmp}/airlock-bench-copy.XXXXXX")
PREFIX=airlock-bench-$$-
DOCKER_BIN=

cleanup() {
    local ids
    if [ -n "$DOCKER_BIN" ]; then
        ids=$("$DOCKER_BIN" ps -aq --filter "name=$PREFIX" 2>/dev/null || true)
        # shellcheck disable=SC2086 # word splitting of the id list is intended
        [ -z "$ids" ] || "$DOCKER_BIN" rm -f $ids >/dev/null 2>&1 || true
        ids=$("$DOCKER_BIN" volume ls -q --filter "name=$PREFIX" 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -z "$ids" ] || "$DOCKER_BIN" volume rm -f $ids >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_pick_tools "$TMP"
"$DOCKER_BIN" image inspect "$IMAGE" >/dev/null 2>&1 || bench_die "image $IMAGE is missing"
mkdir -p "$TMP/data"

# gen_tree DIR: the deterministic tree; prints "files bytes sha256".
gen_tree() {
    local dir=$1
    mkdir -p "$dir"
    # The keystream is endless; perl closes the pipe when done and openssl dies of SIGPIPE.
    { openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f \
        -iv 00000000000000000000000000000000 -in /dev/zero 2>/dev/null || true; } |
        perl -e '
            use strict; use warnings; use Digest::SHA;
            my ($root, $ndirs, $nfiles) = @ARGV;
            binmode STDIN;
            my $sha = Digest::SHA->new(256);
            my ($count, $bytes) = (0, 0);
            sub take { my $n = shift; my $buf = "";
                while (length($buf) < $n) {
                    my $got = read(STDIN, $buf, $n - length($buf), length($buf));
                    die "keystream ended\n" unless $got; }
                return $buf; }
            for my $d (0 .. $ndirs - 1) {
                my $dd = sprintf("%s/d%03d", $root, $d);
                mkdir $dd or die "mkdir $dd: $!\n";
                for my $f (0 .. $nfiles - 1) {
                    my $size = 2048 + unpack("n", take(2)) % 16385;
                    my $data = take($size);
                    my $name = sprintf("d%03d/f%03d.bin", $d, $f);
                    open(my $fh, ">:raw", "$root/$name") or die "$name: $!\n";
                    print $fh $data; close($fh) or die "$name: $!\n";
                    $sha->add($name, "\0", $data);
                    $count++; $bytes += $size;
                }
            }
            print "$count $bytes ", $sha->hexdigest, "\n";
        ' "$dir" "$DIRS" "$FILES"
}

if [ -n "${KEEP_TREE:-}" ]; then
    TREE=$KEEP_TREE
    if [ ! -f "$TREE/.bench-tree" ]; then
        rm -rf "$TREE"
        gen_tree "$TREE" >"$TMP/tree.info"
        cp "$TMP/tree.info" "$TREE/.bench-tree"
    fi
    cp "$TREE/.bench-tree" "$TMP/tree.info"
else
    TREE=$TMP/tree
    printf 'generating the tree...\n' >&2
    gen_tree "$TREE" >"$TMP/tree.info"
fi
read -r TREE_FILES TREE_BYTES TREE_SHA <"$TMP/tree.info"
MODIFIED=$DIRS # one file per directory: 1% with the default 100 files a directory

OUT=$TMP/out
SEQ=0

record() { printf '%s\n' "$2" >>"$TMP/data/$1"; }

# run_airlock KIND(airlock|airlock-1%)
run_airlock() {
    local kind=$1 t0 t1 rc=0 want_mod=0 step cmd=(true)
    if [ "$kind" = airlock-1% ]; then
        # shellcheck disable=SC2016 # expanded by the task's shell, not this one
        cmd=(sh -c 'for d in /workspace/d*; do printf x >>"$d/f000.bin"; done')
        want_mod=$MODIFIED
    fi
    rm -rf "$OUT"
    t0=$(bench_now_ns)
    "$AIRLOCK_BIN" run --quiet --image "$IMAGE" --workspace "$TREE" --out "$OUT" -- "${cmd[@]}" \
        >/dev/null 2>"$TMP/airlock.err" || rc=$?
    t1=$(bench_now_ns)
    if [ "$rc" -ne 0 ]; then
        cat "$TMP/airlock.err" >&2
        bench_die "airlock run ($kind) exited $rc"
    fi
    local mod
    mod=$(jq -r '"\(.changes.modified) \(.changes.added) \(.changes.deleted)"' "$OUT/report.json")
    [ "$mod" = "$want_mod 0 0" ] ||
        bench_die "$kind: expected $want_mod modified, 0 added, 0 deleted; report says $mod"
    record "$kind.wall" "$(bench_ms "$t0" "$t1")"
    record "$kind.duration_ms" "$(jq -r '.duration_ms' "$OUT/report.json")"
    for step in resolve create copy-in start-wait collect teardown; do
        record "$kind.$step" "$(bench_step_ms "$OUT/report.json" "$step")"
    done
    rm -rf "$OUT"
}

run_docker() {
    local t0 t1 t2 t3 t4 n
    SEQ=$((SEQ + 1))
    local c=$PREFIX$SEQ vol=${PREFIX}vol-$SEQ outd=$TMP/docker-out
    rm -rf "$outd"
    mkdir -p "$outd"
    t0=$(bench_now_ns)
    "$DOCKER_BIN" volume create "$vol" >/dev/null
    "$DOCKER_BIN" create --name "$c" --network none -v "$vol:/workspace" "$IMAGE" true >/dev/null
    t1=$(bench_now_ns)
    "$DOCKER_BIN" cp "$TREE/." "$c:/workspace"
    t2=$(bench_now_ns)
    "$DOCKER_BIN" cp "$c:/workspace" "$outd"
    t3=$(bench_now_ns)
    "$DOCKER_BIN" rm -f "$c" >/dev/null
    "$DOCKER_BIN" volume rm "$vol" >/dev/null
    t4=$(bench_now_ns)
    n=$(find "$outd/workspace" -type f -name 'f*.bin' | wc -l)
    [ "$n" -eq "$TREE_FILES" ] || bench_die "docker cp out: expected $TREE_FILES files, got $n"
    rm -rf "$outd"
    record docker.setup "$(bench_ms "$t0" "$t1")"
    record docker.cp-in "$(bench_ms "$t1" "$t2")"
    record docker.cp-out "$(bench_ms "$t2" "$t3")"
    record docker.teardown "$(bench_ms "$t3" "$t4")"
    record docker.total "$(bench_ms "$t0" "$t4")"
}

bench_describe_tools
printf 'image:    %s\n' "$IMAGE"
printf 'tree:     %s files in %s dirs, %s bytes (%.1f MB), sha256 %s\n' "$TREE_FILES" "$DIRS" \
    "$TREE_BYTES" "$(awk -v b="$TREE_BYTES" 'BEGIN { print b / 1e6 }')" "$TREE_SHA"
printf 'rounds:   %s, interleaved airlock / docker / airlock-1%% in rotating order (%s files modified)\n' \
    "$ROUNDS" "$MODIFIED"
printf 'settle:   %s s (untimed) before each measurement\n\n' "$SETTLE"

# One unrecorded round first, so no side pays for a cold page cache or image layer.
printf 'warm-up round...\n' >&2
run_airlock airlock
sync
run_docker
sync
rm -rf "$TMP/data" && mkdir -p "$TMP/data"
KINDS=(airlock docker airlock-1%)
for ((i = 1; i <= ROUNDS; i++)); do
    printf 'round %d/%d\n' "$i" "$ROUNDS" >&2
    for ((k = 0; k < 3; k++)); do
        kind=${KINDS[$(((i - 1 + k) % 3))]}
        # Untimed: flush the previous measurement's writes (and, on a filesystem mounted
        # with `discard`, the discards of its deletions) so they do not land on the next one.
        sleep "$SETTLE"
        sync
        if [ "$kind" = docker ]; then run_docker; else run_airlock "$kind"; fi
    done
done

row() { # row LABEL FILE
    local med p10 p90 n
    read -r med p10 p90 _ _ n < <(bench_stats "$TMP/data/$2")
    printf '  %-34s %9s %9s %9s   (n=%s)\n' "$1" "$med" "$p10" "$p90" "$n"
}
printf '%-36s %9s %9s %9s\n' 'ms' median p10 p90
printf 'airlock, task: true\n'
row 'resolve (workspace scan)' airlock.resolve
row 'create' airlock.create
row 'copy-in' airlock.copy-in
row 'start-wait' airlock.start-wait
row 'collect (copy-out, 0 changed)' airlock.collect
row 'teardown' airlock.teardown
row 'report duration_ms' airlock.duration_ms
row 'wall' airlock.wall
printf 'airlock, task modifies %s files\n' "$MODIFIED"
row 'copy-in' airlock-1%.copy-in
row "collect (copy-out, $MODIFIED changed)" airlock-1%.collect
row 'report duration_ms' airlock-1%.duration_ms
row 'wall' airlock-1%.wall
printf 'docker cp\n'
row 'volume create + container create' docker.setup
row 'docker cp TREE/. c:/workspace' docker.cp-in
row 'docker cp c:/workspace OUTDIR' docker.cp-out
row 'rm container + volume' docker.teardown
row 'total' docker.total

m() { bench_median "$TMP/data/$1"; }
printf '\nratios of medians (airlock / docker cp):\n'
printf '  copy-in  / cp in:           %s\n' "$(bench_ratio "$(m airlock.copy-in)" "$(m docker.cp-in)")"
printf '  collect  / cp out:          %s  (0 changed)\n' \
    "$(bench_ratio "$(m airlock.collect)" "$(m docker.cp-out)")"
printf '  collect  / cp out:          %s  (%s changed)\n' \
    "$(bench_ratio "$(m airlock-1%.collect)" "$(m docker.cp-out)")" "$MODIFIED"
printf '  run wall / docker total:    %s\n' "$(bench_ratio "$(m airlock.wall)" "$(m docker.total)")"
printf '\nload at end: %s\n' "$(bench_load)"
