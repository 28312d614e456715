#!/bin/sh
# Installs what building and testing mix needs on Debian 12, when missing.
# Called by `make` targets before they build; safe to run repeatedly.
# Without root it prints the exact apt-get line and fails.  Installs no
# recommended packages (--no-install-recommends): what a bare Debian 12
# needs is named here, so tools/first-hour.sh checks this list.
set -eu

need=""
have_hdr() { printf '#include <%s>\n' "$1" | ${CC:-cc} -E -x c - >/dev/null 2>&1; }
have_cmd() { command -v "$1" >/dev/null 2>&1; }

have_hdr urcu/urcu-memb.h || need="$need liburcu-dev"
# Concurrency Kit (libck-dev) is not a dependency: no file uses it
# (docs/design.md "Locks on the publish path, and Concurrency Kit").
have_hdr sys/sdt.h        || need="$need systemtap-sdt-dev"
have_cmd prove            || need="$need perl"
have_cmd ${CC:-cc}        || need="$need gcc"
# gcc only recommends the C library's headers
have_hdr stdio.h          || need="$need libc6-dev"
have_cmd make             || need="$need make"
have_cmd pkg-config       || need="$need pkg-config"
# clang brings the sanitizer runtimes used by `make asan`/`make tsan` with
# either compiler; gcc's own are in libasan8/libubsan1/libtsan2 (with gcc).
if [ "${MIX_DEPS_SAN:-0}" = 1 ]; then
	for l in libasan8 libubsan1 libtsan2; do
		dpkg -s "$l" >/dev/null 2>&1 || need="$need $l"
	done
fi
# `make fuzz` (issue 5): clang with libFuzzer, whose runtime Debian 12
# ships in libclang-rt-14-dev.  Not needed by make / make check.
if [ "${MIX_DEPS_FUZZ:-0}" = 1 ]; then
	have_cmd clang || need="$need clang"
	dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || need="$need libclang-rt-14-dev"
fi
if [ "${MIX_DEPS_VALGRIND:-0}" = 1 ]; then
	have_cmd valgrind || need="$need valgrind"
fi
# `make bench` (issue 6): LMDB for stress/bench-lmdb only (never linked
# into libmix) and gnuplot for the plots.  `make perf`: Debian's perf.
# Not needed by make / make check.
if [ "${MIX_DEPS_BENCH:-0}" = 1 ]; then
	have_hdr lmdb.h || need="$need liblmdb-dev"
	have_cmd gnuplot || need="$need gnuplot-nox"
fi
if [ "${MIX_DEPS_PERF:-0}" = 1 ]; then
	have_cmd perf || need="$need linux-perf"
fi

[ -z "$need" ] && exit 0

line="apt-get update && apt-get install -y --no-install-recommends$need"
if [ "$(id -u)" != 0 ]; then
	echo "mix: missing build dependencies:$need" >&2
	echo "mix: as root, run:  $line" >&2
	exit 1
fi
echo "mix: installing:$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >&2
