#!/bin/sh
# TAP: stress/virtual-stress, short — 3 readers checking every virtual
# snapshot they take (both map directions agree, virtual UIDs increase,
# no backend message twice, recorded backend modseqs not above the
# backends' published ones, flags equal the backend's when it has not
# changed since the sync) while 3 backends of 1,000 messages commit and
# the virtual mailbox syncs in a loop, for 2 s (docs/virtual.md "Atomic
# remap"); then the same with live mode doing the syncs and a thread
# storing flags, keywords and expunges through the virtual mailbox.  Its exit status is the test; its output (seed, figures, the
# VIOLATION line) is printed as diagnostics; MIX_SEED=<n> replays a run's
# choices.  Run by `make check` through prove, with MIX_BUILD set to the
# build directory.
bin="${MIX_BUILD:-build}/stress/virtual-stress"
args="--seconds 2 --readers 3 --messages 1000"
dir=$(mktemp -d "${TMPDIR:-/tmp}/mix-virtual-stress.XXXXXX") || {
	echo "1..0 # SKIP mktemp -d failed"
	exit 0
}
trap 'rm -rf "$dir"' EXIT
echo "1..2"
fail=0
n=0
for extra in "" "--live --writes"; do
	n=$((n + 1))
	# shellcheck disable=SC2086 # args is a word list on purpose
	out=$("$bin" --dir "$dir/run$n" $args $extra 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		echo "ok $n - virtual-stress $args $extra"
	else
		echo "not ok $n - virtual-stress $args $extra (exit $rc)"
		fail=1
	fi
	printf '%s\n' "$out" | sed 's/^/# /'
done
[ "$fail" -eq 0 ]
