#!/bin/sh
# perf-profile.sh — `make perf`: a CPU profile of the stress run
# (stress/validate with short settings) under `perf record -g`, when perf
# works on this machine (docs/benchmarks.md "Profiling").
#
#   tools/perf-profile.sh [BUILD]          (default build)
#
# Writes BUILD/perf.data and BUILD/perf.txt (perf report, callers folded
# in, functions above 0.5%) and prints the top of the report.  Call graphs
# come from frame pointers: the Makefile builds with
# -fno-omit-frame-pointer and symbols (-g).
#
# When perf cannot count hardware events — `perf stat -e instructions
# true` fails or says <not supported>, as in most virtual machines without
# a virtual PMU, or with kernel.perf_event_paranoid too high for this
# user — it says so.  It then samples with the cpu-clock software event
# if that works (where the time goes, no cycle or instruction counts) and
# says that too; PERF_SOFTWARE=0 turns that fallback off.  If perf is
# missing or cannot sample at all it says why and exits 0: a machine
# without perf is not a failure of mix.  A violated invariant in the
# validate run (its exit status) is, and is passed on.
#
# PERF_VALIDATE_ARGS overrides the validate options.
set -u

build=${1:-build}
bin=$build/stress/validate
data=$build/perf.data
report=$build/perf.txt
args=${PERF_VALIDATE_ARGS:-"--seconds 3 --readers 4 --committers 2 --messages 20000 --rotate 65536"}

say() { echo "make perf: $*"; }

if ! command -v perf >/dev/null 2>&1; then
	say "perf is not installed; no profile."
	say "Debian's perf is the linux-perf package (MIX_DEPS_PERF=1 sh tools/install-deps.sh, as root)."
	exit 0
fi
if [ ! -x "$bin" ]; then
	echo "make perf: $bin: not built" >&2
	exit 2
fi

paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo '?')
probe=$(perf stat -x, -e instructions true 2>&1)
rc=$?
event=""
if [ $rc -eq 0 ] && ! printf '%s\n' "$probe" |
	grep -q -e '<not supported>' -e '<not counted>'; then
	event=""   # perf's default: cycles (hardware)
	say "hardware counters work (perf stat -e instructions: ok); recording cycles"
else
	why=$(printf '%s\n' "$probe" | grep -m1 -e 'not supported' -e 'not counted' -e 'rror' -e 'ermission')
	say "hardware counters do NOT work on this machine:"
	say "  perf stat -e instructions true -> ${why:-exit $rc}"
	say "  (kernel.perf_event_paranoid = $paranoid; a VM without a virtual PMU reports <not supported>)"
	if [ "${PERF_SOFTWARE:-1}" = 1 ] &&
	   perf record -q -e cpu-clock -o /dev/null true >/dev/null 2>&1; then
		event="-e cpu-clock"
		say "sampling with the cpu-clock software timer instead: where the time goes, but no cycle or instruction counts"
	else
		say "no profile recorded."
		exit 0
	fi
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/mix-perf.XXXXXX") || exit 2
trap 'rm -rf "$dir"' EXIT
say "perf record -g $event -- $bin --dir DIR $args"
# shellcheck disable=SC2086 # event and args are word lists on purpose
perf record -g $event -o "$data" -- "$bin" --dir "$dir" $args >"$dir/validate.out" 2>&1
vrc=$?
sed 's/^/  validate: /' "$dir/validate.out" | tail -n 5
if [ $vrc -ne 0 ]; then
	say "validate exited $vrc (see above); the profile is in $data"
	exit $vrc
fi
perf report -i "$data" --stdio --no-children --percent-limit 0.5 \
	--sort dso,symbol >"$report" 2>/dev/null
say "profile: $data; report: $report (perf report -i $data)"
grep -E '^ +[0-9.]+%' "$report" | head -n 25
exit 0
