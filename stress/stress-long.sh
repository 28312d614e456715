#!/bin/sh
# stress-long.sh BUILD — `make stress-long`: the long stress/validate runs
# of issue 3 (docs/benchmarks.md, "Views and the stress harness"), each in
# a fresh directory under ${TMPDIR:-/tmp}:
#
#   1. 64 readers + 8 committers for 10 s (default view readers):
#      zero violations;
#   2. 60 s of steady load with --rss-check: VmRSS at 60 s at most 1.5x
#      VmRSS at 10 s;
#   3. every --inject-fault kind on a small run: each must end in a
#      VIOLATION with exit status 1 (the view checks can fail);
#   4. a read-only process following the writer through a rotation every
#      16 KiB (--ro-readers 2, 2 mailboxes, 10 s): zero violations;
#   5. stress/stall with a 30 s read-side section (issue 11 item 1);
#   6. stress/virtual-stress for 30 s with 8 readers (issue 12, the
#      atomic remap of virtual mailboxes), then 30 s with live mode and
#      writes through the virtual mailbox: zero violations.
#
# Every step runs even when an earlier one failed; the summary names the
# failed ones and the exit status is 1 if any failed.  Each run's output
# goes to stdout with its figures (name value unit).
build=${1:-build}
bin=$build/stress/validate
dir=$(mktemp -d "${TMPDIR:-/tmp}/mix-stress-long.XXXXXX") || exit 2
trap 'rm -rf "$dir"' EXIT
failed=""

step() {
	name=$1
	shift
	echo "=== $name: validate $* (load $(cut -d' ' -f1-3 /proc/loadavg))"
	"$bin" --dir "$dir/$name" "$@"
	rc=$?
	[ "$rc" -eq 0 ] || failed="$failed $name(exit $rc)"
}

step readers64 --readers 64 --committers 8 --seconds 10
step rss60 --seconds 60 --rss-check
for k in drop-changed drop-new swap-expunged unlogged no-rearm hold-modseq; do
	out=$dir/inject-$k.out
	"$bin" --dir "$dir/inject-$k" --seconds 8 --readers 2 --committers 2 \
		--view-readers 2 --mailboxes 2 --messages 5000 \
		--inject-fault "$k" >"$out" 2>&1
	rc=$?
	if [ "$rc" -eq 1 ] && grep -q '^VIOLATION' "$out"; then
		echo "=== inject-fault $k: caught: $(grep -m1 '^VIOLATION' "$out" |
			cut -c1-150)"
	else
		cat "$out"
		echo "=== inject-fault $k: exit $rc, expected 1 with a VIOLATION"
		failed="$failed inject-$k"
	fi
done
step readonly --ro-readers 2 --mailboxes 2 --rotate 16384 --seconds 10

# 5. a read-side section held 30 s beside 8 committers on 4 mailboxes of
#    2 writers (stress/stall): every mailbox keeps committing, at most 2 s
#    between acknowledgements; the stall is reported; everything is freed
echo "=== stall30: stall --hold 30 (load $(cut -d' ' -f1-3 /proc/loadavg))"
"$build/stress/stall" --dir "$dir/stall30" --hold 30
rc=$?
[ "$rc" -eq 0 ] || failed="$failed stall30(exit $rc)"

# 6. virtual mailboxes: both map directions, UID order, recorded backend
#    modseqs and mirrored flags checked on every snapshot readers take
echo "=== virtual30: virtual-stress --seconds 30 --readers 8 (load $(cut -d' ' -f1-3 /proc/loadavg))"
"$build/stress/virtual-stress" --dir "$dir/virtual30" --seconds 30 --readers 8
rc=$?
[ "$rc" -eq 0 ] || failed="$failed virtual30(exit $rc)"
echo "=== virtual30live: virtual-stress --seconds 30 --readers 8 --live --writes (load $(cut -d' ' -f1-3 /proc/loadavg))"
"$build/stress/virtual-stress" --dir "$dir/virtual30live" --seconds 30 \
	--readers 8 --live --writes
rc=$?
[ "$rc" -eq 0 ] || failed="$failed virtual30live(exit $rc)"

if [ -n "$failed" ]; then
	echo "stress-long: FAILED:$failed"
	exit 1
fi
echo "stress-long: all passed"
