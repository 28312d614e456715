#!/bin/sh
# offcpu.sh — where a program's threads waited: every interval between a
# thread's switch-out and its next switch-in, recorded by perf's
# sched:sched_switch tracepoint with kernel and user call chains, and
# summed by what the thread was doing when it left the CPU.
#
#   tools/offcpu.sh [-n N] [-c COMM-REGEX] [-m MIN-MS] -- COMMAND [ARGS...]
#
# It runs COMMAND under `perf record -e sched:sched_switch -g` (as root,
# or with kernel.perf_event_paranoid <= 1) and prints after it:
#
#   * the N longest intervals (default 20) of threads whose name matches
#     COMM-REGEX (default: every thread of COMMAND), each with its length,
#     the thread, its state when it left and the innermost frames:
#       R  preempted while runnable: it waited for a CPU (the scheduler);
#       D  uninterruptible: disk I/O, a page or buffer lock, a mutex in
#          the kernel;
#       S  a sleep it asked for: a futex, a condition variable, nanosleep;
#   * per (state, stack) the count, sum and longest of the intervals of at
#     least MIN-MS milliseconds (default 1);
#   * for the R intervals among those, which thread took the CPU when the
#     waiting one left it (the preempting thread, by name).
#
# What it is for: telling a commit stall that is the engine's (a futex
# wait for the writer role, a lock) from one that is the machine's (R:
# no CPU; D in ext4 or the block layer: the disk).  docs/benchmarks.md
# "Where the commit maxima come from" shows its use on stress/bench
# --only ckptasync.  Writes the raw data to ${OFFCPU_DATA:-/tmp/offcpu.$$.data}
# and removes it unless OFFCPU_KEEP=1.
set -u

top=20
comm=
minms=1
while [ $# -gt 0 ]; do
	case $1 in
	-n) top=$2; shift 2 ;;
	-c) comm=$2; shift 2 ;;
	-m) minms=$2; shift 2 ;;
	--) shift; break ;;
	*) break ;;
	esac
done
if [ $# -eq 0 ]; then
	echo "usage: tools/offcpu.sh [-n N] [-c COMM-REGEX] [-m MIN-MS] -- COMMAND [ARGS...]" >&2
	exit 2
fi
if ! command -v perf >/dev/null 2>&1; then
	echo "offcpu.sh: perf is not installed (Debian: linux-perf)" >&2
	exit 2
fi
data=${OFFCPU_DATA:-/tmp/offcpu.$$.data}

perf record -q -e sched:sched_switch -g -o "$data" -- "$@"
status=$?
perf script -i "$data" -F comm,tid,time,event,trace,ip,sym 2>/dev/null |
	TOP=$top COMM=$comm MINMS=$minms perl -e '
use strict; use warnings;
my ($top, $re, $minms) = ($ENV{TOP}, $ENV{COMM}, $ENV{MINMS});
my (%out, @iv, %sum, %cnt, %max, %bysum, %bycnt);
local $/ = "";               # one event (header + call chain) per record
while (my $ev = <STDIN>) {
	my @l = split /\n/, $ev;
	my $h = shift @l;
	next unless defined $h && $h =~ /sched_switch/;
	my ($t) = $h =~ /\s(\d+\.\d+):/ or next;
	my ($pc, $pp, $ps, $nc, $np) = $h =~
	    /prev_comm=(.*?) prev_pid=(\d+) .*?prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)/
	    or next;
	my @f;
	for (@l) {
		my (undef, $sym) = split " ", $_, 3;
		next unless defined $sym;
		$sym =~ s/\+0x[0-9a-f]+$//;
		next if $sym =~ /^(__schedule|schedule|io_schedule|schedule_timeout|preempt_schedule\w*)$/;
		push @f, $sym;
		last if @f == 8;
	}
	$out{$pp} = [$t, $ps, $pc, join(" <- ", @f), $nc];
	if (my $o = delete $out{$np}) {
		my ($t0, $st, $c, $stk, $by) = @$o;
		next if $re ne "" && $c !~ /$re/;
		$st = substr($st, 0, 1);
		my $ms = ($t - $t0) * 1e3;
		push @iv, [$ms, $c, $np, $st, $stk];
		next if $ms < $minms;
		my $k = "$st $c | $stk";
		$sum{$k} += $ms; $cnt{$k}++;
		$max{$k} = $ms if !$max{$k} || $ms > $max{$k};
		if ($st eq "R") {
			$by =~ s/\d+$//;     # kworker/0:1 -> kworker/0:
			$bysum{$by} += $ms; $bycnt{$by}++;
		}
	}
}
@iv = sort { $b->[0] <=> $a->[0] } @iv;
printf "# offcpu: %d intervals; the %d longest (ms thread tid state stack)\n",
    scalar @iv, $top;
for my $i (@iv[0 .. ($top > @iv ? $#iv : $top - 1)]) {
	printf "%9.3f %s %d %s %s\n", @$i;
}
printf "# offcpu: intervals of at least %s ms by state and stack (count sum-ms max-ms)\n", $minms;
for my $k (sort { $sum{$b} <=> $sum{$a} } keys %sum) {
	printf "%6d %9.1f %8.3f %s\n", $cnt{$k}, $sum{$k}, $max{$k}, $k;
}
printf "# offcpu: who took the CPU at the start of those R intervals (count sum-ms)\n";
for my $k (sort { $bysum{$b} <=> $bysum{$a} } keys %bysum) {
	printf "%6d %9.1f %s\n", $bycnt{$k}, $bysum{$k}, $k;
}
'
[ "${OFFCPU_KEEP:-0}" = 1 ] || rm -f "$data"
exit $status
