# Sourced by the tests/run-*.sh wrappers of stress programs: run one
# program once per argument set, each in a fresh directory (--dir) under
# ${TMPDIR:-/tmp}, as TAP.  Each run's exit status is its test; its output
# (seed, figures, the VIOLATION line) is printed as diagnostics.  The
# programs take MIX_SEED=<n> to replay a run's choices.
#
#   tap_stress PROGRAM "ARGS..." ["ARGS..." ...]
#
# PROGRAM is looked up in ${MIX_BUILD:-build}/stress.  Exits with the
# script: 0 if every run passed.
tap_stress() {
	prog=$1
	shift
	bin="${MIX_BUILD:-build}/stress/$prog"
	dir=$(mktemp -d "${TMPDIR:-/tmp}/mix-$prog.XXXXXX") || {
		echo "1..0 # SKIP mktemp -d failed"
		exit 0
	}
	trap 'rm -rf "$dir"' EXIT
	echo "1..$#"
	fail=0
	n=0
	for args in "$@"; do
		n=$((n + 1))
		# shellcheck disable=SC2086 # args is a word list on purpose
		out=$("$bin" --dir "$dir/run$n" $args 2>&1)
		rc=$?
		if [ "$rc" -eq 0 ]; then
			echo "ok $n - $prog $args"
		else
			echo "not ok $n - $prog $args (exit $rc)"
			fail=1
		fi
		printf '%s\n' "$out" | sed 's/^/# /'
	done
	exit "$fail"
}
