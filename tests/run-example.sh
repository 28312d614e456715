#!/bin/sh
# TAP: build/tests/example (docs/example.c) creates an index in a fresh
# directory, commits, reads back and checks what it printed; its exit
# status is the test.  Run by `make check` through prove, with MIX_BUILD
# set to the build directory.
bin="${MIX_BUILD:-build}/tests/example"
dir=$(mktemp -d "${TMPDIR:-/tmp}/mix-example.XXXXXX") || {
	echo "1..0 # SKIP mktemp -d failed"
	exit 0
}
trap 'rm -rf "$dir"' EXIT
echo "1..1"
out=$("$bin" "$dir" 2>&1)
rc=$?
if [ "$rc" -eq 0 ]; then
	echo "ok 1 - docs/example.c runs and checks its output"
else
	echo "not ok 1 - docs/example.c runs and checks its output (exit $rc)"
fi
printf '%s\n' "$out" | sed 's/^/# /'
[ "$rc" -eq 0 ]
