#!/bin/sh
# TAP: the shared library's ABI against what is committed (docs/abi.md).
#   1. the exported symbols of ${MIX_BUILD:-build}/libmix.so (nm -D
#      --defined-only) are exactly engine/libmix.symbols: a symbol added,
#      removed or exported by mistake fails here, naming it;
#   2. every exported symbol is declared in a public header
#      (include/mix/*.h), so nothing internal leaks out;
#   3. the SONAME is libmix.so.MAJOR, MAJOR from include/mix/version.h;
#   4. mix.pc and mix-static.pc say the version of version.h.
# Run by `make check` through prove with MIX_BUILD set.  After a deliberate
# API change: `make abi-update` (this script with --update) rewrites
# engine/libmix.symbols from the library; commit it with the change.
# Needs nm and readelf (binutils, which gcc brings).
lib="${MIX_BUILD:-build}/libmix.so"
list=engine/libmix.symbols
cd "$(dirname "$0")/.." || exit 2

if [ ! -f "$lib" ]; then
	echo "1..0 # SKIP $lib not built"
	exit 0
fi
exported() {
	nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' |
		sed 's/@.*//' | LC_ALL=C sort -u
}
if [ "${1:-}" = --update ]; then
	{
		echo "# The symbols libmix.so exports: its ABI (docs/abi.md)."
		echo "# Checked by tests/test-abi.sh; rewritten by make abi-update."
		exported
	} > "$list.tmp" && mv "$list.tmp" "$list" || exit 1
	echo "$list: $(grep -vc '^#' "$list") symbols"
	exit 0
fi

echo "1..4"
fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mix-abi.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
exported > "$tmp/seen"
grep -v '^#' "$list" | LC_ALL=C sort -u > "$tmp/expected"
if cmp -s "$tmp/seen" "$tmp/expected"; then
	echo "ok 1 - $lib exports the $(wc -l < "$tmp/seen") symbols of $list"
else
	echo "not ok 1 - $lib exports what $list says"
	LC_ALL=C comm -23 "$tmp/seen" "$tmp/expected" | sed 's/^/# exported, not in the list: /'
	LC_ALL=C comm -13 "$tmp/seen" "$tmp/expected" | sed 's/^/# in the list, not exported: /'
	echo "# (a deliberate API change: make abi-update, and commit $list)"
	fail=1
fi

cat include/mix/*.h > "$tmp/headers"
missing=""
for s in $(cat "$tmp/seen"); do
	grep -q "\\b$s\\b" "$tmp/headers" || missing="$missing $s"
done
if [ -z "$missing" ]; then
	echo "ok 2 - every exported symbol is declared in include/mix/*.h"
else
	echo "not ok 2 - every exported symbol is declared in include/mix/*.h"
	echo "# exported but in no public header:$missing"
	fail=1
fi

major=$(sed -n 's/^.define MIX_VERSION_MAJOR \([0-9]*\)$/\1/p' include/mix/version.h)
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ -n "$major" ] && [ "$soname" = "libmix.so.$major" ]; then
	echo "ok 3 - SONAME $soname"
else
	echo "not ok 3 - SONAME: seen '$soname', expected 'libmix.so.$major'"
	fail=1
fi

version=$(sed -n 's/^.define MIX_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' \
	include/mix/version.h | paste -sd. -)
seen=""
for pc in mix mix-static; do
	seen="$seen $(sed -n 's/^Version: //p' "${MIX_BUILD:-build}/$pc.pc" 2>/dev/null)"
done
if [ "$seen" = " $version $version" ]; then
	echo "ok 4 - mix.pc and mix-static.pc say version $version"
else
	echo "not ok 4 - pkg-config versions: seen '$seen', expected ' $version $version'"
	fail=1
fi
exit $fail
