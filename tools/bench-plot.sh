#!/bin/sh
# bench-plot.sh — render the plots of docs/benchmarks.md from the figures
# that `make bench` wrote (stress/bench-lmdb's "name value unit" lines).
#
#   tools/bench-plot.sh [BENCH_TXT [OUTDIR]]     (build/bench.txt, docs)
#
# OUTDIR/scaling.png  lookups/s of all readers and CPU ns per lookup per
#                     reader, at 1..64 reader threads while one writer
#                     commits, mix vs LMDB (the scale_* figures);
# OUTDIR/latency.png  commit latency percentiles (p50, p90, p99, p99.9,
#                     max): left, commit-to-acknowledge measured by the
#                     committer, mix and LMDB, one committer without and
#                     with fsync and 16 committers with fsync (the
#                     latency_commit_* figures); right, mix's own
#                     mix_engine_latency VISIBLE and ACK for the same
#                     workloads (latency_engine_*).
# Needs gnuplot (Debian gnuplot-nox; MIX_DEPS_BENCH=1 tools/install-deps.sh
# installs it); without it, or without the figures, says so and exits 0
# so that the figures in BENCH_TXT are still there.
set -u

txt=${1:-build/bench.txt}
out=${2:-docs}

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "# bench-plot: gnuplot is not installed; no plots"
	exit 0
fi
if [ ! -r "$txt" ]; then
	echo "bench-plot: $txt: not found (run make bench)" >&2
	exit 2
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mix-plot.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
cpus=$(nproc 2>/dev/null || echo '?')

# ---- scaling: threads mix_total lmdb_total mix_cpu_ns lmdb_cpu_ns ----------
awk '
$1 ~ /^scale_[0-9a-z]+_[0-9]+thr_(mix|lmdb)_(total|cpu_ns)$/ {
	split($1, p, "_")          # scale SIZE Nthr SIDE total|cpu ns
	size = p[2]
	t = p[3]
	sub(/thr$/, "", t)
	key = p[4] "_" p[5]
	v[t, key] = $2
	if (!(t in seen)) {
		seen[t] = 1
		ts[++n] = t + 0
	}
}
END {
	# sort the thread counts
	for (i = 1; i <= n; i++)
		for (j = i + 1; j <= n; j++)
			if (ts[j] < ts[i]) { x = ts[i]; ts[i] = ts[j]; ts[j] = x }
	for (i = 1; i <= n; i++)
		printf "%d %s %s %s %s\n", ts[i], v[ts[i], "mix_total"],
		       v[ts[i], "lmdb_total"], v[ts[i], "mix_cpu"],
		       v[ts[i], "lmdb_cpu"]
	if (size != "")
		print size > "/dev/stderr"
}' "$txt" >"$tmp/scale.dat" 2>"$tmp/scale.size"
size=$(cat "$tmp/scale.size")

runs=$(sed -n 's/^# scale: .*median of \([0-9]*\) run.*/\1/p' "$txt" | head -n 1)
if [ -s "$tmp/scale.dat" ]; then
	gnuplot <<EOF
set terminal pngcairo size 1100,450 font "sans,10"
set output "$out/scaling.png"
set multiplot layout 1,2 title "UID lookups while one writer commits flag changes ($size messages, $cpus CPUs, median of ${runs:-?} runs)"
set logscale x 2
set xtics (1, 2, 4, 8, 16, 64)
set xrange [0.8:80]
set xlabel "reader threads"
set grid
set key bottom right box opaque
set logscale y
set ylabel "lookups/s, all readers together"
set format y "10^{%T}"
plot "$tmp/scale.dat" using 1:2 with linespoints lw 2 pt 7 lc rgb '#2471a3' title "mix", \
     "$tmp/scale.dat" using 1:3 with linespoints lw 2 pt 5 lc rgb '#c0392b' title "LMDB"
unset logscale y
set format y "%g"
set yrange [0:*]
set ylabel "CPU ns per lookup (median reader)"
set key center right box opaque
plot "$tmp/scale.dat" using 1:4 with linespoints lw 2 pt 7 lc rgb '#2471a3' title "mix", \
     "$tmp/scale.dat" using 1:5 with linespoints lw 2 pt 5 lc rgb '#c0392b' title "LMDB"
unset multiplot
EOF
	echo "# bench-plot: wrote $out/scaling.png"
else
	echo "# bench-plot: no scale_* figures in $txt; no scaling plot"
fi

# ---- latency: one file per series, "x microseconds" for p50 .. max ---------
# latency_commit_* (client side, mix and LMDB alternate: blue mix, red
# LMDB, one dash pattern per workload) on the left; latency_engine_*
# (mix_engine_latency: VISIBLE and ACK per mix workload) on the right.
series() { # prefix tag
	awk -v dir="$tmp" -v pre="$1" -v tag="$2" '
	index($1, pre) == 1 {
		s = substr($1, length(pre) + 1)
		pct = s
		sub(/^.*_/, "", pct)
		sub(/_[^_]*$/, "", s)
		x = pct == "p50" ? 0 : pct == "p90" ? 1 : pct == "p99" ? 2 : \
		    pct == "p999" ? 3 : pct == "max" ? 4 : -1
		if (x < 0)
			next
		if (!(s in id)) {
			id[s] = ++n
			label = s
			sub(/^commit_/, "", label)
			gsub(/_/, " ", label)
			print label > (dir "/" tag ".titles")
		}
		print x, $2 > (dir "/" tag id[s] ".dat")
	}' "$txt"
}
plotcmd() { # tag colour-rule: mixlmdb (alternate) or visack (alternate)
	cmd="plot"
	i=0
	while IFS= read -r title; do
		i=$((i + 1))
		if [ $((i % 2)) -eq 1 ]; then
			style="lc rgb '#2471a3' pt 7"
		else
			style="lc rgb '#c0392b' pt 5"
		fi
		[ "$2" = visack ] && [ $((i % 2)) -eq 0 ] &&
			style="lc rgb '#1e8449' pt 5"
		cmd="$cmd '$tmp/$1$i.dat' using 1:2 with linespoints lw 2 $style dt $(((i + 1) / 2)) title '$title',"
	done <"$tmp/$1.titles"
	printf '%s\n' "${cmd%,}"
}
series latency_commit_ lat
series latency_engine_ eng

if [ -s "$tmp/lat.titles" ]; then
	left=$(plotcmd lat mixlmdb)
	right=""
	[ -s "$tmp/eng.titles" ] && right=$(plotcmd eng visack)
	gnuplot <<EOF
set terminal pngcairo size 1300,500 font "sans,10" noenhanced
set output "$out/latency.png"
set multiplot layout 1,2 title "Commit latency percentiles ($cpus CPUs)"
set logscale y
set ylabel "microseconds"
set xtics ("p50" 0, "p90" 1, "p99" 2, "p99.9" 3, "max" 4)
set xrange [-0.3:4.3]
set grid
set key top left box opaque font ",9"
set title "commit-to-acknowledge, measured by the committer (txn begin .. commit return)"
$left
set title "mix only, from mix_engine_latency (handed to writer .. visible / .. acknowledged)"
$right
unset multiplot
EOF
	echo "# bench-plot: wrote $out/latency.png"
else
	echo "# bench-plot: no latency_commit_* figures in $txt; no latency plot"
fi
