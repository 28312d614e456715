#!/bin/sh
# bench-report.sh — the part of `make bench` after stress/bench: appends
# to BUILD/bench.txt the machine it ran on, stress/bench-lmdb's figures
# (mix and LMDB side by side, scaling, latency), the read-path check
# (tools/check-readpath.sh, with a negative control), instructions per
# lookup (tools/callgrind-lookup.sh), then renders the plots into docs/
# (tools/bench-plot.sh).  docs/benchmarks.md describes every figure.
#
#   tools/bench-report.sh [BUILD [bench-lmdb options...]]
#
# The benchmark's data sets go in a fresh directory under ${TMPDIR:-/tmp}
# (its filesystem is printed).  Exits non-zero if bench-lmdb or the
# read-path check fails; a missing valgrind or gnuplot only skips its part.
set -u

build=${1:-build}
[ $# -gt 0 ] && shift
out=$build/bench.txt
rcfile=$(mktemp "${TMPDIR:-/tmp}/mix-bench-rc.XXXXXX") || exit 2
dir=$(mktemp -d "${TMPDIR:-/tmp}/mix-bench.XXXXXX") || exit 2
trap 'rm -rf "$dir" "$rcfile"' EXIT

{
	echo "# machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r)"
	echo "# bench dir: $dir on $(df -PT "$dir" | awk 'NR == 2 { print $1 " (" $2 ")" }')"
	echo "# compiler: $(${CC:-cc} --version | head -n 1)"
	echo "# load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
	"$build/stress/bench-lmdb" --dir "$dir/data" "$@"
	echo $? >"$rcfile"
} | tee -a "$out"
rc=$(cat "$rcfile")
[ "$rc" = 0 ] || { echo "bench-report: bench-lmdb failed (exit $rc)" >&2; exit "$rc"; }

{
	echo "# check-readpath: $build/libmix.so"
	{ sh tools/check-readpath.sh "$build/libmix.so"; echo $? >"$rcfile"; } |
		sed '/^readpath_/!s/^/# /'
	# negative control: a function that takes a reference (an atomic
	# add) must be flagged, or the check could not fail
	if sh tools/check-readpath.sh "$build/libmix.so" mix_view_refresh \
		>/dev/null 2>&1; then
		echo "check-readpath: negative control NOT flagged (mix_view_refresh)"
		echo 1 >"$rcfile"
	else
		echo "# check-readpath: negative control mix_view_refresh (takes a view reference) is flagged: ok"
	fi
} | tee -a "$out"
rc=$(cat "$rcfile")

sh tools/callgrind-lookup.sh "$build/stress/bench-lmdb" | tee -a "$out"
sh tools/bench-plot.sh "$out" docs
exit "$rc"
