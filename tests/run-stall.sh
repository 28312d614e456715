#!/bin/sh
# TAP: stress/stall, short — a read-side section held 2 s while 8
# committers run on 4 mailboxes of 2 writer threads.  stall checks that
# every mailbox keeps acknowledging commits, that the stall is reported
# once naming the holder's thread (read_stall callback, read_stalls),
# that publishes were spaced (batches_held), that the held snapshot reads
# the same throughout, and that what waited is freed after the section;
# it exits non-zero with a VIOLATION line otherwise.  No timing limit
# here (--max-gap 600): `make stress` runs the 10 s section with the 2 s
# gap limit.  MIX_SEED=<n> replays a run's choices.
# Run by `make check` through prove, with MIX_BUILD set to the build
# directory.
bin="${MIX_BUILD:-build}/stress/stall"
args="--hold 2 --committers 8 --mailboxes 4 --writers 2 --max-gap 600"
dir=$(mktemp -d "${TMPDIR:-/tmp}/mix-stall.XXXXXX") || {
	echo "1..0 # SKIP mktemp -d failed"
	exit 0
}
trap 'rm -rf "$dir"' EXIT
echo "1..1"
# shellcheck disable=SC2086 # args is a word list on purpose
out=$("$bin" --dir "$dir" $args 2>&1)
rc=$?
if [ "$rc" -eq 0 ]; then
	echo "ok 1 - stall $args"
else
	echo "not ok 1 - stall $args (exit $rc)"
fi
printf '%s\n' "$out" | sed 's/^/# /'
[ "$rc" -eq 0 ]
