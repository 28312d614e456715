#!/bin/sh
# callgrind-append.sh — instructions for the appends benchmark's shape
# (stress/append-count.c: 100,000 NONE appends in transactions of 1,000
# into a fresh index; open and close included), counted by valgrind's
# callgrind over all threads.  Repeatable whatever the machine does, so a
# change to the append path is compared by count, not by a noisy time:
#
#   tools/callgrind-append.sh [APPEND_COUNT_BINARY]
#
# prints "append_100k_txn1000_instructions N instructions".  Without
# valgrind it says so and exits 0.
set -u
bin=${1:-build/stress/append-count}
if ! command -v valgrind >/dev/null 2>&1; then
	echo "# callgrind-append: valgrind is not installed; skipped"
	exit 0
fi
if [ ! -x "$bin" ]; then
	echo "callgrind-append: $bin: not found (make $bin)" >&2
	exit 2
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/mix-callgrind.XXXXXX") || exit 2
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/data" || exit 2
if ! valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" \
	"$bin" "$dir/data" >"$dir/stdout" 2>"$dir/stderr"; then
	echo "callgrind-append: valgrind failed:" >&2
	cat "$dir/stderr" >&2
	exit 1
fi
n=$(sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$dir/stderr")
echo "append_100k_txn1000_instructions ${n:-?} instructions"
