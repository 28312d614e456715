#!/bin/sh
# The first hour of a new user, proved (issue 15; docs/release.md).
#
# Builds a minimal Debian 12 root (mmdebstrap, variant minbase, from this
# machine's configured Debian apt sources), takes perl out of it (minbase
# brings it only through usrmerge; perl-base, which dpkg needs, stays), so
# it has no compiler, no make, no prove and no pkg-config; clones this repository's committed HEAD into it; runs the two
# commands of README.md's Quick start block exactly as written, as root in
# the root's /root/mix; then `make install`, `ldconfig` (as the README says)
# and builds docs/example.c outside the tree with pkg-config, against the
# shared library and against the static one, and runs both.  Last, an
# install into PREFIX=/opt/mix must write a mix.pc that names /opt/mix, and
# `make uninstall` with it must leave no file behind; and with
# systemtap-sdt-dev purged and installed again, plain `make`s must build
# the library without and then with its USDT probes.
#
# Usage (as root):  sh tools/first-hour.sh [WORKDIR]
#   WORKDIR  where the root is built (default: a new directory under
#            ${TMPDIR:-/var/tmp}); removed at the end unless MIX_FH_KEEP=1.
#   MIX_FH_SOURCES  apt sources files to build from (default: those of
#            /etc/apt/sources.list{,.d/*} that name a Debian archive).
#   MIX_FH_SUITE    default bookworm.
#   MIX_FH_REPO     the repository to clone (default: the one this script
#            is in); its committed HEAD is what is tested.
# Prints each step with its time, the last lines of a failed step's log,
# and "first-hour: PASS" or "first-hour: FAIL at STEP"; exit 0 on pass.
# Needs root (mmdebstrap --mode=root, chroot, mount) and the network to the
# Debian archive; takes 10-20 minutes (make check dominates).  Not part of
# make check.
set -u

here=${MIX_FH_REPO:-$(cd "$(dirname "$0")/.." && pwd)}
suite=${MIX_FH_SUITE:-bookworm}
log_dir=""
root=""
mounted=""

say() { printf 'first-hour: %s\n' "$*"; }
die() { say "FAIL at $1"; [ -n "${2:-}" ] && say "$2"; exit 1; }

cleanup() {
	for m in $mounted; do umount -l "$m" 2>/dev/null; done
	[ -n "$root" ] || return
	# never remove a tree with anything still mounted in it (/dev!)
	if grep -q " $root[/ ]" /proc/mounts; then
		say "kept $work: something is still mounted under $root"
	elif [ "${MIX_FH_KEEP:-0}" != 1 ]; then
		rm -rf --one-file-system "$work"
	else
		say "kept $work"
	fi
}

# step NAME CMD...: run CMD with its output in $log_dir/NAME.log
step() {
	name=$1
	shift
	t0=$(date +%s)
	say "$name ..."
	if "$@" > "$log_dir/$name.log" 2>&1; then
		say "$name ok ($(( $(date +%s) - t0 )) s): $(tail -n 1 "$log_dir/$name.log")"
		return 0
	fi
	say "$name FAILED after $(( $(date +%s) - t0 )) s; last lines of $log_dir/$name.log:"
	tail -n 40 "$log_dir/$name.log" | sed 's/^/    /'
	die "$name"
}

# in_root CMD: a login-like shell in the root, in /root/mix
in_root() {
	chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		sh -c "cd /root/mix && $1"
}

[ "$(id -u)" = 0 ] || die "start" "needs root (mmdebstrap --mode=root, chroot, mount)"
command -v git >/dev/null 2>&1 || die "start" "needs git on this machine (to clone $here)"
git -C "$here" rev-parse --verify -q HEAD >/dev/null ||
	die "start" "$here is not a git repository with a commit"

# ---- the tool --------------------------------------------------------------
if ! command -v mmdebstrap >/dev/null 2>&1; then
	say "installing mmdebstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends mmdebstrap >/dev/null 2>&1 ||
	{ apt-get update -qq >/dev/null 2>&1 &&
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends mmdebstrap >/dev/null 2>&1; } ||
		die "start" "mmdebstrap is missing and apt-get could not install it"
fi

# ---- the sources: this machine's Debian archives ---------------------------
sources=${MIX_FH_SOURCES:-}
if [ -z "$sources" ]; then
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		 /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		grep -Eq '^[^#]*(deb|URIs:).*/debian(-security)?/?( |$)' "$f" &&
			sources="$sources $f"
	done
fi
[ -n "$sources" ] || die "start" "no Debian archive in /etc/apt/sources.list{,.d} (set MIX_FH_SOURCES)"

work=${1:-}
if [ -z "$work" ]; then
	work=$(mktemp -d "${TMPDIR:-/var/tmp}/mix-first-hour.XXXXXX") ||
		die "start" "mktemp failed"
else
	mkdir -p "$work" || die "start" "cannot create $work"
fi
root="$work/root"
log_dir="$work/logs"
mkdir -p "$log_dir"
trap cleanup EXIT
trap 'exit 130' INT TERM
say "work directory $work; sources:$sources; logs in $log_dir"
say "repository $here at $(git -C "$here" rev-parse --short HEAD)"

# ---- a bare Debian 12 -------------------------------------------------------
# shellcheck disable=SC2086 # one argument per sources file
step mmdebstrap mmdebstrap --variant=minbase --mode=root \
	--include=usr-is-merged "$suite" "$root" $sources

bare() {
	# minbase has perl only as usrmerge's dependency; usr-is-merged
	# stands in for usrmerge once /usr is merged
	chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
		apt-get purge -y -qq usrmerge perl &&
	chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
		apt-get autoremove -y -qq --purge &&
	for c in cc gcc make prove pkg-config; do
		if chroot "$root" sh -c "command -v $c" >/dev/null; then
			echo "the bare root still has $c"; return 1
		fi
	done
	echo "no cc, gcc, make, prove (perl) or pkg-config: bare"
}
step bare-root bare

mounts() {
	mount -t proc proc "$root/proc" && mounted="$root/proc $mounted" &&
	mount --rbind /dev "$root/dev" && mounted="$root/dev $mounted" &&
	mount -t sysfs sysfs "$root/sys" && mounted="$root/sys $mounted" &&
	cp -L /etc/resolv.conf "$root/etc/resolv.conf"
}
step mounts mounts

step clone git clone --quiet --no-hardlinks "$here" "$root/root/mix"

# ---- the Quick start, as the README writes it ------------------------------
# The lines of the first ```sh block after "## Quick start".
awk '/^## Quick start/ { q = 1; next }
     q && /^```sh/ { b = 1; next }
     b && /^```/ { exit }
     b { print }' "$root/root/mix/README.md" > "$work/quickstart"
n=$(grep -c . "$work/quickstart")
[ "$n" = 2 ] || die "quickstart" "README.md's Quick start block has $n commands, expected 2: $(cat "$work/quickstart")"
i=0
while IFS= read -r cmd; do
	i=$((i + 1))
	say "Quick start command $i: $cmd"
	step "quickstart-$i" in_root "$cmd"
done < "$work/quickstart"

# ---- install, and the example outside the tree ------------------------------
step install in_root "make install"
step ldconfig in_root "ldconfig"

example() {
	mode=$1   # mix or mix-static
	in_root "mkdir -p /root/ex && cp docs/example.c /root/ex/ &&
		cd /root/ex && rm -rf idx-$mode && mkdir idx-$mode &&
		echo \"cc example.c -o example-$mode \$(pkg-config --cflags --libs $mode)\" &&
		cc example.c -o example-$mode \$(pkg-config --cflags --libs $mode) &&
		ldd ./example-$mode &&
		./example-$mode idx-$mode" || return 1
	if [ "$mode" = mix ]; then
		in_root "ldd /root/ex/example-mix | grep -q 'libmix.so.0 => /usr/local/lib/'" ||
			{ echo "the shared example does not load /usr/local/lib's libmix.so.0"; return 1; }
	else
		if in_root "ldd /root/ex/example-mix-static | grep -q libmix"; then
			echo "the static example needs libmix.so"; return 1
		fi
	fi
	echo "example-$mode ran"
}
step example-shared example mix
step example-static example mix-static

# ---- another prefix, and uninstall -------------------------------------------
prefix() {
	in_root "make install PREFIX=/opt/mix" || return 1
	# (liburcu's flags may follow: Requires.private)
	in_root "grep -x 'prefix=/opt/mix' /opt/mix/lib/pkgconfig/mix.pc &&
		PKG_CONFIG_PATH=/opt/mix/lib/pkgconfig pkg-config --cflags mix |
		tee /dev/stderr | grep -q -- '^-I/opt/mix/include\( \|\$\)'" ||
		{ echo "mix.pc of PREFIX=/opt/mix does not name /opt/mix"; return 1; }
	in_root "make uninstall PREFIX=/opt/mix" || return 1
	left=$(in_root "find /opt/mix ! -type d")
	if [ -n "$left" ]; then
		echo "make uninstall left: $left"; return 1
	fi
	echo "PREFIX=/opt/mix: mix.pc names it; uninstall left no file"
}
step prefix-opt prefix

# ---- USDT probes noticed when systemtap-sdt-dev comes later -----------------
# build/.deps-ok keeps make from reinstalling it: the build must see the
# header go and come back by itself (build/config.h).
usdt() {
	in_root "DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq systemtap-sdt-dev" || return 1
	in_root "make" || return 1
	if in_root "readelf -n build/libmix.so | grep -q stapsdt"; then
		echo "build/libmix.so still has USDT probes without <sys/sdt.h>"; return 1
	fi
	in_root "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemtap-sdt-dev" || return 1
	in_root "make" || return 1
	n=$(in_root "readelf -n build/libmix.so | grep -c stapsdt")
	if [ "${n:-0}" -eq 0 ]; then
		echo "build/libmix.so has no USDT probes after systemtap-sdt-dev came"; return 1
	fi
	echo "without <sys/sdt.h>: no probes; with it, by a plain make: $n probes"
}
step usdt-later usdt

say "PASS (README Quick start, install, example shared and static, PREFIX, uninstall, USDT later)"
