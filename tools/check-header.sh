#!/bin/sh
# check-header.sh — the public headers are the contract (issue 14 item 8;
# docs/api.md "The header is the contract").  For every function declared
# in include/mix/*.h (MIX_API prototypes and static inline functions
# named mix_*), it checks:
#
#   1. comment: a top-level block comment documents it — the comment
#      right above it, or above the group of declarations it belongs to
#      (declarations, struct and enum bodies and #defines with no blank
#      line between them share the comment above the first);
#   2. return: that comment says what the call returns ("return" or
#      "returns" in any case) or that it cannot fail ("cannot fail",
#      "never fails");
#   3. context: it says where it may be called: it names a thread
#      ("any thread", "owner thread", "writer thread", ...), a read-side
#      "section", or a "callback";
#   4. errors, against docs/api.md: each table row of api.md whose first
#      cell names the function (`mix_foo(...)` or `mix_foo`) lists
#      MIX_E* codes; the function's header comment must name exactly the
#      same MIX_E* codes, and every -E* errno name of one must appear in
#      the other unless the other says "-errno".  A function api.md does
#      not list is only checked for 1-3.
#
# With --names it checks only that every mix_* name in the first cell of
# an api.md table row is declared in the headers (a function, or a
# struct, enum or typedef name), so api.md documents nothing that is
# gone; run it over all the headers (the default).
#
# What a script cannot see: whether the codes listed are the ones the
# code returns.  Those were read from the code paths (docs/api.md says
# how to keep them true); this keeps header and api.md from drifting
# apart and keeps every new call from going undocumented.
#
# Usage: tools/check-header.sh [--names] [--api FILE] [HEADER...]
#   defaults: --api docs/api.md, HEADER = include/mix/*.h
# Prints one line per problem (FILE:LINE: function: what) and exits 1 if
# there is any, 0 otherwise (with a summary line); 2 on bad usage.
# POSIX sh and awk; tests/test-header.sh runs it under make check.
api=docs/api.md
names=0
if [ "${1:-}" = --names ]; then
	names=1
	shift
fi
if [ "${1:-}" = --api ]; then
	[ $# -ge 2 ] || { echo "usage: $0 [--api FILE] [HEADER...]" >&2; exit 2; }
	api=$2
	shift 2
fi
if [ $# -eq 0 ]; then
	set -- include/mix/*.h
fi
for f in "$api" "$@"; do
	[ -r "$f" ] || { echo "check-header: cannot read $f" >&2; exit 2; }
done

awk -v API="$api" -v NAMES="$names" '
# ---- docs/api.md: MIX_E* / -E* / -errno per function, from table rows
function api_row(row,    cells, first, names, n, i, nm) {
	split(row, cells, "|")
	first = cells[2]
	n = 0
	while (match(first, /mix_[a-z0-9_]+/)) {
		nm = substr(first, RSTART, RLENGTH)
		first = substr(first, RSTART + RLENGTH)
		# a function name, not a struct or type mentioned in passing
		if (nm ~ /_t$/)
			continue
		if (!(nm in api_has))
			api_line[nm] = FNR
		api_has[nm] = 1
		api_txt[nm] = api_txt[nm] " " row
	}
}
FILENAME == API {
	if ($0 ~ /^\|/ && $0 !~ /^\| *-+ *\|/)
		api_row($0)
	next
}

# ---- headers
FNR == 1 { nfile++; file[nfile] = FILENAME; nl[nfile] = 0 }
{ nl[nfile]++; L[nfile, FNR] = $0 }
# every name a header declares: functions (below), struct, enum, typedef
{
	s = $0
	while (match(s, /(struct|enum) mix_[a-z0-9_]+ \{/)) {
		t = substr(s, RSTART, RLENGTH)
		s = substr(s, RSTART + RLENGTH)
		sub(/^(struct|enum) /, "", t)
		sub(/ \{$/, "", t)
		declared[t] = 1
	}
	if ($0 ~ /^typedef .*mix_[a-z0-9_]+/ && match($0, /mix_[a-z0-9_]+_fn/))
		declared[substr($0, RSTART, RLENGTH)] = 1
}

function comment_end(s) {
	return s ~ /^(\/\*.*\*\/| \*.*\*\/| \*\/)[ \t]*$/
}
# The block comment documenting the declaration at line i, or "".
function doc_of(f, i,    k, b, x, c, t) {
	for (k = i - 1; k >= 1; k--) {
		if (L[f, k] ~ /^[ \t]*$/)
			return ""
		if (comment_end(L[f, k]))
			break
	}
	if (k < 1)
		return ""
	for (b = k; b >= 1 && L[f, b] !~ /^\/\*/; b--)
		;
	c = ""
	for (x = b; x <= k; x++) {
		t = L[f, x]
		sub(/^[ \t]*(\/\*|\*)?/, "", t)
		sub(/\*\/[ \t]*$/, "", t)
		c = c " " t
	}
	gsub(/[ \t]+/, " ", c)
	return c
}
function codes(s, pat,    out, t) {
	out = ""
	while (match(s, pat)) {
		t = substr(s, RSTART, RLENGTH)
		s = substr(s, RSTART + RLENGTH)
		if (t == "MIX_EBASE" || t == "MIX_EXT" || index(out, " " t " "))
			continue
		out = out " " t " "
	}
	return out
}
# Names in list a (" X  Y ") missing from list b.
function missing(a, b,    n, w, i, out) {
	out = ""
	n = split(a, w, " ")
	for (i = 1; i <= n; i++)
		if (w[i] != "" && !index(b, " " w[i] " "))
			out = out " " w[i]
	return out
}
function problem(f, i, name, what) {
	printf "%s:%d: %s: %s\n", file[f], i, name, what
	bad++
}
function check(f, i, name,    c, lc, hm, am, he, ae, m) {
	nfun++
	declared[name] = 1
	if (NAMES)
		return
	c = doc_of(f, i)
	if (c == "") {
		problem(f, i, name, "no comment documents it")
		return
	}
	lc = tolower(c)
	if (lc !~ /return|cannot fail|never fails/)
		problem(f, i, name, "its comment does not say what it returns " \
			"(\"Returns ...\", or \"cannot fail\")")
	if (lc !~ /thread|section|callback/)
		problem(f, i, name, "its comment does not give the calling " \
			"context (a thread, a read-side section, a callback)")
	if (!(name in api_has))
		return
	napi++
	hm = codes(c, "MIX_E[A-Z]+")
	am = codes(api_txt[name], "MIX_E[A-Z]+")
	if ((m = missing(am, hm)) != "")
		problem(f, i, name, API " lists" m ", its header comment does not")
	if ((m = missing(hm, am)) != "")
		problem(f, i, name, "its header comment lists" m ", " API \
			" does not")
	he = codes(c, "-E[A-Z]+")
	ae = codes(api_txt[name], "-E[A-Z]+")
	if (c !~ /-errno/ && (m = missing(ae, he)) != "")
		problem(f, i, name, API " lists" m ", its header comment " \
			"does not (nor -errno)")
	if (api_txt[name] !~ /-errno/ && (m = missing(he, ae)) != "")
		problem(f, i, name, "its header comment lists" m ", " API \
			" does not (nor -errno)")
}
END {
	for (f = 1; f <= nfile; f++) {
		for (i = 1; i <= nl[f]; i++) {
			s = L[f, i]
			if (s !~ /^MIX_API[ \t]/ && s !~ /^static inline[ \t]/)
				continue
			d = s
			for (j = i; d !~ /[;{]/ && j < nl[f]; )
				d = d " " L[f, ++j]
			sub(/\(.*/, "", d)
			n = split(d, w, /[ \t*]+/)
			if (w[n] ~ /^mix_/)
				check(f, i, w[n])
		}
	}
	if (NAMES)
		for (nm in api_has)
			if (!(nm in declared)) {
				printf "%s:%d: %s: named in a table, declared in " \
				       "no header checked\n", API, api_line[nm], nm
				bad++
			}
	if (bad) {
		printf "check-header: %d problem(s) in %d functions\n", bad, nfun
		exit 1
	}
	if (NAMES) {
		printf "check-header: every name in %s tables is declared\n", API
		exit 0
	}
	printf "check-header: %d functions documented, %d checked against %s\n",
	       nfun, napi, API
}
' "$api" "$@"
