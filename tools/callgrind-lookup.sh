#!/bin/sh
# callgrind-lookup.sh — instructions per UID lookup, mix vs LMDB, counted
# by valgrind's callgrind (docs/benchmarks.md "Scaling").  A count of
# instructions does not depend on the machine's noise, unlike a time.
#
#   tools/callgrind-lookup.sh [BENCH_LMDB_BINARY [LOOKUPS]]
#
# Runs `bench-lmdb --only callgrind` (100,000 messages on each side, then
# LOOKUPS random lookups — default 100,000 — in cg_mix_lookups() and in
# cg_lmdb_lookups(), 1,000 per read-side section / read txn) under
# callgrind, collecting only inside those two functions, and prints
# "name value unit" lines: instructions per lookup for the whole loop
# (UID pick included) and for the lookup call alone, instructions per
# section for entering and leaving it, and the ratio LMDB/mix.
# Without valgrind it says so and exits 0 (MIX_DEPS_VALGRIND=1
# tools/install-deps.sh installs it).
set -u

bin=${1:-build/stress/bench-lmdb}
n=${2:-100000}

if ! command -v valgrind >/dev/null 2>&1 ||
   ! command -v callgrind_annotate >/dev/null 2>&1; then
	echo "# callgrind-lookup: valgrind is not installed; skipped"
	exit 0
fi
if [ ! -x "$bin" ]; then
	echo "callgrind-lookup: $bin: not found (make $bin)" >&2
	exit 2
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/mix-callgrind.XXXXXX") || exit 2
trap 'rm -rf "$dir"' EXIT

if ! valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" \
	--toggle-collect=cg_mix_lookups --toggle-collect=cg_lmdb_lookups \
	"$bin" --dir "$dir/data" --only callgrind --lookups "$n" --seed 1 \
	>"$dir/stdout" 2>"$dir/stderr"; then
	echo "callgrind-lookup: valgrind failed:" >&2
	cat "$dir/stderr" >&2
	exit 1
fi

callgrind_annotate --inclusive=yes --threshold=100 "$dir/cg.out" |
awk -v n="$n" '
# lines: "  12,652,124 ( 8.63%)  /path/file.c:function [object]".  A
# function whose code came partly from inlined headers also has lines
# "N  /path/header.h:function" for those parts; the line with the
# largest count is the function'"'"'s inclusive total.
/^ *[0-9,]+ +\(/ {
	v = $1
	gsub(/,/, "", v)
	f = $0
	sub(/ \[[^]]*\]$/, "", f)
	sub(/^.*:/, "", f)
	if (v + 0 > ir[f])
		ir[f] = v + 0
}
function fig(name, value, unit) {
	printf "%s %.1f %s\n", name, value, unit
}
END {
	sections = n / 1000
	if (ir["cg_mix_lookups"] == 0 || ir["cg_lmdb_lookups"] == 0) {
		print "callgrind-lookup: the measured loops were not found" > "/dev/stderr"
		exit 1
	}
	fig("callgrind_lookup_100k_mix_loop", ir["cg_mix_lookups"] / n, "instr/lookup")
	fig("callgrind_lookup_100k_mix_snap_lookup_uid", ir["mix_snap_lookup_uid"] / n, "instr/lookup")
	fig("callgrind_lookup_100k_mix_section_enter_leave",
	    (ir["mix_read_lock"] + ir["mix_index_snap"] + ir["mix_read_unlock"]) / sections, "instr/section")
	fig("callgrind_lookup_100k_lmdb_loop", ir["cg_lmdb_lookups"] / n, "instr/lookup")
	fig("callgrind_lookup_100k_lmdb_mdb_get", ir["mdb_get"] / n, "instr/lookup")
	fig("callgrind_lookup_100k_lmdb_txn_renew_reset",
	    (ir["mdb_txn_renew"] + ir["mdb_txn_reset"]) / sections, "instr/section")
	fig("callgrind_lookup_100k_lmdb_over_mix", ir["cg_lmdb_lookups"] / ir["cg_mix_lookups"], "ratio")
}'
