#!/bin/sh
# TAP: the public headers are the contract (issue 14 item 8;
# tools/check-header.sh says what is checked).
#   1. include/mix/mix.h passes: every function has a comment saying what
#      it returns and where it may be called, and names the same MIX_E*
#      codes as its rows in docs/api.md;
#   2-4. the check can fail: copies of mix.h with mix_watch_fd's comment
#      removed, with MIX_EDEADLK taken out of mix_index_ext_register's
#      comment (the state issue 14 found), and a copy of docs/api.md
#      whose mix_view_sync row gains MIX_ECORRUPT, must each fail and
#      name the function;
#   5. the other public headers (include/mix/*.h but mix.h): reported as
#      TODO while they do not pass yet (their owners reword them), so
#      prove shows them without failing make check;
#   6-7. every mix_* name in an api.md table is declared in a header
#      (--names), and a copy of api.md naming mix_view_refrash fails.
# Run by `make check` through prove (cwd: the repository).  Needs sh and
# awk only.
cd "$(dirname "$0")/.." || exit 2
check=tools/check-header.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mix-header.XXXXXX") || {
	echo "1..0 # SKIP mktemp -d failed"
	exit 0
}
trap 'rm -rf "$tmp"' EXIT
echo "1..7"
fail=0

# Copy of header $1 with the comment block right above function $2's
# declaration removed (mode drop), or with token $4 deleted from it
# (mode strip).
edit_comment() {
	awk -v fn="$2" -v mode="$3" -v tok="$4" '
	/^\/\*/ { buf = ""; inc = 1 }
	inc {
		buf = buf $0 "\n"
		if ($0 ~ /\*\//) { inc = 0; pending = 1 }
		next
	}
	pending {
		pending = 0
		if ($0 ~ ("^MIX_API.*[ *]" fn "\\(")) {
			if (mode == "strip")
				gsub(tok, "", buf)
			else
				buf = ""
		}
		printf "%s", buf
	}
	{ print }' "$1"
}

out=$(sh "$check" include/mix/mix.h 2>&1)
rc=$?
if [ "$rc" -eq 0 ]; then
	echo "ok 1 - include/mix/mix.h passes tools/check-header.sh"
else
	echo "not ok 1 - include/mix/mix.h passes tools/check-header.sh (exit $rc, expected 0)"
	fail=1
fi
printf '%s\n' "$out" | sed 's/^/# /'

# expect_fail N WHAT PATTERN ARGS...: check-header must exit 1 and print
# a line matching PATTERN.
expect_fail() {
	n=$1 what=$2 pat=$3
	shift 3
	out=$(sh "$check" "$@" 2>&1)
	rc=$?
	if [ "$rc" -eq 1 ] && printf '%s\n' "$out" | grep -q -- "$pat"; then
		echo "ok $n - $what: fails and says '$pat'"
	else
		echo "not ok $n - $what: observed exit $rc expected 1 and a line matching '$pat'"
		fail=1
	fi
	printf '%s\n' "$out" | sed 's/^/# /'
}

edit_comment include/mix/mix.h mix_watch_fd drop > "$tmp/nocomment.h"
expect_fail 2 "mix.h without mix_watch_fd's comment" \
	"mix_watch_fd: no comment documents it" "$tmp/nocomment.h"

edit_comment include/mix/mix.h mix_index_ext_register strip MIX_EDEADLK \
	> "$tmp/nodeadlk.h"
expect_fail 3 "mix.h without MIX_EDEADLK for mix_index_ext_register" \
	"mix_index_ext_register: docs/api.md lists MIX_EDEADLK" "$tmp/nodeadlk.h"

sed '/^| `mix_view_sync(view, &changes)`/s/`-ENOMEM`/`-ENOMEM`, `MIX_ECORRUPT`/' \
	docs/api.md > "$tmp/api.md"
expect_fail 4 "api.md with MIX_ECORRUPT added to mix_view_sync's row" \
	"mix_view_sync: .* lists MIX_ECORRUPT, its header comment does not" \
	--api "$tmp/api.md" include/mix/mix.h

others=
for h in include/mix/*.h; do
	[ "$h" = include/mix/mix.h ] || others="$others $h"
done
# shellcheck disable=SC2086 # a list of paths without spaces
out=$(sh "$check" $others 2>&1)
rc=$?
if [ "$rc" -eq 0 ]; then
	echo "ok 5 - the other public headers pass:$others"
else
	echo "not ok 5 - the other public headers pass:$others # TODO their comments are being given calling contexts and return codes (issue 14 item 8)"
fi
printf '%s\n' "$out" | sed 's/^/# /'

out=$(sh "$check" --names 2>&1)
rc=$?
if [ "$rc" -eq 0 ]; then
	echo "ok 6 - every name in docs/api.md's tables is declared in include/mix/*.h"
else
	echo "not ok 6 - every name in docs/api.md's tables is declared in include/mix/*.h (exit $rc, expected 0)"
	fail=1
fi
printf '%s\n' "$out" | sed 's/^/# /'

sed 's/^| `mix_view_refresh(view)`/| `mix_view_refrash(view)`/' docs/api.md \
	> "$tmp/stale.md"
expect_fail 7 "api.md naming mix_view_refrash" \
	"mix_view_refrash: named in a table, declared in no header" \
	--names --api "$tmp/stale.md"
exit "$fail"
