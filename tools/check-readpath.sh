#!/bin/sh
# check-readpath.sh — evidence that mix's read path executes no atomic
# read-modify-write instruction (docs/design.md "Invariants", 1: "the read
# path writes no shared cache line"; docs/benchmarks.md "Scaling").
#
#   tools/check-readpath.sh [LIB [FUNCTION...]]
#
# Disassembles LIB (default build/libmix.so) with objdump, starts from the
# read-path entry points (or the FUNCTIONs given), follows every direct
# call and tail jump into other functions of the library (transitively),
# and fails if any reached function contains a lock-prefixed instruction,
# cmpxchg, xadd, or an xchg with a memory operand (implicitly locked on
# x86).  A call through the PLT to a function of the library itself (an
# exported mix_* calling another) is followed; other PLT calls leave the
# library (liburcu, libc, ld.so's __tls_get_addr) and are listed, not
# followed; an indirect call inside
# the read path fails the check (it could not be followed).  Fences
# (mfence) are listed: liburcu-memb executes one in mix_read_lock only
# when the kernel lacks sys_membarrier.
#
# Prints one line per function, then "name value unit" figures; exits 0
# when clean, 1 when an atomic RMW (or an unfollowable call) is found, 2
# when LIB or an entry point is missing (so a renamed function cannot
# turn the check into one that always passes).
#
# x86-64 only (the mnemonics are x86's); elsewhere it exits 0 saying so.
set -u

lib=${1:-build/libmix.so}
[ $# -gt 0 ] && shift
roots=${*:-"mix_read_lock mix_read_unlock mix_index_snap mix_snap_lookup_uid
 mix_snap_lookup_seq mix_snap_uid_range_to_seq mix_snap_fill_record
 mix_iter_init mix_iter_next mix_snap_messages_count mix_snap_next_uid
 mix_snap_uid_validity mix_snap_highest_modseq mix_record_ext
 mix_changed_iter_init mix_changed_iter_next"}

if [ ! -r "$lib" ]; then
	echo "check-readpath: $lib: not found (build it first: make)" >&2
	exit 2
fi
command -v objdump >/dev/null 2>&1 || {
	echo "check-readpath: objdump not found (binutils)" >&2
	exit 2
}
case $(uname -m) in
x86_64) ;;
*)
	echo "check-readpath: $(uname -m): only x86-64 mnemonics are known; skipped"
	exit 0
	;;
esac

objdump -d --no-show-raw-insn "$lib" | awk -v roots="$roots" -v lib="$lib" '
# Function headers look like "0000000000004eb0 <mix_read_lock>:".
/^[0-9a-f]+ <[^>]+>:$/ {
	fn = $2
	gsub(/[<>:]/, "", fn)
	known[fn] = 1
	nins[fn] = 0
	next
}
/^ +[0-9a-f]+:\t/ {
	if (fn == "")
		next
	line = $0
	sub(/^ +[0-9a-f]+:\t/, "", line)
	n = ++nins[fn]
	ins[fn, n] = line
}
END {
	nr = split(roots, r, /[ \t\n]+/)
	for (i = 1; i <= nr; i++) {
		if (r[i] == "")
			continue
		if (!(r[i] in known)) {
			printf "check-readpath: %s: no function %s\n", lib, r[i] > "/dev/stderr"
			missing = 1
			continue
		}
		queue[++qn] = r[i]
		seen[r[i]] = "entry point"
	}
	if (missing)
		exit 2
	bad = 0
	fences = 0
	for (q = 1; q <= qn; q++) {
		f = queue[q]
		flagged = ""
		ext = ""
		for (k = 1; k <= nins[f]; k++) {
			l = ins[f, k]
			split(l, w, /[ \t]+/)
			op = w[1]
			# prefixes objdump prints before the mnemonic
			while (op == "data16" || op == "rex.W" || op == "cs" || op == "ds" || op == "notrack" || op == "bnd") {
				sub(/^[^ \t]+[ \t]+/, "", l)
				split(l, w, /[ \t]+/)
				op = w[1]
			}
			if (op == "lock" || op ~ /^(lock|cmpxchg|xadd)/ || (op ~ /^xchg/ && l ~ /\(/)) {
				flagged = flagged sprintf("\n    atomic RMW: %s", l)
				bad++
			}
			if (op ~ /^mfence/) {
				flagged = flagged sprintf("\n    fence: %s", l)
				fences++
			}
			if ((op ~ /^call/ || op ~ /^jmp/) && l ~ /\*/) {
				if (op ~ /^call/) {
					flagged = flagged sprintf("\n    indirect call (cannot follow): %s", l)
					bad++
				}
				continue
			}
			if (op !~ /^(call|jmp)/ || l !~ /<[^>]+>/)
				continue
			t = l
			sub(/^.*</, "", t)
			sub(/>.*$/, "", t)
			if (t ~ /@plt$/) {
				# an exported mix_* function called through
				# the PLT is still ours: follow it
				p = t
				sub(/@plt$/, "", p)
				if (p in known) {
					t = p
				} else {
					if (index(" " ext " ", " " p " ") == 0)
						ext = ext " " p
					continue
				}
			}
			sub(/\+0x[0-9a-f]+$/, "", t)
			if (t == f || !(t in known))
				continue
			if (!(t in seen)) {
				seen[t] = "from " f
				queue[++qn] = t
			}
		}
		printf "  %-28s %4d insns  %-26s%s%s\n", f, nins[f], "(" seen[f] ")", (ext != "" ? "  leaves the library:" ext : ""), flagged
		total += nins[f]
	}
	printf "readpath_functions %d functions\n", qn
	printf "readpath_instructions %d instructions\n", total
	printf "readpath_atomic_rmw %d instructions\n", bad
	printf "readpath_fences %d instructions\n", fences
	exit bad ? 1 : 0
}'
rc=$?
case $rc in
0) echo "check-readpath: no atomic read-modify-write in the read path of $lib" ;;
1) echo "check-readpath: FAILED: atomic read-modify-write (or an unfollowable call) in the read path of $lib" ;;
esac
exit $rc
